"""The sink process: consume ``alerts``, write the store + outbox, print, then commit offsets.

Offsets are committed only after the store transaction for every record up to them has
committed (at-least-once in); the store upserts by alert id and the outbox is keyed by alert
id x channel (exactly-once out). When the store is unavailable the consumer seeks back to the
first unwritten record and retries with backoff: nothing is skipped, nothing committed early.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from sinks.console import ConsoleSink
from sinks.metrics import Metrics, build_metrics, serve_metrics, update_consumer_lag
from trucewatch.errors import ConfigError, DecodeError, StoreError
from trucewatch.schema import Alert, dead_letter, decode
from trucewatch.settings import Settings
from trucewatch.topics import Topics

log = logging.getLogger(__name__)

Router = Callable[[Alert], list[str]]


def default_router(settings: Settings) -> Router:
    """The routing rules from config/alerts.yaml when available, else route to nothing."""
    try:
        from sinks.routing import load_router

        return load_router(settings)
    except ImportError:  # pragma: no cover - routing module absent
        return lambda alert: []


class SinkRunner:
    """Applies alert records to the store, console and outbox. I/O is injected for tests."""

    def __init__(self, store: Any, router: Router, console: ConsoleSink | None, metrics: Metrics,
                 deadletter: Callable[[bytes], None] | None = None) -> None:
        self.store = store
        self.router = router
        self.console = console
        self.metrics = metrics
        self.deadletter = deadletter
        self.applied = 0
        self.deferred: list[Alert] | None = None  # console lines held back until the batch's transaction commits

    def apply(self, value: bytes | None, *, topic: str = "", partition: int = -1, offset: int = -1,
              key: bytes | None = None) -> bool:
        """Apply one alert message; returns True if the store changed.

        Undecodable messages go to the dead letter callback and count as applied.
        Raises StoreError when the store is unavailable (the caller retries the record).
        """
        try:
            alert = decode(Alert, value)
        except DecodeError as e:
            log.warning("dead-lettering %s/%s@%s at sink: %s", topic, partition, offset, e)
            self.metrics.deadletters.labels("sink").inc()
            if self.deadletter is not None:
                self.deadletter(dead_letter("sink", str(e), value, topic=topic, partition=partition,
                                            offset=offset, key=key).to_bytes())
            return False
        channels = self.router(alert)
        rollup = getattr(self.router, "rollup_seconds", None)
        changed = bool(self.store.record(alert, channels, rollup_seconds=rollup))
        self.applied += 1
        if changed and self.console is not None:
            if self.deferred is not None:
                self.deferred.append(alert)
            else:
                self.console.send(alert)
        return changed


def run_sinks(settings: Settings, stop: threading.Event | None = None) -> int:
    """Consume the alerts topic until SIGINT/SIGTERM (or ``stop``); returns an exit status."""
    from kafka import KafkaConsumer, TopicPartition

    from producers.publish import make_producer
    from sinks.store import open_store

    if not settings.kafka_bootstrap:
        raise ConfigError("no broker: set TRUCEWATCH_KAFKA_BOOTSTRAP (or run `trucewatch up`, which starts one)",
                          path="environment", entry="TRUCEWATCH_KAFKA_BOOTSTRAP")
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    topics = Topics.from_settings(settings)
    metrics = build_metrics()
    serve_metrics(metrics, settings.metrics_host, settings.metrics_port)
    store = open_store(settings.effective_store_url)
    producer = make_producer(settings.kafka_bootstrap)

    def send_deadletter(payload: bytes) -> None:
        producer.send(topics.deadletter, value=payload).get(timeout=30)

    runner = SinkRunner(store, default_router(settings), ConsoleSink(), metrics, send_deadletter)
    delivery = _start_delivery(settings, store, metrics, stop)
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"{settings.app_id}-sinks",
        client_id=f"{settings.app_id}-sinks",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(settings.session_timeout * 1000),
        heartbeat_interval_ms=int(settings.heartbeat_interval * 1000),
        max_poll_records=500,
    )
    consumer.subscribe([topics.alerts])
    backoff = 0.5
    log.info("sinks consuming %s into %s", topics.alerts, _masked(settings.effective_store_url))
    try:
        while not stop.is_set():
            batch = consumer.poll(timeout_ms=500)
            with contextlib.suppress(Exception):  # lag is best-effort; never stop consuming for it
                update_consumer_lag(metrics, consumer, "sink")
            if not batch:
                continue
            unwritten = _apply_batch(runner, batch)
            if unwritten:
                # the store failed: rewind every partition to its first unwritten record and back off;
                # positions then equal what was written, so the next commit is exact
                for tp, offset in unwritten.items():
                    consumer.seek(TopicPartition(tp.topic, tp.partition), offset)
                stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            backoff = 0.5
            consumer.commit()
    finally:
        stop.set()
        if delivery is not None:
            delivery.join(timeout=10)
        consumer.close(autocommit=False)
        producer.close(timeout=10)
        store.close()
    return 0


def _apply_batch(runner: SinkRunner, batch: dict[Any, list[Any]]) -> dict[Any, int]:
    """Apply a polled batch; on StoreError return {partition: first unwritten offset}, else {}.

    With a store that has ``batch()``, the whole polled batch is one transaction: on StoreError nothing of it was
    written and every partition rewinds to its first record of the batch; console lines are printed after the
    commit. Otherwise each record commits on its own and the rewind starts at the record that failed.
    """
    pending = list(batch.items())
    in_one = getattr(runner.store, "batch", None)
    if in_one is not None:
        runner.deferred = []
        try:
            with in_one():
                for _, records in pending:
                    for rec in records:
                        runner.apply(rec.value, topic=rec.topic, partition=rec.partition, offset=rec.offset,
                                     key=rec.key)
        except StoreError as e:
            first = next((recs[0] for _, recs in pending if recs), None)
            log.error("store unavailable (%s); will retry the batch from %s/%s@%s", e,
                      *((first.topic, first.partition, first.offset) if first else ("?", "?", "?")))
            return {tp: recs[0].offset for tp, recs in pending if recs}
        finally:
            deferred, runner.deferred = runner.deferred, None
        if runner.console is not None:
            for alert in deferred:
                runner.console.send(alert)
        return {}
    for i, (tp, records) in enumerate(pending):
        for j, rec in enumerate(records):
            try:
                runner.apply(rec.value, topic=rec.topic, partition=rec.partition, offset=rec.offset, key=rec.key)
            except StoreError as e:
                log.error("store unavailable (%s); will retry from %s/%s@%s", e, rec.topic, rec.partition,
                          rec.offset)
                unwritten = {tp: records[j].offset}
                unwritten.update({t: recs[0].offset for t, recs in pending[i + 1:] if recs})
                return unwritten
    return {}


def _start_delivery(settings: Settings, store: Any, metrics: Metrics, stop: threading.Event) -> Any:
    """Start the outbox delivery loop in a thread when the delivery module provides one."""
    try:
        from sinks.delivery import start_delivery_thread
    except ImportError:
        return None
    return start_delivery_thread(settings, store, metrics, stop)


def _masked(url: str) -> str:
    """A store URL with any password masked."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
