"""Arabic normalisation, sentence splitting and particle-aware tokenisation for matching.

Matching works on *stems*: a token of normalised text with its attached particles
(و ف ب ل ك ال, and combinations such as وبال، لل) and common pronoun/plural suffixes
removed, but only when the stripped form is in the vocabulary of the knowledge files
(``Vocab``). So "والهدنة", "بالهدنة" and "للهدنة" all meet the lexicon's "هدنه", while
"وفد" (delegation) is never read as و + "فد". Stemming is memoised per token.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Callable, Iterable
from itertools import accumulate, chain, compress
from operator import not_
from typing import TypeVar

# --- character-level normalisation -------------------------------------------------------------

_DELETE = (
    [chr(c) for c in range(0x064B, 0x0660)]  # harakat, shadda, sukun, maddah/hamza marks
    + ["\u0670", "\u0640"]  # superscript alef, tatweel
    + ["\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u061c", "\ufeff", "\u00ad"]  # zero-width, bidi marks
    + [chr(c) for c in range(0x202A, 0x202F)] + [chr(c) for c in range(0x2066, 0x206A)]
    + [chr(c) for c in range(0x06D6, 0x06EE)]  # Quranic annotation marks
)
_MAP: dict[str, str] = {
    "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ٲ": "ا", "ٳ": "ا",
    "ة": "ه", "ۀ": "ه", "ى": "ي", "ی": "ي", "ې": "ي", "ئ": "ي", "ؤ": "و", "ک": "ك", "ڪ": "ك",
    "ـ": "",
    "،": ",", "؛": ";", "؟": "?", "٪": "%", "٫": ".", "٬": ",", "۔": ".",
    "«": '"', "»": '"', "“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‹": '"', "›": '"',
    "–": "-", "—": "-", "‒": "-", "−": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
    "\t": " ", "\r": "\n", "\u2028": "\n", "\u2029": "\n",
}
for _i in range(10):
    _MAP[chr(0x0660 + _i)] = str(_i)  # Arabic-Indic digits
    _MAP[chr(0x06F0 + _i)] = str(_i)  # Extended (Persian) digits
_TABLE: dict[int, str | None] = {ord(c): None for c in _DELETE}
_TABLE.update({ord(k): v for k, v in _MAP.items()})
for _c in range(32):  # C0 control characters (newline kept)
    if chr(_c) not in "\n":
        _TABLE.setdefault(_c, " ")
_TABLE[0x7F] = " "
CHAR_TABLE = _TABLE  # for per-character mapping (visits.surface)
for _c in range(0x80, 0xA0):  # C1 controls
    _TABLE[_c] = " "


_PRESENTATION = re.compile("[\ufb50-\ufefe]")
# Fast path: one regex deletes marks/controls, str.replace maps the common letters and punctuation (each a C scan),
# and the full translate table runs only when a rarer mapped character is present. Same result as translate.
_DELETE_RE = re.compile("[" + "".join(re.escape(c) for c in _DELETE) + "]")
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x0c\x0e-\x1f\x7f-\x9f]")
_COMMON = ("أ", "إ", "آ", "ة", "ى", "ئ", "ؤ", "،", "؛", "؟", "«", "»", "“", "”", "\t", "\r", "–", "—", "\u00a0", "ـ")
_COMMON_PAIRS = tuple((c, _MAP[c]) for c in _COMMON)
_RARE_RE = re.compile("[" + "".join(re.escape(c) for c in _MAP if c not in _COMMON) + "]")


def _rare(m: re.Match[str]) -> str:
    return _MAP[m.group()]


def normalize(text: str) -> str:
    """Normalised text for matching: no diacritics/tatweel/controls, unified alef/hamza/ta marbuta/alef
    maqsura, ASCII digits and punctuation, presentation forms folded, Latin lower-cased. Never raises."""
    if not text:
        return ""
    if _PRESENTATION.search(text):  # Arabic presentation forms (old PDFs/feeds)
        text = unicodedata.normalize("NFKC", text)
    return _normalize_chars(text)


def _normalize_chars(text: str) -> str:
    """``normalize`` without the NFKC step: each character mapped on its own."""
    text = _DELETE_RE.sub("", text)
    if _CONTROL_RE.search(text):
        text = _CONTROL_RE.sub(" ", text)
    for a, b in _COMMON_PAIRS:
        if a in text:
            text = text.replace(a, b)
    if _RARE_RE.search(text):
        text = _RARE_RE.sub(_rare, text)
    return text.lower()


# characters whose per-character normalisation is not exactly one character: deleted marks, and "İ" (lower() -> 2)
_RESIZING_RE = re.compile("[" + "".join(re.escape(c) for c in _DELETE) + "\u0130]")
_DELETED = frozenset(chr(c) for c, t in _TABLE.items() if not t)  # characters that normalise to nothing


def normalize_aligned(text: str) -> tuple[str, list[int] | None]:
    """``text`` normalised character by character (no NFKC) and, for each normalised character, the index of the
    original character it comes from; None when that is its own index (nothing deleted or expanded)."""
    if not _RESIZING_RE.search(text):
        return _normalize_chars(text), None
    if "\u0130" not in text and "\u03a3" not in text:  # no expansion, no context-dependent lower() (final sigma)
        norm = _normalize_chars(text)
        kept = list(compress(range(len(text)), map(not_, map(_DELETED.__contains__, text))))
        if len(kept) == len(norm):
            return norm, kept
    chars: list[str] = []
    index: list[int] = []
    table = CHAR_TABLE
    for i, c in enumerate(text):
        t = table.get(ord(c), c)
        if t:
            t = t.lower()
            chars.append(t)
            index.extend([i] * len(t))
    return "".join(chars), index


# The same alignment per whitespace-delimited word, on demand (visits.surface): str.lower() is per character except
# for "İ" (two characters) and the final sigma (context), and every whitespace character normalises to a non-token
# character, so without those two the tokens of ``normalize_aligned(text)`` are the tokens of its words in order,
# each word normalised on its own (the word memos below), and a token's characters come from its own word.
_WORDS_AT: dict[int, re.Pattern[str]] = {}  # j -> a pattern matching the text before its word j (after \s*)
_WHOLE = ("\u0130", "\u03a3")


def _word_chars(word: str) -> tuple[tuple[int, ...], ...]:
    norm, index = normalize_aligned(word)
    return tuple(tuple(range(m.start(), m.end())) if index is None else tuple(index[m.start():m.end()])
                 for m in TOKEN_RE.finditer(norm))


# (words, token-count totals, word starts) of a text, in C: set by processors.analysis when the accelerator is built
WORD_LAYOUT: Callable[[str, dict[str, tuple[tuple[int, ...], ...]]], tuple[list[str], list[int], list[int]]] | None \
    = None


class TokenChars:
    """Where the tokens of ``normalize_aligned(text)`` (``TOKEN_RE`` over its normalised text) come from in
    ``text`` (``count`` tokens; ``span``), computed per whitespace-delimited word from a memo and only for the
    words asked for; text holding "İ" or a capital sigma is aligned as a whole, as ``normalize_aligned`` does."""

    __slots__ = ("text", "count", "_words", "_ends", "_starts", "_ms", "_index")
    count: int

    def __init__(self, text: str) -> None:
        self.text = text
        self._ms: list[re.Match[str]] | None = None
        self._index: list[int] | None = None
        self._words: list[str] = []
        self._ends: list[int] = []
        self._starts: list[int] | None = None  # where each word starts in text (else found by a pattern)
        if _WHOLE[0] in text or _WHOLE[1] in text:
            self._align_whole()
            assert self._ms is not None
            self.count = len(self._ms)
            return
        if WORD_LAYOUT is not None:
            self._words, self._ends, self._starts = WORD_LAYOUT(text, _WORD_CHARS)
        else:
            self._words = text.split()
            self._ends = list(accumulate(map(len, map(_WORD_CHARS.__getitem__, self._words))))
        self.count = self._ends[-1] if self._ends else 0

    def _align_whole(self) -> None:
        norm, self._index = normalize_aligned(self.text)
        self._ms = list(TOKEN_RE.finditer(norm))

    def _token(self, k: int) -> tuple[int, tuple[int, ...]]:
        j = bisect_right(self._ends, k)
        if self._starts is not None:
            start = self._starts[j]
        else:
            pat = _WORDS_AT.get(j)
            if pat is None:
                pat = _WORDS_AT[j] = re.compile(r"\s*(?:\S+\s+){%d}" % j)
            m = pat.match(self.text)
            assert m is not None
            start = m.end()
        return start, _WORD_CHARS[self._words[j]][k - (self._ends[j - 1] if j else 0)]

    def span(self, k1: int, skip: int, k2: int) -> tuple[int, int]:
        """Indices in ``text`` of the normalised character ``skip`` of token ``k1`` and of the last normalised
        character of token ``k2`` (0 <= k1 <= k2 < count)."""
        if self._ms is None:
            o1, c1 = self._token(k1)
            if skip < len(c1):
                o2, c2 = (o1, c1) if k2 == k1 else self._token(k2)
                return o1 + c1[skip], o2 + c2[-1]
            self._align_whole()  # (skipping past the token's end: as the whole text's alignment reads it)
        assert self._ms is not None
        a, b = self._ms[k1].start() + skip, self._ms[k2].end() - 1
        if self._index is not None:
            a, b = self._index[a], self._index[b]
        return a, b


# --- sentences -----------------------------------------------------------------------------------

_SENTENCE = re.compile(r"[^\n\r\u2028\u2029.!?؟؛;…]+(?:[.!?؟؛;…]+|(?=[\r\u2028\u2029])|$)", re.MULTILINE)
_STRIP = " \t\"'-•*"


def split_sentences(text: str) -> list[str]:
    """Sentences of (original, unnormalised) text: runs ended by a line break or end punctuation; empty ones dropped."""
    return [s.strip(_STRIP) for s in _SENTENCE.findall(text) if s.strip(_STRIP + ".")]


# --- tokens and stems ----------------------------------------------------------------------------

TOKEN_RE = re.compile(r"[\u0621-\u064a\u0671-\u06d3a-z0-9]+|[,;:.!?\"()\-]")
PUNCT = frozenset(",;:.!?\"()-")

# Attached particles, longest first; each may be followed by the definite article.
_CONJ = ("", "و", "ف")
_PREP = ("", "ب", "ل", "ك")
PREFIXES: tuple[str, ...] = tuple(
    sorted({c + p + a for c in _CONJ for p in _PREP for a in ("", "ال")} | {"لل", "ولل", "فلل"},
           key=lambda s: (len(s) > 0, len(s)))
)
SUFFIXES: tuple[str, ...] = ("هما", "كما", "ها", "هم", "هن", "كم", "نا", "ه", "ي", "ات", "ان", "ين", "ون", "يه", "ا")
_MIN_STEM = 2
_MEMO_MAX = 500_000
_T = TypeVar("_T")


def bare(word: str) -> str:
    """A normalised knowledge-file word reduced to its vocabulary form (leading ال removed)."""
    if word.startswith("ال") and len(word) > 3:
        return word[2:]
    return word


class _Memo(dict[str, _T]):
    """A bounded memo: a missing key is computed on first use, so lookups of known keys stay in C
    (``map(memo.__getitem__, keys)``)."""

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[str], _T]) -> None:
        super().__init__()
        self._fn = fn

    def __missing__(self, key: str) -> _T:
        res = self._fn(key)
        if len(self) > _MEMO_MAX:  # bound the memo on pathological input (random tokens)
            self.clear()
        self[key] = res
        return res


def _word_tokens(word: str) -> tuple[str, ...]:
    return tuple(TOKEN_RE.findall(normalize(word)))


# raw word -> per token of its per-character normalisation, the word-relative index of each normalised character
_WORD_CHARS: _Memo[tuple[tuple[int, ...], ...]] = _Memo(_word_chars)

# raw whitespace-delimited word -> its normalised tokens (normalisation is per character, and every whitespace
# character normalises to a non-token character, so a text's tokens are its words' tokens in order)
_WORD_TOKENS: _Memo[tuple[str, ...]] = _Memo(_word_tokens)


class Vocab:
    """The set of vocabulary forms from the knowledge files, with a memoised stemmer for text tokens."""

    def __init__(self, words: Iterable[str] = ()) -> None:
        self.words: set[str] = set()
        self._cache: _Memo[str] = _Memo(self._stem)
        self._word_stems: _Memo[tuple[str, ...]] = _Memo(self._stems_of_word)
        # raw word -> (its tokens, their stems): one lookup per word for the C accelerator (processors/_fast.c)
        self._word_parts: _Memo[tuple[tuple[str, ...], tuple[str, ...]]] = _Memo(self._parts_of_word)
        for w in words:
            self.add(w)

    def add(self, word: str) -> str:
        """Add one normalised word (ال stripped); returns its vocabulary form."""
        b = bare(word)
        self.words.add(b)
        self._cache.clear()
        self._word_stems.clear()
        self._word_parts.clear()
        return b

    def stem(self, tok: str) -> str:
        """The vocabulary form of a text token, trying particle and suffix strips; the token (minus ال) if none."""
        return self._cache[tok]

    def stems(self, toks: list[str]) -> list[str]:
        """The stems of a token list (punctuation tokens stem to themselves)."""
        return list(map(self._cache.__getitem__, toks))

    def _stems_of_word(self, word: str) -> tuple[str, ...]:
        return tuple(map(self._cache.__getitem__, _WORD_TOKENS[word]))

    def _parts_of_word(self, word: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return _WORD_TOKENS[word], self._word_stems[word]

    def _stem(self, tok: str) -> str:
        words = self.words
        n = len(tok)
        cands: list[str] = []
        for p in PREFIXES:
            if p and (n - len(p) < _MIN_STEM or not tok.startswith(p)):
                continue
            c = tok[len(p):]
            if c in words:
                return c
            cands.append(c)
        for c in cands:
            for s in SUFFIXES:
                if len(c) - len(s) >= _MIN_STEM and c.endswith(s):
                    b = c[: -len(s)]
                    if b in words:
                        return b
                    if b.endswith("ت") and b[:-1] + "ه" in words:  # ta marbuta before a suffix: زيارته
                        return b[:-1] + "ه"
        return bare(tok)


# Word classes: sets of tokens (or stems) that rules test a whole sentence against ("has the sentence any of these
# words?"). Each class is one bit; a sentence's ``bits`` are the classes of its tokens and stems, computed once (by
# the C accelerator from its word memo, else on first use), so such a test is one AND instead of a scan of the
# sentence. Registered by analysis.word_class (which also drops analyses made before).
TOKEN_BITS: dict[str, int] = {}  # token -> the bits of the classes holding it as a token
STEM_BITS: dict[str, int] = {}  # stem -> the bits of the classes holding it as a stem


def sentence_bits(toks: Iterable[str], stems: Iterable[str]) -> int:
    """The word-class bits of a token list and its stems."""
    bits = 0
    tb, sb = TOKEN_BITS, STEM_BITS
    for t in toks:
        if t in tb:
            bits |= tb[t]
    for t in stems:
        if t in sb:
            bits |= sb[t]
    return bits


class Sentence:
    """One sentence: its original text, normalised tokens and their stems, and ``bits``, its word classes (see
    TOKEN_BITS). The C accelerator makes these with every slot set; the pure-Python analysis makes LazySentences.
    (No ``__getattr__`` here: with one, every attribute read of every sentence goes through a slower lookup.)
    """

    __slots__ = ("index", "text", "toks", "stems", "_words", "bits")
    toks: list[str]  # normalised tokens (words and single punctuation marks), one per stem
    bits: int

    def __init__(self, index: int, text: str, toks: list[str] | None, stems: list[str],
                 words: list[str] | None = None) -> None:
        self.index = index
        self.text = text
        self.stems = stems
        self._words = words
        self.toks = toks if toks is not None else list(chain.from_iterable(map(_WORD_TOKENS.__getitem__, words or ())))
        self.bits = sentence_bits(self.toks, stems)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sentence):
            return NotImplemented
        return (self.index, self.text, self.toks, self.stems) == (other.index, other.text, other.toks, other.stems)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return f"Sentence(index={self.index!r}, text={self.text!r}, toks={self.toks!r}, stems={self.stems!r})"


class LazySentence(Sentence):
    """A Sentence of the pure-Python analysis: built from its raw words, it makes its token list and its word
    classes on first use (most sentences are only scanned through their stems); after that they are plain slots."""

    __slots__ = ()

    def __init__(self, index: int, text: str, toks: list[str] | None, stems: list[str],
                 words: list[str] | None = None) -> None:
        self.index = index
        self.text = text
        self.stems = stems
        self._words = words
        if toks is not None:
            self.toks = toks

    def __getattr__(self, name: str) -> object:  # only called while the ``toks`` or ``bits`` slot is still empty
        if name == "toks":
            self.toks = list(chain.from_iterable(map(_WORD_TOKENS.__getitem__, self._words or ())))
            return self.toks
        if name == "bits":
            self.bits = sentence_bits(self.toks, self.stems)
            return self.bits
        raise AttributeError(name)


def tokens(norm: str) -> list[str]:
    """Tokens (words and single punctuation marks) of normalised text."""
    return TOKEN_RE.findall(norm)


def analyse(text: str, vocab: Vocab) -> list[Sentence]:
    """Split ``text`` into sentences and tokenise/stem each one against ``vocab``.

    Tokens and stems come from memos keyed by the raw whitespace-delimited words (news vocabulary is small,
    so nearly every word is a hit). Text with presentation forms is normalised as a whole (NFKC is not per
    character), giving the same tokens as the word memos would for any other text.
    """
    sents = split_sentences(text)
    if not sents:
        return []
    joined = "\n".join(sents)
    if _PRESENTATION.search(joined):
        return _analyse_whole(sents, joined, vocab)
    out: list[Sentence] = []
    word_stems = vocab._word_stems.__getitem__
    flat = chain.from_iterable
    for s in sents:
        words = s.split()
        stems = list(flat(map(word_stems, words)))  # one stem per token, so no stems means no tokens
        if stems:
            out.append(LazySentence(len(out), s, None, stems, words))
    return out


def _analyse_whole(sents: list[str], joined: str, vocab: Vocab) -> list[Sentence]:
    """``analyse`` for text normalised as a whole."""
    out: list[Sentence] = []
    stems = vocab.stems
    # one normalisation pass over the whole text: sentences hold no line break, so they stay aligned
    norms = normalize(joined).split("\n")
    if len(norms) != len(sents):  # cannot happen with the shipped tables; stay correct if it ever does
        norms = [normalize(x) for x in sents]
    findall = TOKEN_RE.findall
    for s, n in zip(sents, norms, strict=True):
        toks = findall(n)
        if not toks:
            continue
        out.append(LazySentence(len(out), s, toks, stems(toks)))
    return out


def phrase_stems(phrase: str, vocab: Vocab | None = None) -> tuple[str, ...]:
    """The stem tuple of a knowledge-file phrase (each word normalised, ال stripped; added to ``vocab``)."""
    out = []
    for t in TOKEN_RE.findall(normalize(phrase)):
        if t in PUNCT:
            continue
        out.append(vocab.add(t) if vocab is not None else bare(t))
    return tuple(out)
