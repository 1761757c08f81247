"""`trucewatch classify` output: the --jsonl record shape, the readable report and per-record errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from processors.report import run_classify


def test_jsonl_record_shape(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text(json.dumps({"id": "a1", "title": "وفد حماس يصل القاهرة", "text": "وصل وفد من حركة حماس إلى القاهرة "
                             "لبحث الهدنة ووقف إطلاق النار.", "date": "2025-03-07"}, ensure_ascii=False) + "\n",
                 encoding="utf-8")
    out = io.StringIO()
    assert run_classify([str(p)], jsonl=True, out=out) == 0
    rec = json.loads(out.getvalue())
    assert set(rec) == {"id", "labels", "scores", "evidence", "visits"}
    assert rec["labels"]["ceasefire"] is True
    assert set(rec["labels"]) == {"ceasefire", "mediation", "aid"}
    v = rec["visits"][0]
    assert set(v) == {"visitor", "visitor_id", "role", "role_en", "visitor_country", "destination_city",
                      "destination_country", "status", "first_in", "key", "evidence"}
    assert (v["visitor_country"], v["destination_country"], v["key"]) == ("PS", "EG", "ps-hamas>EG@2025-03")


def test_bad_records_are_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = tmp_path / "mixed.jsonl"
    p.write_bytes(b'{"id": "ok", "text": "\xd9\x87\xd8\xaf\xd9\x86\xd8\xa9"}\n'
                  b"not json\n"
                  b'{"id": "bad-utf8", "text": "\xff\xfe"}\n'
                  b'{"id": "empty", "text": ""}\n'
                  b'{"id": "ctl", "text": "\\u0000\\u0007 \xd9\x87"}\n')
    out = io.StringIO()
    assert run_classify([str(p)], jsonl=True, out=out) == 1
    ids = [json.loads(line)["id"] for line in out.getvalue().splitlines()]
    assert ids == ["ok", "empty", "ctl"]
    err = capsys.readouterr().err.splitlines()
    assert any(line.startswith(f"{p}:2: ") for line in err)
    assert any(line.startswith(f"{p}:3: ") and "UTF-8" in line for line in err)


def test_readable_report(tmp_path: Path) -> None:
    p = tmp_path / "story.txt"
    p.write_text("بلينكن يصل القاهرة\nوصل وزير الخارجية الأمريكي أنتوني بلينكن إلى القاهرة لبحث تثبيت وقف إطلاق النار "
                 "وتمديد الهدنة.\n",
                 encoding="utf-8")
    out = io.StringIO()
    assert run_classify([str(p)], jsonl=False, out=out) == 0
    text = out.getvalue()
    assert "story" in text and "ceasefire" in text and "visit" in text and "EG" in text and "[arrived]" in text


def test_missing_path(tmp_path: Path) -> None:
    assert run_classify([str(tmp_path / "nope.jsonl")], jsonl=True, out=io.StringIO()) == 2


def _records(tmp_path: Path, recs: list[dict[str, object]]) -> str:
    p = tmp_path / "batch.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), encoding="utf-8")
    return str(p)


_KERRY = "وصل وزير الخارجية الأمريكي جون كيري إلى القاهرة للمشاركة في مؤتمر إعادة إعمار غزة."


def test_an_undated_report_takes_the_key_of_the_same_trip_reported_with_a_date(tmp_path: Path) -> None:
    path = _records(tmp_path, [
        {"id": "undated", "text": _KERRY, "date": None},
        {"id": "other", "text": "قصف مدفعي على أطراف المدينة.", "date": "2014-10-13"},
        {"id": "dated", "text": _KERRY, "date": "2014-10-12"},
    ])
    out = io.StringIO()
    assert run_classify([path], jsonl=True, out=out) == 0
    recs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in recs] == ["other", "dated", "undated"]  # the undated one waits for the dated ones
    keys = {r["id"]: [v["key"] for v in r["visits"]] for r in recs}
    assert keys["dated"] == keys["undated"] == ["us-foreign-minister>EG@2014-10"]


def test_an_undated_report_stays_undated_when_the_trip_is_ambiguous_or_unknown(tmp_path: Path) -> None:
    path = _records(tmp_path, [
        {"id": "undated", "text": _KERRY, "date": None},
        {"id": "oct", "text": _KERRY, "date": "2014-10-12"},
        {"id": "nov", "text": _KERRY, "date": "2014-11-20"},
        {"id": "alone", "text": "وصل رئيس الوزراء القطري إلى القاهرة لبحث الهدنة في غزة.", "date": None},
    ])
    out = io.StringIO()
    assert run_classify([path], jsonl=True, out=out) == 0
    keys = {r["id"]: [v["key"] for v in r["visits"]] for r in map(json.loads, out.getvalue().splitlines())}
    assert keys["undated"] == ["us-foreign-minister>EG@undated"]  # two months: which trip is unknowable
    assert [k.rpartition("@")[2] for k in keys["alone"]] == ["undated"]


def test_an_undated_report_with_a_background_month_joins_the_dated_trip(tmp_path: Path) -> None:
    background = _KERRY + " وكان قد زار القاهرة في أغسطس 2007."
    path = _records(tmp_path, [
        {"id": "undated", "text": background, "date": None},
        {"id": "dated", "text": _KERRY, "date": "2014-10-12"},
        {"id": "alone", "text": background.replace("الأمريكي جون كيري", "الفرنسي"), "date": None},
    ])
    out = io.StringIO()
    assert run_classify([path], jsonl=True, out=out) == 0
    keys = {r["id"]: [v["key"] for v in r["visits"]] for r in map(json.loads, out.getvalue().splitlines())}
    assert keys["undated"] == keys["dated"] == ["us-foreign-minister>EG@2014-10"]
    assert keys["alone"] == ["fr-foreign-minister>EG@2007-08"]  # no dated report of that trip: the text's month


def test_an_undated_report_of_a_known_person_joins_his_dated_trip_when_his_office_is_ambiguous(tmp_path: Path) -> None:
    # two US envoys in Beirut in two months: the office "us-envoy>LB" is ambiguous, the person is not
    path = _records(tmp_path, [
        {"id": "undated", "text": "واصل المبعوث الأميركي عاموس هوكستين لقاءاته في بيروت.", "date": None},
        {"id": "hochstein", "text": "وصل المبعوث الأميركي عاموس هوكستين إلى بيروت.", "date": "2024-11-19"},
        {"id": "barrack", "text": "وصل المبعوث الأميركي توم باراك إلى بيروت.", "date": "2025-07-07"},
    ])
    out = io.StringIO()
    assert run_classify([path], jsonl=True, out=out) == 0
    keys = {r["id"]: [v["key"] for v in r["visits"]] for r in map(json.loads, out.getvalue().splitlines())}
    assert keys["barrack"] == ["us-envoy>LB@2025-07"]
    assert keys["undated"] == keys["hochstein"] == ["us-envoy>LB@2024-11"]
