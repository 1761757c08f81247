"""Every Grafana panel query returns data: real Prometheus scraping a real `trucewatch up` pipeline on the seeds.

The pipeline is the demo command (`trucewatch up examples/seeds.jsonl --poll`) on the session's embedded
broker, with the feed poller reading a local HTTP server (one good Arabic feed fixture, one feed answering 500),
email delivered to a real SMTP server (aiosmtpd) and the alert store on the machine's PostgreSQL, so that every
row of the dashboard — articles, labels, alerts, latency, feeds, lag, dead letters, notifications — has series.
Prometheus runs as a plain process scraping the worker, sinks and poller /metrics every second.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from trucewatch.broker import free_port, free_port_run

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "trucewatch.json"
FEED_FIXTURE = REPO / "tests" / "fixtures" / "feeds" / "rss20-html.xml"
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# Grafana's variables, as Grafana would expand them for a short time range with a 1 s scrape interval
GRAFANA_VARS = {"$__rate_interval": "1m", "${__rate_interval}": "1m", "$__interval": "1s", "$__range": "5m",
                "${source:regex}": ".*", "${source}": ".*", "$source": ".*"}
# panels whose value must be a number (not NaN/Inf) while the seeds flow: a NaN there means a broken query
MUST_BE_FINITE = ("Articles/min by label", "Ceasefire / mediation / aid share", "Visits detected/min", "Alerts by kind",
                  "latency p50 / p95 / p99", "Processing time per message p95", "Consumer lag by stage",
                  "Notifications/min by channel", "Faust events/s")
JOBS = {"trucewatch-worker": 0, "trucewatch-sink": 1, "trucewatch-poller": 2,  # offsets of trucewatch.supervisor
        "trucewatch-stories": 3}


def dashboard_queries() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(title, PromQL) of every Prometheus target and (title, SQL) of every PostgreSQL target."""
    d = json.loads(DASHBOARD.read_text())
    prom, sql = [], []
    for p in d["panels"]:
        for t in p.get("targets", []):
            ds = (t.get("datasource") or p.get("datasource") or {}).get("type")
            if ds == "prometheus":
                prom.append((p["title"], t["expr"]))
            elif ds == "grafana-postgresql-datasource":
                sql.append((p["title"], t["rawSql"]))
    return prom, sql


def expand(expr: str) -> str:
    for k in sorted(GRAFANA_VARS, key=len, reverse=True):
        expr = expr.replace(k, GRAFANA_VARS[k])
    assert "$" not in expr, f"unexpanded Grafana variable in {expr!r}"
    return expr


def prom_query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as r:  # noqa: S310 - our own local Prometheus
        body = json.load(r)
    assert body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


def scalar(port: int, expr: str) -> float:
    res = prom_query(port, expr)
    return float(res[0]["value"][1]) if res else float("nan")


class FeedHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/ok.xml":
            body = FEED_FIXTURE.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def feed_server() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FeedHandler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture()
def smtp_server(tmp_path: Path) -> Iterator[tuple[int, list[Any]]]:
    from aiosmtpd.controller import Controller

    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append(envelope)
            return "250 OK"

    port = free_port()
    c = Controller(Handler(), hostname="127.0.0.1", port=port)
    c.start()
    try:
        yield port, received
    finally:
        c.stop()


@pytest.fixture()
def pg_store() -> Iterator[str | None]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards; None when PostgreSQL is not reachable
    (the SQL panels are then skipped). A database rather than a ``?schema=`` store URL, because the feed poller's
    seen-state store shares TRUCEWATCH_STORE_URL and takes a plain URL."""
    try:
        import psycopg

        conn = psycopg.connect(PG_URL, autocommit=True, connect_timeout=3)
    except Exception:  # noqa: BLE001
        yield None
        return
    name = f"twdash_{uuid.uuid4().hex[:10]}"
    conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


def start_prometheus(tmp: Path, metrics_base: int) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("prometheus")
    if binary is None:
        msg = "prometheus missing: install the Debian package (make test runs scripts/ensure-system-deps.sh)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    port = free_port()
    conf = tmp / "prometheus.yml"
    jobs = "".join(f"  - job_name: {job}\n    static_configs:\n      - targets: ['127.0.0.1:{metrics_base + off}']\n"
                   for job, off in JOBS.items())
    conf.write_text(f"global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n"
                    f"scrape_configs:\n{jobs}")
    log = open(tmp / "prometheus.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([binary, f"--config.file={conf}", f"--storage.tsdb.path={tmp / 'tsdb'}",  # noqa: S603
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.2)
    stop(proc)
    pytest.fail("Prometheus did not become ready:\n" + (tmp / "prometheus.log").read_text()[-3000:])


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM the process group, wait, SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # children left in the group, if any
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait(5)


def test_every_dashboard_query_returns_data(broker: str, prefix: str, tmp_path: Path, seeds_jsonl: Path,
                                            feed_server: str, smtp_server: tuple[int, list[Any]],
                                            pg_store: str | None) -> None:
    prom_exprs, sql_queries = dashboard_queries()
    assert len(prom_exprs) >= 20 and sql_queries
    smtp_port, mails = smtp_server
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "feeds.yaml").write_text(
        "feeds:\n"
        f"  - {{name: local ok, url: '{feed_server}/ok.xml', source: local-ok, interval: 30}}\n"
        f"  - {{name: local broken, url: '{feed_server}/broken.xml', source: local-broken, interval: 30}}\n")
    metrics_base = free_port_run(len(JOBS))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUCEWATCH_")}
    env.update({
        "TRUCEWATCH_KAFKA_BOOTSTRAP": broker, "TRUCEWATCH_TOPIC_PREFIX": prefix,
        "TRUCEWATCH_APP_ID": f"tw-dash-{prefix.strip('.')}", "TRUCEWATCH_PARTITIONS": "4",
        "TRUCEWATCH_SESSION_TIMEOUT": "2.0", "TRUCEWATCH_HEARTBEAT_INTERVAL": "0.5",
        "TRUCEWATCH_COMMIT_INTERVAL": "0.5", "TRUCEWATCH_DATA_DIR": str(tmp_path / "var"),
        "TRUCEWATCH_CONFIG_DIR": str(config_dir), "TRUCEWATCH_METRICS_HOST": "127.0.0.1",
        "TRUCEWATCH_METRICS_PORT": str(metrics_base), "TRUCEWATCH_SMTP_HOST": "127.0.0.1",
        "TRUCEWATCH_SMTP_PORT": str(smtp_port), "TRUCEWATCH_EMAIL_TO": '["analysts@example.org"]',
        "PYTHONUNBUFFERED": "1",
    })
    if pg_store:
        env["TRUCEWATCH_STORE_URL"] = pg_store
    prom, prom_port = start_prometheus(tmp_path, metrics_base)
    up_log = tmp_path / "up.log"
    with open(up_log, "wb") as log:
        up = subprocess.Popen([sys.executable, "-m", "trucewatch.cli", "up", str(seeds_jsonl), "--poll",  # noqa: S603
                               "--exit-after", "300"], env=env, cwd=tmp_path, stdout=log, stderr=log,
                              stdin=subprocess.DEVNULL, start_new_session=True)

    def logs() -> str:
        out = [f"--- up\n{up_log.read_text(errors='replace')[-3000:]}"]
        for f in sorted((tmp_path / "var" / "logs").glob("*.log")):
            out.append(f"--- {f.name}\n{f.read_text(errors='replace')[-3000:]}")
        return "\n".join(out)

    try:
        t0 = time.monotonic()
        # the pipeline is alive and scraped: every target up, the seed visits alerted, the email sent
        deadline = t0 + 150
        while time.monotonic() < deadline:
            assert up.poll() is None, "trucewatch up exited early:\n" + logs()
            ups = prom_query(prom_port, 'up{job=~"trucewatch-.*"} == 1')
            new_visits = scalar(prom_port, 'sum(trucewatch_alerts_total{kind="new_visit"})')
            sent = scalar(prom_port, 'sum(trucewatch_notifications_sent_total{channel="email"})')
            if len(ups) == len(JOBS) and new_visits >= 2 and sent >= 1:
                break
            time.sleep(1)
        else:
            pytest.fail(f"pipeline not ready: targets up {len(ups)}/{len(JOBS)}, new_visit alerts {new_visits}, "
                        f"emails {sent}\n" + logs())
        ready_s = time.monotonic() - t0
        # A second wave after every target has been scraped: the first wave can be enriched before Prometheus's
        # first scrape, and increase() never counts a counter's first sample, so ratio panels would be 0/0.
        wave = tmp_path / "wave2.jsonl"
        with open(wave, "w", encoding="utf-8") as out:
            for line in seeds_jsonl.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    rec["id"] = f"wave2-{rec.get('id')}"
                    out.write(json.dumps(rec, ensure_ascii=False) + "\n")
        ingest = subprocess.run([sys.executable, "-m", "trucewatch.cli", "ingest", str(wave)],  # noqa: S603
                                env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert ingest.returncode == 0, f"second wave not ingested:\n{ingest.stdout}\n{ingest.stderr}"
        # every panel query returns a non-empty result (rates need >= 2 samples in the window: keep polling),
        # and the MUST_BE_FINITE ones a finite number in at least one series
        def done(title: str, res: list[dict[str, Any]]) -> bool:
            if not res:
                return False
            if any(k in title for k in MUST_BE_FINITE):
                return any(math.isfinite(float(r["value"][1])) for r in res)
            return True

        pending = {expand(e): title for title, e in prom_exprs}
        results: dict[str, list[dict[str, Any]]] = {}
        deadline = time.monotonic() + 60
        while pending and time.monotonic() < deadline:
            for expr, title in list(pending.items()):
                res = prom_query(prom_port, expr)
                results[expr] = res
                if done(title, res):
                    del pending[expr]
            if pending:
                time.sleep(1)
        ok = len(prom_exprs) - len(pending)
        print(f"\npipeline ready in {ready_s:.1f}s; {ok}/{len(prom_exprs)} panel queries ok")
        for expr, res in results.items():
            vals = [float(r["value"][1]) for r in res]
            finite = [v for v in vals if math.isfinite(v)]
            print(f"  {len(res):3d} series, {len(finite):3d} finite, max {max(finite) if finite else 'nan'}: "
                  f"{' '.join(expr.split())[:110]}")
        missing = "\n".join(f"  [{t}] {e}" for e, t in pending.items())
        assert not pending, f"panel queries with no data (or only NaN/Inf where a number is due):\n{missing}"

        # the numbers behind the panels are the pipeline's own (each awaited for a few scrapes: on a busy box the
        # worker that enriched the feed's items may be scraped after the panels first showed data)
        def at_least(expr: str, minimum: float) -> float:
            until = time.monotonic() + 30
            value = scalar(prom_port, expr)
            while not value >= minimum and time.monotonic() < until:
                time.sleep(1)
                value = scalar(prom_port, expr)
            return value

        assert at_least("sum(trucewatch_articles_processed_total)", 5) >= 5
        assert at_least('sum(trucewatch_articles_processed_total{source="local-ok"})', 1) >= 1
        assert at_least('sum(trucewatch_feed_polls_total{source="local-broken", kind="error"})', 1) >= 1
        assert at_least('sum(trucewatch_articles_labelled_total{label="ceasefire"})', 1) >= 1
        assert at_least('sum(trucewatch_published_to_alert_seconds_count{kind="new_visit"})', 2) >= 2
        assert mails, "the SMTP server received nothing"

        # the SQL panels run on the real alert store
        if pg_store is None:
            pytest.skip("PostgreSQL at 127.0.0.1:5432 unreachable: Prometheus panels checked, SQL panels not")
        import psycopg

        with psycopg.connect(pg_store, autocommit=True) as conn:
            for title, sql in sql_queries:
                cur = conn.execute(sql)
                rows = cur.fetchall()
                cols = [c.name for c in cur.description or []]
                print(f"  SQL [{title}]: {len(rows)} rows, columns {cols}")
                assert rows, f"SQL panel {title!r} returned no rows"
                if title.startswith("New visits"):
                    assert len(rows) >= 2 and all(r[cols.index("to")] for r in rows), rows
    finally:
        stop(up, timeout=40)
        stop(prom)
    assert up.returncode is not None and prom.returncode is not None
