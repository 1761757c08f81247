"""What a notification says about an alert, independent of the channel's markup (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC

from trucewatch.schema import Alert, AlertLink

KIND_TITLES = {"new_visit": "New visit", "visit_update": "Visit update", "story": "Story"}
KIND_TITLES_AR = {"new_visit": "زيارة جديدة", "visit_update": "تحديث زيارة", "story": "خبر"}
STATUS = {"arrived": "arrived", "upcoming": "upcoming", "ongoing": "under way"}


@dataclass(frozen=True)
class Facts:
    """The facts of one alert as plain (unescaped) text, ready for any channel to mark up."""

    alert_id: str
    kind: str
    kind_title: str
    kind_title_ar: str
    headline: str
    summary: str
    who: str | None
    where: str | None
    status: str | None
    severity: str
    labels: list[str]
    corroborations: int
    first_seen: str
    replay: bool
    links: list[AlertLink]
    sources: list[str]


def who_where(alert: Alert) -> tuple[str | None, str | None]:
    """The visitor (name, role, country) and the destination (city, country), when the alert is a visit."""
    v = alert.visit
    if v is None:
        return None, None
    who_parts = [p for p in (v.visitor, v.role) if p]
    who = " — ".join(who_parts) if who_parts else v.visitor_id
    if v.visitor_country:
        who += f" ({v.visitor_country})"
    where = ", ".join(p for p in (v.destination_city, v.destination_country) if p) or None
    return who, where


def facts(alert: Alert, *, update: bool = False) -> Facts:
    """The facts to notify for ``alert``; ``update`` marks a re-sent visit (new corroborations)."""
    kind = "visit_update" if update or alert.kind == "visit_update" else alert.kind
    who, where = who_where(alert)
    return Facts(
        alert_id=alert.id, kind=kind, kind_title=KIND_TITLES[kind], kind_title_ar=KIND_TITLES_AR[kind],
        headline=alert.title, summary=alert.summary, who=who, where=where,
        status=STATUS.get(alert.visit.status) if alert.visit else None, severity=alert.severity,
        labels=list(alert.labels), corroborations=alert.corroborations,
        first_seen=alert.first_seen.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"), replay=alert.replay,
        links=list(alert.links), sources=sorted({lk.source for lk in alert.links}),
    )


def safe_url(url: str | None) -> str | None:
    """``url`` if it is an http(s) URL without whitespace or control characters, else None (not linkable)."""
    if not url or not url.lower().startswith(("http://", "https://")):
        return None
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return None
    return url


def subject(alert: Alert, *, update: bool = False, limit: int = 180) -> str:
    """A one-line email subject / notification fallback text (no newlines)."""
    f = facts(alert, update=update)
    text = f"[trucewatch] {f.kind_title} ({f.severity}): {' '.join(f.headline.split())}"
    if f.corroborations > 1:
        text += f" · {f.corroborations} sources"
    return text if len(text) <= limit else text[: limit - 1] + "…"
