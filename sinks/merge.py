"""Pure merging of alerts: how a redelivered or updated alert folds into the stored one."""

from __future__ import annotations

from datetime import datetime

from trucewatch.schema import Alert, AlertLink

SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


_ISO: dict[tuple[datetime, object], str] = {}  # (time, its tzinfo) -> isoformat: equal keys format the same
_ISO_MAX = 100_000


def _iso(d: datetime) -> str:
    key = (d, d.tzinfo)
    s = _ISO.get(key)
    if s is None:
        if len(_ISO) >= _ISO_MAX:
            _ISO.clear()
        s = _ISO[key] = d.isoformat()
    return s


def _link_order(link: AlertLink) -> tuple[str, str]:
    # isoformat order (as stored); memoised: links are re-sorted on every merge and formatting dominated it
    return (_iso(link.published_at) if link.published_at else "~", link.article_id)


def merge_links(a: list[AlertLink], b: list[AlertLink]) -> list[AlertLink]:
    """Union of two link lists by article id (the first seen wins), ordered by publication time then id."""
    seen: dict[str, AlertLink] = {}
    for link in [*a, *b]:
        seen.setdefault(link.article_id, link)
    return sorted(seen.values(), key=_link_order)


def article_ids_of(alert: Alert) -> list[str]:
    """Every article id the alert covers (its ``article_ids`` plus the ids of its links), sorted."""
    return sorted(set(alert.article_ids) | {link.article_id for link in alert.links})


def absorb(base: Alert, other: Alert) -> Alert:
    """``base`` with the evidence of ``other`` folded in; ``base`` keeps its id, kind and key.

    Order-independent for the fields that count (links, article ids, corroborations, severity,
    first/last seen, labels): merging A into B or B into A gives the same evidence. Title, summary and
    visit come from the alert seen first (earliest ``first_seen``; ``base`` on a tie).
    """
    links = merge_links(base.links, other.links)
    ids = sorted(set(article_ids_of(base)) | set(article_ids_of(other)))
    first = base if base.first_seen <= other.first_seen else other
    severity = max(base.severity, other.severity, key=lambda s: SEVERITY_RANK[s])
    seen = [d for d in (base.last_seen, other.last_seen) if d is not None]
    last_seen = max([*seen, base.first_seen, other.first_seen]) if seen or base.first_seen != other.first_seen else None
    return base.model_copy(update={
        "severity": severity,
        "title": first.title or base.title or other.title,
        "summary": first.summary or base.summary or other.summary,
        "links": links,
        "article_ids": ids,
        "labels": sorted(set(base.labels) | set(other.labels)),
        "visit": first.visit if first.visit is not None else (base.visit or other.visit),
        "first_seen": min(base.first_seen, other.first_seen),
        "last_seen": last_seen,
        "corroborations": len(ids) if ids else max(base.corroborations, other.corroborations),
        "replay": base.replay and other.replay,
        "created_at": min(base.created_at, other.created_at),
    })


def normalise(alert: Alert) -> Alert:
    """An incoming alert in stored form: links deduplicated and ordered, ids complete, count consistent."""
    ids = article_ids_of(alert)
    return alert.model_copy(update={
        "links": merge_links(alert.links, []),
        "article_ids": ids,
        "labels": sorted(set(alert.labels)),
        "corroborations": len(ids) if ids else alert.corroborations,
    })


def new_article_ids(before: Alert | None, after: Alert) -> set[str]:
    """Article ids ``after`` covers that ``before`` did not."""
    return set(article_ids_of(after)) - (set(article_ids_of(before)) if before else set())
