"""Shared fixtures: the ../shared data (skipped with a reason when absent) and one embedded broker per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("TRUCEWATCH_SHARED_DIR", REPO.parent / "shared"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        if "faults" in parts:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the repo (third-party data read in place); skip when absent."""
    if not (SHARED / "data").is_dir():
        pytest.skip(f"../shared is absent ({SHARED}): third-party data is read in place, never copied")
    return SHARED


@pytest.fixture(scope="session")
def devset_path(shared_dir: Path) -> Path:
    return shared_dir / "data" / "devset.jsonl"


@pytest.fixture(scope="session")
def seeds_jsonl() -> Path:
    return REPO / "examples" / "seeds.jsonl"


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """One real embedded Tansu broker for the whole test session; yields its bootstrap address."""
    from trucewatch.broker import EmbeddedBroker

    b = EmbeddedBroker(log_path=REPO / "var" / "test-broker.log").start()
    try:
        yield b.bootstrap
    finally:
        b.stop()


@pytest.fixture()
def prefix() -> str:
    """A fresh topic prefix per test, so tests on the shared broker never see each other's messages."""
    return f"t{uuid.uuid4().hex[:10]}."
