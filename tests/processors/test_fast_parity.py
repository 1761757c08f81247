"""The C accelerator (processors/_fast.c) and the pure-Python analysis give the same sentences, tokens, stems,
junk lines and phrase hits. Skipped when the extension is not built (no compiler at install time)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors import analysis
from processors.analysis import JUNK_MARKERS, Doc, Hits, _analyse_py
from processors.knowledge import get_knowledge
from processors.normalize import Sentence
from processors.visits import extract_visits  # (registers the visit rules' word classes)

try:
    from processors import _fast  # type: ignore[attr-defined]
except ImportError:
    _fast = None

pytestmark = pytest.mark.skipif(
    _fast is None, reason="processors._fast is not built (no C compiler at install time): pure-Python path only")

REPO = Path(__file__).resolve().parents[2]


def _needs_c_analysis() -> None:
    if analysis._fast is None:
        pytest.skip("TRUCEWATCH_PURE_PYTHON is set: the analysis does not use the extension")


def _c(title: str, body: str) -> Doc | None:
    _needs_c_analysis()
    kn = get_knowledge()
    res = _fast.analyse_doc(title, body, kn.vocab._word_parts, kn.index1, kn.index2, kn.firsts, JUNK_MARKERS,
                            analysis.JUNK_LINE, analysis._END_WORD, analysis.Sentence)
    doc = None if res is None else Doc(*res)
    full = analysis._analyse_c(title, body, kn)  # as the analysis calls it: Hits with their index, second stems
    assert (doc is None) == (full is None)
    if doc is not None and full is not None:
        assert _plain(full) == _plain(doc)
        assert all(type(hs) is list for hs in doc.hits)
        assert all(type(hs) is Hits for hs in full.hits)
        assert [hs.by_kind for hs in full.hits] == [Hits(hs).by_kind for hs in doc.hits]  # type: ignore[attr-defined]
        assert [list(hs.by_kind) for hs in full.hits] == [list(Hits(hs).by_kind) for hs in doc.hits]  # type: ignore[attr-defined]
    return full


def _plain(doc: Doc) -> tuple[Any, ...]:
    return (doc.n_title, [(s.index, s.text, s.toks, s.stems) for s in doc.sentences], doc.hits)


def _bits_by_definition(s: Sentence) -> int:
    """A sentence's word classes from analysis.word_class's definition (any token / stem among the class's words)."""
    assert extract_visits is not None and analysis._CLASSES
    return sum(bit for (words, toks, stems), bit in analysis._CLASSES.items()
               if toks and not words.isdisjoint(s.toks) or stems and not words.isdisjoint(s.stems))


def _same(title: str, body: str) -> None:
    kn = get_knowledge()
    py = _analyse_py(title, body, kn)
    c = _c(title, body)
    if c is None:  # presentation forms: the C path declines, the caller uses Python
        assert any("\ufb50" <= ch <= "\ufefe" for ch in title + body)
        return
    assert _plain(c) == _plain(py)
    assert all(type(s) is analysis.Sentence for s in c.sentences)
    assert all(type(x) is int for s in c.sentences for x in (s.index,))
    assert [[type(h) for h in hs] for hs in c.hits] == [[tuple] * len(hs) for hs in c.hits]
    assert [hs.by_kind for hs in c.hits] == [hs.by_kind for hs in py.hits]  # type: ignore[attr-defined]
    # word classes: set by C from its word mirror, computed on first use in Python; both by the definition
    assert [s.bits for s in c.sentences] == [_bits_by_definition(s) for s in py.sentences]
    assert [s.bits for s in py.sentences] == [_bits_by_definition(s) for s in py.sentences]


def _dev_texts(shared_dir: Path) -> list[tuple[str, str]]:
    out = []
    for name in ("devset.jsonl", "seeds.jsonl"):
        p = shared_dir / "data" / name
        if p.exists():
            for line in p.read_text(encoding="utf-8").splitlines():
                r = json.loads(line)
                out.append((r.get("title") or "", r.get("text") or ""))
    return out


def test_dev_articles(shared_dir: Path) -> None:
    texts = _dev_texts(shared_dir)
    assert texts
    rnd = random.Random(8)
    for title, body in texts:
        _same(title, body)
        lines = body.split("\n")
        rnd.shuffle(lines)
        _same(body[:200], "\n".join(lines))
        _same("", body[: rnd.randint(0, len(body))])
        _same(title, body.replace(".", "؛").replace("\n", "\r\n"))


def test_odd_inputs() -> None:
    for t in ("", " ", "\n", "...", "؟؟", "- * •", "Hello. World!", "\x00\x01 \x1f\x7f\x85", "\u200b\u200f",
              "ـــ", "١٢٣ ۴۵۶", "İstanbul Σ ς", "ﻫﺪﻧﺔ في غزة", "هُدْنَةٌ", "و" * 500, "a" * 3000,
              "اقرأ أيضا\nمقال قصير\nنهاية", "مواضيع قد تهمك نهاية\nوصل الوزير",
              "هدنة،وقف-إطلاق-النار،حماس" * 20,  # (one word of more than 64 tokens: the mirror's masks stop at 64)
              # junk markers, also inside words and cut short
              "وتابعونا\nقصير\nالأكثر قراءةً اليوم\nخبر\nمواضيع ذات صلة.\nأخبار ذات صل\nكلمات دلالية نهاية"):
        _same(t, t)
        _same("", t)


ARABIC = [chr(c) for c in range(0x0621, 0x064B)]
FRAGMENTS = [
    "و", "ف", "ب", "ل", "ك", "ال", "لل", "وال", "بال", "ها", "هم", "ات", "ة", "ى", "أ", "إ", "آ", "ئ", "ؤ",
    "هدنة", "وقف إطلاق النار", "وزير الخارجية", "المصري", "القاهرة", "وصل", "زيارة", "مساعدات", "حماس", "«", "»",
    "اقرأ أيضا", "نهاية", "رئيس", "الوساطة", "غزة", "إسرائيل", "الأمريكي", "المبعوث", "ويتكوف",
    " ", " ", " ", "  ", "\n", "\r", "\t", "\u00a0", "\u2028", "\u202f", ".", "،", "؛", "؟", "!", "?", ";", ":", "…",
    ",", "-", '"', "'", "•", "*", "(", ")", "0", "7", "2025", "٣", "۴", "\u064e", "\u0651", "\u0640", "\u200c",
    "\x00", "\x0b", "\x1c", "\x85", "a", "Z", "ﻫ", "ﻻ",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.sampled_from(ARABIC)), max_size=60),
       st.lists(st.sampled_from(FRAGMENTS), max_size=8))
def test_generated_strings(body: list[str], title: list[str]) -> None:
    _same("".join(title), "".join(body))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_scan_parity(data: st.DataObject) -> None:
    kn = get_knowledge()
    phrases = sorted({ph for lst in kn.index.values() for ph, _k, _p in lst})
    words = sorted({w for ph in phrases for w in ph})
    parts = data.draw(st.lists(st.one_of(st.sampled_from(phrases).map(list),
                                         st.sampled_from(words).map(lambda w: [w]),
                                         st.sampled_from(["x", ",", ".", "و", "في"]).map(lambda w: [w])),
                               max_size=30))
    stems = [w for p in parts for w in p]
    assert _fast.scan(stems, kn.index1, kn.index2, kn.firsts) == kn.scan(stems)


def test_pure_python_switch() -> None:
    code = "import processors.analysis as a; print(a._fast is None)"
    env = dict(os.environ, TRUCEWATCH_PURE_PYTHON="1", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    env["TRUCEWATCH_PURE_PYTHON"] = "0"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_word_cache_follows_the_memo() -> None:
    """The C mirror of the word memo is dropped when the vocabulary changes or another Knowledge is used."""
    from processors.knowledge import load_knowledge

    _needs_c_analysis()
    kn, k2 = get_knowledge(), load_knowledge()
    text = "وصل الوزير بالقرطاسية إلى الدوحة"
    first = analysis._analyse_c("", text, k2)
    assert first is not None and _plain(first) == _plain(_analyse_py("", text, k2))
    k2.vocab.add("قرطاسيه")  # "بالقرطاسية" now stems to a vocabulary word
    c = analysis._analyse_c("", text, k2)
    assert c is not None and "قرطاسيه" in c.sentences[0].stems
    assert _plain(c) == _plain(_analyse_py("", text, k2))
    other = analysis._analyse_c("", text, kn)
    assert other is not None and _plain(other) == _plain(_analyse_py("", text, kn))


def test_hit_views_parity() -> None:
    """The C of_kind/of_kinds read a Hits' index like the Python functions, and hand anything else to them."""
    hits = [(0, 1, "place", "a"), (1, 2, "trig", "noun"), (2, 3, "place", "b"), (3, 4, "off", ("x", "full"))]
    if analysis.of_kind is analysis._of_kind_py:
        pytest.skip("the C views are not bound (TRUCEWATCH_PURE_PYTHON or an older build)")
    for hs in (Hits(hits), list(hits), Hits(), []):
        for kinds in (("place",), ("trig",), ("nope",), ("place", "trig"), ("off", "nope"), (), ("nope", "trig")):
            if len(kinds) == 1:
                assert analysis.of_kind(hs, kinds[0]) == analysis._of_kind_py(hs, kinds[0])
                assert type(analysis.of_kind(hs, kinds[0])) is type(analysis._of_kind_py(hs, kinds[0]))
            got, want = analysis.of_kinds(hs, *kinds), analysis._of_kinds_py(hs, *kinds)
            assert got == want and type(got) is type(want)
            assert (got is hs) == (want is hs)
    with pytest.raises(TypeError):
        analysis.of_kind(Hits(hits))


def test_word_layout_parity(shared_dir: Path) -> None:
    """normalize.TokenChars reads a sentence's words, their token totals and where they start from C: the same as
    text.split(), the running totals over the memo and the pattern it used before."""
    import re
    from itertools import accumulate

    from processors import normalize

    texts = [s for title, body in _dev_texts(shared_dir) for s in normalize.split_sentences(title + "\n" + body)]
    texts += ["", " ", "  a  b ", "\u00a0وصل\u2003الوزير\u3000 ", "x\u1680y\u205fz", "İstanbul", "و" * 300,
              "هدنة،وقف-إطلاق-النار " * 30]
    for t in texts:
        words, ends, starts = _fast.word_layout(t, normalize._WORD_CHARS)
        assert words == t.split()
        assert ends == list(accumulate(map(len, map(normalize._WORD_CHARS.__getitem__, words))))
        assert starts == [re.compile(r"\s*(?:\S+\s+){%d}" % j).match(t).end() for j in range(len(words))]  # type: ignore[union-attr]
