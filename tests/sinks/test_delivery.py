"""The outbox delivery loop with ListSinks and a SQLite store: pending -> sent, retries, pacing, digests."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from sinks.base import ListSink, Sink
from sinks.delivery import Backoff, Delivery, RateLimiter, run_notify_test, start_delivery_thread
from sinks.metrics import build_metrics
from sinks.routing import Channel
from sinks.store import AlertStore, open_store
from trucewatch.errors import SinkError, StoreError
from trucewatch.schema import Alert, AlertLink, alert_id
from trucewatch.settings import Settings

T0 = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[AlertStore]:
    s = open_store(f"sqlite:///{tmp_path}/d.db")
    yield s
    s.close()


def alert(key: str = "k", arts: tuple[str, ...] = ("a1",), kind: str = "new_visit") -> Alert:
    return Alert(id=alert_id("new_visit", key), kind=kind, key=key, title=f"t {key}",
                 links=[AlertLink(source="s", article_id=a) for a in arts], article_ids=list(arts), first_seen=T0)


def test_pending_to_sent_once(store: AlertStore) -> None:
    clock, sink = Clock(), ListSink("slack")
    m = build_metrics(CollectorRegistry())
    d = Delivery(store, {"slack": sink}, m, clock=clock)
    store.record(alert("k1"), ["slack"], now=T0)
    store.record(alert("k2"), ["slack"], now=T0)
    assert d.run_once() == 2
    assert d.run_once() == 0
    store.record(alert("k1"), ["slack"], now=T0)  # redelivered: never notified again
    assert d.run_once() == 0
    assert [a.key for a in sink.sent] == ["k1", "k2"]
    assert m.registry.get_sample_value("trucewatch_notifications_sent_total", {"channel": "slack"}) == 2
    assert m.registry.get_sample_value("trucewatch_outbox_pending", {"channel": "slack"}) == 0


def test_failure_backs_off_and_honours_retry_after(store: AlertStore) -> None:
    clock, sink = Clock(), ListSink("slack", fail=2, retry_after=120)
    m = build_metrics(CollectorRegistry())
    d = Delivery(store, {"slack": sink}, m, clock=clock, backoff=Backoff(base=5, cap=60))
    store.record(alert(), ["slack"], now=T0)
    assert d.run_once() == 0
    item = store.outbox_item(alert().id, "slack")
    assert item is not None and item.state == "pending" and item.attempts == 1
    assert item.next_attempt == T0 + timedelta(seconds=120)  # Retry-After beats the 5 s backoff
    assert "simulated" in (item.last_error or "")
    clock.now = T0 + timedelta(seconds=119)
    assert d.run_once() == 0 and sink.attempts == 1
    clock.now = T0 + timedelta(seconds=120)
    assert d.run_once() == 0 and sink.attempts == 2
    clock.now += timedelta(seconds=120)
    assert d.run_once() == 1
    assert len(sink.sent) == 1
    assert m.registry.get_sample_value("trucewatch_notifications_failed_total", {"channel": "slack"}) == 2


class FlakyMarks:
    """A store whose first ``fail`` mark_sent calls raise StoreError (the store went down after the send)."""

    def __init__(self, inner: AlertStore, fail: int) -> None:
        self.inner, self.fail, self.calls = inner, fail, 0

    def mark_sent(self, *args: object, **kwargs: object) -> None:
        self.calls += 1
        if self.calls <= self.fail:
            raise StoreError("store down (simulated)")
        self.inner.mark_sent(*args, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_store_down_after_send_never_sends_twice(store: AlertStore) -> None:
    sink, flaky = ListSink("slack"), FlakyMarks(store, fail=3)
    d = Delivery(flaky, {"slack": sink}, build_metrics(CollectorRegistry()), clock=Clock())  # type: ignore[arg-type]
    waits: list[float] = []
    d.sleep = waits.append  # type: ignore[assignment,method-assign]
    store.record(alert("k1"), ["slack"], now=T0)
    assert d.run_once() == 1
    assert d.run_once() == 0
    assert [a.key for a in sink.sent] == ["k1"]
    assert flaky.calls == 4 and waits == [0.5, 1.0, 2.0]
    item = store.outbox_item(alert("k1").id, "slack")
    assert item is not None and item.state == "sent"


def test_store_down_after_send_gives_up_only_when_stopping(store: AlertStore) -> None:
    sink, flaky = ListSink("slack"), FlakyMarks(store, fail=10**6)
    d = Delivery(flaky, {"slack": sink}, build_metrics(CollectorRegistry()), clock=Clock())  # type: ignore[arg-type]
    d.sleep = lambda _s: d.stop.set()  # type: ignore[assignment,method-assign]
    store.record(alert("k1"), ["slack"], now=T0)
    with pytest.raises(StoreError):
        d.run_once()
    assert flaky.calls == 2 and len(sink.sent) == 1


def test_backoff_grows_and_caps() -> None:
    b = Backoff(base=5, factor=2, cap=30)
    assert [b.delay(n) for n in (1, 2, 3, 4, 5)] == [5, 10, 20, 30, 30]


class Permanent(ListSink):
    def send(self, alert: Alert) -> None:
        raise SinkError("404 no_service", sink=self.name, alert_id=alert.id, permanent=True)


class Crashing(ListSink):
    def send(self, alert: Alert) -> None:
        raise RuntimeError("unexpected")


def test_permanent_failure_and_unexpected_errors(store: AlertStore) -> None:
    clock = Clock()
    d = Delivery(store, {"slack": Permanent("slack"), "email": Crashing("email")}, clock=clock)
    store.record(alert(), ["slack", "email"], now=T0)
    d.run_once()
    assert store.outbox_item(alert().id, "slack").state == "failed"  # type: ignore[union-attr]
    email = store.outbox_item(alert().id, "email")
    assert email is not None and email.state == "pending" and "RuntimeError" in (email.last_error or "")


def test_rate_limit_leaves_the_rest_pending(store: AlertStore) -> None:
    clock, sink = Clock(), ListSink("slack")
    t = [100.0]
    d = Delivery(store, {"slack": sink}, clock=clock, monotonic=lambda: t[0],
                 channels={"slack": Channel(name="slack", type="slack", rate_per_minute=2)})
    for i in range(5):
        store.record(alert(f"k{i}"), ["slack"], now=T0)
    assert d.run_once() == 2  # burst of 2
    assert d.run_once() == 0
    t[0] += 30  # one token per 30 s
    assert d.run_once() == 1
    assert store.pending_count("slack") == 2


def test_rate_limiter() -> None:
    r = RateLimiter(per_minute=60, burst=1)
    assert r.take(0.5) and not r.take(0.6) and r.take(1.6)


def test_visit_update_rollup_sends_one_update_message(store: AlertStore) -> None:
    clock, sink = Clock(), ListSink("slack")
    d = Delivery(store, {"slack": sink}, clock=clock)
    store.record(alert(arts=("a1",)), ["slack"], now=T0)
    d.run_once()
    for i in range(2, 7):  # a burst of five reports after the first message
        store.record(alert(arts=(f"a{i}",), kind="visit_update"), ["slack"], rollup_seconds=300, now=T0)
    clock.now = T0 + timedelta(seconds=299)
    assert d.run_once() == 0
    clock.now = T0 + timedelta(seconds=300)
    assert d.run_once() == 1
    assert [a.kind for a in sink.sent] == ["new_visit", "visit_update"]
    assert sink.sent[1].corroborations == 6


def test_digest_channel_collects_until_the_boundary(store: AlertStore) -> None:
    clock, sink = Clock(), ListSink("digest")
    clock.now = datetime(2025, 1, 10, 4, 0, tzinfo=UTC)
    ch = Channel(name="digest", type="email", digest="daily", digest_hour=5)
    d = Delivery(store, {"digest": sink}, clock=clock, channels={"digest": ch})
    for i in range(3):
        store.record(alert(f"k{i}"), ["digest"], now=clock.now)
    assert d.run_once() == 0
    clock.now = datetime(2025, 1, 10, 5, 0, 1, tzinfo=UTC)
    store.record(alert("late"), ["digest"], now=clock.now)  # after the boundary: next digest
    assert d.run_once() == 1
    assert len(sink.digests) == 1 and sink.digests[0][0] == "daily"
    assert sorted(a.key for a in sink.digests[0][1]) == ["k0", "k1", "k2"]
    assert store.pending_count("digest") == 1


def test_thread_delivers_and_stops(tmp_path: Path, store: AlertStore) -> None:
    (tmp_path / "alerts.yaml").write_text("channels:\n  slack: {type: slack}\nroutes:\n  - channels: [slack]\n")
    settings = Settings(data_dir=tmp_path, config_dir=tmp_path)
    sink = ListSink("slack")
    notifiers: dict[str, Sink] = {"slack": sink}
    stop = threading.Event()
    t = start_delivery_thread(settings, store, build_metrics(CollectorRegistry()), stop, notifiers, poll=0.05)
    assert t is not None
    store.record(alert(), ["slack"])
    for _ in range(200):
        if sink.sent:
            break
        stop.wait(0.02)
    stop.set()
    t.join(5)
    assert not t.is_alive() and len(sink.sent) == 1 and sink.closed


def test_notify_test_reports_unconfigured_channels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = Settings(data_dir=tmp_path)
    assert run_notify_test(s, "slack", out=io.StringIO()) == 2
    assert "SLACK_WEBHOOK_URL" in capsys.readouterr().err
    assert run_notify_test(s, "pager", out=io.StringIO()) == 2
