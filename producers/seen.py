"""Seen-item and conditional-GET state of the feed poller, in SQLite (default) or PostgreSQL, bounded by expiry."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from trucewatch.errors import StoreError
from trucewatch.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TTL = 30 * 24 * 3600.0  # an item absent from its feed for this long is forgotten
_PREFIX_RE = re.compile(r"^[a-z_][a-z0-9_]{0,30}$")

# Table names carry a validated prefix ({p}); placeholders are "?" (SQLite) or "%s" (psycopg).
_SQL = {
    "create_seen": "CREATE TABLE IF NOT EXISTS {p}seen (item_id TEXT PRIMARY KEY, feed TEXT,"
                   " first_seen {real} NOT NULL, last_seen {real} NOT NULL)",
    "create_index": "CREATE INDEX IF NOT EXISTS {p}seen_last ON {p}seen(last_seen)",
    "create_state": "CREATE TABLE IF NOT EXISTS {p}state (feed TEXT PRIMARY KEY, etag TEXT, last_modified TEXT,"
                    " updated_at {real} NOT NULL)",
    "known": "SELECT item_id FROM {p}seen WHERE item_id IN ({marks})",
    "known_any": "SELECT item_id FROM {p}seen WHERE item_id = ANY(?)",
    "mark": "INSERT INTO {p}seen(item_id, feed, first_seen, last_seen) VALUES (?,?,?,?)"
            " ON CONFLICT(item_id) DO UPDATE SET last_seen=excluded.last_seen",
    "expire": "DELETE FROM {p}seen WHERE last_seen < ?",
    "count": "SELECT count(*) FROM {p}seen",
    "get_state": "SELECT etag, last_modified FROM {p}state WHERE feed=?",
    "put_state": "INSERT INTO {p}state(feed, etag, last_modified, updated_at) VALUES (?,?,?,?) ON CONFLICT(feed)"
                 " DO UPDATE SET etag=excluded.etag, last_modified=excluded.last_modified,"
                 " updated_at=excluded.updated_at",
    "drop_seen": "DROP TABLE IF EXISTS {p}seen",
    "drop_state": "DROP TABLE IF EXISTS {p}state",
}


def _statements(prefix: str, *, postgres: bool) -> dict[str, str]:
    """The SQL of one store: table prefix filled in (validated), placeholders in the driver's style."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(f"bad table prefix {prefix!r}")
    real = "DOUBLE PRECISION" if postgres else "REAL"
    out = {}
    for k, v in _SQL.items():
        v = v.replace("{p}", prefix).replace("{real}", real)
        out[k] = v.replace("?", "%s") if postgres else v
    return out


@dataclass(frozen=True)
class FeedState:
    """Conditional-GET validators of one feed, stored exactly as the server sent them."""

    etag: str | None = None
    last_modified: str | None = None


class SeenStore(Protocol):
    """What the poller needs from the state store."""

    def unseen(self, ids: list[str]) -> list[str]:
        """The ids among ``ids`` never marked (order kept)."""

    def mark(self, ids: Iterable[str], feed: str, now: float | None = None) -> None:
        """Record ids as sent (or still listed) at ``now``."""

    def expire(self, now: float | None = None) -> int:
        """Forget ids not listed for ``ttl`` seconds; return how many."""

    def get_state(self, feed: str) -> FeedState:
        """Validators stored for a feed URL."""

    def put_state(self, feed: str, state: FeedState) -> None:
        """Store the validators of a feed URL."""

    def close(self) -> None:
        """Release the connection."""


class _SharedQueries:
    """The queries both backends run the same way through their own ``_run`` (connection under a lock)."""

    sql: dict[str, str]
    ttl: float

    def _run(self, fn: Any) -> Any:  # pragma: no cover - provided by each backend
        raise NotImplementedError

    def expire(self, now: float | None = None) -> int:
        cutoff = (time.time() if now is None else now) - self.ttl
        return int(self._run(lambda c: c.execute(self.sql["expire"], (cutoff,)).rowcount))

    def count(self) -> int:
        """How many ids are remembered."""
        return int(self._run(lambda c: c.execute(self.sql["count"]).fetchone()[0]))

    def get_state(self, feed: str) -> FeedState:
        row = self._run(lambda c: c.execute(self.sql["get_state"], (feed,)).fetchone())
        return FeedState(row[0], row[1]) if row else FeedState()

    def put_state(self, feed: str, state: FeedState) -> None:
        self._run(lambda c: c.execute(self.sql["put_state"], (feed, state.etag, state.last_modified, time.time())))


class SqliteSeenStore(_SharedQueries):
    """SQLite-backed state (one file, WAL). Thread-safe via one lock; every call is one short transaction."""

    def __init__(self, path: Path | str, *, ttl: float = DEFAULT_TTL, prefix: str = "feed_") -> None:
        try:
            self.sql = _statements(prefix, postgres=False)
        except ValueError as e:
            raise StoreError(str(e), url=str(path)) from None
        self.url = f"sqlite:///{path}"
        self.ttl = ttl
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            for k in ("create_seen", "create_index", "create_state"):
                self.conn.execute(self.sql[k])
        except sqlite3.Error as e:
            raise StoreError(f"cannot open feed state {path}: {e}", url=self.url) from e
        self.lock = threading.Lock()

    def _run(self, fn: Any) -> Any:
        with self.lock:
            try:
                return fn(self.conn)
            except sqlite3.Error as e:
                raise StoreError(f"feed state: {e}", url=self.url) from e

    def unseen(self, ids: list[str]) -> list[str]:
        if not ids:
            return []

        def q(c: sqlite3.Connection) -> list[str]:
            known: set[str] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                known.update(r[0] for r in c.execute(self.sql["known"].replace("{marks}", marks), chunk))
            return [x for x in ids if x not in known]

        return list(self._run(q))

    def mark(self, ids: Iterable[str], feed: str, now: float | None = None) -> None:
        t = time.time() if now is None else now
        rows = [(i, feed, t, t) for i in ids]
        if not rows:
            return

        def q(c: sqlite3.Connection) -> None:
            c.execute("BEGIN")
            c.executemany(self.sql["mark"], rows)
            c.execute("COMMIT")

        self._run(q)

    def close(self) -> None:
        with self.lock:
            self.conn.close()


class PostgresSeenStore(_SharedQueries):
    """PostgreSQL-backed state (psycopg 3, one autocommit connection guarded by a lock)."""

    def __init__(self, url: str, *, ttl: float = DEFAULT_TTL, prefix: str = "feed_") -> None:
        import psycopg

        try:
            self.sql = _statements(prefix, postgres=True)
        except ValueError as e:
            raise StoreError(str(e), url=_mask(url)) from None
        self.url = _mask(url)
        self.ttl = ttl
        self._psycopg = psycopg
        from sinks.store import split_pg_url

        dsn, schema = split_pg_url(url)  # the same URL as the alert store, ?schema= included
        try:
            self.conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
            if schema:
                self.conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                self.conn.execute(f'SET search_path TO "{schema}"')
            with self.conn.transaction():
                for k in ("create_seen", "create_index", "create_state"):
                    self.conn.execute(self.sql[k])
        except psycopg.Error as e:
            raise StoreError(f"cannot open feed state: {e}", url=self.url) from e
        self.lock = threading.Lock()

    def _run(self, fn: Any) -> Any:
        with self.lock:
            try:
                return fn(self.conn)
            except self._psycopg.Error as e:
                raise StoreError(f"feed state: {e}", url=self.url) from e

    def unseen(self, ids: list[str]) -> list[str]:
        if not ids:
            return []
        known = {r[0] for r in self._run(lambda c: c.execute(self.sql["known_any"], (ids,)).fetchall())}
        return [x for x in ids if x not in known]

    def mark(self, ids: Iterable[str], feed: str, now: float | None = None) -> None:
        t = time.time() if now is None else now
        rows = [(i, feed, t, t) for i in ids]
        if not rows:
            return

        def q(c: Any) -> None:
            with c.transaction(), c.cursor() as cur:
                cur.executemany(self.sql["mark"], rows)

        self._run(q)

    def drop(self) -> None:
        """Drop this store's tables (tests)."""
        self._run(lambda c: (c.execute(self.sql["drop_seen"]), c.execute(self.sql["drop_state"])))

    def close(self) -> None:
        with self.lock:
            self.conn.close()


def _mask(url: str) -> str:
    """A database URL with its password masked (for errors and logs)."""
    return re.sub(r"(//[^:/@]+:)[^@]*@", r"\1****@", url)


def open_seen_store(settings: Settings, *, ttl: float = DEFAULT_TTL) -> SqliteSeenStore | PostgresSeenStore:
    """PostgreSQL when ``settings.store_url`` is postgresql://..., else SQLite at data_dir/feeds.db."""
    url = settings.store_url or ""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresSeenStore(url, ttl=ttl)
    return SqliteSeenStore(settings.data_dir / "feeds.db", ttl=ttl)
