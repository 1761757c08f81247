"""Slack delivery against a real local HTTP server standing in for the webhook endpoint."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from sinks.delivery import Backoff, Delivery
from sinks.slack import SlackNotifier
from sinks.store import AlertStore, open_store
from tests.integration.webhook import WebhookServer
from trucewatch.schema import Alert, AlertLink, alert_id
from trucewatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
T0 = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)


def alert(key: str = "k", title: str = "وصل <script>alert('x')</script> & غادر") -> Alert:
    return Alert(id=alert_id("new_visit", key), kind="new_visit", key=key, severity="high", title=title,
                 links=[AlertLink(source="a", url="https://a.example/1", article_id="1", title="أ"),
                        AlertLink(source="b", url="https://b.example/2?p=1&q=2", article_id="2")],
                 article_ids=["1", "2"], corroborations=2, first_seen=T0)


@pytest.fixture()
def server() -> Iterator[WebhookServer]:
    s = WebhookServer().start()
    yield s
    s.stop()


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[AlertStore]:
    s = open_store(f"sqlite:///{tmp_path}/s.db")
    yield s
    s.close()


def notifier(url: str, **kw) -> SlackNotifier:  # type: ignore[no-untyped-def]
    return SlackNotifier(httpx.Client(), SecretStr(url), **kw)


def test_block_kit_payload_escaped(server: WebhookServer) -> None:
    n = notifier(server.url())
    n.send(alert())
    n.close()
    [hit] = server.hits
    body = hit.json
    assert hit.path == "/services/T1/B1/SECRET"
    assert isinstance(body["text"], str) and isinstance(body["blocks"], list)
    for block in body["blocks"]:
        assert block["type"] in {"header", "section", "context", "divider"}
        if block["type"] == "header":
            assert block["text"]["type"] == "plain_text" and len(block["text"]["text"]) <= 150
        if block["type"] == "section":
            assert "text" in block or "fields" in block
    raw = hit.body.decode()
    assert "<script>" not in raw and "&lt;script&gt;" in raw
    assert "& غادر" not in raw and "&amp; غادر" in raw
    assert "<https://b.example/2?p=1&amp;q=2|b>" in raw


def test_429_retry_after_delays_the_retry(server: WebhookServer) -> None:
    server.respond = lambda n: (429, {"Retry-After": "2"}) if n == 0 else (200, {})
    n = notifier(server.url())
    n.send(alert())
    n.close()
    assert [h.status for h in server.hits] == [429, 200]
    gap = server.hits[1].at - server.hits[0].at
    print(f"429 -> retry gap measured at the server: {gap:.2f}s")
    assert gap >= 2.0


def test_500_twice_then_200_delivers_once(server: WebhookServer, store: AlertStore) -> None:
    server.respond = lambda n: (500, {}) if n < 2 else (200, {})
    store.record(alert(), ["slack"])
    d = Delivery(store, {"slack": notifier(server.url(), backoff=0.05)})
    assert d.run_once() == 1
    assert d.run_once() == 0
    assert [h.status for h in server.hits] == [500, 500, 200]
    assert len(server.accepted()) == 1
    assert store.outbox_item(alert().id, "slack").state == "sent"  # type: ignore[union-attr]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_channel_down_then_back_delivers_exactly_once(store: AlertStore) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/services/T1/B1/SECRET"
    d = Delivery(store, {"slack": notifier(url, max_attempts=2, backoff=0.05, timeout=2)},
                 backoff=Backoff(base=0.2, cap=0.5))
    store.record(alert(), ["slack"])
    deadline = time.monotonic() + 2.0  # the whole first attempt window: nobody listens
    while time.monotonic() < deadline:
        assert d.run_once() == 0
        time.sleep(0.1)
    item = store.outbox_item(alert().id, "slack")
    assert item is not None and item.state == "pending" and item.attempts >= 2
    assert "SECRET" not in (item.last_error or "") and str(port) not in (item.last_error or "")
    server = WebhookServer(port=port).start()  # the channel is back
    try:
        deadline = time.monotonic() + 10
        while not server.accepted() and time.monotonic() < deadline:
            d.run_once()
            time.sleep(0.1)
        for _ in range(5):
            d.run_once()
        assert store.record(alert(), ["slack"]) is False  # redelivered alert: never notified again
        for _ in range(5):
            d.run_once()
            time.sleep(0.05)
        assert [h.alert_id for h in server.accepted()] == [alert().id]
        assert store.pending_count("slack") == 0
    finally:
        server.stop()


def test_notify_test_cli(server: WebhookServer, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, slack_webhook_url=SecretStr(server.url()), log_level="DEBUG")
    env = {**os.environ, **settings.to_env()}
    p = subprocess.run([sys.executable, "-m", "trucewatch.cli", "notify", "--test", "slack"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "test notification sent on slack" in p.stdout
    assert len(server.accepted()) == 1
    assert "SECRET" not in p.stderr + p.stdout
    server.respond = lambda n: (404, {})
    p = subprocess.run([sys.executable, "-m", "trucewatch.cli", "notify", "--test", "slack"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "404" in p.stderr and "SECRET" not in p.stderr
