"""Email delivery over SMTP (plain, STARTTLS or implicit TLS; optional auth): multipart text + RTL HTML."""

from __future__ import annotations

import html
import logging
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pydantic import SecretStr

from sinks.render import facts, safe_url, subject
from trucewatch.errors import SinkError
from trucewatch.schema import Alert
from trucewatch.settings import Settings

log = logging.getLogger(__name__)

STYLE = "font-family: Tahoma, 'Noto Naskh Arabic', Arial, sans-serif; text-align: right;"


def _e(text: str | None) -> str:
    return html.escape(text or "", quote=True)


def _html_link(url: str | None, label: str) -> str:
    u = safe_url(url)
    return f'<a href="{_e(u)}">{_e(label)}</a>' if u else _e(label)


def render_text(alert: Alert, *, update: bool = False) -> str:
    """The plain-text part: headline, facts, and every source with its URL."""
    f = facts(alert, update=update)
    lines = [f"{f.kind_title} / {f.kind_title_ar}", "", f.headline, ""]
    if f.who:
        lines.append(f"Who → where: {f.who} → {f.where or '?'}")
    if f.status:
        lines.append(f"Status: {f.status}")
    lines += [f"Severity: {f.severity}", f"Labels: {', '.join(f.labels) or '-'}",
              f"Corroborations: {f.corroborations} ({len(f.sources)} source(s))", f"First seen: {f.first_seen}"]
    if f.summary:
        lines += ["", f.summary]
    lines += ["", "Sources:"]
    for lk in f.links:
        lines.append(f"- {lk.source}: {lk.title}".rstrip(": ") + (f"\n  {lk.url}" if lk.url else ""))
    lines += ["", f"alert {f.alert_id}" + (" (replay)" if f.replay else "")]
    return "\n".join(lines) + "\n"


def render_html(alert: Alert, *, update: bool = False) -> str:
    """The HTML part: right-to-left Arabic layout (``dir="rtl" lang="ar"``), escaped text, linked sources."""
    f = facts(alert, update=update)
    rows = []
    if f.who:
        rows.append(("من ← إلى / Who → where", f"{_e(f.who)} ← {_e(f.where or '?')}"))
    if f.status:
        rows.append(("الحالة / Status", _e(f.status)))
    rows += [("الأهمية / Severity", _e(f.severity)), ("التصنيف / Labels", _e(", ".join(f.labels)) or "-"),
             ("المصادر / Corroborations", f"{f.corroborations} ({len(f.sources)})"),
             ("أول رصد / First seen", f'<span dir="ltr">{_e(f.first_seen)}</span>')]
    table = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    links = "".join(f"<li>{_html_link(lk.url, f'{lk.source}: {lk.title}' if lk.title else lk.source)}</li>"
                    for lk in f.links)
    summary = f"<p>{_e(f.summary)}</p>" if f.summary else ""
    return (f'<!DOCTYPE html>\n<html dir="rtl" lang="ar"><head><meta charset="utf-8">'
            f"<title>{_e(f.headline)}</title></head>"
            f'<body dir="rtl" style="{STYLE}"><p>{_e(f.kind_title_ar)} / {_e(f.kind_title)}</p>'
            f"<h2>{_e(f.headline)}</h2>{summary}<table>{table}</table>"
            f"<h3>المصادر / Sources</h3><ul>{links}</ul>"
            f'<p dir="ltr" style="font-size:small;color:#666">alert {_e(f.alert_id)}'
            f"{' (replay)' if f.replay else ''}</p></body></html>\n")


def render_digest(alerts: Sequence[Alert], period: str) -> tuple[str, str, str]:
    """Subject, text and RTL HTML of one digest of ``alerts`` (newest first)."""
    items = sorted(alerts, key=lambda a: a.first_seen, reverse=True)
    subj = f"[trucewatch] {period} digest: {len(items)} alert(s)"
    text_lines, html_items = [subj, ""], []
    for a in items:
        first = next((lk for lk in a.links if safe_url(lk.url)), None)
        text_lines.append(f"- [{a.severity}] {a.title} ({a.corroborations} source(s))"
                          + (f"\n  {first.url}" if first else ""))
        html_items.append(f"<li>[{_e(a.severity)}] {_html_link(first.url if first else None, a.title)} "
                          f"({a.corroborations})</li>")
    body = (f'<!DOCTYPE html>\n<html dir="rtl" lang="ar"><head><meta charset="utf-8"><title>{_e(subj)}</title>'
            f'</head><body dir="rtl" style="{STYLE}"><h2>{_e(subj)}</h2><ul>{"".join(html_items)}</ul>'
            f"</body></html>\n")
    return subj, "\n".join(text_lines) + "\n", body


def build_message(sender: str, to: Sequence[str], subj: str, text: str, body_html: str,
                  alert_id: str | None = None) -> EmailMessage:
    """A multipart/alternative message (text first, HTML second), UTF-8 throughout."""
    msg = EmailMessage()
    msg["Subject"] = subj
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rsplit("@", 1)[-1] or "trucewatch")
    if alert_id:
        msg["X-Trucewatch-Alert-Id"] = alert_id
    msg.set_content(text, subtype="plain", charset="utf-8")
    msg.add_alternative(body_html, subtype="html", charset="utf-8")
    return msg


class EmailNotifier:
    """Sends alerts by SMTP; one connection per message (alerts are rare; nothing to keep alive).

    ``security``: ``none``, ``starttls`` or ``tls`` (implicit TLS, usually port 465). SMTP 4xx, network
    errors and timeouts raise a retriable SinkError; 5xx replies for the recipients or data raise a
    permanent one. The password never appears in errors.
    """

    def __init__(self, host: str, port: int, *, sender: str, to: Sequence[str], security: str = "none",
                 username: str | None = None, password: SecretStr | None = None, name: str = "email",
                 timeout: float = 20.0, ssl_context: ssl.SSLContext | None = None) -> None:
        if security not in ("none", "starttls", "tls"):
            raise SinkError(f"{name}: unknown SMTP security {security!r}", sink=name, permanent=True)
        self.host, self.port, self.security = host, port, security
        self.sender, self.to = sender, list(to)
        self.username, self._password = username, password
        self.name, self.timeout = name, timeout
        self.ssl_context = ssl_context

    @classmethod
    def from_settings(cls, settings: Settings, *, name: str = "email", to: Sequence[str] = ()) -> EmailNotifier:
        """An EmailNotifier from the SMTP settings (``to`` overrides settings.email_to)."""
        if not settings.smtp_host:
            raise SinkError(f"{name}: TRUCEWATCH_SMTP_HOST is not set", sink=name, permanent=True)
        return cls(settings.smtp_host, settings.smtp_port, sender=settings.email_from, to=list(to) or
                   settings.email_to, security=settings.smtp_security, username=settings.smtp_username,
                   password=settings.smtp_password, name=name)

    def setup(self) -> None:
        """Check the configuration (recipients present)."""
        if not self.to:
            raise SinkError(f"{self.name}: no recipients", sink=self.name, permanent=True)

    def send(self, alert: Alert, *, update: bool = False) -> None:
        """Send one alert email; raises SinkError on failure."""
        msg = build_message(self.sender, self.to, subject(alert, update=update), render_text(alert, update=update),
                            render_html(alert, update=update), alert.id)
        self._deliver(msg, alert.id)

    def send_digest(self, alerts: Sequence[Alert], period: str) -> None:
        """Send one digest email for ``alerts``."""
        subj, text, body = render_digest(alerts, period)
        self._deliver(build_message(self.sender, self.to, subj, text, body), None)

    def _deliver(self, msg: EmailMessage, alert_id: str | None) -> None:
        ctx = self.ssl_context or ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if self.security == "tls":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ctx)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ctx)
                if self.username:
                    smtp.login(self.username, self._password.get_secret_value() if self._password else "")
                refused = smtp.send_message(msg)
            if refused:
                log.warning("%s: some recipients refused for alert %s: %s", self.name, alert_id, sorted(refused))
        except smtplib.SMTPRecipientsRefused as e:
            codes = {c for c, _ in e.recipients.values()}
            raise SinkError(f"{self.name}: all recipients refused ({sorted(codes)})", sink=self.name,
                            alert_id=alert_id, permanent=all(c >= 500 for c in codes)) from None
        except smtplib.SMTPResponseException as e:
            text = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
            raise SinkError(f"{self.name}: SMTP {e.smtp_code} {text[:200]}", sink=self.name, alert_id=alert_id,
                            permanent=e.smtp_code >= 500 and not isinstance(e, smtplib.SMTPAuthenticationError)
                            ) from None
        except (smtplib.SMTPException, OSError) as e:
            raise SinkError(f"{self.name}: {type(e).__name__}: {e}", sink=self.name, alert_id=alert_id) from None

    def close(self) -> None:
        """Nothing held open."""
