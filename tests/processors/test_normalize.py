"""Arabic normalisation, sentence splitting and particle-aware stemming."""

from __future__ import annotations

import pytest

from processors.normalize import Vocab, analyse, normalize, phrase_stems, split_sentences


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("الهُدْنَة", "الهدنه"),  # diacritics, ta marbuta
        ("غـــزة", "غزه"),  # tatweel
        ("أإآٱا", "ااااا"),  # alef forms
        ("مستشفى", "مستشفي"),  # alef maqsura
        ("إسرائيل", "اسراييل"),  # hamza on ya
        ("٤٨ ساعة ۱۲", "48 ساعه 12"),  # Arabic-Indic and extended digits
        ("«قال»، نعم؛ لا؟", '"قال", نعم; لا?'),  # punctuation variants
        ("a\x00b\x07c", "a b c"),  # control characters
        ("\u200fنص\u200e", "نص"),  # bidi marks
        ("ﻏﺰﺓ", "غزه"),  # presentation forms
        ("", ""),
    ],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize(raw) == norm


def test_split_sentences() -> None:
    text = "وصل الوزير إلى القاهرة. والتقى الرئيس!\nثم غادر؟ بعد ذلك"
    assert split_sentences(text) == ["وصل الوزير إلى القاهرة.", "والتقى الرئيس!", "ثم غادر؟", "بعد ذلك"]


@pytest.mark.parametrize(
    ("token", "stem"),
    [
        ("والهدنه", "هدنه"),  # و + ال
        ("بالهدنه", "هدنه"),  # ب + ال
        ("للهدنه", "هدنه"),  # لل
        ("وفد", "وفد"),  # a word that starts with و is not stripped
        ("ووفد", "وفد"),
        ("زيارته", "زياره"),  # suffix with ta marbuta restored
        ("وفدا", "وفد"),  # tanween alif
        ("كلمه", "كلمه"),  # unknown word: unchanged
    ],
)
def test_stem_through_particles(token: str, stem: str) -> None:
    vocab = Vocab()
    for phrase in ("الهدنة", "وفد", "زيارة"):
        phrase_stems(phrase, vocab)
    assert vocab.stem(token) == stem


def test_analyse_sentences_and_stems() -> None:
    vocab = Vocab()
    phrase_stems("وقف إطلاق النار", vocab)
    sents = analyse("تم الاتفاق على وَقْف إطلاق النّار. انتهى", vocab)
    assert len(sents) == 2
    assert sents[0].stems[3:6] == ["وقف", "اطلاق", "نار"]


def test_split_sentences_keeps_runs_ended_by_carriage_return_or_unicode_separators() -> None:
    # CRLF and old-Mac feeds: a run ended by "\r" (or U+2028/U+2029) with no punctuation is a sentence, not lost
    text = "وصل الوزير إلى القاهرة\r\nثم غادر\rوعاد\u2028اليوم\u2029مساء"
    assert split_sentences(text) == ["وصل الوزير إلى القاهرة", "ثم غادر", "وعاد", "اليوم", "مساء"]


def test_word_class_bits_say_whether_a_sentence_holds_its_words() -> None:
    from processors.analysis import analyse_text, word_class

    bit = word_class(("غادر",))
    assert word_class(frozenset({"غادر"})) == bit  # the same class, the same bit
    doc = analyse_text("", "وصل الوزير إلى عمان. غادر الوزير عمان.")  # (an analysis made after the class exists)
    assert [bool(s.bits & bit) for s in doc.sentences] == [False, True]
    stem_bit = word_class(("زار",), toks=False, stems=True)  # "وزارة" does not stem to "زار"; "زار" does
    assert [bool(s.bits & stem_bit) for s in analyse_text("", "زار الوزير عمان. وزارة الخارجية.").sentences] \
        == [True, False]
