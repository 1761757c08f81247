"""Story labels on the case files (hard negatives, spelling variants) and on odd input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from processors.classify import classify
from producers.files import article_from_record
from trucewatch.schema import Article

CASES = Path(__file__).parent / "cases"


def _cases(name: str) -> list[Any]:
    out = []
    for f in sorted(CASES.glob(f"{name}*.jsonl")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                rec = json.loads(line)
                out.append(pytest.param(rec, id=f"{f.name}:{n}:{rec['case']}"))
    return out


def _article(rec: dict[str, Any]) -> Article:
    return article_from_record({"id": rec["case"], "title": rec.get("title", ""), "text": rec["text"],
                                "date": rec.get("date")})


@pytest.mark.parametrize("case", _cases("labels"))
def test_label_cases(case: dict[str, Any]) -> None:
    labels = classify(_article(case))
    got = {k: getattr(labels, k).value for k in case["labels"]}
    assert got == case["labels"], {k: getattr(labels, k).evidence for k in case["labels"]}


def test_evidence_and_scores() -> None:
    labels = classify(Article(id="x", title="تمديد الهدنة في غزة", body="أعلن الوسطاء تمديد الهدنة يومين."))
    assert labels.ceasefire.value
    assert labels.ceasefire.score >= 1.0
    assert any("هدنة" in e for e in labels.ceasefire.evidence)
    assert not labels.aid.value and labels.aid.evidence == []


@pytest.mark.parametrize(
    "body",
    ["", "The ceasefire talks resumed in Cairo on Monday.", "\x00\x01\x02 هدنة \x7f", "ا" * 10,
     "وقف إطلاق النار " * 400_000, "\ufffd\ufffd غزة \ud800".encode("utf-8", "replace").decode("utf-8")],
    ids=["empty", "english", "controls", "one-letter", "5MB", "replacement-chars"],
)
def test_odd_text_never_raises(body: str) -> None:
    labels = classify(Article(id="odd", body=body))
    assert isinstance(labels.ceasefire.value, bool)
