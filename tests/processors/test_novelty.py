"""Unit tests of the pure novelty rules: ids, first_seen, redelivery, episodes and severity, in any order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from processors.novelty import KeyState, evictable, observe, observe_or_resend, roll_up, severity_for
from trucewatch.schema import Visit, alert_id

WINDOW = timedelta(days=7)
T0 = datetime(2025, 10, 5, 9, 0, tzinfo=UTC)


def visit(article: str, hours: float = 0.0, key: str = "ps-hamas>EG@2025-10", **kw: object) -> Visit:
    fields: dict[str, object] = dict(visitor_id="ps-hamas", key=key, article_id=article, source=f"src-{article}",
                                     published_at=T0 + timedelta(hours=hours), destination_country="EG")
    fields.update(kw)
    return Visit(**fields)  # type: ignore[arg-type]


def fold(visits: list[Visit]) -> tuple[KeyState | None, list]:
    state, alerts = None, []
    for v in visits:
        state, alert = observe(state, v, WINDOW)
        if alert is not None:
            alerts.append(alert)
    return state, alerts


def test_every_arrival_order_gives_the_same_id_first_seen_and_count() -> None:
    reports = [visit("a", 0), visit("b", 5), visit("c", 30), visit("d", 50)]
    outcomes = set()
    for perm in itertools.permutations(reports):
        state, alerts = fold(list(perm))
        assert {a.id for a in alerts} == {alert_id("new_visit", "ps-hamas>EG@2025-10")}
        assert [a.kind for a in alerts].count("new_visit") == 1 and alerts[0].kind == "new_visit"
        assert alerts[-1].corroborations == 4
        outcomes.add((state.first_seen, state.last_seen, tuple(sorted(state.article_ids))))
    assert outcomes == {(T0, T0 + timedelta(hours=50), ("a", "b", "c", "d"))}


def test_a_redelivered_report_raises_nothing_and_changes_nothing() -> None:
    state, alerts = fold([visit("a"), visit("b", 2)])
    again, alert = observe(state, visit("a"), WINDOW)
    assert alert is None
    assert again.article_ids == ["a", "b"] and len(alerts) == 2


def test_a_report_after_the_window_starts_a_new_episode_of_the_same_alert() -> None:
    state, alerts = fold([visit("a"), visit("b", 24 * 8)])
    assert [a.kind for a in alerts] == ["new_visit", "new_visit"]
    assert len({a.id for a in alerts}) == 1  # the store merges episodes: ids never depend on the episode
    assert state.first_seen == T0 + timedelta(hours=24 * 8)
    assert evictable(state, T0 + timedelta(days=16), WINDOW)
    assert not evictable(state, T0 + timedelta(days=14), WINDOW)


def test_within_the_window_reports_chain_into_one_episode() -> None:
    _, alerts = fold([visit("a"), visit("b", 24 * 6), visit("c", 24 * 12)])
    assert [a.kind for a in alerts] == ["new_visit", "visit_update", "visit_update"]


def test_event_time_of_an_undated_report_is_its_fetch_time() -> None:
    fetched = datetime(2024, 1, 2, tzinfo=UTC)
    state, alerts = fold([visit("a", published_at=None, fetched_at=fetched)])
    assert state.first_seen == fetched and alerts[0].first_seen == fetched


def test_severity_rises_with_rank_and_a_first_in_phrase() -> None:
    plain = visit("a", role="وفد حماس", role_en="Hamas delegation")
    top = visit("b", role="وزير الخارجية الإسرائيلي", role_en="Foreign Minister")
    first = visit("c", role_en="envoy", first_in="الأولى منذ 13 عاما")
    both = visit("d", role_en="Intelligence chief", first_in="الأولى من نوعها")
    assert [severity_for(v) for v in (plain, top, first, both)] == ["medium", "high", "high", "critical"]
    assert severity_for(visit("e", role_en="Deputy Foreign Minister")) == "medium"
    _, alerts = fold([both])
    assert alerts[0].severity == "critical"


def test_a_redelivered_report_gets_its_alert_again_from_observe_or_resend() -> None:
    state, _ = fold([visit("a"), visit("b", 2)])
    again, alert, counted = observe_or_resend(state, visit("b", 2), WINDOW)
    assert not counted and again.article_ids == ["a", "b"]
    assert alert.kind == "visit_update" and alert.article_ids == ["b"] and alert.id == alert_id("new_visit", state.key)
    _, first, counted = observe_or_resend(state, visit("a"), WINDOW)
    assert not counted and first.kind == "new_visit"
    _, fresh, counted = observe_or_resend(state, visit("c", 3), WINDOW)
    assert counted and fresh.kind == "visit_update" and fresh.corroborations == 3


def _stored(alerts: list, rollup: float = 0.0) -> tuple:
    """What a store holds after recording ``alerts`` (one by one) on a Slack channel: alert docs and outbox rows."""
    from sinks.store import open_store

    st = open_store("sqlite:///:memory:")
    try:
        for a in alerts:
            st.record(a, ["slack"], rollup_seconds=rollup)
        docs = [a.model_dump(exclude={"created_at"}) for a in st.list_alerts(limit=100)]
        return docs, [(o.alert_id, o.channel, o.state, o.revision) for o in st.outbox()]
    finally:
        st.close()


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_a_rolled_up_batch_stores_exactly_what_its_alerts_one_by_one_store(order: int) -> None:
    reports = [visit("a", 5, role_en="envoy"), visit("b", 0, role_en="Foreign Minister"), visit("c", 30),
               visit("a", 5), visit("d", 24 * 9), visit("e", 24 * 9.5, first_in="الأولى منذ 13 عاما")]
    reports = reports[order:] + reports[:order]
    state, alerts = None, []
    for v in reports:
        state, alert, _ = observe_or_resend(state, v, WINDOW)
        alerts.append(alert)
    for cut in range(1, len(alerts)):  # every split into a batch before and a batch after
        batches = [alerts[:cut], alerts[cut:]]
        rolled = [roll_up(b) for b in batches]
        assert _stored(rolled) == _stored(alerts)
        assert rolled[-1].corroborations >= max(a.corroborations for a in alerts[cut:])
    assert _stored([roll_up(alerts)]) == _stored(alerts)
    assert roll_up(alerts[:1]) is alerts[0]


def test_roll_up_equals_folding_the_alerts_with_the_stores_merge() -> None:
    import functools
    import random

    from sinks.merge import absorb

    rnd = random.Random(3)
    for _ in range(200):
        reports = [visit(f"a{rnd.randrange(8)}", rnd.uniform(0, 24 * 10), role_en=rnd.choice(["envoy", "King"]),
                         first_in=rnd.choice([None, "الأولى"]), source=f"s{rnd.randrange(3)}")
                   for _ in range(rnd.randrange(2, 9))]
        state, alerts = None, []
        for v in reports:
            state, alert, _ = observe_or_resend(state, v, WINDOW)
            alerts.append(alert)
        folded = functools.reduce(absorb, alerts)
        rolled = roll_up(alerts)
        assert rolled.model_dump(exclude={"kind", "corroborations"}) == folded.model_dump(
            exclude={"kind", "corroborations"})
        assert rolled.kind == ("visit_update" if any(a.kind == "visit_update" for a in alerts) else "new_visit")
        assert rolled.corroborations == max(folded.corroborations, *(a.corroborations for a in alerts))


@pytest.mark.parametrize("kw", [{}, {"first_in": "first visit in 13 years", "role_en": "Foreign Minister"},
                                {"status": "upcoming", "url": "https://x/a", "title": "t", "replay": True},
                                {"published_at": None, "fetched_at": T0, "notify": False}])
def test_alert_for_builds_the_same_alert_as_validating_its_fields(kw: dict[str, object]) -> None:
    from processors.novelty import alert_for
    from trucewatch.schema import Alert

    v = visit("a", **kw)
    state, _ = observe(None, v, WINDOW)
    state, _ = observe(state, visit("b", 2), WINDOW)
    for kind in ("new_visit", "visit_update"):
        built = alert_for(v, state, kind)
        validated = Alert.model_validate(built.model_dump())
        assert built == validated
        assert built.to_bytes() == validated.to_bytes() == validated.model_dump_json().encode("utf-8")
        assert built.id == alert_id("new_visit", v.key)
