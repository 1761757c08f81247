"""Visit extraction on the case files: roles without names, hosts, calls, tours, keys and dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from processors.visits import date_bucket, extract_visits
from producers.files import article_from_record
from trucewatch.schema import Article

CASES = Path(__file__).parent / "cases"


def _cases() -> list[Any]:
    out = []
    for f in sorted(CASES.glob("visits*.jsonl")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                rec = json.loads(line)
                out.append(pytest.param(rec, id=f"{f.name}:{n}:{rec['case']}"))
    return out


def _article(rec: dict[str, Any], **over: Any) -> Article:
    base = {"id": rec["case"], "title": rec.get("title", ""), "text": rec["text"], "date": rec.get("date"),
            "source": "test", "url": f"https://example.org/{rec['case']}"}
    base.update(over)
    return article_from_record(base)


def _none_first(pair: tuple[str | None, str | None]) -> tuple[str, str]:
    return (pair[0] or "", pair[1] or "")  # international officials have no visitor country


@pytest.mark.parametrize("case", _cases())
def test_visit_cases(case: dict[str, Any]) -> None:
    art = _article(case)
    visits = extract_visits(art)
    got = sorted(((v.visitor_country, v.destination_country) for v in visits), key=_none_first)
    want = sorted(((v["visitor_country"], v["destination_country"]) for v in case["visits"]), key=_none_first)
    assert got == want, [v.evidence for v in visits]
    for exp in case["visits"]:
        v = next(x for x in visits if (x.visitor_country, x.destination_country)
                 == (exp["visitor_country"], exp["destination_country"])
                 and x.role_en == exp.get("role_en", x.role_en))
        if "key" in exp:
            assert v.key == exp["key"]
        if "identity" in exp:
            assert v.key.startswith(exp["identity"] + ">"), v.key
        if "destination_city" in exp:
            assert v.destination_city == exp["destination_city"]
        if "status" in exp:
            assert v.status == exp["status"]
        if "visitor_contains" in exp:
            assert exp["visitor_contains"] in (v.visitor or "")
        if "first_in_contains" in exp:
            assert exp["first_in_contains"] in (v.first_in or "")
        if "key_prefix" in exp:  # every visit of these countries (companions must not take another country's key)
            same = [x for x in visits if (x.visitor_country, x.destination_country)
                    == (exp["visitor_country"], exp["destination_country"])]
            assert all(x.key.startswith(exp["key_prefix"]) for x in same), [x.key for x in same]
        if "key_suffix" in exp:
            assert v.key.endswith(exp["key_suffix"]), v.key
        assert v.article_id == art.id and v.source == "test" and v.url == art.url and v.evidence


def test_same_trip_same_key_across_outlets() -> None:
    a = Article(id="a", source="one", published_at=datetime(2025, 10, 21, 9, tzinfo=UTC),
                body="وصل رئيس المخابرات المصرية اللواء حسن رشاد إلى القدس اليوم الثلاثاء.")
    b = Article(id="b", source="two", published_at=datetime(2025, 10, 22, 7, tzinfo=UTC),
                body="زار رئيس جهاز المخابرات العامة المصرية إسرائيل أمس والتقى نتنياهو.")
    ka, kb = extract_visits(a)[0].key, extract_visits(b)[0].key
    assert ka == kb


def test_keys_are_deterministic_and_ignore_wall_clock() -> None:
    body = "يصل وزير الخارجية الأمريكي إلى الدوحة غدا."
    a = Article(id="a", body=body, fetched_at=datetime(2020, 1, 1, tzinfo=UTC))
    b = Article(id="a", body=body, fetched_at=datetime(2030, 1, 1, tzinfo=UTC))
    assert [v.key for v in extract_visits(a)] == [v.key for v in extract_visits(b)]
    assert extract_visits(a)[0].key.endswith("@undated")


@pytest.mark.parametrize(
    ("published", "text", "bucket"),
    [
        (datetime(2024, 6, 10, 23, tzinfo=UTC), "", "2024-06"),
        (None, "في الأيام الأولى من 2025، بين السادس من يناير والثامن منه", "2025-01"),
        (None, "في وقت سابق من مايو/ أيار 2021 ثم في يونيو 2021", "2021-06"),
        (None, "خلال عام 2019", "2019"),
        (None, "بلا تاريخ", "undated"),
    ],
)
def test_date_bucket(published: datetime | None, text: str, bucket: str) -> None:
    assert date_bucket(Article(id="x", body=text, published_at=published)) == bucket


@pytest.mark.parametrize(
    "body", ["", "Blinken arrived in Cairo.", "وصل " * 300_000, "\x00وصل\x01 الوزير إلى\x7f"],
    ids=["empty", "english", "huge", "controls"],
)
def test_odd_text_never_raises(body: str) -> None:
    assert isinstance(extract_visits(Article(id="odd", body=body)), list)


def test_the_stream_keys_an_undated_article_by_its_fetch_month() -> None:
    body = "وصل وزير الخارجية الأمريكي إلى الدوحة في زيارة تستمر يومين. وكان قد زارها في مارس 2021."
    a = Article(id="a", body=body, fetched_at=datetime(2025, 1, 12, 8, tzinfo=UTC))
    dated = Article(id="b", body=body, published_at=datetime(2025, 1, 11, 20, tzinfo=UTC))
    stream = extract_visits(a, fetch_time_bucket=True)[0].key
    assert stream == extract_visits(dated, fetch_time_bucket=True)[0].key == "us-foreign-minister>QA@2025-01"
    assert extract_visits(a)[0].key == "us-foreign-minister>QA@2021-03"  # the CLI: a date written in the text


@pytest.mark.parametrize(
    ("published", "body", "key"),
    [
        # Monday 30 November: "tomorrow, Tuesday" is 1 December
        (datetime(2026, 11, 30, 9, tzinfo=UTC), "يتوجه رئيس الوزراء القطري غداً الثلاثاء إلى واشنطن.",
         "qa-prime-minister>US@2026-12"),
        # a weekday named for a trip to come: the next such day
        (datetime(2026, 11, 29, 9, tzinfo=UTC), "يصل وزير الخارجية التركي إلى الدوحة يوم الثلاثاء.",
         "tr-foreign-minister>QA@2026-12"),
        # "yesterday" in a report of 1 March
        (datetime(2025, 3, 1, 9, tzinfo=UTC), "وصل وزير الخارجية التركي إلى الدوحة أمس.",
         "tr-foreign-minister>QA@2025-02"),
        # a weekday alone on a reported arrival: the article's month
        (datetime(2025, 1, 5, 9, tzinfo=UTC), "وصل وزير الخارجية التركي إلى الدوحة الاثنين.",
         "tr-foreign-minister>QA@2025-01"),
    ],
    ids=["tomorrow-across-month-end", "weekday-ahead", "yesterday-across-month-start", "weekday-past-stays"],
)
def test_a_trip_named_by_a_day_near_a_month_end_takes_that_days_month(published: datetime, body: str,
                                                                        key: str) -> None:
    assert [v.key for v in extract_visits(Article(id="x", body=body, published_at=published))] == [key]


def test_written_out_inits_take_the_dataclass_fields() -> None:
    """Mention and _Found write their __init__ out (so that mypyc compiles it): the same fields, order, defaults."""
    import dataclasses
    import importlib.util
    import inspect
    import sys

    spec = importlib.util.spec_from_file_location("_visits_source", Path(__file__).parents[2] / "processors/visits.py")
    assert spec is not None and spec.loader is not None
    src = importlib.util.module_from_spec(spec)  # the Python classes, whatever build is in use
    sys.modules[spec.name] = src  # (dataclasses reads the module of the class)
    try:
        spec.loader.exec_module(src)
    finally:
        del sys.modules[spec.name]
    for cls in (src.Mention, src._Found):
        params = list(inspect.signature(cls.__init__).parameters.values())[1:]
        fields = dataclasses.fields(cls)
        assert [p.name for p in params] == [f.name for f in fields]
        for p, f in zip(params, fields, strict=True):
            if f.default is not dataclasses.MISSING:
                assert p.default == f.default, f.name
            elif f.default_factory is not dataclasses.MISSING:
                assert p.default is None, f.name  # (the __init__ makes a fresh one)
                assert getattr(cls(*[None] * sum(x.default is inspect.Parameter.empty for x in params)), f.name) \
                    == f.default_factory()
            else:
                assert p.default is inspect.Parameter.empty, f.name


def test_date_patterns_match_as_their_plain_forms() -> None:
    """date_bucket's year and month patterns are written for speed; they find what the plain forms find."""
    import random
    import re

    import processors.visits as v

    year = re.compile(r"(?<!\d)(19[5-9]\d|20[0-4]\d)(?!\d)")
    month = re.compile("(" + "|".join(v._MONTH_NAMES) + ")")
    numdate = v._NUMDATE_RE
    rnd = random.Random(7)
    frags = [*v._MONTH_NAMES, "2024", "1999", "2049", "2050", "1949", "12", "3", "/", "-", ".", " ", "١٩٩٥", "ا", "ب",
             "ال", "كتاب", "0", "9", "x", "2025-01-09", "9/1/2025", "1.2.2000"]
    for _ in range(3000):
        t = "".join(rnd.choice(frags) for _ in range(rnd.randint(0, 30)))
        for plain, fast in ((year, v._YEAR_RE), (month, v._MONTH_RE)):
            assert [(m.start(), m.group(1)) for m in plain.finditer(t)] \
                == [(m.start(), m.group(1)) for m in fast.finditer(t)], t
        assert bool(v._NUMDATE_CUE.search(t)) or not numdate.search(t), t
