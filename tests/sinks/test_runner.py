"""Unit tests for the sink runner: store + console per alert, dead letters, rewind on store failure."""

from __future__ import annotations

import io
from collections import namedtuple
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sinks.console import ConsoleSink
from sinks.metrics import build_metrics
from sinks.runner import SinkRunner, _apply_batch
from sinks.store import open_store
from trucewatch.errors import StoreError
from trucewatch.schema import Alert, AlertLink, DeadLetter, alert_id

TP = namedtuple("TP", "topic partition")
Rec = namedtuple("Rec", "topic partition offset key value")
T0 = datetime(2024, 6, 10, tzinfo=UTC)


def _alert(key: str, article: str, kind: str = "new_visit") -> Alert:
    return Alert(id=alert_id("new_visit", key), kind=kind, key=key, title=f"visit {key}", first_seen=T0,
                 links=[AlertLink(source=f"src-{article}", article_id=article)], article_ids=[article])


def _runner(tmp_path: Path, out: io.StringIO, dead: list[bytes]) -> SinkRunner:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    return SinkRunner(store, lambda a: [], ConsoleSink(out), build_metrics(), dead.append)


def test_new_alert_is_stored_and_printed_once_redelivery_changes_nothing(tmp_path: Path) -> None:
    out, dead = io.StringIO(), []
    r = _runner(tmp_path, out, dead)
    a = _alert("k1", "art1")
    assert r.apply(a.to_bytes()) is True
    assert r.apply(a.to_bytes()) is False
    assert out.getvalue().count("NEW VISIT") == 1
    assert r.apply(_alert("k1", "art2", kind="visit_update").to_bytes()) is True
    stored = r.store.get_alert(a.id)
    assert stored.corroborations == 2 and set(stored.article_ids) == {"art1", "art2"}


def test_undecodable_alert_goes_to_dead_letter_with_reason(tmp_path: Path) -> None:
    out, dead = io.StringIO(), []
    r = _runner(tmp_path, out, dead)
    assert r.apply(b"{oops", topic="t", partition=2, offset=9) is False
    (payload,) = dead
    dl = DeadLetter.model_validate_json(payload)
    assert (dl.stage, dl.partition, dl.offset) == ("sink", 2, 9) and "not JSON" in dl.reason


class FlakyStore:
    def __init__(self, fail_on: str) -> None:
        self.fail_on, self.written = fail_on, []

    def record(self, alert: Alert, channels: list[str], rollup_seconds=None) -> bool:
        if alert.key == self.fail_on:
            raise StoreError("database is locked", url="x")
        self.written.append(alert.key)
        return True


def test_store_failure_returns_first_unwritten_offset_of_every_partition() -> None:
    store = FlakyStore(fail_on="b2")
    r = SinkRunner(store, lambda a: [], None, build_metrics())
    p0, p1, p2 = TP("alerts", 0), TP("alerts", 1), TP("alerts", 2)
    batch = {
        p0: [Rec("alerts", 0, 10, None, _alert("a1", "x").to_bytes())],
        p1: [Rec("alerts", 1, 20, None, _alert("b1", "x").to_bytes()),
             Rec("alerts", 1, 21, None, _alert("b2", "x").to_bytes()),
             Rec("alerts", 1, 22, None, _alert("b3", "x").to_bytes())],
        p2: [Rec("alerts", 2, 30, None, _alert("c1", "x").to_bytes())],
    }
    assert _apply_batch(r, batch) == {p1: 21, p2: 30}
    assert store.written == ["a1", "b1"]
    store.fail_on = "none"
    assert _apply_batch(r, {p1: batch[p1][1:], p2: batch[p2]}) == {}
    assert store.written == ["a1", "b1", "b2", "b3", "c1"]


@pytest.mark.parametrize("kind", ["new_visit", "visit_update", "story"])
def test_console_line_isolates_arabic_and_names_sources(kind: str) -> None:
    from sinks.console import format_alert

    a = _alert("k", "a1", kind=kind).model_copy(update={"title": "عباس كامل → Tel Aviv, IL"})
    line = format_alert(a)
    assert "\u2068عباس كامل → Tel Aviv, IL\u2069" in line
    assert "src-a1" in line and "\n" not in line


class FailingOnce:
    """A real SQLite store whose ``record`` fails (StoreError) for one key, until told otherwise."""

    def __init__(self, store, fail_on: str) -> None:
        self.store, self.fail_on = store, fail_on
        self.batch = store.batch

    def record(self, alert: Alert, channels: list[str], rollup_seconds=None) -> bool:
        changed = self.store.record(alert, channels, rollup_seconds=rollup_seconds)
        if alert.key == self.fail_on:  # after the write: the batch's transaction must take it back
            raise StoreError("database is locked", url="x")
        return changed


def test_a_batch_is_one_transaction_rolled_back_whole_on_store_failure(tmp_path: Path) -> None:
    real = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    out = io.StringIO()
    store = FailingOnce(real, fail_on="b2")
    r = SinkRunner(store, lambda a: ["slack"], ConsoleSink(out), build_metrics())
    p0, p1 = TP("alerts", 0), TP("alerts", 1)
    batch = {
        p0: [Rec("alerts", 0, 10, None, _alert("a1", "x").to_bytes()),
             Rec("alerts", 0, 11, None, _alert("a1", "y", kind="visit_update").to_bytes())],
        p1: [Rec("alerts", 1, 20, None, _alert("b1", "x").to_bytes()),
             Rec("alerts", 1, 21, None, _alert("b2", "x").to_bytes()),
             Rec("alerts", 1, 22, None, _alert("b3", "x").to_bytes())],
    }
    assert _apply_batch(r, batch) == {p0: 10, p1: 20}  # nothing of the batch was written: rewind both partitions
    assert real.count_alerts() == 0 and real.outbox() == [] and out.getvalue() == ""
    store.fail_on = "none"
    assert _apply_batch(r, batch) == {}
    assert real.count_alerts() == 4 and len(real.outbox("slack")) == 4
    assert set(real.get_alert(alert_id("new_visit", "a1")).article_ids) == {"x", "y"}
    assert out.getvalue().count("\n") == 5  # printed after the commit, once per changed record (a1 twice)
    assert _apply_batch(r, batch) == {}  # redelivered: nothing changes, nothing printed, no second notification
    assert real.count_alerts() == 4 and len(real.outbox("slack")) == 4 and out.getvalue().count("\n") == 5
    real.close()


def test_another_thread_waits_for_the_batch_and_sees_all_or_nothing(tmp_path: Path) -> None:
    import threading

    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    seen: list[int] = []
    with store.batch():
        store.record(_alert("k1", "a"), [])
        reader = threading.Thread(target=lambda: seen.append(store.count_alerts()))
        reader.start()
        reader.join(0.3)
        assert reader.is_alive()  # blocked on the store's lock while the batch is open
        store.record(_alert("k2", "a"), [])
    reader.join(5)
    assert seen == [2]
    store.close()


def test_parsed_alerts_kept_between_batches_never_hide_another_writers_change(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    a, b = open_store(url), open_store(url)  # two writers of one store (e.g. sinks processes across a rebalance)
    a.record(_alert("k", "x"), [])
    with a.batch():
        a.record(_alert("k", "y", kind="visit_update"), [])  # a keeps the version it wrote
    b.record(_alert("k", "z", kind="visit_update"), [])  # another writer changes it behind a's back
    with a.batch():
        a.record(_alert("k", "w", kind="visit_update"), [])
    got = b.get_alert(alert_id("new_visit", "k"))
    assert got is not None and set(got.article_ids) == {"x", "y", "z", "w"} and got.corroborations == 4
    a.close()
    b.close()


def test_a_rolled_back_batch_leaves_no_parsed_version_behind(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.record(_alert("k", "x"), [])
    with pytest.raises(StoreError), store.batch():
        store.record(_alert("k", "y", kind="visit_update"), [])
        store.list_alerts()  # writes the batch's docs (and remembers them) inside the transaction
        raise StoreError("database is locked", url="x")
    got = store.get_alert(alert_id("new_visit", "k"))
    assert got is not None and got.article_ids == ["x"]
    store.record(_alert("k", "z", kind="visit_update"), [])
    got = store.get_alert(alert_id("new_visit", "k"))
    assert got is not None and set(got.article_ids) == {"x", "z"}
    store.close()
