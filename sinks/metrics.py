"""Every Prometheus metric of trucewatch, declared once (namespace ``trucewatch``, bounded labels)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, start_http_server
from prometheus_client.metrics_core import Metric

from trucewatch import topics as topic_names

log = logging.getLogger(__name__)

NAMESPACE = "trucewatch"
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400, 604800)
FETCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
STAGE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1)

# The bounded label names (CONVENTIONS.md habit 9). ``severity`` is the alert's own four-value enum.
LABEL_NAMES = frozenset({"source", "label", "stage", "channel", "kind", "severity"})
# Known values, pre-initialised to 0 so dashboards and alert rules see a series before the first event.
LABELS = ("ceasefire", "mediation", "aid")
ALERT_KINDS = ("new_visit", "visit_update", "story")
SEVERITIES = ("low", "medium", "high", "critical")
STAGES = ("ingest", "decode", "enrich", "novelty-decode", "novelty", "story", "sink", "store", "notify", "archive")
PROCESSING_STAGES = ("enrich", "novelty", "story")  # the stages that observe stage_seconds
CHANNELS = ("console", "store", "slack", "email")
POLL_OUTCOMES = ("ok", "bozo", "not_modified", "error")  # bozo: malformed document, entries recovered
# Faust's own sensor families are exported under this prefix (its names/labels are Faust's, see wire_faust_metrics).
FAUST_PREFIX = f"{NAMESPACE}_faust"
# Which pipeline stage consumes a topic (by the topic's unprefixed name), for the consumer-lag gauge.
STAGE_OF_TOPIC = {
    topic_names.RAW: "enrich",
    topic_names.VISITS: "novelty",
    "stories": "story",  # the Faust-internal story topic (processors/app.py)
    topic_names.ALERTS: "sink",
    topic_names.ENRICHED: "sink",
}


@dataclass(frozen=True)
class Metrics:
    """The metric objects of one registry. Label values are bounded sets:
    source (configured feeds / input sources), label (ceasefire|mediation|aid), stage (pipeline stage),
    channel (slack|email|console|store), kind (alert kind, poll outcome, error kind), severity (alert severity)."""

    registry: CollectorRegistry
    articles_ingested: Counter
    articles_labelled: Counter
    articles_processed: Counter
    visits_detected: Counter
    alerts: Counter
    notifications_sent: Counter
    notifications_failed: Counter
    outbox_pending: Gauge
    deadletters: Counter
    feed_polls: Counter
    feed_errors: Counter
    feed_items: Counter
    feed_bytes: Counter
    feed_fetch_seconds: Histogram
    published_to_alert_seconds: Histogram
    ingested_to_alert_seconds: Histogram
    stage_seconds: Histogram
    consumer_lag: Gauge


def build_metrics(registry: CollectorRegistry | None = None, *, initialise: bool = True,
                  process: bool = True) -> Metrics:
    """Declare every metric on ``registry`` (a fresh one when None) and return them.

    ``initialise`` creates the known label values at 0 (labels, alert kinds x severities, stages, channels),
    so a panel or rule shows 0 rather than "no data" before the first event. ``process`` adds the standard
    ``process_*`` collector (CPU, RSS, open fds) of this process. Raises ValueError if ``registry`` already
    holds these names.
    """
    r = registry if registry is not None else CollectorRegistry()
    ns = NAMESPACE
    m = Metrics(
        registry=r,
        articles_ingested=Counter("articles_ingested", "Articles published to articles.raw, by source",
                                  ["source"], namespace=ns, registry=r),
        articles_labelled=Counter("articles_labelled", "Enriched articles carrying each label",
                                  ["label"], namespace=ns, registry=r),
        articles_processed=Counter("articles_processed", "Articles enriched by the stream processor, by source",
                                   ["source"], namespace=ns, registry=r),
        visits_detected=Counter("visits_detected", "Visits extracted from articles", [], namespace=ns, registry=r),
        alerts=Counter("alerts", "Alerts raised, by kind and severity", ["kind", "severity"], namespace=ns,
                       registry=r),
        notifications_sent=Counter("notifications_sent", "Notifications delivered, by channel", ["channel"],
                                   namespace=ns, registry=r),
        notifications_failed=Counter("notifications_failed", "Notification attempts that failed, by channel",
                                     ["channel"], namespace=ns, registry=r),
        outbox_pending=Gauge("outbox_pending", "Notifications waiting in the outbox, by channel", ["channel"],
                             namespace=ns, registry=r),
        deadletters=Counter("deadletters", "Messages sent to the dead-letter topic, by stage", ["stage"],
                            namespace=ns, registry=r),
        feed_polls=Counter("feed_polls", "Feed polls by outcome (kind: ok|bozo|not_modified|error)", ["source", "kind"],
                           namespace=ns, registry=r),
        feed_errors=Counter("feed_errors", "Feed errors by kind (timeout, http, too_large, parse, ...)",
                            ["source", "kind"], namespace=ns, registry=r),
        feed_items=Counter("feed_items", "New feed items emitted", ["source"], namespace=ns, registry=r),
        feed_bytes=Counter("feed_bytes", "Bytes received from feeds", ["source"], namespace=ns, registry=r),
        feed_fetch_seconds=Histogram("feed_fetch_seconds", "Feed fetch latency", ["source"], namespace=ns,
                                     registry=r, buckets=FETCH_BUCKETS),
        published_to_alert_seconds=Histogram("published_to_alert_seconds",
                                             "From an article's published_at to its alert", ["kind"],
                                             namespace=ns, registry=r, buckets=LATENCY_BUCKETS),
        ingested_to_alert_seconds=Histogram("ingested_to_alert_seconds",
                                            "From an article's fetch/ingest time to its alert", ["kind"],
                                            namespace=ns, registry=r, buckets=LATENCY_BUCKETS),
        stage_seconds=Histogram("stage_seconds", "Processing time per message, by stage", ["stage"],
                                namespace=ns, registry=r, buckets=STAGE_BUCKETS),
        consumer_lag=Gauge("consumer_lag", "Messages not yet committed by a consumer stage (Fetch high watermark "
                           "minus committed offset, summed over its partitions)", ["stage"], namespace=ns,
                           registry=r),
    )
    if initialise:
        _initialise(m)
    if process:
        ProcessCollector(registry=r)
    return m


def _initialise(m: Metrics) -> None:
    """Create the series of every known label value at 0."""
    for label in LABELS:
        m.articles_labelled.labels(label)
    for kind in ALERT_KINDS:
        m.published_to_alert_seconds.labels(kind)
        m.ingested_to_alert_seconds.labels(kind)
        for severity in SEVERITIES:
            m.alerts.labels(kind, severity)
    for stage in STAGES:
        m.deadletters.labels(stage)
    for stage in PROCESSING_STAGES:
        m.stage_seconds.labels(stage)
    for channel in CHANNELS:
        m.notifications_sent.labels(channel)
        m.notifications_failed.labels(channel)


def serve_metrics(metrics: Metrics, host: str, port: int) -> int:
    """Serve ``/metrics`` for ``metrics.registry`` on host:port (0 = do nothing); return the port."""
    if not port:
        return 0
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    bound = int(server.server_address[1])
    log.info("metrics on http://%s:%s/metrics", host, bound)
    return bound


# --- consumer lag -----------------------------------------------------------------------------------------------


def stage_for_topic(topic: str) -> str | None:
    """The stage consuming ``topic`` (matched on the unprefixed topic name), None for others (e.g. changelogs)."""
    for name, stage in STAGE_OF_TOPIC.items():
        if topic.endswith(name):
            return stage
    return None


def lag_by_stage(ends: Mapping[Any, int], committed: Mapping[Any, int],
                 read: Mapping[Any, int] | None = None) -> dict[str, int]:
    """Sum of (high watermark - committed offset) per stage, over the partitions in ``ends``.

    Keys are topic-partitions with a ``topic`` attribute (Faust TP, kafka TopicPartition). ``committed`` holds
    the next offset to read (Kafka convention); where nothing is committed yet, ``read`` (last offset read) + 1
    stands in. Partitions of topics no stage consumes are ignored; negative differences count as 0.
    """
    read = read or {}
    out: dict[str, int] = {}
    for tp, end in ends.items():
        stage = stage_for_topic(str(tp.topic))
        if stage is None or end is None:
            continue
        if tp in committed:
            pos = committed[tp]
        elif tp in read:
            pos = read[tp] + 1
        else:
            pos = 0
        out[stage] = out.get(stage, 0) + max(0, int(end) - int(pos))
    return out


class _OffsetConsumer(Protocol):
    def assignment(self) -> Iterable[Any]: ...
    def highwater(self, tp: Any) -> int | None: ...
    def position(self, tp: Any) -> int | None: ...


def update_consumer_lag(metrics: Metrics, consumer: _OffsetConsumer, stage: str | None = None) -> dict[str, int]:
    """Set ``consumer_lag`` from a kafka-python ``KafkaConsumer`` (or anything with assignment/highwater/position).

    Uses the consumer's Fetch high watermark (``highwater(tp)``), never ``end_offsets()``, which under-reports on
    the embedded Tansu broker (shared/research/infra.md). ``stage`` forces one stage for every partition;
    otherwise each topic's stage comes from ``stage_for_topic``. Partitions without a high watermark yet are
    skipped. Returns the lag per stage that was set.
    """
    ends: dict[Any, int] = {}
    positions: dict[Any, int] = {}
    for tp in consumer.assignment():
        hw = consumer.highwater(tp)
        pos = consumer.position(tp)
        if hw is None or pos is None:
            continue
        ends[tp] = hw
        positions[tp] = pos
    if stage is not None:
        lags = {stage: sum(max(0, ends[tp] - positions[tp]) for tp in ends)} if ends else {}
    else:
        lags = lag_by_stage(ends, positions)
    for name, lag in lags.items():
        metrics.consumer_lag.labels(name).set(lag)
    return lags


# --- Faust's own sensor -----------------------------------------------------------------------------------------


class _RegistryBridge:
    """A collector that re-exports another registry's metrics, so one /metrics endpoint serves both."""

    def __init__(self, other: CollectorRegistry) -> None:
        self.other = other

    def collect(self) -> Iterator[Metric]:
        yield from self.other.collect()


def update_faust_lag(app: Any, metrics: Metrics) -> dict[str, int]:
    """Set ``consumer_lag`` per stage from a running Faust app: the consumer's Fetch high watermark per assigned
    partition (falling back to the last one Faust's monitor saw) minus the offset Faust last committed.
    Returns the lag per stage that was set; never raises (a worker that is not started yet reports nothing)."""
    monitor = app.monitor
    ends: dict[Any, int] = dict(getattr(monitor, "tp_end_offsets", {}))
    try:
        consumer = app.consumer
        for tp in consumer.assignment():
            hw = consumer.highwater(tp)
            if hw is not None:
                ends[tp] = max(int(hw), ends.get(tp, 0))
    except Exception:  # not started / rebalancing: keep what the monitor saw
        log.debug("faust consumer not ready for lag", exc_info=True)
    lags = lag_by_stage(ends, dict(getattr(monitor, "tp_committed_offsets", {})),
                        dict(getattr(monitor, "tp_read_offsets", {})))
    for name, lag in lags.items():
        metrics.consumer_lag.labels(name).set(lag)
    return lags


def wire_faust_metrics(app: Any, metrics: Metrics, *, lag_interval: float = 1.0) -> CollectorRegistry:
    """Wire Faust's own Prometheus sensor and our consumer-lag gauge into a Faust app; call before the worker starts.

    - Installs ``faust.sensors.prometheus.PrometheusMonitor`` as ``app.monitor``. Its families live on a separate
      registry (returned) under the prefix ``trucewatch_faust_`` — e.g. ``trucewatch_faust_messages_received_total``,
      ``trucewatch_faust_topic_partition_end_offset`` / ``..._offset_commited`` {topic, partition},
      ``trucewatch_faust_events_runtime_ms`` — and are re-exported through ``metrics.registry``, so the process's
      one ``/metrics`` endpoint (``serve_metrics``) serves both. They keep Faust's names, units (ms) and labels
      (topic, partition: bounded by the topic layout), which is why they are not declared in ``build_metrics``.
    - Adds a Faust timer that sets ``trucewatch_consumer_lag{stage}`` every ``lag_interval`` seconds
      (``update_faust_lag``; stage from the topic: articles.raw -> enrich, visits -> novelty, stories -> story).

    Faust's HTTP page for the sensor is not registered (the worker's web server is usually off).
    """
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor

    faust_registry = CollectorRegistry(auto_describe=True)
    app.monitor = PrometheusMonitor(metrics=FaustMetrics.create(faust_registry, FAUST_PREFIX))
    metrics.registry.register(_RegistryBridge(faust_registry))

    async def _consumer_lag() -> None:
        update_faust_lag(app, metrics)

    app.timer(interval=lag_interval, name="trucewatch.consumer_lag")(_consumer_lag)

    return faust_registry
