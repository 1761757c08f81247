"""Ingest: publish articles read from files, directories or JSONL to ``articles.raw``."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from producers.files import iter_paths
from producers.publish import Publisher
from trucewatch.errors import ConfigError, InputError
from trucewatch.settings import Settings

log = logging.getLogger(__name__)


def ingest(paths: Iterable[Path | str], publisher: Publisher, err: TextIO | None = None) -> tuple[int, int]:
    """Publish every readable article; report bad records on ``err``. Returns (published, errors)."""
    err = err or sys.stderr
    published = errors = 0
    for item in iter_paths(paths):
        if isinstance(item, InputError):
            errors += 1
            path, line = item.context.get("path"), item.context.get("line")
            where = f"{path}:{line}" if line else f"{path}"
            print(f"trucewatch: skipped {where}: {item.message}", file=err)
            continue
        publisher.publish(item)
        published += 1
    publisher.flush()
    return published, errors


def run_ingest(settings: Settings, paths: list[Path]) -> int:
    """CLI entry: ingest into the configured broker. Exit 0, or 1 when some records were skipped."""
    if not settings.kafka_bootstrap:
        raise ConfigError("no broker: set TRUCEWATCH_KAFKA_BOOTSTRAP, or pass the files to `trucewatch up`",
                          path="environment", entry="TRUCEWATCH_KAFKA_BOOTSTRAP")
    with Publisher.from_settings(settings, settings.kafka_bootstrap) as pub:
        n, bad = ingest(paths, pub)
    print(f"published {n} article(s) to {pub.topic}" + (f", skipped {bad}" if bad else ""), file=sys.stderr)
    return 1 if bad else 0
