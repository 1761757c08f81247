"""Slack notifier with httpx.MockTransport: payload, escaping, retries, secret handling."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from sinks.slack import SlackNotifier, build_digest_payload, build_payload, esc, link, retry_after_seconds
from trucewatch.errors import SinkError
from trucewatch.schema import Alert, AlertLink, Visit, alert_id

URL = "https://hooks.slack.test/services/T000/B000/SECRETTOKEN123"
T0 = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)


def alert(title: str = "وصل <script>alert(1)</script> & رئيس") -> Alert:
    v = Visit(visitor="حسن رشاد", visitor_id="eg", role="رئيس المخابرات", visitor_country="مصر",
              destination_city="تل أبيب", destination_country="إسرائيل", key="k")
    return Alert(id=alert_id("new_visit", "k"), kind="new_visit", key="k", severity="high", title=title,
                 links=[AlertLink(source="s<1>", url="https://a.example/x?a=1&b=2|3", article_id="a1", title="t & u"),
                        AlertLink(source="s2", url="javascript:alert(1)", article_id="a2")],
                 article_ids=["a1", "a2"], corroborations=2, labels=["mediation"], visit=v, first_seen=T0)


def texts(payload: dict) -> list[str]:
    out = [payload["text"]]
    for b in payload["blocks"]:
        if "text" in b:
            out.append(b["text"]["text"])
        for f in b.get("fields", []):
            out.append(f["text"])
        for e in b.get("elements", []):
            out.append(e["text"])
    return out


def test_payload_is_block_kit_and_escaped() -> None:
    p = build_payload(alert())
    assert [b["type"] for b in p["blocks"]] == ["header", "section", "section", "context"]
    assert p["blocks"][0]["text"]["type"] == "plain_text" and len(p["blocks"][0]["text"]["text"]) <= 150
    joined = "\n".join(texts(p))
    assert "<script>" not in joined and "&lt;script&gt;" in joined
    assert "& رئيس" not in joined and "&amp; رئيس" in joined
    assert "حسن رشاد" in joined and "تل أبيب" in joined and "*Severity*" in joined
    assert "<https://a.example/x?a=1&amp;b=2%7C3|s&lt;1&gt;: t &amp; u>" in joined
    assert "javascript:" not in joined.replace("s2", "")  # not linkable: label only
    assert alert().id in joined


def test_helpers() -> None:
    assert esc("a&b<c>") == "a&amp;b&lt;c&gt;"
    assert link(None, "x<") == "x&lt;"
    assert link("https://x/ y", "l") == "l"
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) == 1.0
    assert retry_after_seconds("junk", default=3) == 3
    assert retry_after_seconds("Fri, 10 Jan 2025 08:00:05 GMT", now=T0) == 5.0
    d = build_digest_payload([alert(), alert("b").model_copy(update={"first_seen": T0 + timedelta(hours=1)})], "daily")
    assert "2 alert(s)" in d["text"] and "&lt;script&gt;" in d["blocks"][1]["text"]["text"]


def make(handler, sleeps: list[float] | None = None, **kw) -> SlackNotifier:  # type: ignore[no-untyped-def]
    sleeps = sleeps if sleeps is not None else []
    return SlackNotifier(httpx.Client(transport=httpx.MockTransport(handler)), SecretStr(URL),
                         sleep=sleeps.append, **kw)


def test_success_posts_json_once() -> None:
    seen: list[httpx.Request] = []

    def handler(req: httpx.Request) -> httpx.Response:
        seen.append(req)
        return httpx.Response(200, text="ok")

    make(handler).send(alert())
    assert len(seen) == 1 and seen[0].method == "POST" and str(seen[0].url) == URL
    assert json.loads(seen[0].content)["blocks"]


def test_429_waits_retry_after_then_delivers() -> None:
    codes = iter([429, 200])
    sleeps: list[float] = []
    n = make(lambda r: httpx.Response(next(codes), headers={"Retry-After": "2"}), sleeps)
    n.send(alert())
    assert sleeps == [2.0] and n.posts == 2


def test_429_with_long_wait_defers_to_the_outbox() -> None:
    n = make(lambda r: httpx.Response(429, headers={"Retry-After": "120"}), max_wait=30)
    with pytest.raises(SinkError) as e:
        n.send(alert())
    assert e.value.context["retry_after"] == 120 and not e.value.context["permanent"]


def test_5xx_retried_with_backoff_then_fails() -> None:
    sleeps: list[float] = []
    n = make(lambda r: httpx.Response(503, text="busy"), sleeps, max_attempts=3, backoff=0.5)
    with pytest.raises(SinkError) as e:
        n.send(alert())
    assert sleeps == [0.5, 1.0] and n.posts == 3
    assert "503" in str(e.value) and not e.value.context["permanent"]


def test_4xx_is_permanent() -> None:
    with pytest.raises(SinkError) as e:
        make(lambda r: httpx.Response(404, text="no_service")).send(alert())
    assert e.value.context["permanent"] and "no_service" in str(e.value)


def test_url_never_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def boom(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {URL}", request=req)

    with pytest.raises(SinkError) as e:
        make(boom, max_attempts=2).send(alert())
    assert "SECRETTOKEN123" not in str(e.value) and "SECRETTOKEN123" not in repr(e.value.context)
    make(lambda r: httpx.Response(200)).send(alert())
    logging.getLogger("httpx").info("HTTP Request: POST %s", URL)
    assert "SECRETTOKEN123" not in caplog.text
    assert "T000/B000" not in caplog.text
