"""Novelty as pure functions: fold one visit report into a key's state and say which alert it raises.

State per visit key (kept by the novelty agent in a Faust table): first and last event time, the
articles and sources that reported it. Rules:

- The first report of a key raises a ``new_visit`` alert; every later report of the same key is a
  ``visit_update`` of that same alert (same alert id), growing its links and corroborations.
- The alert id is ``alert_id("new_visit", key)`` whatever the order of arrival, so a redelivery, a
  restarted worker with lost state, a shuffled feed or a replay never makes a second alert: the store
  upserts by id and merges links (corroborations = distinct articles).
- Event time only: ``first_seen`` is the minimum ``published_at`` over the reports (never arrival time).
- The novelty window (default 7 days of event time) bounds the state: a key whose last report is
  older than the window, measured against the newest event time the key has seen, starts over as a
  new episode, and ``evictable`` says when the agent may drop it. The visit key already carries the
  trip's date bucket (see processors/visits.py), so a new episode of the same key is rare.
- Severity: ``high`` for a top-rank visitor (head of state/government, VP, foreign minister,
  intelligence chief) or a ``first_in`` phrase, ``critical`` for both, else ``medium``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sinks.merge import SEVERITY_RANK, absorb, article_ids_of, merge_links
from trucewatch.schema import Alert, AlertLink, Severity, Visit, alert_id, utcnow

MAX_LINKS = 200  # links kept per alert; corroborations still count every article

_TOP_RANK_EN = re.compile(
    r"\b(president|prime minister|vice president|king|emir|crown prince|foreign minister|secretary of state|"
    r"intelligence|cia director|mossad|head of state|chancellor)\b",
    re.IGNORECASE,
)
_TOP_RANK_AR = re.compile(r"(رئيس الوزراء|رئيس الحكومة|الرئيس|نائب الرئيس|الملك|الأمير|أمير|ولي العهد|"
                          r"وزير الخارجية|وزيرة الخارجية|المخابرات|الاستخبارات)")


@dataclass
class KeyState:
    """What the novelty table remembers about one visit key (JSON-serialisable via to_dict)."""

    key: str
    first_seen: datetime
    last_seen: datetime
    article_ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict for the Faust table."""
        return {"key": self.key, "first_seen": self.first_seen.isoformat(), "last_seen": self.last_seen.isoformat(),
                "article_ids": self.article_ids, "sources": self.sources}

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> KeyState:
        """Inverse of to_dict."""
        return cls(key=str(d["key"]), first_seen=datetime.fromisoformat(str(d["first_seen"])),
                   last_seen=datetime.fromisoformat(str(d["last_seen"])),
                   article_ids=list(d.get("article_ids") or []),  # type: ignore[call-overload]
                   sources=list(d.get("sources") or []))  # type: ignore[call-overload]


def is_top_rank(visit: Visit) -> bool:
    """True for heads of state/government, VPs, foreign ministers and intelligence chiefs."""
    if visit.role_en and _TOP_RANK_EN.search(visit.role_en):
        return not re.search(r"\b(adviser|advisor|spokes|deputy foreign)\b", visit.role_en, re.IGNORECASE)
    return bool(visit.role and _TOP_RANK_AR.search(visit.role))


def severity_for(visit: Visit) -> Severity:
    """medium; high for a top rank or a first_in phrase; critical for both."""
    top, first = is_top_rank(visit), bool(visit.first_in)
    if top and first:
        return "critical"
    if top or first:
        return "high"
    return "medium"


def visit_time(visit: Visit) -> datetime:
    """The event time of a visit report: published_at, else the article's fetched_at (as Article.event_time);
    now only for a report that carries neither."""
    return visit.published_at or visit.fetched_at or utcnow()


def headline(visit: Visit) -> str:
    """A one-line alert title: who → where."""
    who = visit.visitor or visit.role or visit.visitor_id
    role = f" ({visit.role})" if visit.visitor and visit.role else ""
    where = visit.destination_city or visit.destination_country or "?"
    if visit.destination_city and visit.destination_country:
        where = f"{visit.destination_city}, {visit.destination_country}"
    return f"{who}{role} → {where}"


def observe(state: KeyState | None, visit: Visit, window: timedelta) -> tuple[KeyState, Alert | None]:
    """Fold one visit report into the key's state; return the new state and the alert to emit.

    The alert is None when this exact article was already counted for the key (a redelivery).
    """
    t = visit_time(visit)
    if state is not None and t - state.last_seen > window:
        state = None  # a new episode of the same key
    if state is None:
        state = KeyState(key=visit.key, first_seen=t, last_seen=t)
        kind = "new_visit"
    else:
        if visit.article_id in state.article_ids:
            return state, None
        kind = "visit_update"
        state.first_seen = min(state.first_seen, t)
        state.last_seen = max(state.last_seen, t)
    state.article_ids.append(visit.article_id)
    if visit.source not in state.sources:
        state.sources.append(visit.source)
    return state, alert_for(visit, state, kind)


def observe_or_resend(state: KeyState | None, visit: Visit, window: timedelta) -> tuple[KeyState, Alert, bool]:
    """``observe``, except that a report the state already counted (a redelivery) gets its alert again instead of
    None: its first alert may have been lost (a worker killed after its state was saved but before the alert was
    sent). Same id, so the store merges it and makes no second notification. The bool is True for a new report."""
    state, alert = observe(state, visit, window)
    if alert is not None:
        return state, alert, True
    first = state.article_ids[:1] == [visit.article_id]
    return state, alert_for(visit, state, "new_visit" if first else "visit_update"), False


def roll_up(alerts: list[Alert]) -> Alert:
    """One alert for several alerts of one visit key, in arrival order: what the store holds after recording them
    one by one (``sinks.merge.absorb`` is associative: links and article ids unite, severity is the highest, title,
    summary and visit come from the earliest ``first_seen``, the first such on a tie). Kind ``visit_update`` if any
    of them is one (the store re-arms a sent notification for an update that brings new articles), else
    ``new_visit``. ``corroborations`` is the largest the key's state reported (the store recounts from the article
    ids it holds). Alerts from ``alert_for`` take a direct path (one copy instead of one per alert); others, with
    an empty title or summary or no visit, are folded with ``absorb`` itself."""
    if len(alerts) == 1:
        return alerts[0]
    kind = "visit_update" if any(a.kind == "visit_update" for a in alerts) else "new_visit"
    corroborations = max(a.corroborations for a in alerts)
    base = alerts[0]
    if not all(a.title and a.summary and a.visit is not None and a.last_seen is not None for a in alerts):
        out = base
        for other in alerts[1:]:
            out = absorb(out, other)
        return out.model_copy(update={"kind": kind, "corroborations": max(out.corroborations, corroborations)})
    first = base
    for a in alerts[1:]:
        if a.first_seen < first.first_seen:
            first = a
    ids = sorted({i for a in alerts for i in article_ids_of(a)})
    return base.model_copy(update={
        "kind": kind,
        "severity": max((a.severity for a in alerts), key=SEVERITY_RANK.__getitem__),
        "title": first.title,
        "summary": first.summary,
        "links": merge_links([link for a in alerts for link in a.links], []),
        "article_ids": ids,
        "labels": sorted({label for a in alerts for label in a.labels}),
        "visit": first.visit,
        "first_seen": first.first_seen,
        "last_seen": max(d for a in alerts for d in (a.first_seen, a.last_seen) if d is not None),
        "corroborations": max(len(ids), corroborations),
        "replay": all(a.replay for a in alerts),
        "created_at": min(a.created_at for a in alerts),
    })


_STATUS = {"arrived": "arrived", "upcoming": "upcoming visit", "ongoing": "visit under way"}
_IDS: dict[str, str] = {}  # visit key -> its alert id (a sha256 per report otherwise)
_IDS_MAX = 100_000


def _visit_alert_id(key: str) -> str:
    aid = _IDS.get(key)
    if aid is None:
        if len(_IDS) >= _IDS_MAX:
            _IDS.clear()
        aid = _IDS[key] = alert_id("new_visit", key)
    return aid


def alert_for(visit: Visit, state: KeyState, kind: str) -> Alert:
    """The Alert for one report of a visit, given the key's state after folding it in.

    Built with ``model_construct``: every field comes from the validated visit and state with its declared type
    (``kind`` is ``new_visit`` or ``visit_update``), so validating it again only cost time; the result is equal to
    and serialises as ``Alert(...)`` of the same fields (tests/processors/test_novelty.py).
    """
    summary = f"{_STATUS[visit.status]}; reported by {len(state.sources)} source(s)"
    if visit.first_in:
        summary = f"{visit.first_in} — {summary}"
    return Alert.model_construct(
        id=_visit_alert_id(visit.key),
        kind=kind,
        key=visit.key,
        severity=severity_for(visit),
        title=headline(visit),
        summary=summary,
        links=[AlertLink.model_construct(source=visit.source, url=visit.url, article_id=visit.article_id,
                                         title=visit.title, published_at=visit.published_at)],
        article_ids=[visit.article_id],
        visit=visit,
        first_seen=state.first_seen,
        last_seen=state.last_seen,
        corroborations=len(state.article_ids),
        replay=visit.replay,
        notify=visit.notify,
        labels=[],  # every field with a default_factory is given: model_construct inspects an absent one's
        created_at=utcnow(),  # factory's signature on every call (slower than validating)
    )


def evictable(state: KeyState, now_event_time: datetime, window: timedelta) -> bool:
    """True when the key's last report is older than the window at the given event time."""
    return now_event_time - state.last_seen > window
