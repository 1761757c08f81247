"""Email delivery into a real SMTP server (aiosmtpd on 127.0.0.1): plain, STARTTLS + AUTH, digest."""

from __future__ import annotations

import email
import email.policy
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from sinks.delivery import Delivery
from sinks.email import EmailNotifier
from sinks.store import open_store
from trucewatch.schema import Alert, AlertLink, Visit, alert_id

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

T0 = datetime(2025, 1, 10, 8, 0, tzinfo=UTC)
LINKS = [("الجزيرة", "https://www.aljazeera.net/news/2025/1/10/visit?id=1&lang=ar"),
         ("العربية", "https://www.alarabiya.net/arab-and-world/2025/01/10/x"),
         ("بي بي سي", "https://www.bbc.com/arabic/articles/c123")]


class Collect:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alert() -> Alert:
    v = Visit(visitor="حسن رشاد", visitor_id="eg-gis", role="رئيس المخابرات العامة", visitor_country="مصر",
              destination_city="تل أبيب", destination_country="إسرائيل", key="k")
    return Alert(id=alert_id("new_visit", "k"), kind="new_visit", key="k", severity="critical",
                 title="رئيس المخابرات المصرية يصل إلى تل أبيب <عاجل> & لأول مرة", visit=v,
                 labels=["ceasefire", "mediation"], first_seen=T0, corroborations=3, article_ids=["1", "2", "3"],
                 links=[AlertLink(source=s, url=u, article_id=str(i), title=f"تقرير {i}")
                        for i, (s, u) in enumerate(LINKS, 1)])


@pytest.fixture()
def smtp() -> Iterator[tuple[Collect, int]]:
    handler = Collect()
    port = _free_port()
    c = Controller(handler, hostname="127.0.0.1", port=port)
    c.start()
    yield handler, port
    c.stop()


def check_alert_email(msg: EmailMessage, a: Alert) -> None:
    assert msg["Subject"] == f"[trucewatch] New visit (critical): {a.title} · 3 sources"
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    t, h = text.get_content(), html.get_content()
    assert "حسن رشاد" in t and "تل أبيب" in t and "Severity: critical" in t
    assert '<html dir="rtl" lang="ar">' in h and '<body dir="rtl"' in h
    assert "&lt;عاجل&gt; &amp; لأول مرة" in h and "<عاجل>" not in h
    for source, url in LINKS:
        assert url in t, url
        assert f'href="{url.replace("&", "&amp;")}"' in h, url
        assert source in h
    assert msg["X-Trucewatch-Alert-Id"] == a.id


def test_plain_smtp_through_the_outbox(smtp: tuple[Collect, int], tmp_path: Path) -> None:
    handler, port = smtp
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    n = EmailNotifier("127.0.0.1", port, sender="trucewatch@example.org",
                      to=["analyst@example.org", "desk@example.org"], timeout=10)
    a = alert()
    store.record(a, ["email"])
    d = Delivery(store, {"email": n})
    assert d.run_once() == 1
    store.record(a, ["email"])  # redelivered: not mailed again
    assert d.run_once() == 0
    store.close()
    assert len(handler.messages) == 1
    mail_from, rcpts, msg = handler.messages[0]
    assert mail_from == "trucewatch@example.org" and rcpts == ["analyst@example.org", "desk@example.org"]
    check_alert_email(msg, a)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make a test certificate")
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_tls_and_auth(tmp_path: Path, security: str) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    logins: list[str] = []

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"bot" and data.password == b"s3cret"
        logins.append(f"{mechanism}:{ok}")
        return AuthResult(success=ok)

    handler = Collect()
    port = _free_port()
    # aiosmtpd only knows TLS it negotiated itself (STARTTLS); with implicit TLS the whole session is TLS anyway.
    kw: dict[str, Any] = {"authenticator": auth, "auth_require_tls": security == "starttls",
                          "auth_exclude_mechanism": ["LOGIN"]}
    if security == "starttls":
        c = Controller(handler, hostname="127.0.0.1", port=port, tls_context=server_ctx, require_starttls=True,
                       **kw)
    else:
        c = Controller(handler, hostname="127.0.0.1", port=port, ssl_context=server_ctx, **kw)
    c.start()
    try:
        n = EmailNotifier("127.0.0.1", port, sender="trucewatch@example.org", to=["a@example.org"],
                          security=security, username="bot", password=SecretStr("s3cret"), ssl_context=client_ctx,
                          timeout=10)
        n.send(alert())
        assert len(handler.messages) == 1
        check_alert_email(handler.messages[0][2], alert())
        assert any(x.endswith(":True") for x in logins)
    finally:
        c.stop()


def test_digest_email(smtp: tuple[Collect, int]) -> None:
    handler, port = smtp
    n = EmailNotifier("127.0.0.1", port, sender="trucewatch@example.org", to=["boss@example.org"], timeout=10)
    n.send_digest([alert(), alert().model_copy(update={"id": "x2", "title": "وفد حماس في القاهرة"})], "daily")
    [(_, _, msg)] = handler.messages
    assert msg["Subject"] == "[trucewatch] daily digest: 2 alert(s)"
    h = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'dir="rtl"' in h and "وفد حماس في القاهرة" in h and LINKS[0][1].replace("&", "&amp;") in h
