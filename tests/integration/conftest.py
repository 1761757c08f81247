"""Integration fixtures: a real pipeline (Faust worker + sink processes) on the session's embedded broker."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trucewatch.broker import ensure_topics
from trucewatch.settings import Settings
from trucewatch.supervisor import Stack
from trucewatch.topics import Topics


def read_topic(bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 60.0,
               idle: float = 3.0) -> list[Any]:
    """Every record of ``topic`` from the beginning, read with assign() until ``expect`` records
    arrived or nothing new came for ``idle`` seconds (never end_offsets: it under-reports on Tansu)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                             auto_offset_reset="earliest", consumer_timeout_ms=500)
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=300)
            got = [r for recs in batch.values() for r in recs]
            if got:
                out.extend(got)
                last_new = time.monotonic()
            if expect is not None and len(out) >= expect:
                break
            if expect is None and time.monotonic() - last_new > idle:
                break
        return out
    finally:
        consumer.close()


def read_visit_reports(bootstrap: str, topic: str, *, expect: int | None = None, timeout: float = 60.0,
                       idle: float = 2.0) -> list[Any]:
    """Every visit report on the visits topic (its packs of reports expanded, processors/visit_packs.py), read
    until ``expect`` reports arrived or, without ``expect``, until it is idle for ``idle`` seconds."""
    from processors.visit_packs import visits_of

    deadline = time.monotonic() + timeout
    while True:
        reports = [v for r in read_topic(bootstrap, topic, idle=idle, timeout=timeout) for v in visits_of(r.value)]
        if expect is None or len(reports) >= expect or time.monotonic() > deadline:
            return reports
        time.sleep(1.0)


def wait_for(predicate: Callable[[], Any], timeout: float = 90.0, interval: float = 0.5) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {getattr(predicate, '__name__', predicate)}")
        time.sleep(interval)


class Pipeline:
    """A worker + sinks stack on a fresh topic prefix, app id and store; torn down by the fixture."""

    def __init__(self, broker: str, prefix: str, root: Path, **overrides: Any) -> None:
        conf: dict[str, Any] = dict(kafka_bootstrap=broker, topic_prefix=prefix, app_id=f"tw-{prefix.strip('.')}",
                                    data_dir=root / "var", session_timeout=2.0, heartbeat_interval=0.5,
                                    commit_interval=0.5, partitions=4)
        conf.update(overrides)
        self.settings = Settings(**conf)
        self.bootstrap = broker
        self.topics = Topics.from_settings(self.settings)
        ensure_topics(broker, self.topics.all(), self.settings.partitions)
        self.stack = Stack(self.settings, broker, log_dir=root / "logs")

    def start(self) -> Pipeline:
        self.stack.start()
        return self

    def stop(self) -> None:
        self.stack.stop()

    def child(self, name: str) -> Any:
        return next(c for c in self.stack.children if c.name == name)

    def publish(self, paths: Iterable[Path | str]) -> int:
        from producers.ingest import ingest
        from producers.publish import Publisher

        with Publisher.from_settings(self.settings, self.bootstrap) as pub:
            n, _ = ingest(paths, pub)
        return n

    def send_raw(self, values: Iterable[bytes], topic: str | None = None) -> None:
        from producers.publish import Publisher, make_producer

        pub = Publisher(make_producer(self.bootstrap), topic or self.topics.raw)
        for i, v in enumerate(values):
            pub.send_bytes(pub.topic, f"raw-{i}", v)
        pub.close()

    def store(self) -> Any:
        from sinks.store import open_store

        return open_store(self.settings.effective_store_url)

    def alerts(self, kind: str | None = None) -> list[Any]:
        st = self.store()
        try:
            return list(st.list_alerts(kind=kind, limit=100000))
        finally:
            st.close()

    def logs(self) -> str:
        return "\n".join(f"--- {c.name}\n" + c.log_path.read_text(errors="replace")[-4000:]
                         for c in self.stack.children if c.log_path.exists())


@pytest.fixture()
def pipeline(broker: str, prefix: str, tmp_path: Path) -> Iterator[Callable[..., Pipeline]]:
    """Factory: ``pipeline(**settings_overrides)`` -> a started Pipeline; all are stopped at teardown."""
    made: list[Pipeline] = []

    def make(start: bool = True, **overrides: Any) -> Pipeline:
        p = Pipeline(broker, prefix, tmp_path, **overrides)
        made.append(p)
        return p.start() if start else p

    yield make
    for p in made:
        p.stop()
