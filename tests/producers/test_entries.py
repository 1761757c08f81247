"""Entry -> Article: canonical URLs, ids, clean text, dates; the fixture feeds as data-driven cases."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from producers.entries import (
    canonical_url,
    clean_text,
    entry_date,
    entry_key,
    entry_to_article,
    parse_arabic_date,
)
from producers.feedconfig import FeedConfig
from producers.feeds import parse_document
from trucewatch.schema import article_id

REPO = Path(__file__).resolve().parent.parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "feeds"
CASES = yaml.safe_load((FIXTURES / "cases.yaml").read_text(encoding="utf-8"))
SEED_TITLES = [json.loads(line)["title"] for line in (REPO / "examples" / "seeds.jsonl").open(encoding="utf-8")]
FETCHED = datetime(2026, 1, 1, tzinfo=UTC)
ARABIC = re.compile(r"[\u0600-\u06ff]")
MOJIBAKE = re.compile(r"[ÃÇÈÙØ][\x80-\xff]|Ø|Ù|Ú")


def _feed(**kw: Any) -> FeedConfig:
    return FeedConfig(name=kw.pop("name", "fixture"), url=kw.pop("url", "https://fixture.example.com/rss"),
                      source=kw.pop("source", "fixture"), **kw)


def _articles(case: dict[str, Any]) -> tuple[Any, list[Any]]:
    f = _feed(**case.get("feed", {}))
    body = (FIXTURES / case["file"]).read_bytes()
    parsed = parse_document(body, {"Content-Type": case["content_type"]}, f, f.url)
    arts = [entry_to_article(e, f, fetched_at=FETCHED, feed_meta=parsed.meta) for e in parsed.entries]
    assert [entry_key(e, f) for e in parsed.entries] == [a.id for a in arts]  # the cheap id is the same id
    return parsed, arts


@pytest.mark.parametrize("case", CASES, ids=[c.get("id") or c["file"] for c in CASES])
def test_fixture_feed(case: dict[str, Any]) -> None:
    parsed, arts = _articles(case)
    exp = case["expect"]
    assert parsed.version == exp["version"]
    assert parsed.warning is None
    assert [a.title for a in arts] == [SEED_TITLES[i] for i in exp["titles"]]
    if "urls" in exp:
        assert [a.url for a in arts] == exp["urls"]
    if "published" in exp:
        assert [a.published_at.isoformat() if a.published_at else None for a in arts] == exp["published"]
    if "ttl" in exp:
        assert parsed.ttl == exp["ttl"]
    empty = set(exp.get("empty_summary", []))
    for i, a in enumerate(arts):
        assert a.source == "fixture" and a.lang == "ar"
        assert ARABIC.search(a.title) and not MOJIBAKE.search(a.title + a.summary)
        assert "<" not in a.summary and "&lt;" not in a.summary and "alert(1)" not in a.summary
        assert (a.summary == "") == (i in empty), a.summary
        if a.summary:
            assert ARABIC.search(a.summary)
    assert len({a.id for a in arts}) == len(arts)


@pytest.mark.parametrize("name", ["bbc-urdu-2014-atom.xml", "voa-urdu-2014-rss.xml"])
def test_real_rtl_feeds_yield_every_entry_intact(shared_dir: Path, name: str) -> None:
    path = shared_dir / "fixtures" / "feeds" / "non-arabic-rtl" / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the real RTL feeds are read in place from ../shared, never copied")
    import feedparser

    raw = path.read_bytes()
    reference = feedparser.parse(raw)  # feedparser alone, on the untouched bytes
    f = _feed(lang="ur", url="https://www.bbc.co.uk/urdu/index.xml")
    parsed = parse_document(raw, {}, f, f.url)
    arts = [entry_to_article(e, f, fetched_at=FETCHED, feed_meta=parsed.meta) for e in parsed.entries]
    expected = {"bbc-urdu-2014-atom.xml": 53, "voa-urdu-2014-rss.xml": 20}[name]
    assert len(reference.entries) == expected and len(arts) == expected
    assert len({a.id for a in arts}) == expected
    for art, ref in zip(arts, reference.entries, strict=True):
        assert art.title == clean_text(ref.title) and ARABIC.search(art.title)
        assert art.summary == clean_text(ref.summary) and ARABIC.search(art.summary)
        assert art.url == canonical_url(ref.link)
        assert art.lang == "ur"
        assert art.published_at is not None and art.published_at.year in (2011, 2013, 2014)


@pytest.mark.parametrize(("url", "expected"), [
    ("https://a.example/x?utm_source=rss&utm_medium=feed&id=3#frag", "https://a.example/x?id=3"),
    ("HTTPS://A.Example:443/x?fbclid=1&gclid=2&msclkid=3", "https://a.example/x"),
    ("http://a.example:80/x?b=2&a=1", "http://a.example/x?b=2&a=1"),
    ("http://a.example:8080/x", "http://a.example:8080/x"),
    ("https://a.example", "https://a.example/"),
    ("https://a.example/%D8%B1%D9%8A%D8%A7%D8%B6%D8%A9/?at_medium=RSS&at_campaign=x", "https://a.example/%D8%B1%D9%8A%D8%A7%D8%B6%D8%A9/"),
    ("/relative/1?utm_term=x", "https://base.example/relative/1"),
    ("javascript:alert(1)", None),
    ("", None),
    (None, None),
])
def test_canonical_url(url: str | None, expected: str | None) -> None:
    assert canonical_url(url, "https://base.example/feed") == expected


def test_id_ignores_tracking_parameters_and_guids() -> None:
    f = _feed()
    a = entry_to_article({"title": "خبر", "link": "https://a.example/1?utm_source=x", "id": "guid-1"}, f,
                         fetched_at=FETCHED)
    b = entry_to_article({"title": "خبر", "link": "https://a.example/1#c", "id": "guid-2"}, f, fetched_at=FETCHED)
    assert a is not None and b is not None and a.id == b.id == article_id(url="https://a.example/1")
    c = entry_to_article({"title": "خبر", "id": "guid-9"}, f, fetched_at=FETCHED)
    assert c is not None and c.url is None and c.id == article_id(source="fixture", guid="guid-9")
    assert entry_to_article({}, f, fetched_at=FETCHED) is None


def test_clean_text() -> None:
    html = "<p dir=rtl align=right>وقف&nbsp;إطلاق <b>النار</b></p><script>x()</script><br/>&amp; المساعدات"
    assert clean_text(html) == "وقف إطلاق النار\n& المساعدات"
    assert clean_text("  plain\t text  ") == "plain text"
    assert clean_text(None) == "" and clean_text("a\x00b") == "ab"
    assert clean_text("<p>" + "ن" * 50 + "</p>", limit=10) == "ن" * 10


@pytest.mark.parametrize(("text", "iso"), [
    ("الخميس، 24 سبتمبر 2026 01:00 م", "2026-09-24T13:00:00+00:00"),
    ("الخميس، 24 سبتمبر 2026 12:30 ص", "2026-09-24T00:30:00+00:00"),
    ("٣٠ مايو ٢٠٢١ ١٠:١٥ ص", "2021-05-30T10:15:00+00:00"),
    ("21 تشرين الأول 2025 - 18:40", "2025-10-21T18:40:00+00:00"),
    ("3 آب 2024", "2024-08-03T00:00:00+00:00"),
    ("السبت 2 نوفمبر 2024 01:00 م GMT+2", "2024-11-02T11:00:00+00:00"),
])
def test_parse_arabic_date(text: str, iso: str) -> None:
    dt = parse_arabic_date(text)
    assert dt is not None and dt.isoformat() == iso


def test_parse_arabic_date_rejects_garbage() -> None:
    assert parse_arabic_date("غدا") is None
    assert parse_arabic_date("31 فبراير 2024") is None


def test_wrong_timezone_correction_and_fallback_and_clamp() -> None:
    import time

    entry = {"published": "Thu, 24 Sep 2026 13:00:00 +0000", "published_parsed": time.gmtime(1790254800)}
    assert entry_date(entry, _feed()) == datetime(2026, 9, 24, 13, tzinfo=UTC)
    assert entry_date(entry, _feed(tz_correction_hours=-3)) == datetime(2026, 9, 24, 10, tzinfo=UTC)
    naive = {"published": "Thu, 24 Sep 2026 13:00:00", "published_parsed": time.gmtime(1790254800)}
    assert entry_date(naive, _feed(timezone="Asia/Riyadh")) == datetime(2026, 9, 24, 10, tzinfo=UTC)
    art = entry_to_article({"title": "خبر", "link": "https://a.example/1"}, _feed(), fetched_at=FETCHED)
    assert art is not None and art.published_at is None and art.event_time == FETCHED
    future = {"title": "خبر", "link": "https://a.example/2", "published": "Fri, 01 Jan 2100 00:00:00 GMT",
              "published_parsed": time.gmtime(4102444800)}
    art2 = entry_to_article(future, _feed(), fetched_at=FETCHED)
    assert art2 is not None and art2.published_at == FETCHED
