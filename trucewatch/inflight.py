"""What the pipeline had in flight: sampled topic ends vs committed group offsets, to report what a lost broker took."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One consumer stage: the group that reads ``topic``."""

    name: str
    topic: str
    group: str


@dataclass
class Sample:
    """Per stage: records on its input topic (``ends``) and records its group committed (``committed``)."""

    at: float = field(default_factory=time.time)
    ends: dict[str, int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)

    def in_flight(self) -> dict[str, int]:
        """Records written to each stage's input but not yet committed by it (what a lost cluster takes)."""
        return {name: max(0, end - self.committed.get(name, 0)) for name, end in self.ends.items()}


def loss_report(sample: Sample | None, now: float | None = None) -> dict[str, Any]:
    """A JSON-ready description of a broker loss, from the last sample before it."""
    now = now or time.time()
    out: dict[str, Any] = {"lost_at": datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")}
    if sample is None:
        out.update(sampled=False, in_flight={}, note="no sample taken before the loss: in-flight count unknown")
        return out
    out.update(sampled=True, sample_age_s=round(now - sample.at, 1), ends=sample.ends, committed=sample.committed,
               in_flight=sample.in_flight())
    return out


def append_report(path: Path, report: Mapping[str, Any]) -> None:
    """Append one report as a JSON line (the supervisor's record of broker losses)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(report, ensure_ascii=False) + "\n")


def topic_ends(consumer: Any, topics: list[str]) -> dict[str, int]:
    """Sum of partition ends per topic: listed ends corrected by one fetch's high watermark (ListOffsets
    under-reports on the embedded broker; see processors/faust_fixes.py)."""
    from kafka import TopicPartition

    tps = []
    for t in topics:
        tps += [TopicPartition(t, p) for p in sorted(consumer.partitions_for_topic(t) or ())]
    if not tps:
        return {t: 0 for t in topics}
    consumer.assign(tps)
    listed = consumer.end_offsets(tps)
    for tp in tps:
        consumer.seek(tp, max(0, listed[tp] - 1))
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline and any(consumer.highwater(tp) is None for tp in tps):
        consumer.poll(timeout_ms=200, update_offsets=False)
    out = {t: 0 for t in topics}
    for tp in tps:
        hw = consumer.highwater(tp)
        out[tp.topic] += max(listed[tp], hw if hw is not None else 0)
    return out


def group_committed(admin: Any, group: str, topic: str) -> int:
    """Sum of a group's committed offsets on ``topic`` (0 when it never committed)."""
    lister = getattr(admin, "list_group_offsets", None)
    if lister is not None:  # kafka-python >= 3
        offsets = lister({group: None}).get(group, {})
    else:
        offsets = admin.list_consumer_group_offsets(group)
    return sum(max(0, om.offset) for tp, om in offsets.items() if tp.topic == topic)


class Sampler(threading.Thread):
    """Samples ends and committed offsets of every stage every ``interval`` seconds while the broker lives.

    Client errors (a broker going away) close the clients; they are made again for the next sample.
    """

    def __init__(self, bootstrap: str, stages: list[Stage], interval: float = 1.0,
                 alive: Callable[[], bool] = lambda: True) -> None:
        super().__init__(name="inflight-sampler", daemon=True)
        self.bootstrap, self.stages, self.interval, self.alive = bootstrap, stages, interval, alive
        self.last: Sample | None = None
        self.stopped = threading.Event()
        self._clients: tuple[Any, Any] | None = None

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer

        return KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                             request_timeout_ms=5000, client_id="trucewatch-inflight",
                             max_partition_fetch_bytes=64 * 1024)

    def _make(self) -> tuple[Any, Any]:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000,
                                 client_id="trucewatch-inflight-admin")
        return admin, admin

    def _close(self) -> None:
        if self._clients is not None:
            for c in self._clients:
                try:
                    c.close()
                except Exception:  # noqa: BLE001, S110 - closing a client of a dead broker
                    pass
            self._clients = None

    def sample_once(self) -> Sample:
        """Take one sample now (raises on client errors)."""
        if self._clients is None:
            self._clients = self._make()
        _, admin = self._clients
        consumer = self._consumer()  # fresh each time: a consumer keeps the high watermarks of its last fetch
        try:
            ends = topic_ends(consumer, sorted({s.topic for s in self.stages}))
        finally:
            consumer.close()
        s = Sample()
        for st in self.stages:
            s.ends[st.name] = ends.get(st.topic, 0)
            s.committed[st.name] = group_committed(admin, st.group, st.topic)
        return s

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            if not self.alive():
                continue
            try:
                sample = self.sample_once()
            except Exception as e:  # noqa: BLE001 - the broker may be going away; keep the last good sample
                log.debug("in-flight sample failed: %s", e)
                self._close()
                continue
            if self.alive():
                self.last = sample
        self._close()

    def stop(self) -> None:
        self.stopped.set()
