"""Seen-item state: the same tests on SQLite and on the machine's PostgreSQL (skipped when unreachable)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from producers.seen import FeedState, PostgresSeenStore, SqliteSeenStore, open_seen_store
from trucewatch.errors import StoreError
from trucewatch.settings import Settings

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    prefix = f"t{uuid.uuid4().hex[:8]}_"
    if request.param == "sqlite":
        s: Any = SqliteSeenStore(tmp_path / "seen.db", ttl=100.0, prefix=prefix)
        yield s
        s.close()
        return
    try:
        s = PostgresSeenStore(PG_URL, ttl=100.0, prefix=prefix)
    except StoreError as e:
        pytest.skip(f"PostgreSQL at {PG_URL} unreachable: {e}")
    try:
        yield s
    finally:
        s.drop()
        s.close()


def test_unseen_then_mark(store: Any) -> None:
    assert store.unseen(["a", "b", "c"]) == ["a", "b", "c"]
    store.mark(["a", "b"], "https://f.example/rss", now=1000.0)
    assert store.unseen(["c", "a", "b", "d"]) == ["c", "d"]
    assert store.unseen([]) == []
    store.mark([], "f")
    assert store.count() == 2


def test_expiry_is_bounded_by_last_listing(store: Any) -> None:
    store.mark(["old", "listed"], "f", now=1000.0)
    store.mark(["listed"], "f", now=1080.0)  # still in the feed: refreshed
    assert store.expire(now=1150.0) == 1
    assert store.unseen(["old", "listed"]) == ["old"]


def test_feed_state_round_trip(store: Any) -> None:
    assert store.get_state("u") == FeedState()
    store.put_state("u", FeedState('W/"abc"', "Sun, 30 May 2021 10:00:00 GMT"))
    assert store.get_state("u") == FeedState('W/"abc"', "Sun, 30 May 2021 10:00:00 GMT")
    store.put_state("u", FeedState(None, None))
    assert store.get_state("u") == FeedState()


def test_many_ids(store: Any) -> None:
    ids = [f"id{i}" for i in range(1500)]
    store.mark(ids[:1000], "f")
    assert store.unseen(ids) == ids[1000:]


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    s = SqliteSeenStore(tmp_path / "x" / "seen.db")
    s.mark(["a"], "f")
    s.put_state("f", FeedState("e", None))
    s.close()
    s2 = SqliteSeenStore(tmp_path / "x" / "seen.db")
    assert s2.unseen(["a", "b"]) == ["b"] and s2.get_state("f").etag == "e"
    s2.close()


def test_open_seen_store_picks_the_backend(tmp_path: Path) -> None:
    s = open_seen_store(Settings(data_dir=tmp_path))
    assert isinstance(s, SqliteSeenStore) and (tmp_path / "feeds.db").exists()
    s.close()
    with pytest.raises(StoreError) as e:
        open_seen_store(Settings(store_url="postgresql://u:secret@127.0.0.1:1/none"))
    assert "secret" not in str(e.value) and "****" in e.value.url


def test_bad_prefix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        SqliteSeenStore(tmp_path / "s.db", prefix="x; DROP TABLE y")
