"""Slack delivery through an incoming webhook: a Block Kit message per alert, with retries.

The webhook URL is a secret: it never appears in errors or logs (httpx's request log lines are
redacted by a filter installed on the ``httpx``/``httpcore`` loggers).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from sinks.render import facts, safe_url, subject
from trucewatch.errors import SinkError
from trucewatch.schema import Alert

log = logging.getLogger(__name__)

MAX_LINKS = 20  # links listed in one message; the rest are counted
SEVERITY_EMOJI = {"low": ":white_circle:", "medium": ":large_blue_circle:", "high": ":large_orange_circle:",
                  "critical": ":red_circle:"}


def esc(text: str) -> str:
    """Escape the three characters Slack treats as markup in text objects: & < >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: str) -> str:
    """A Slack mrkdwn link ``<url|label>`` (escaped), or the escaped label alone for unusable URLs."""
    u = safe_url(url)
    if u is None:
        return esc(label)
    u = quote(u, safe=":/?#[]@!$&'()*+,;=%~-._")  # percent-encodes | < > and non-ASCII
    u = u.replace("&", "&amp;")
    return f"<{u}|{esc(label.replace('|', '¦')) or u}>"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_payload(alert: Alert, *, update: bool = False) -> dict[str, Any]:
    """The webhook JSON for one alert: fallback text + Block Kit blocks (header, facts, sources, context).

    Every piece of user text (titles, names, sources) is escaped; limits of Block Kit are respected
    (header 150 chars, section text 3000, fields 2000)."""
    f = facts(alert, update=update)
    fields = []
    if f.who:
        fields.append(f"*Who → where*\n{esc(f.who)} → {esc(f.where or '?')}")
    if f.status:
        fields.append(f"*Status*\n{esc(f.status)}")
    fields.append(f"*Severity*\n{SEVERITY_EMOJI.get(f.severity, '')} {esc(f.severity)}")
    fields.append(f"*Labels*\n{esc(', '.join(f.labels)) or '—'}")
    fields.append(f"*Corroborations*\n{f.corroborations} ({len(f.sources)} source(s))")
    fields.append(f"*First seen*\n{esc(f.first_seen)}")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(esc(f"{f.kind_title}: {f.headline}"), 150),
                                    "emoji": True}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": _clip(x, 2000)} for x in fields[:10]]},
    ]
    if f.summary:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(esc(f.summary), 3000)}})
    lines = []
    for lk in f.links[:MAX_LINKS]:
        label = f"{lk.source}: {lk.title}" if lk.title else lk.source
        lines.append("• " + link(lk.url, label))
    if len(f.links) > MAX_LINKS:
        lines.append(f"… and {len(f.links) - MAX_LINKS} more")
    if lines:
        blocks.append({"type": "section", "text": {"type": "mrkdwn",
                                                   "text": _clip("*Sources*\n" + "\n".join(lines), 3000)}})
    ctx = f"alert `{f.alert_id}`" + (" · replay" if f.replay else "")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": ctx}]})
    return {"text": esc(subject(alert, update=update)), "blocks": blocks}


def build_digest_payload(alerts: Sequence[Alert], period: str) -> dict[str, Any]:
    """One message listing several alerts (a digest), newest first, at most 40."""
    lines = []
    for a in sorted(alerts, key=lambda x: x.first_seen, reverse=True)[:40]:
        first = next((lk for lk in a.links if safe_url(lk.url)), None)
        title = link(first.url, a.title) if first else esc(a.title)
        lines.append(f"• [{esc(a.severity)}] {title} ({a.corroborations}) `{a.id}`")
    if len(alerts) > 40:
        lines.append(f"… and {len(alerts) - 40} more")
    head = f"trucewatch {period} digest: {len(alerts)} alert(s)"
    return {"text": esc(head), "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": esc(head)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip("\n".join(lines) or "—", 3000)}},
    ]}


def retry_after_seconds(value: str | None, now: datetime | None = None, default: float = 1.0) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); ``default`` if absent/bad."""
    if not value:
        return default
    try:
        return max(0.0, float(value.strip()))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


class _Redact(logging.Filter):
    """Replaces secrets in log records of a library logger."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        msg = record.getMessage()
        if any(s in msg for s in self.secrets):
            for s in self.secrets:
                msg = msg.replace(s, "<redacted>")
            record.msg, record.args = msg, ()
        return True


_REDACT = _Redact()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_REDACT)


class SlackNotifier:
    """Posts alerts to a Slack incoming webhook through the injected httpx client.

    429: waits ``Retry-After`` and tries again (if the wait exceeds ``max_wait``, raises SinkError with
    ``retry_after`` so the outbox reschedules). 5xx and transport errors: retried with exponential
    backoff up to ``max_attempts``, then SinkError. Other 4xx: SinkError(permanent=True).
    """

    def __init__(self, client: httpx.Client, url: SecretStr, *, name: str = "slack", max_attempts: int = 4,
                 backoff: float = 0.5, max_backoff: float = 10.0, max_wait: float = 30.0, timeout: float = 10.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self._url = url
        self.name = name
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self.sleep = sleep
        secret = url.get_secret_value()
        _REDACT.secrets.update({secret, quote(secret, safe=":/")})
        self.posts = 0

    def redact(self, text: str) -> str:
        """``text`` with the webhook URL (and its path) removed."""
        secret = self._url.get_secret_value()
        path = httpx.URL(secret).path if secret.startswith("http") else ""
        text = text.replace(secret, "<slack webhook>")
        return text.replace(path, "<path>") if len(path) > 1 else text

    def setup(self) -> None:
        """Check that the URL is an http(s) URL (without ever showing it)."""
        if not self._url.get_secret_value().lower().startswith(("https://", "http://")):
            raise SinkError(f"{self.name}: the webhook URL is not an http(s) URL", sink=self.name, permanent=True)

    def send(self, alert: Alert, *, update: bool = False) -> None:
        """Post one alert; raises SinkError on failure (see the class docstring)."""
        self._post(build_payload(alert, update=update), alert.id)

    def send_digest(self, alerts: Sequence[Alert], period: str) -> None:
        """Post one digest message for ``alerts``."""
        self._post(build_digest_payload(alerts, period), None)

    def _post(self, payload: dict[str, Any], alert_id: str | None) -> None:
        delay = self.backoff
        for attempt in range(1, self.max_attempts + 1):
            last = attempt == self.max_attempts
            try:
                self.posts += 1
                r = self.client.post(self._url.get_secret_value(), json=payload, timeout=self.timeout)
            except httpx.HTTPError as e:
                msg = self.redact(f"{self.name}: {type(e).__name__}: {e}")
                if last:
                    raise SinkError(msg, sink=self.name, alert_id=alert_id) from None
                log.warning("%s (attempt %s/%s), retrying in %.1fs", msg, attempt, self.max_attempts, delay)
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            if r.status_code < 300:
                return
            body = self.redact(r.text[:200].strip())
            if r.status_code == 429:
                wait = retry_after_seconds(r.headers.get("Retry-After"))
                if last or wait > self.max_wait:
                    raise SinkError(f"{self.name}: rate limited (429), retry after {wait:.0f}s", sink=self.name,
                                    alert_id=alert_id, retry_after=wait)
                log.warning("%s: rate limited (429), waiting %.1fs as asked by Retry-After", self.name, wait)
                self.sleep(wait)
                continue
            if r.status_code >= 500:
                if last:
                    raise SinkError(f"{self.name}: HTTP {r.status_code} {body}", sink=self.name, alert_id=alert_id)
                log.warning("%s: HTTP %s (attempt %s/%s), retrying in %.1fs", self.name, r.status_code, attempt,
                            self.max_attempts, delay)
                self.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            raise SinkError(f"{self.name}: HTTP {r.status_code} {body}", sink=self.name, alert_id=alert_id,
                            permanent=True)

    def close(self) -> None:
        """Close the HTTP client."""
        self.client.close()
