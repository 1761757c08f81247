"""The foundation path on the real embedded broker: ingest → Faust worker → sinks → SQLite store."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.conftest import read_topic, wait_for
from trucewatch.schema import Article, DeadLetter

REPO = Path(__file__).resolve().parents[2]


def _visit_pairs(alerts: list) -> set[tuple[str | None, str | None]]:
    return {(a.visit.visitor_country, a.visit.destination_country) for a in alerts if a.visit}


def test_seed_articles_raise_the_headline_visit_alerts(pipeline) -> None:
    p = pipeline()
    assert p.publish([REPO / "examples" / "seeds.jsonl"]) == 5

    def headline_visits() -> bool:
        pairs = _visit_pairs(p.alerts(kind="new_visit"))
        return ("IL", "EG") in pairs and ("EG", "IL") in pairs

    try:
        wait_for(headline_visits, timeout=120)
    except BaseException:
        print(p.logs())
        raise
    alerts = p.alerts()
    # one alert per key: ids are unique and every alert names its key and articles
    assert len({a.id for a in alerts}) == len(alerts)
    assert all(a.key and a.article_ids for a in alerts)
    fm = next(a for a in alerts if a.visit and (a.visit.visitor_country, a.visit.destination_country) == ("IL", "EG"))
    assert fm.visit.first_in, "the Israeli FM visit is called a first in 13 years"
    assert fm.severity in {"high", "critical"}


def test_undecodable_messages_are_dead_lettered_and_the_stream_goes_on(pipeline) -> None:
    p = pipeline()
    good = Article(id="after-poison", source="test", title="وصول وزير الخارجية الأمريكي إلى القاهرة",
                   body="وصل وزير الخارجية الأمريكي إلى القاهرة اليوم في زيارة لبحث وقف إطلاق النار في غزة.")
    poison = [b"{not json", json.dumps({"id": "x", "version": 99}).encode(), b"\xff\xfe\x00bad utf8",
              json.dumps({"title": "no id"}).encode()]
    p.send_raw(poison + [good.to_bytes()])
    dead = read_topic(p.bootstrap, p.topics.deadletter, expect=len(poison), timeout=90)
    reasons = [DeadLetter.model_validate_json(r.value).reason for r in dead]
    assert len(reasons) == len(poison), reasons
    assert any("not JSON" in r for r in reasons)
    assert any("version" in r for r in reasons)
    assert any("UTF-8" in r for r in reasons)
    enriched = read_topic(p.bootstrap, p.topics.enriched, expect=1, timeout=60)
    assert [json.loads(r.value)["id"] for r in enriched] == ["after-poison"]
