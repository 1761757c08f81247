"""deploy/prometheus: promtool validates the config and rules, and the alert rules fire (and stay quiet) as meant."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROM_DIR = REPO / "deploy" / "prometheus"
REQUIRED_ALERTS = {"TrucewatchNoArticles", "TrucewatchFeedFailing", "TrucewatchConsumerLagGrowing",
                   "TrucewatchNotificationsFailing", "TrucewatchDeadLettersRising"}


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        msg = "promtool missing: install the Debian package prometheus (make test runs scripts/ensure-system-deps.sh)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, check=False)


def rules() -> list[dict]:
    doc = yaml.safe_load((PROM_DIR / "rules.yml").read_text())
    return [r for g in doc["groups"] for r in g["rules"]]


def test_promtool_check_config() -> None:
    out = run(promtool(), "check", "config", PROM_DIR / "prometheus.yml")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 rule files found" in out.stdout + out.stderr


def test_promtool_check_rules() -> None:
    out = run(promtool(), "check", "rules", PROM_DIR / "rules.yml")
    assert out.returncode == 0, out.stdout + out.stderr


def test_rules_cover_the_issue_and_are_documented() -> None:
    rs = rules()
    names = {r["alert"] for r in rs}
    assert names >= REQUIRED_ALERTS, REQUIRED_ALERTS - names
    for r in rs:
        assert r["labels"]["severity"] in {"warning", "critical"}, r["alert"]
        assert r["annotations"]["summary"], r["alert"]
        assert "for" in r, r["alert"]


def test_scrape_jobs_match_the_documented_ports() -> None:
    conf = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in conf["scrape_configs"]}
    assert jobs["trucewatch-worker"]["dns_sd_configs"][0]["port"] == 9101
    assert jobs["trucewatch-sink"]["static_configs"][0]["targets"] == ["sink:9102"]
    assert jobs["trucewatch-poller"]["static_configs"][0]["targets"] == ["poller:9103"]


RULE_TESTS = """
rule_files: [{rules}]
evaluation_interval: 1m
tests:
  - name: a feed failing for an hour fires, a healthy or recovering one does not
    interval: 1m
    input_series:
      - series: 'trucewatch_feed_polls_total{{source="broken", kind="error"}}'
        values: '0+1x120'
      - series: 'trucewatch_feed_polls_total{{source="broken", kind="ok"}}'
        values: '0x120'
      - series: 'trucewatch_feed_polls_total{{source="healthy", kind="ok"}}'
        values: '0+1x120'
      - series: 'trucewatch_feed_polls_total{{source="flaky", kind="error"}}'
        values: '0+1x120'
      - series: 'trucewatch_feed_polls_total{{source="flaky", kind="not_modified"}}'
        values: '0+1x120'
      - series: 'trucewatch_feed_items_total{{source="healthy"}}'
        values: '0+1x120'
    alert_rule_test:
      - eval_time: 30m
        alertname: TrucewatchFeedFailing
        exp_alerts:
          - exp_labels: {{severity: warning, source: broken}}
            exp_annotations:
              summary: Feed broken has failed for an hour
              description: >-
                Every poll of broken in the last hour failed; see
                trucewatch_feed_errors_total{{source="broken"}} for the kind of error.
      - eval_time: 100m
        alertname: TrucewatchNoArticles
        exp_alerts: []

  - name: no new item from any feed for 30 minutes fires
    interval: 1m
    input_series:
      - series: 'trucewatch_feed_items_total{{source="a"}}'
        values: '0+1x10 10x60'
    alert_rule_test:
      - eval_time: 20m
        alertname: TrucewatchNoArticles
        exp_alerts: []
      - eval_time: 50m
        alertname: TrucewatchNoArticles
        exp_alerts:
          - exp_labels: {{severity: critical}}
            exp_annotations:
              summary: No new articles from any feed for 30 minutes
              description: >-
                trucewatch_feed_items_total has not increased in 30 minutes. Check the poller's log and
                `trucewatch_feed_polls_total{{kind="error"}}` by source.

  - name: growing lag fires, a large but shrinking backlog does not
    interval: 1m
    input_series:
      - series: 'trucewatch_consumer_lag{{stage="enrich", instance="w1"}}'
        values: '0+20x60'
      - series: 'trucewatch_consumer_lag{{stage="novelty", instance="w1"}}'
        values: '5000-50x60'
    alert_rule_test:
      - eval_time: 40m
        alertname: TrucewatchConsumerLagGrowing
        exp_alerts:
          - exp_labels: {{severity: warning, stage: enrich}}
            exp_annotations:
              summary: Consumer lag of stage enrich is growing
              description: >-
                800 messages are waiting for enrich and the backlog grows. Scale the
                workers (`docker compose up --scale worker=N`, at most the partition count) or check their logs.

  - name: a channel that only fails fires; one that also delivers does not
    interval: 1m
    input_series:
      - series: 'trucewatch_notifications_failed_total{{channel="slack"}}'
        values: '0+1x60'
      - series: 'trucewatch_notifications_sent_total{{channel="slack"}}'
        values: '0x60'
      - series: 'trucewatch_notifications_failed_total{{channel="email"}}'
        values: '0+1x60'
      - series: 'trucewatch_notifications_sent_total{{channel="email"}}'
        values: '0+2x60'
    alert_rule_test:
      - eval_time: 30m
        alertname: TrucewatchNotificationsFailing
        exp_alerts:
          - exp_labels: {{severity: critical, channel: slack}}
            exp_annotations:
              summary: Notifications on slack are failing
              description: >-
                Every slack delivery attempt of the last 15 minutes failed; alerts wait in the
                store's outbox and are delivered once the channel is back.

  - name: dead letters rising at one stage
    interval: 1m
    input_series:
      - series: 'trucewatch_deadletters_total{{stage="decode"}}'
        values: '0+1x30'
      - series: 'trucewatch_deadletters_total{{stage="enrich"}}'
        values: '0x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: TrucewatchDeadLettersRising
        exp_alerts:
          - exp_labels: {{severity: warning, stage: decode}}
            exp_annotations:
              summary: Dead letters rising at stage decode
              description: >-
                15 messages went to the dead-letter topic from decode in 15 minutes.
                Read the reasons on the deadletter topic.
"""


def test_alert_rules_fire_as_documented(tmp_path: Path) -> None:
    f = tmp_path / "rules_test.yml"
    f.write_text(RULE_TESTS.format(rules=PROM_DIR / "rules.yml"))
    out = run(promtool(), "test", "rules", f)
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"SUCCESS", out.stdout + out.stderr)
