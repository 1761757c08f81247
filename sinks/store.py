"""The alert store (SQLite or PostgreSQL): alerts, visits, story clusters and the notification outbox.

One interface over both engines. ``open_store("sqlite:///var/trucewatch.db")`` or
``open_store("postgresql://user@host:5432/db[?schema=name]")`` applies the versioned migrations and
returns an AlertStore. Every ``record`` is one transaction: the alert upsert and its outbox rows
commit together, so an alert is never stored without its notifications nor notified twice.

Times are stored as fixed-width UTC ISO-8601 text (``2024-05-01T12:00:00.000000Z``), which sorts
correctly on both engines and casts with ``::timestamptz`` in PostgreSQL (Grafana).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sinks.merge import absorb, new_article_ids, normalise
from trucewatch.errors import StoreError
from trucewatch.schema import Alert, Visit, alert_id, utcnow

log = logging.getLogger(__name__)

PENDING, SENT, FAILED = "pending", "sent", "failed"
PARSED_ALERTS = 1024  # parsed alerts the SQLite store keeps between batches (LRU)

# Versioned migrations, applied in order at open; never edit a released entry, append a new one.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (1, [
        """CREATE TABLE alerts (
            id TEXT PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, severity TEXT NOT NULL,
            title TEXT NOT NULL, first_seen TEXT NOT NULL, last_seen TEXT, corroborations INTEGER NOT NULL,
            replay INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, doc TEXT NOT NULL)""",
        "CREATE INDEX alerts_kind_first_seen ON alerts (kind, first_seen)",
        "CREATE INDEX alerts_first_seen ON alerts (first_seen)",
        "CREATE INDEX alerts_key ON alerts (key)",
        """CREATE TABLE visits (
            key TEXT NOT NULL, article_id TEXT NOT NULL, visitor TEXT, visitor_id TEXT NOT NULL, role_en TEXT,
            visitor_country TEXT, destination_city TEXT, destination_country TEXT, status TEXT NOT NULL,
            first_in TEXT, source TEXT, url TEXT, title TEXT, published_at TEXT, replay INTEGER NOT NULL,
            recorded_at TEXT NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (key, article_id))""",
        "CREATE INDEX visits_published_at ON visits (published_at)",
        """CREATE TABLE story_clusters (
            key TEXT PRIMARY KEY, title TEXT NOT NULL, labels TEXT NOT NULL, first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL, article_ids TEXT NOT NULL, sources TEXT NOT NULL, size INTEGER NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE outbox (
            alert_id TEXT NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL,
            next_attempt TEXT NOT NULL, last_error TEXT, revision INTEGER NOT NULL, created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL, sent_at TEXT, PRIMARY KEY (alert_id, channel))""",
        "CREATE INDEX outbox_due ON outbox (channel, state, next_attempt)",
    ]),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]


def ts(d: datetime | None) -> str | None:
    """A datetime as fixed-width UTC text (naive datetimes are taken as UTC)."""
    if d is None:
        return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    return d.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(s: str | None) -> datetime | None:
    """Inverse of ``ts``."""
    if not s:
        return None
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@dataclass(frozen=True)
class OutboxItem:
    """One notification: an alert on a channel, with its delivery state."""

    alert_id: str
    channel: str
    state: str
    attempts: int
    next_attempt: datetime
    last_error: str | None
    revision: int
    created_at: datetime
    sent_at: datetime | None


# SQL below interpolates only these module constants and fixed clauses; values always go through parameters.
_OUTBOX_COLS = "alert_id, channel, state, attempts, next_attempt, last_error, revision, created_at, sent_at"


def _outbox_item(row: Sequence[Any]) -> OutboxItem:
    return OutboxItem(
        alert_id=row[0], channel=row[1], state=row[2], attempts=int(row[3]),
        next_attempt=parse_ts(row[4]) or utcnow(), last_error=row[5], revision=int(row[6]),
        created_at=parse_ts(row[7]) or utcnow(), sent_at=parse_ts(row[8]),
    )


class AlertStore:
    """The store interface; ``_Engine`` subclasses supply connections, transactions and placeholders."""

    url: str
    default_rollup: dict[str, float]  # roll-up seconds per channel when ``record`` is not told (routing sets it)

    # --- engine hooks ------------------------------------------------------------------------------------
    @contextmanager
    def _tx(self, lock: str | None = None) -> Iterator[Any]:  # pragma: no cover - overridden
        raise NotImplementedError
        yield

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Make the ``record`` calls inside one transaction (the sinks apply a polled batch at a time): all of
        them commit together or none does (StoreError). The base class commits each call on its own."""
        yield

    def _q(self, sql: str) -> str:
        return sql

    def _exec(self, cur: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        cur.execute(self._q(sql), tuple(params))
        return cur

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    # --- migrations -------------------------------------------------------------------------------------
    def _migrate(self) -> None:
        with self._tx(lock="schema") as cur:
            self._exec(cur, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
                            "applied_at TEXT NOT NULL)")
        with self._tx(lock="schema") as cur:
            row = self._exec(cur, "SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"store schema version {current} is newer than this build ({SCHEMA_VERSION})",
                                 url=self.url)
            for version, statements in MIGRATIONS:
                if version <= current:
                    continue
                for stmt in statements:
                    self._exec(cur, stmt)
                self._exec(cur, "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                           (version, ts(utcnow())))
                log.info("store migrated to schema version %s", version)

    def schema_version(self) -> int:
        """The applied schema version."""
        with self._tx() as cur:
            row = self._exec(cur, "SELECT MAX(version) FROM schema_version").fetchone()
            return int(row[0] or 0)

    # --- alerts -----------------------------------------------------------------------------------------
    def _load(self, cur: Any, aid: str) -> Alert | None:
        row = self._exec(cur, "SELECT doc FROM alerts WHERE id = ?", (aid,)).fetchone()
        # bytes: pydantic parses UTF-8 bytes ~2.5x faster than a str holding the same (non-ASCII) JSON
        return Alert.model_validate_json(row[0].encode("utf-8")) if row else None

    def _save(self, cur: Any, a: Alert, now: datetime) -> None:
        doc = a.model_dump_json()
        self._exec(cur, """INSERT INTO alerts (id, kind, key, severity, title, first_seen, last_seen, corroborations,
                   replay, created_at, updated_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (id) DO UPDATE SET severity = excluded.severity, title = excluded.title,
                   first_seen = excluded.first_seen, last_seen = excluded.last_seen,
                   corroborations = excluded.corroborations, replay = excluded.replay,
                   created_at = excluded.created_at, updated_at = excluded.updated_at, doc = excluded.doc""",
                   (a.id, a.kind, a.key, a.severity, a.title, ts(a.first_seen), ts(a.last_seen), a.corroborations,
                    int(a.replay), ts(a.created_at), ts(now), doc))
        self._saved(a, ts(now), doc)

    def _saved(self, a: Alert, updated_at: str | None, doc: str) -> None:
        """Hook: ``a`` was written with this ``updated_at`` and ``doc`` (in the current transaction)."""

    def _outbox_row(self, cur: Any, aid: str, channel: str) -> OutboxItem | None:
        row = self._exec(cur, f"SELECT {_OUTBOX_COLS} FROM outbox WHERE alert_id = ? AND channel = ?",  # noqa: S608
                         (aid, channel)).fetchone()
        return _outbox_item(row) if row else None

    def record(self, alert: Alert, channels: Sequence[str] = (), *,
               rollup_seconds: float | dict[str, float] | None = None, now: datetime | None = None) -> bool:
        """Upsert ``alert`` and enqueue its notifications on ``channels``, in one transaction.

        A second delivery of the same alert merges into the stored one (earliest first_seen, union of
        links and article ids, corroborations = distinct article ids, highest severity) and never adds a
        second outbox row. A ``visit_update`` is folded into the key's ``new_visit`` alert, whether it
        carries that alert's id (processors/novelty.py) or its own. Roll-up: while a notification of the
        visit is pending, the update adds no message (the pending one is rendered from the merged state
        when it is sent); once sent, an update that brings new articles re-arms it (revision + 1), due no
        sooner than ``rollup_seconds`` (per channel; default ``self.default_rollup``) after the last send.
        Returns True if anything changed. Raises StoreError when the store fails.
        """
        now = now or utcnow()
        rollup = self.default_rollup if rollup_seconds is None else rollup_seconds
        incoming = normalise(alert)
        is_update = alert.kind == "visit_update"
        visit_id = alert_id("new_visit", alert.key)
        if alert.id == visit_id and alert.kind != "new_visit":
            incoming = incoming.model_copy(update={"kind": "new_visit"})  # an update carrying the visit's id
        changed = False
        with self._tx(lock=f"alert:{alert.key}") as cur:
            existing = self._load(cur, alert.id)
            merged = absorb(existing, incoming) if existing else incoming
            if alert.kind == "new_visit":
                separate_update = self._load(cur, alert_id("visit_update", alert.key))
                if separate_update is not None:
                    merged = absorb(merged, separate_update)
            if is_update and alert.id != visit_id:
                target = self._load(cur, visit_id)
                if target is not None:
                    folded = absorb(target, incoming)
                    if folded != target:
                        self._save(cur, folded, now)
                        changed = True
                    merged = merged.model_copy(update={"corroborations": max(merged.corroborations,
                                                                             folded.corroborations)})
            if merged != existing:
                self._save(cur, merged, now)
                changed = True
            fresh = existing is not None and bool(new_article_ids(existing, merged))
            for channel in channels:
                changed |= self._enqueue(cur, merged, channel, is_update=is_update, fresh=fresh, now=now,
                                         rollup=_rollup(rollup, channel))
        return changed

    def _enqueue(self, cur: Any, alert: Alert, channel: str, *, is_update: bool, fresh: bool, now: datetime,
                 rollup: float) -> bool:
        row = self._outbox_row(cur, alert.id, channel)
        visit_id = alert_id("new_visit", alert.key)
        if row is None:
            if is_update and alert.id != visit_id:
                parent = self._outbox_row(cur, visit_id, channel)
                if parent is not None and parent.state == PENDING:
                    return False  # rolled up: the pending new_visit message will carry this update
            self._exec(cur, f"INSERT INTO outbox ({_OUTBOX_COLS}, updated_at) "  # noqa: S608
                            "VALUES (?, ?, ?, 0, ?, NULL, 1, ?, NULL, ?)",
                       (alert.id, channel, PENDING, ts(now), ts(now), ts(now)))
            return True
        if is_update and fresh and row.state == SENT:
            not_before = max(now, row.sent_at + timedelta(seconds=rollup)) if row.sent_at else now
            self._exec(cur, "UPDATE outbox SET state = ?, attempts = 0, next_attempt = ?, last_error = NULL, "
                            "revision = revision + 1, updated_at = ? WHERE alert_id = ? AND channel = ?",
                       (PENDING, ts(not_before), ts(now), alert.id, channel))
            return True
        return False

    def get_alert(self, aid: str) -> Alert | None:
        """The stored alert with id ``aid``, or None."""
        with self._tx() as cur:
            return self._load(cur, aid)

    def list_alerts(self, kind: str | None = None, since: datetime | None = None, limit: int = 1000) -> list[Alert]:
        """Stored alerts, newest first_seen first, optionally of one kind and first seen at/after ``since``."""
        where: list[str] = []
        params: list[Any] = []
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if since:
            where.append("first_seen >= ?")
            params.append(ts(since))
        sql = "SELECT doc FROM alerts" + (" WHERE " + " AND ".join(where) if where else "")  # noqa: S608
        sql += " ORDER BY first_seen DESC, id LIMIT ?"
        params.append(int(limit))
        with self._tx() as cur:
            return [Alert.model_validate_json(r[0].encode("utf-8")) for r in self._exec(cur, sql, params).fetchall()]

    def count_alerts(self, kind: str | None = None) -> int:
        """How many alerts are stored (of one kind)."""
        with self._tx() as cur:
            if kind:
                row = self._exec(cur, "SELECT COUNT(*) FROM alerts WHERE kind = ?", (kind,)).fetchone()
            else:
                row = self._exec(cur, "SELECT COUNT(*) FROM alerts").fetchone()
            return int(row[0])

    # --- visits and story clusters -----------------------------------------------------------------------
    def record_visit(self, visit: Visit, now: datetime | None = None) -> bool:
        """Upsert one visit report (by visit key + article id). Returns True if it was new or changed."""
        now = now or utcnow()
        doc = visit.model_dump_json()
        with self._tx() as cur:
            row = self._exec(cur, "SELECT doc FROM visits WHERE key = ? AND article_id = ?",
                             (visit.key, visit.article_id)).fetchone()
            if row and row[0] == doc:
                return False
            self._exec(cur, """INSERT INTO visits (key, article_id, visitor, visitor_id, role_en, visitor_country,
                       destination_city, destination_country, status, first_in, source, url, title, published_at,
                       replay, recorded_at, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                       ON CONFLICT (key, article_id) DO UPDATE SET visitor = excluded.visitor,
                       visitor_id = excluded.visitor_id, role_en = excluded.role_en,
                       visitor_country = excluded.visitor_country, destination_city = excluded.destination_city,
                       destination_country = excluded.destination_country, status = excluded.status,
                       first_in = excluded.first_in, source = excluded.source, url = excluded.url,
                       title = excluded.title, published_at = excluded.published_at, replay = excluded.replay,
                       doc = excluded.doc""",
                       (visit.key, visit.article_id, visit.visitor, visit.visitor_id, visit.role_en,
                        visit.visitor_country, visit.destination_city, visit.destination_country, visit.status,
                        visit.first_in, visit.source, visit.url, visit.title, ts(visit.published_at),
                        int(visit.replay), ts(now), doc))
            return True

    def list_visits(self, key: str | None = None, limit: int = 1000) -> list[Visit]:
        """Stored visit reports, newest published first (all, or those of one visit key)."""
        sql, params = "SELECT doc FROM visits", list[Any]()
        if key:
            sql += " WHERE key = ?"
            params.append(key)
        sql += " ORDER BY published_at DESC, key, article_id LIMIT ?"
        params.append(int(limit))
        with self._tx() as cur:
            return [Visit.model_validate_json(r[0].encode("utf-8")) for r in self._exec(cur, sql, params).fetchall()]

    def record_story(self, key: str, article_id: str, *, source: str, title: str, labels: Sequence[str],
                     event_time: datetime, now: datetime | None = None) -> bool:
        """Add one article to the story cluster ``key`` (created on first use). True if anything changed."""
        now = now or utcnow()
        with self._tx(lock=f"story:{key}") as cur:
            row = self._exec(cur, "SELECT title, labels, first_seen, last_seen, article_ids, sources FROM "
                                  "story_clusters WHERE key = ?", (key,)).fetchone()
            if row is None:
                t, labs, first, last, ids, srcs = title, set(labels), event_time, event_time, {article_id}, {source}
            else:
                ids, srcs, labs = set(json.loads(row[4])), set(json.loads(row[5])), set(json.loads(row[1]))
                first, last = parse_ts(row[2]) or event_time, parse_ts(row[3]) or event_time
                before = (row[0], labs.copy(), first, last, ids.copy(), srcs.copy())
                t = row[0] if first <= event_time else title
                labs |= set(labels)
                ids.add(article_id)
                srcs.add(source)
                first, last = min(first, event_time), max(last, event_time)
                if (t, labs, first, last, ids, srcs) == before:
                    return False
            self._exec(cur, """INSERT INTO story_clusters (key, title, labels, first_seen, last_seen, article_ids,
                       sources, size, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET
                       title = excluded.title, labels = excluded.labels, first_seen = excluded.first_seen,
                       last_seen = excluded.last_seen, article_ids = excluded.article_ids,
                       sources = excluded.sources, size = excluded.size, updated_at = excluded.updated_at""",
                       (key, t, json.dumps(sorted(labs)), ts(first), ts(last), json.dumps(sorted(ids)),
                        json.dumps(sorted(srcs)), len(ids), ts(now)))
            return True

    def get_story(self, key: str) -> dict[str, Any] | None:
        """One story cluster as a dict (key, title, labels, first_seen, last_seen, article_ids, sources, size)."""
        with self._tx() as cur:
            row = self._exec(cur, "SELECT key, title, labels, first_seen, last_seen, article_ids, sources, size "
                                  "FROM story_clusters WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return {"key": row[0], "title": row[1], "labels": json.loads(row[2]), "first_seen": parse_ts(row[3]),
                "last_seen": parse_ts(row[4]), "article_ids": json.loads(row[5]), "sources": json.loads(row[6]),
                "size": int(row[7])}

    # --- outbox -----------------------------------------------------------------------------------------
    def due(self, channel: str, now: datetime | None = None, limit: int = 100) -> list[OutboxItem]:
        """Pending notifications on ``channel`` whose next attempt is at/before ``now``, oldest first."""
        with self._tx() as cur:
            rows = self._exec(cur, f"SELECT {_OUTBOX_COLS} FROM outbox WHERE channel = ? AND state = ? AND "  # noqa: S608
                                   "next_attempt <= ? ORDER BY next_attempt, created_at, alert_id LIMIT ?",
                              (channel, PENDING, ts(now or utcnow()), int(limit))).fetchall()
        return [_outbox_item(r) for r in rows]

    def next_due(self, channel: str) -> datetime | None:
        """When the next pending notification on ``channel`` becomes due (None if nothing is pending)."""
        with self._tx() as cur:
            row = self._exec(cur, "SELECT MIN(next_attempt) FROM outbox WHERE channel = ? AND state = ?",
                             (channel, PENDING)).fetchone()
        return parse_ts(row[0]) if row else None

    def outbox_item(self, aid: str, channel: str) -> OutboxItem | None:
        """The outbox row of ``aid`` on ``channel``, or None."""
        with self._tx() as cur:
            return self._outbox_row(cur, aid, channel)

    def outbox(self, channel: str | None = None) -> list[OutboxItem]:
        """Every outbox row (of one channel)."""
        sql, params = f"SELECT {_OUTBOX_COLS} FROM outbox", []  # noqa: S608
        if channel:
            sql += " WHERE channel = ?"
            params.append(channel)
        with self._tx() as cur:
            return [_outbox_item(r) for r in self._exec(cur, sql + " ORDER BY created_at, alert_id", params)]

    def mark_sent(self, aid: str, channel: str, revision: int | None = None, now: datetime | None = None) -> bool:
        """Mark a notification delivered. With ``revision``, only if it was not re-armed meanwhile (a newer
        revision stays pending and is sent again). Returns True if the row was updated."""
        now = now or utcnow()
        sql = ("UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = NULL, sent_at = ?, updated_at = ? "
               "WHERE alert_id = ? AND channel = ? AND state = ?")
        params: list[Any] = [SENT, ts(now), ts(now), aid, channel, PENDING]
        if revision is not None:
            sql += " AND revision = ?"
            params.append(revision)
        with self._tx() as cur:
            return bool(self._exec(cur, sql, params).rowcount)

    def mark_failed(self, aid: str, channel: str, error: str, next_attempt: datetime | None,
                    now: datetime | None = None, *, permanent: bool = False) -> bool:
        """Record a failed attempt: the row stays pending until ``next_attempt`` (or becomes ``failed`` for
        good when ``permanent``). ``error`` must not contain secrets. Returns True if the row was updated."""
        now = now or utcnow()
        state = FAILED if permanent else PENDING
        with self._tx() as cur:
            return bool(self._exec(cur, "UPDATE outbox SET state = ?, attempts = attempts + 1, last_error = ?, "
                                        "next_attempt = ?, updated_at = ? WHERE alert_id = ? AND channel = ? "
                                        "AND state = ?",
                                   (state, error[:2000], ts(next_attempt or now), ts(now), aid, channel,
                                    PENDING)).rowcount)

    def pending_count(self, channel: str | None = None) -> int:
        """How many notifications are pending (on one channel)."""
        with self._tx() as cur:
            if channel:
                row = self._exec(cur, "SELECT COUNT(*) FROM outbox WHERE state = ? AND channel = ?",
                                 (PENDING, channel)).fetchone()
            else:
                row = self._exec(cur, "SELECT COUNT(*) FROM outbox WHERE state = ?", (PENDING,)).fetchone()
            return int(row[0])

    def channels(self) -> list[str]:
        """Channels that have outbox rows."""
        with self._tx() as cur:
            return [r[0] for r in self._exec(cur, "SELECT DISTINCT channel FROM outbox ORDER BY channel")]

    def __enter__(self) -> AlertStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rollup(rollup: float | dict[str, float], channel: str) -> float:
    return float(rollup.get(channel, 0.0)) if isinstance(rollup, dict) else float(rollup)


class SQLiteStore(AlertStore):
    """SQLite in WAL mode; one connection shared by threads under a lock, busy timeout for other processes."""

    def __init__(self, url: str, path: Path) -> None:
        self.url = url
        self.path = path
        self.default_rollup = {}
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._batch: Any = None  # the cursor of the open batch() transaction
        # inside batch(): alert id -> (the alert as the batch sees it, when it was last saved or None if unchanged);
        # each alert of a batch is parsed once and written once, at the end of the batch (same transaction)
        self._docs: dict[str, tuple[Alert | None, datetime | None]] | None = None
        # across batches: alert id -> (updated_at, doc length, the parsed alert) of the version this process last
        # wrote or read; a stored alert with hundreds of links is parsed again only when another writer changed it
        self._parsed: OrderedDict[str, tuple[str, int, Alert]] = OrderedDict()
        try:
            self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")
        except sqlite3.Error as e:
            raise StoreError(f"cannot open SQLite store {path}: {e}", url=url) from None
        self._migrate()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every ``_tx`` inside (same thread; other threads wait on the lock): one commit per
        polled batch instead of one per alert, which was most of the sink's store time."""
        with self._lock:
            if self._batch is not None:  # nested: the outer batch commits
                yield
                return
            with self._tx() as cur:
                self._batch = cur
                self._docs = {}
                try:
                    yield
                    self._write_docs(cur)
                finally:
                    self._batch = None
                    self._docs = None

    def _load(self, cur: Any, aid: str) -> Alert | None:
        docs = self._docs
        if docs is None:
            return self._load_known(cur, aid)
        hit = docs.get(aid)
        if hit is None:
            hit = docs[aid] = (self._load_known(cur, aid), None)
        return hit[0]

    def _load_known(self, cur: Any, aid: str) -> Alert | None:
        """The stored alert, parsed again only when its row changed since this process last wrote or parsed it
        (``updated_at`` and the doc's length identify a version; a rolled-back write leaves the row's older
        version, which does not match, so it is read again)."""
        known = self._parsed.get(aid)
        if known is None:
            row = self._exec(cur, "SELECT updated_at, length(doc), doc FROM alerts WHERE id = ?", (aid,)).fetchone()
        else:
            row = self._exec(cur, "SELECT updated_at, length(doc), CASE WHEN updated_at = ? AND length(doc) = ? "
                                  "THEN NULL ELSE doc END FROM alerts WHERE id = ?",
                             (known[0], known[1], aid)).fetchone()
        if row is None:
            self._parsed.pop(aid, None)
            return None
        if row[2] is None and known is not None:
            self._parsed.move_to_end(aid)
            return known[2]
        alert = Alert.model_validate_json(row[2].encode("utf-8"))
        self._remember(aid, row[0], int(row[1]), alert)
        return alert

    def _remember(self, aid: str, updated_at: str, length: int, alert: Alert) -> None:
        parsed = self._parsed
        parsed[aid] = (updated_at, length, alert)
        parsed.move_to_end(aid)
        while len(parsed) > PARSED_ALERTS:
            parsed.popitem(last=False)

    def _saved(self, a: Alert, updated_at: str | None, doc: str) -> None:
        if updated_at is not None:
            self._remember(a.id, updated_at, len(doc), a)

    def _save(self, cur: Any, a: Alert, now: datetime) -> None:
        if self._docs is None:
            super()._save(cur, a, now)
        else:
            self._docs[a.id] = (a, now)

    def _write_docs(self, cur: Any) -> None:
        """Write the alerts the open batch saved (once each, with the time of its last save)."""
        docs, self._docs = self._docs or {}, {}
        for a, now in docs.values():
            if a is not None and now is not None:
                super()._save(cur, a, now)

    def list_alerts(self, kind: str | None = None, since: datetime | None = None, limit: int = 1000) -> list[Alert]:
        with self._lock:
            if self._batch is not None:  # SQL must see the batch's saves
                self._write_docs(self._batch)
            return super().list_alerts(kind, since, limit)

    def count_alerts(self, kind: str | None = None) -> int:
        with self._lock:
            if self._batch is not None:
                self._write_docs(self._batch)
            return super().count_alerts(kind)

    @contextmanager
    def _tx(self, lock: str | None = None) -> Iterator[Any]:
        with self._lock:
            if self._batch is not None:  # inside batch(): its transaction; an error rolls the whole batch back
                yield self._batch
                return
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"SQLite store {self.path}: {e}", url=self.url) from None
            try:
                yield cur
            except sqlite3.Error as e:
                self._conn.rollback()
                raise StoreError(f"SQLite store {self.path}: {e}", url=self.url) from None
            except BaseException:
                self._conn.rollback()
                raise
            else:
                try:
                    cur.execute("COMMIT")
                except sqlite3.Error as e:
                    self._conn.rollback()
                    raise StoreError(f"SQLite store {self.path}: commit failed: {e}", url=self.url) from None
            finally:
                cur.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


_SCHEMA_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def split_pg_url(url: str) -> tuple[str, str | None]:
    """A PostgreSQL URL split into (psycopg DSN without ``schema``, the ``?schema=`` name or None).

    Raises StoreError for a schema name that is not a plain identifier.
    """
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    schema = query.pop("schema", None)
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise StoreError(f"invalid schema name {schema!r}", url=_redact(url))
    return urlunsplit(parts._replace(query=urlencode(query))), schema


class PostgresStore(AlertStore):
    """PostgreSQL through psycopg 3; reconnects after a lost connection; ``?schema=`` selects a schema."""

    def __init__(self, url: str) -> None:
        self._dsn, self.schema = split_pg_url(url)
        self.url = _redact(url)
        self.default_rollup = {}
        self._lock = threading.RLock()
        self._conn: Any = None
        self._migrate()

    def _connect(self) -> Any:
        import psycopg

        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
        try:
            conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=10)
            if self.schema:
                try:
                    conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema):
                    pass  # another process created it at the same moment (IF NOT EXISTS is not atomic)
                conn.execute(f'SET search_path TO "{self.schema}"')
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to PostgreSQL store {self.url}: {_first_line(e)}", url=self.url) from None
        self._conn = conn
        return conn

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    @contextmanager
    def _tx(self, lock: str | None = None) -> Iterator[Any]:
        import psycopg

        with self._lock:
            conn = self._connect()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    if lock is not None:
                        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
                    yield cur
            except psycopg.Error as e:
                raise StoreError(f"PostgreSQL store {self.url}: {_first_line(e)}", url=self.url) from None

    def drop_schema(self) -> None:
        """Drop this store's schema and everything in it (tests)."""
        if not self.schema:
            raise StoreError("drop_schema needs a store opened with ?schema=", url=self.url)
        with self._lock:
            self._connect().execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _redact(url: str) -> str:
    """``url`` with any password replaced by ***."""
    parts = urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def open_store(url: str) -> AlertStore:
    """Open (creating and migrating as needed) the store at ``url``: ``sqlite:///relative/or/abs.db``,
    ``sqlite:////abs.db``, ``sqlite:///:memory:`` or ``postgresql://…[?schema=name]``. Raises StoreError."""
    if url.startswith("sqlite://"):
        rest = url[len("sqlite://"):]
        if not rest.startswith("/"):
            raise StoreError("a SQLite URL looks like sqlite:///path/to/file.db", url=url)
        path = rest[1:]
        if path == ":memory:":
            return SQLiteStore(url, Path(":memory:"))
        return SQLiteStore(url, Path(path))
    if url.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return PostgresStore(url.replace("postgresql+psycopg://", "postgresql://", 1))
    raise StoreError("unknown store URL scheme (use sqlite:///path or postgresql://...)", url=_redact(url))
