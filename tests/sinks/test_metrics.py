"""Unit tests for sinks/metrics.py: naming conventions, bounded labels, lag arithmetic, Faust sensor wiring."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from sinks.metrics import (
    FAUST_PREFIX,
    LABEL_NAMES,
    NAMESPACE,
    Metrics,
    build_metrics,
    lag_by_stage,
    stage_for_topic,
    update_consumer_lag,
    wire_faust_metrics,
)

UNBOUNDED = {"url", "id", "article_id", "alert_id", "key", "visit_key", "title", "feed", "link", "guid", "email"}


class TP(NamedTuple):
    topic: str
    partition: int


def families(registry: CollectorRegistry) -> dict[str, object]:
    return {f.name: f for f in registry.collect()}


def test_every_metric_follows_the_naming_conventions() -> None:
    m = build_metrics(CollectorRegistry())
    for field in dataclasses.fields(Metrics):  # give every labelled metric one child, so each family has samples
        metric = getattr(m, field.name)
        if field.name != "registry" and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    fams = families(m.registry)
    ours = {n: f for n, f in fams.items() if n.startswith(NAMESPACE + "_")}
    assert len(ours) >= 18
    for name, fam in ours.items():
        samples = {s.name for s in fam.samples}  # type: ignore[attr-defined]
        if fam.type == "counter":  # type: ignore[attr-defined]
            assert samples, f"{name}: counter without a sample"
            assert all(s.endswith(("_total", "_created")) for s in samples), (name, samples)
        elif fam.type == "histogram":  # type: ignore[attr-defined]
            assert name.endswith("_seconds"), f"{name}: histograms are durations in seconds"
            assert all(s[len(name):] in ("_bucket", "_count", "_sum", "_created") for s in samples), samples
        else:
            assert fam.type == "gauge", (name, fam.type)  # type: ignore[attr-defined]
            assert not name.endswith("_total"), name
    # the only other families are the standard process collector's
    assert all(n.startswith("process_") for n in fams if n not in ours), sorted(set(fams) - set(ours))


def test_labels_come_only_from_the_bounded_set() -> None:
    m = build_metrics(CollectorRegistry())
    for field in dataclasses.fields(Metrics):
        metric = getattr(m, field.name)
        if field.name == "registry":
            continue
        assert isinstance(metric, (Counter, Gauge, Histogram)), field.name
        labels = set(metric._labelnames)
        assert labels <= LABEL_NAMES, (field.name, labels - LABEL_NAMES)
        assert not labels & UNBOUNDED, field.name
    # and in the exposition: nothing beyond the bounded set (plus a histogram's le)
    for fam in m.registry.collect():
        for s in fam.samples:
            assert set(s.labels) <= LABEL_NAMES | {"le"}, (s.name, s.labels)


def test_each_metric_is_declared_once() -> None:
    reg = CollectorRegistry()
    m = build_metrics(reg)
    names = [f.name for f in reg.collect() if f.name.startswith(NAMESPACE)]
    assert len(names) == len(set(names))
    assert len(names) == len(dataclasses.fields(Metrics)) - 1
    with pytest.raises(ValueError, match="Duplicated"):
        build_metrics(reg)
    assert m.registry is reg


def test_known_label_values_exist_at_zero_before_any_event() -> None:
    text = generate_latest(build_metrics(CollectorRegistry()).registry).decode()
    for line in ('trucewatch_alerts_total{kind="new_visit",severity="high"} 0.0',
                 'trucewatch_articles_labelled_total{label="ceasefire"} 0.0',
                 'trucewatch_deadletters_total{stage="enrich"} 0.0',
                 'trucewatch_notifications_failed_total{channel="slack"} 0.0',
                 'trucewatch_published_to_alert_seconds_count{kind="new_visit"} 0.0'):
        assert line in text
    bare = generate_latest(build_metrics(CollectorRegistry(), initialise=False).registry).decode()
    assert "trucewatch_alerts_total{" not in bare


def test_stage_for_topic_uses_the_unprefixed_name() -> None:
    assert stage_for_topic("trucewatch.articles.raw") == "enrich"
    assert stage_for_topic("t0123456789.visits") == "novelty"
    assert stage_for_topic("trucewatch.alerts") == "sink"
    assert stage_for_topic("trucewatch.stories") == "story"
    assert stage_for_topic("trucewatch-novelty-changelog") is None


def test_lag_by_stage_sums_partitions_and_falls_back_to_read_offsets() -> None:
    ends = {TP("p.articles.raw", 0): 10, TP("p.articles.raw", 1): 5, TP("p.visits", 0): 3,
            TP("app-novelty-changelog", 0): 99}
    committed = {TP("p.articles.raw", 0): 7}
    read = {TP("p.articles.raw", 1): 4, TP("p.visits", 0): 0}
    # raw: (10-7) + (5-(4+1)) = 3 ; visits: 3-(0+1) = 2 ; changelog ignored
    assert lag_by_stage(ends, committed, read) == {"enrich": 3, "novelty": 2}
    assert lag_by_stage({TP("p.visits", 0): 3}, {TP("p.visits", 0): 9}) == {"novelty": 0}


class FakeConsumer:
    def __init__(self, hw: dict[TP, int | None], pos: dict[TP, int]) -> None:
        self.hw, self.pos = hw, pos

    def assignment(self) -> set[TP]:
        return set(self.hw)

    def highwater(self, tp: TP) -> int | None:
        return self.hw[tp]

    def position(self, tp: TP) -> int:
        return self.pos[tp]


def test_update_consumer_lag_sets_the_gauge_from_highwater_minus_position() -> None:
    m = build_metrics(CollectorRegistry())
    c = FakeConsumer({TP("p.alerts", 0): 12, TP("p.alerts", 1): None}, {TP("p.alerts", 0): 2, TP("p.alerts", 1): 0})
    assert update_consumer_lag(m, c) == {"sink": 10}
    assert m.registry.get_sample_value("trucewatch_consumer_lag", {"stage": "sink"}) == 10
    assert update_consumer_lag(m, c, stage="store") == {"store": 10}
    assert m.registry.get_sample_value("trucewatch_consumer_lag", {"stage": "store"}) == 10


def test_wire_faust_metrics_installs_faust_sensor_and_lag_on_one_endpoint() -> None:
    faust = pytest.importorskip("faust")
    from faust.sensors.prometheus import PrometheusMonitor
    from faust.types import TP as FTP

    from sinks.metrics import update_faust_lag

    m = build_metrics(CollectorRegistry())
    app = faust.App("metrics-unit", broker="kafka://127.0.0.1:9", autodiscover=False)
    faust_registry = wire_faust_metrics(app, m)
    assert isinstance(app.monitor, PrometheusMonitor)
    raw = FTP("trucewatch.articles.raw", 0)
    app.monitor.track_tp_end_offset(raw, 10)
    app.monitor.on_tp_commit({raw: 4})
    assert update_faust_lag(app, m) == {"enrich": 6}
    text = generate_latest(m.registry).decode()
    assert 'trucewatch_consumer_lag{stage="enrich"} 6.0' in text
    assert ('trucewatch_faust_topic_partition_end_offset{partition="0",topic="trucewatch.articles.raw"} 10.0'
            in text)
    assert all(f.name.startswith(FAUST_PREFIX + "_") for f in faust_registry.collect())
