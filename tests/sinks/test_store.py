"""The alert store on SQLite and on the machine's real PostgreSQL, with the same test code."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sinks.store import SCHEMA_VERSION, AlertStore, PostgresStore, open_store
from trucewatch.errors import StoreError
from trucewatch.schema import Alert, AlertLink, Visit, alert_id

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
T0 = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)


def _pg_available() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AlertStore]:
    """A fresh store: a SQLite file in tmp_path, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        s = open_store(f"sqlite:///{tmp_path}/sub/dir/alerts.db")
        yield s
        s.close()
        return
    if not _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    s = open_store(f"{PG_URL}?schema=tw_{uuid.uuid4().hex[:12]}")
    assert isinstance(s, PostgresStore)
    try:
        yield s
    finally:
        s.drop_schema()
        s.close()


def link(aid: str, source: str = "src", minutes: int = 0) -> AlertLink:
    return AlertLink(source=source, url=f"https://{source}.example/{aid}", article_id=aid, title=f"t {aid}",
                     published_at=T0 + timedelta(minutes=minutes))


def make_alert(kind: str = "new_visit", key: str = "k1", arts: tuple[str, ...] = ("a1",), severity: str = "medium",
               first_seen: datetime = T0, replay: bool = False, title: str = "وصل رئيس المخابرات المصرية") -> Alert:
    return Alert(id=alert_id(kind, key), kind=kind, key=key, severity=severity, title=title,
                 links=[link(a, minutes=i) for i, a in enumerate(arts)], article_ids=list(arts),
                 first_seen=first_seen, corroborations=len(arts), replay=replay, labels=["mediation"],
                 created_at=first_seen)


def test_open_creates_parent_dirs_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "s.db"
    s = open_store(f"sqlite:///{path}")
    assert path.exists()
    assert s.schema_version() == SCHEMA_VERSION
    s.close()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    con.close()
    s2 = open_store(f"sqlite:///{path}")  # reopening applies nothing twice
    assert s2.schema_version() == SCHEMA_VERSION
    s2.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    open_store(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("INSERT INTO schema_version VALUES (999, 'x')")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer"):
        open_store(f"sqlite:///{path}")


def test_bad_urls() -> None:
    with pytest.raises(StoreError):
        open_store("mysql://x")
    with pytest.raises(StoreError):
        open_store("sqlite://relative.db")
    with pytest.raises(StoreError) as e:
        open_store("postgresql://u:hunter2@127.0.0.1:1/db?schema=x;drop")
    assert "hunter2" not in str(e.value) and "hunter2" not in str(e.value.context)


def test_migrations_on_store(store: AlertStore) -> None:
    assert store.schema_version() == SCHEMA_VERSION


def test_record_and_redeliver_changes_nothing(store: AlertStore) -> None:
    a = make_alert()
    assert store.record(a, ["slack", "email"]) is True
    assert store.pending_count("slack") == 1 and store.pending_count("email") == 1
    assert store.record(a, ["slack", "email"]) is False
    assert store.record(Alert.model_validate_json(a.model_dump_json()), ["slack", "email"]) is False
    assert store.pending_count() == 2
    got = store.get_alert(a.id)
    assert got is not None and got.id == a.id and got.title == a.title and got.key == "k1"
    assert got.article_ids == ["a1"] and got.corroborations == 1
    # sent, then redelivered: never enqueued again
    store.mark_sent(a.id, "slack")
    assert store.record(a, ["slack", "email"]) is False
    item = store.outbox_item(a.id, "slack")
    assert item is not None and item.state == "sent"
    assert store.due("slack", T0 + timedelta(days=3650)) == []


def test_merge_of_same_id(store: AlertStore) -> None:
    store.record(make_alert(arts=("a1", "a2"), first_seen=T0 + timedelta(hours=1), severity="low"), ["slack"])
    changed = store.record(make_alert(arts=("a2", "a3"), first_seen=T0, severity="high",
                                      title="other title"), ["slack"])
    assert changed is True
    got = store.get_alert(alert_id("new_visit", "k1"))
    assert got is not None
    assert got.first_seen == T0
    assert got.article_ids == ["a1", "a2", "a3"]
    assert {lk.article_id for lk in got.links} == {"a1", "a2", "a3"}
    assert got.corroborations == 3
    assert got.severity == "high"
    assert got.title == "other title"  # from the alert seen first
    assert store.pending_count("slack") == 1


def test_list_alerts_filters_and_order(store: AlertStore) -> None:
    for i in range(5):
        store.record(make_alert(key=f"k{i}", first_seen=T0 + timedelta(days=i)), [])
    store.record(make_alert(kind="story", key="s1", first_seen=T0 + timedelta(days=10)), [])
    all_ = store.list_alerts()
    assert [a.key for a in all_] == ["s1", "k4", "k3", "k2", "k1", "k0"]
    assert [a.key for a in store.list_alerts(kind="new_visit", limit=2)] == ["k4", "k3"]
    assert [a.key for a in store.list_alerts(since=T0 + timedelta(days=3))] == ["s1", "k4", "k3"]
    assert store.count_alerts() == 6 and store.count_alerts("story") == 1


def test_visit_update_folds_into_new_visit_and_rolls_up(store: AlertStore) -> None:
    nv = make_alert(arts=("a1",))
    store.record(nv, ["slack"])
    # an update while the new_visit notification is still pending: folded in, no second message
    up1 = make_alert(kind="visit_update", arts=("a2",), first_seen=T0 + timedelta(minutes=5))
    assert store.record(up1, ["slack"]) is True
    got = store.get_alert(nv.id)
    assert got is not None and got.corroborations == 2 and got.article_ids == ["a1", "a2"]
    assert store.pending_count("slack") == 1
    assert store.outbox_item(up1.id, "slack") is None
    store.mark_sent(nv.id, "slack", now=T0 + timedelta(minutes=10))
    # after the send: the next update is enqueued once
    up2 = make_alert(kind="visit_update", arts=("a3",), first_seen=T0 + timedelta(minutes=20))
    assert store.record(up2, ["slack"], now=T0 + timedelta(minutes=20)) is True
    assert store.pending_count("slack") == 1
    # a burst of updates before it is sent: rolled into that one pending message
    for i in range(4, 9):
        store.record(make_alert(kind="visit_update", arts=(f"a{i}",), first_seen=T0 + timedelta(minutes=20 + i)),
                     ["slack"], now=T0 + timedelta(minutes=21))
    assert store.pending_count("slack") == 1
    assert store.get_alert(nv.id).corroborations == 8  # type: ignore[union-attr]
    item = store.due("slack", T0 + timedelta(minutes=22))[0]
    assert item.alert_id == up2.id
    assert store.get_alert(up2.id).corroborations == 8  # type: ignore[union-attr]
    store.mark_sent(up2.id, "slack", revision=item.revision, now=T0 + timedelta(minutes=22))
    # redelivering an update already covered re-arms nothing
    assert store.record(up2, ["slack"], now=T0 + timedelta(minutes=30)) is False
    assert store.pending_count("slack") == 0
    # a fresh update after the send re-arms, not before the roll-up window has passed
    store.record(make_alert(kind="visit_update", arts=("a9",), first_seen=T0 + timedelta(minutes=31)),
                 ["slack"], rollup_seconds={"slack": 600}, now=T0 + timedelta(minutes=31))
    item2 = store.outbox_item(up2.id, "slack")
    assert item2 is not None and item2.state == "pending" and item2.revision == item.revision + 1
    assert item2.next_attempt == T0 + timedelta(minutes=32)  # sent at 22 + 10 min
    assert store.due("slack", T0 + timedelta(minutes=31)) == []
    assert [i.alert_id for i in store.due("slack", T0 + timedelta(minutes=32))] == [up2.id]


def test_update_before_new_visit_is_absorbed(store: AlertStore) -> None:
    up = make_alert(kind="visit_update", arts=("a2",), first_seen=T0 + timedelta(minutes=5))
    store.record(up, [])
    store.record(make_alert(arts=("a1",)), [])
    got = store.get_alert(alert_id("new_visit", "k1"))
    assert got is not None and got.article_ids == ["a1", "a2"] and got.corroborations == 2


def test_mark_sent_with_stale_revision_keeps_pending(store: AlertStore) -> None:
    nv = make_alert()
    store.record(nv, ["slack"])
    assert store.mark_sent(nv.id, "slack", revision=99) is False
    assert store.pending_count("slack") == 1
    assert store.mark_sent(nv.id, "slack", revision=1) is True
    assert store.pending_count("slack") == 0


def test_outbox_failures_and_backoff(store: AlertStore) -> None:
    nv = make_alert()
    store.record(nv, ["email"], now=T0)
    assert [i.alert_id for i in store.due("email", T0)] == [nv.id]
    store.mark_failed(nv.id, "email", "connection refused", T0 + timedelta(seconds=30), now=T0)
    assert store.due("email", T0 + timedelta(seconds=29)) == []
    item = store.due("email", T0 + timedelta(seconds=30))[0]
    assert item.attempts == 1 and item.last_error == "connection refused"
    assert store.next_due("email") == T0 + timedelta(seconds=30)
    store.mark_failed(nv.id, "email", "550 no such user", None, now=T0, permanent=True)
    assert store.pending_count("email") == 0
    assert store.outbox_item(nv.id, "email").state == "failed"  # type: ignore[union-attr]
    assert store.due("email", T0 + timedelta(days=1)) == []
    assert store.channels() == ["email"]


def test_replayed_then_live_keeps_live(store: AlertStore) -> None:
    store.record(make_alert(replay=True), [])
    store.record(make_alert(replay=False), [])
    assert store.get_alert(alert_id("new_visit", "k1")).replay is False  # type: ignore[union-attr]


def test_record_visit_and_story(store: AlertStore) -> None:
    v = Visit(visitor_id="eg-intel-chief", key="vk", article_id="a1", status="arrived", source="s1",
              destination_country="IL", published_at=T0)
    assert store.record_visit(v) is True
    assert store.record_visit(v) is False
    assert store.record_visit(v.model_copy(update={"article_id": "a2"})) is True
    assert [x.article_id for x in store.list_visits("vk")] == ["a1", "a2"]
    assert store.record_story("c1", "a1", source="s1", title="هدنة", labels=["ceasefire"], event_time=T0) is True
    assert store.record_story("c1", "a1", source="s1", title="هدنة", labels=["ceasefire"], event_time=T0) is False
    assert store.record_story("c1", "a2", source="s2", title="x", labels=["aid"],
                              event_time=T0 + timedelta(hours=1)) is True
    st = store.get_story("c1")
    assert st is not None and st["size"] == 2 and st["sources"] == ["s1", "s2"] and st["title"] == "هدنة"
    assert st["labels"] == ["aid", "ceasefire"] and st["last_seen"] == T0 + timedelta(hours=1)
    assert store.get_story("nope") is None


def test_state_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    s = open_store(url)
    s.record(make_alert(), ["slack"])
    s.close()
    s = open_store(url)
    assert s.pending_count("slack") == 1
    assert s.record(make_alert(), ["slack"]) is False
    s.close()


def test_novelty_style_update_with_the_visit_id(store: AlertStore) -> None:
    """processors/novelty.py emits updates with kind=visit_update and the new_visit alert's id."""
    vid = alert_id("new_visit", "k1")
    store.record(make_alert(arts=("a1",)), ["slack"], now=T0)
    upd = make_alert(kind="new_visit", arts=("a2",), first_seen=T0).model_copy(update={"kind": "visit_update"})
    assert upd.id == vid
    assert store.record(upd, ["slack"], now=T0) is True  # folded while pending: no second row
    assert store.pending_count("slack") == 1
    assert store.record(upd, ["slack"], now=T0) is False
    store.mark_sent(vid, "slack", revision=1, now=T0)
    upd3 = upd.model_copy(update={"article_ids": ["a3"], "links": [link("a3")]})
    assert store.record(upd3, ["slack"], rollup_seconds=60, now=T0 + timedelta(seconds=10)) is True
    item = store.outbox_item(vid, "slack")
    assert item is not None and item.state == "pending" and item.revision == 2
    assert item.next_attempt == T0 + timedelta(seconds=60)
    got = store.get_alert(vid)
    assert got is not None and got.kind == "new_visit" and got.corroborations == 3
    assert store.count_alerts() == 1
    assert store.record(upd3, ["slack"], now=T0 + timedelta(seconds=20)) is False


def test_default_rollup_from_store_attribute(store: AlertStore) -> None:
    vid = alert_id("new_visit", "k1")
    store.default_rollup = {"slack": 300}
    store.record(make_alert(arts=("a1",)), ["slack"], now=T0)
    store.mark_sent(vid, "slack", now=T0)
    store.record(make_alert(kind="visit_update", key="k1", arts=("a2",)).model_copy(update={"id": vid}),
                 ["slack"], now=T0)
    assert store.outbox_item(vid, "slack").next_attempt == T0 + timedelta(seconds=300)  # type: ignore[union-attr]


@pytest.mark.integration
def test_postgres_processes_opening_a_new_schema_at_once() -> None:
    """Sinks, delivery and `trucewatch alerts` may open a store on a schema nobody created yet at the same moment."""
    import threading

    if not _pg_available():
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}")
    for _ in range(5):
        url = f"{PG_URL}?schema=tw_{uuid.uuid4().hex[:12]}"
        barrier, errors, opened = threading.Barrier(8), [], []

        def open_one() -> None:
            barrier.wait()
            try:
                opened.append(open_store(url))
            except StoreError as e:  # noqa: PERF203
                errors.append(e)

        threads = [threading.Thread(target=open_one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        try:
            assert not errors, errors
            assert all(s.schema_version() == SCHEMA_VERSION for s in opened)
        finally:
            if opened:
                opened[0].drop_schema()  # type: ignore[attr-defined]
            for s in opened:
                s.close()
