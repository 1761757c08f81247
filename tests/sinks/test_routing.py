"""Routing rules from alerts.yaml: matching, replays, enabled channels and validation errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from sinks.routing import Router, config_path, load_config, load_router, parse_config
from trucewatch.errors import ConfigError
from trucewatch.schema import Alert, AlertLink, alert_id
from trucewatch.settings import PACKAGE_CONFIG_DIR, Settings

T0 = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)

CONFIG = """
channels:
  slack: {type: slack, rate_per_minute: 10, rollup_seconds: 60}
  ops: {type: email, to: [ops@example.org]}
  digest: {type: email, to: [boss@example.org], digest: daily, digest_hour: 5}
routes:
  - name: visits
    kinds: [new_visit, visit_update]
    channels: [slack]
  - name: ceasefire from watched sources
    kinds: [story]
    labels: [ceasefire]
    sources: [aljazeera]
    min_severity: high
    channels: [ops]
  - name: replays too
    kinds: [story]
    labels: [aid]
    notify_replays: true
    channels: [digest]
"""


def alert(kind: str = "new_visit", labels: tuple[str, ...] = (), source: str = "x", severity: str = "medium",
          replay: bool = False, notify: bool = True) -> Alert:
    return Alert(id=alert_id(kind, "k"), kind=kind, key="k", severity=severity, title="t", labels=list(labels),
                 links=[AlertLink(source=source, article_id="a")], first_seen=T0, replay=replay,
                 notify=notify)


@pytest.fixture()
def router(tmp_path: Path) -> Router:
    p = tmp_path / "alerts.yaml"
    p.write_text(CONFIG)
    return Router(load_config(p), frozenset({"slack", "ops", "digest"}))


def test_matching(router: Router) -> None:
    assert router(alert()) == ["slack"]
    assert router(alert("visit_update")) == ["slack"]
    assert router(alert("story", ("ceasefire",), "aljazeera", "high")) == ["ops"]
    assert router(alert("story", ("ceasefire",), "aljazeera", "medium")) == []
    assert router(alert("story", ("ceasefire",), "other", "critical")) == []
    assert router(alert("story", ("ceasefire", "aid"), "aljazeera", "critical")) == ["digest", "ops"]
    assert router.rollup_seconds["slack"] == 60


def test_replays_go_nowhere_unless_the_route_says_so(router: Router) -> None:
    assert router(alert(replay=True, notify=False)) == []
    assert router(alert("story", ("aid",), replay=True, notify=False)) == ["digest"]
    assert router(alert(replay=True, notify=True)) == ["slack"]  # replay --notify
    assert router(alert(notify=False)) == []


def test_disabled_or_unconfigured_channels_are_never_returned(router: Router) -> None:
    r = Router(router.config, frozenset({"ops"}))
    assert r(alert()) == []


def test_digest_boundary(router: Router) -> None:
    ch = router.config.channels["digest"]
    assert ch.digest_boundary(datetime(2025, 1, 10, 4, 0, tzinfo=UTC)) == datetime(2025, 1, 9, 5, tzinfo=UTC)
    assert ch.digest_boundary(datetime(2025, 1, 10, 5, 30, tzinfo=UTC)) == datetime(2025, 1, 10, 5, tzinfo=UTC)
    assert router.config.channels["slack"].digest_boundary(T0) is None


def test_shipped_config_loads_and_enables_by_settings(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert config_path(s) == PACKAGE_CONFIG_DIR / "alerts.yaml"
    assert load_router(s).enabled == frozenset()
    s2 = Settings(data_dir=tmp_path, slack_webhook_url=SecretStr("https://x.test/hook"), smtp_host="127.0.0.1",
                  email_to=["a@example.org"])
    r = load_router(s2)
    assert r.enabled == frozenset({"slack", "email"})
    assert r(alert()) == ["email", "slack"]


def test_user_config_dir_overrides(tmp_path: Path) -> None:
    (tmp_path / "alerts.yaml").write_text(CONFIG)
    s = Settings(config_dir=tmp_path, slack_webhook_url=SecretStr("https://x.test/hook"))
    assert config_path(s) == tmp_path / "alerts.yaml"
    assert load_router(s).enabled == frozenset({"slack"})


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("channels:\n  s: {type: pager}\nroutes: []\n", 2, "channels.s: type must be one of"),
    ("channels:\n  s:\n    type: slack\n    rate_per_minute: -1\n", 3, "rate_per_minute"),
    ("channels:\n  s: {type: slack}\nroutes:\n  - name: r\n    channels: [nope]\n", 4, "unknown channel(s): nope"),
    ("channels:\n  s: {type: slack}\nroutes:\n  - name: r\n    channels: [s]\n    kinds: [visit]\n", 4, "kinds"),
    ("channels:\n  s: {type: slack}\nroutes:\n  - channels: [s]\n    labels: [war]\n", 4, "labels"),
    ("channels:\n  s: {type: slack}\nroutes:\n  - channels: [s]\n    min_severity: huge\n", 4, "min_severity"),
    ("channels:\n  s: {type: slack}\nroutes:\n  - channels: [s]\n    colour: red\n", 4, "unknown key(s): colour"),
    ("channels:\n  s: {type: slack, to: [a@b]}\n", 2, "'to' is only for email"),
    ("channels:\n  e: {type: email, to: [nobody]}\n", 2, "email address"),
    ("channels:\n  e: {type: email, digest: weekly}\n", 2, "digest must be"),
    ("channels:\n  e: {type: email, digest: daily, digest_hour: 25}\n", 2, "digest_hour"),
    ("channels: [1, 2\n", 2, "invalid YAML"),
    ("- just a list\n", None, "must be a mapping"),
])
def test_validation_names_file_line_entry(tmp_path: Path, text: str, line: int | None, needle: str) -> None:
    p = tmp_path / "alerts.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert needle in str(e.value)
    assert e.value.context["path"] == str(p)
    if line is not None:
        assert e.value.context["line"] == line, str(e.value)


def test_parse_config_without_lines() -> None:
    cfg = parse_config({"channels": {"s": {"type": "slack"}}, "routes": [{"channels": ["s"]}]})
    assert cfg.routes[0].kinds == ("new_visit", "visit_update", "story")
