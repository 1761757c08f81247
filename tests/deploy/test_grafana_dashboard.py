"""deploy/grafana: provisioning and the dashboard JSON refer to real datasources, metrics and store tables."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from sinks.metrics import Metrics, build_metrics, wire_faust_metrics
from sinks.store import MIGRATIONS

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "trucewatch.json"
PROMQL_NAME = re.compile(r"\b((?:trucewatch|process)_[a-z0-9_]+|up)\b(?!\s*\()")
REQUIRED_TITLES = ("Articles/min by source", "Articles/min by label", "Ceasefire / mediation / aid share",
                   "New visits (latest 50)", "Alerts by kind", "Published → alert latency p50 / p95 / p99",
                   "Ingested → alert latency p50 / p95 / p99", "Feed polls/min by outcome", "Consumer lag by stage",
                   "Dead letters by stage")


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def prom_exprs(d: dict) -> list[str]:
    return [t["expr"] for p in d["panels"] if p.get("datasource", {}).get("type") == "prometheus"
            for t in p.get("targets", [])]


def known_series_names() -> set[str]:
    """Every sample name our processes can expose: trucewatch_*, Faust's sensor, process_*, and Prometheus' up."""
    m = build_metrics(CollectorRegistry())
    faust = pytest.importorskip("faust")
    wire_faust_metrics(faust.App("dash-names", broker="kafka://127.0.0.1:9", autodiscover=False), m)
    import dataclasses

    for f in dataclasses.fields(Metrics):
        metric = getattr(m, f.name)
        if f.name != "registry" and metric._labelnames:
            metric.labels(*["x"] * len(metric._labelnames))
    names = {"up"}
    for fam in m.registry.collect():
        names.add(fam.name)
        if fam.type == "counter":
            names.add(fam.name + "_total")
        if fam.type == "histogram":
            names.update(fam.name + s for s in ("_bucket", "_sum", "_count"))
    return names


def test_provisioning_declares_both_datasources_and_the_dashboard_folder() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "trucewatch.yml").read_text())["datasources"]
    by_uid = {d["uid"]: d for d in ds}
    assert by_uid["trucewatch-prometheus"]["type"] == "prometheus"
    assert by_uid["trucewatch-alertstore"]["type"] == "grafana-postgresql-datasource"
    assert by_uid["trucewatch-alertstore"]["jsonData"]["database"] == "trucewatch"
    prov = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "trucewatch.yml").read_text())["providers"]
    assert prov[0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_every_panel_uses_a_provisioned_datasource_and_ids_are_unique() -> None:
    d = dashboard()
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "trucewatch.yml").read_text())["datasources"]
    uids = {x["uid"]: x["type"] for x in ds}
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    titles = {p["title"] for p in d["panels"]}
    assert set(REQUIRED_TITLES) <= titles, set(REQUIRED_TITLES) - titles
    for p in d["panels"]:
        if p["type"] == "row":
            continue
        assert uids[p["datasource"]["uid"]] == p["datasource"]["type"], p["title"]
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"] == p["datasource"], p["title"]


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for p in dashboard()["panels"]:
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, (p["title"], cells.get((x, y)))
                cells[(x, y)] = p["title"]


def test_every_promql_name_is_a_metric_we_export() -> None:
    known = known_series_names()
    exprs = prom_exprs(dashboard())
    assert len(exprs) >= 20
    for expr in exprs:
        names = set(PROMQL_NAME.findall(expr))
        assert names, expr
        assert names <= known, (expr, names - known)


def test_sql_panels_use_store_tables_and_columns() -> None:
    tables: dict[str, str] = {}
    for _, stmts in MIGRATIONS:
        for stmt in stmts:
            m = re.match(r"\s*CREATE TABLE (\w+) \((.*)\)\s*$", stmt, re.S)
            if m:
                tables[m.group(1)] = m.group(2)
    assert {"alerts", "outbox"} <= set(tables)
    for p in dashboard()["panels"]:
        if p.get("datasource", {}).get("type") != "grafana-postgresql-datasource":
            continue
        sql = p["targets"][0]["rawSql"]
        table = re.search(r"FROM (\w+)", sql).group(1)  # type: ignore[union-attr]
        assert table in tables, (p["title"], table)
        for col in re.findall(r"\b(?:a\.)?(first_seen|kind|doc|severity|corroborations|title|id|channel|state|"
                              r"attempts|next_attempt)\b", sql):
            assert re.search(rf"\b{col}\b", tables[table]), (p["title"], col)
