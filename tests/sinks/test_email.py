"""Email rendering (no SMTP server): multipart, RTL HTML, escaping, every source link."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime

import pytest

from sinks.email import EmailNotifier, build_message, render_digest, render_html, render_text
from sinks.render import subject
from trucewatch.errors import SinkError
from trucewatch.schema import Alert, AlertLink, Visit, alert_id

T0 = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)


def alert() -> Alert:
    v = Visit(visitor="حسن رشاد", visitor_id="eg", role="رئيس المخابرات", visitor_country="مصر",
              destination_city="تل أبيب", destination_country="إسرائيل", key="k")
    return Alert(id=alert_id("new_visit", "k"), kind="new_visit", key="k", severity="high",
                 title="رئيس المخابرات <b>المصرية</b> & تل أبيب", visit=v, labels=["mediation"], first_seen=T0,
                 links=[AlertLink(source="a", url="https://a.example/1?x=1&y=2", article_id="1", title="أ"),
                        AlertLink(source="b", url="https://b.example/2", article_id="2", title="ب"),
                        AlertLink(source="c", url="javascript:alert(1)", article_id="3")],
                 article_ids=["1", "2", "3"], corroborations=3)


def test_html_is_rtl_escaped_and_links_every_source() -> None:
    h = render_html(alert())
    assert '<html dir="rtl" lang="ar">' in h and '<body dir="rtl"' in h
    assert "<b>المصرية</b>" not in h and "&lt;b&gt;المصرية&lt;/b&gt; &amp; تل أبيب" in h
    assert 'href="https://a.example/1?x=1&amp;y=2"' in h and 'href="https://b.example/2"' in h
    assert "javascript:" not in h


def test_text_lists_every_source_url() -> None:
    t = render_text(alert())
    assert "https://a.example/1?x=1&y=2" in t and "https://b.example/2" in t
    assert "حسن رشاد" in t and "Corroborations: 3" in t


def test_message_is_multipart_alternative_utf8() -> None:
    a = alert()
    msg = build_message("tw@example.org", ["x@example.org", "y@example.org"], subject(a), render_text(a),
                        render_html(a), a.id)
    parsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["Subject"] == subject(a) and "\n" not in str(parsed["Subject"])
    assert parsed["X-Trucewatch-Alert-Id"] == a.id
    assert "تل أبيب" in parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_digest() -> None:
    subj, text, body = render_digest([alert()], "daily")
    assert "1 alert(s)" in subj and "https://a.example/1" in text and 'dir="rtl"' in body


def test_bad_configuration() -> None:
    with pytest.raises(SinkError):
        EmailNotifier("h", 25, sender="a@b", to=[], security="ssl")
    with pytest.raises(SinkError):
        EmailNotifier("h", 25, sender="a@b", to=[]).setup()


def test_unreachable_server_is_retriable() -> None:
    n = EmailNotifier("127.0.0.1", 1, sender="a@example.org", to=["b@example.org"], timeout=2)
    with pytest.raises(SinkError) as e:
        n.send(alert())
    assert not e.value.context["permanent"] and e.value.context["alert_id"] == alert().id
