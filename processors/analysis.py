"""One article analysed once for both the classifier and the visit extractor: sentences, stems and phrase hits."""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from processors import normalize as normalize_module
from processors.knowledge import Knowledge, get_knowledge
from processors.normalize import STEM_BITS, TOKEN_BITS, Sentence, analyse, normalize

log = logging.getLogger(__name__)


def pure_python() -> bool:
    """TRUCEWATCH_PURE_PYTHON is set (not "" or "0"): no compiled accelerator is used (read once, at import)."""
    return os.environ.get("TRUCEWATCH_PURE_PYTHON", "") not in ("", "0")


def _load_fast() -> ModuleType | None:
    """The optional C accelerator (processors/_fast.c), unless TRUCEWATCH_PURE_PYTHON is set (not "" or "0")."""
    if pure_python():
        return None
    try:
        from processors import _fast  # type: ignore[attr-defined]
    except ImportError:  # not built (no compiler at install time): the pure-Python path, same results
        return None
    return _fast  # type: ignore[no-any-return]


_fast = _load_fast()


def compiled_twin(module: str, source: str) -> ModuleType | None:
    """The mypyc build of a module (``processors._<name>_mypyc``, made by setup.py from a copy of ``source`` when
    mypyc and a C compiler are available), only when it was compiled from ``source``'s exact bytes and
    TRUCEWATCH_PURE_PYTHON is not set: an edited module runs as plain Python (with a warning) until it is rebuilt
    (``pip install -e .``)."""
    if pure_python():
        return None
    name = module.rpartition(".")[2]
    try:
        twin = importlib.import_module(f"processors._{name}_mypyc")
    except ImportError:  # not built: the pure-Python module, same results
        return None
    try:
        digest = hashlib.sha256(Path(source).read_bytes()).hexdigest()
    except OSError:  # no readable source (a sourceless install): nothing to compare with, so the Python code
        return None
    if getattr(twin, "SOURCE_SHA256", None) != digest:
        log.warning("%s changed since its compiled build; using the Python code (run `pip install -e .` to rebuild)",
                    source)
        return None
    return twin


def use_compiled(namespace: dict[str, Any], twin: ModuleType | None) -> None:
    """Replace every function and class of a module (its ``namespace``) by those of its compiled ``twin``, so that
    callers and the twin's own code all run compiled."""
    if twin is None:
        return
    for name, obj in vars(twin).items():
        if getattr(obj, "__module__", None) == twin.__name__ and name in namespace:
            namespace[name] = obj

_CLASSES: dict[tuple[frozenset[str], bool, bool], int] = {}  # (words, as tokens, as stems) -> its bit
_MAX_CLASSES = 64  # the C accelerator keeps a word's classes in 64 bits


def word_class(words: Iterable[str], *, toks: bool = True, stems: bool = False) -> int:
    """Register a set of normalised words as a word class and return its bit: ``sentence.bits & bit`` is nonzero
    exactly when one of the sentence's tokens (``toks``) or stems (``stems``) is among ``words``, i.e. when
    ``not words.isdisjoint(sentence.toks)`` (or ``.stems``). Registering the same class again returns the same bit;
    analyses made before a new class are dropped (their sentences would lack it)."""
    key = (frozenset(words), toks, stems)
    bit = _CLASSES.get(key)
    if bit is not None:
        return bit
    if len(_CLASSES) >= _MAX_CLASSES:
        raise ValueError(f"at most {_MAX_CLASSES} word classes")
    bit = _CLASSES[key] = 1 << len(_CLASSES)
    for table, on in ((TOKEN_BITS, toks), (STEM_BITS, stems)):
        if on:
            for w in key[0]:
                table[w] = table.get(w, 0) | bit
    _memo.clear()
    return bit


MAX_CHARS = 200_000  # analyse at most this much text of one article (news articles are far shorter)

Hit = tuple[int, int, str, Any]


class Hits(list[Hit]):
    """A sentence's phrase hits (a list, in scan order) and, per kind, its hits of that kind in the same order
    (``by_kind``: the kinds in the order of their first hit), so that a rule reading one kind does not scan the rest.
    The C accelerator builds the same index."""

    __slots__ = ("by_kind",)
    by_kind: dict[str, list[Hit]]

    def __init__(self, hits: Iterable[Hit] = ()) -> None:
        super().__init__(hits)
        by: dict[str, list[Hit]] = {}
        for h in self:
            lst = by.get(h[2])
            if lst is None:
                by[h[2]] = [h]
            else:
                lst.append(h)
        self.by_kind = by


_NO_HITS: tuple[Hit, ...] = ()


def _of_kind_py(hits: list[Hit], kind: str) -> Sequence[Hit]:
    """The hits of one kind, in order (from the sentence's index when ``hits`` is a Hits)."""
    if type(hits) is Hits:
        return hits.by_kind.get(kind, _NO_HITS)
    return [h for h in hits if h[2] == kind]


def _of_kinds_py(hits: list[Hit], *kinds: str) -> Sequence[Hit]:
    """Hits of which some are of the given kinds, in order: just those when they are of one kind, else ``hits``
    (a caller still filters by kind)."""
    if type(hits) is Hits:
        by = hits.by_kind
        one: Sequence[Hit] = _NO_HITS
        for k in kinds:
            if k in by:
                if one:
                    return hits
                one = by[k]
        return one
    return hits


of_kind: Callable[[list[Hit], str], Sequence[Hit]] = _of_kind_py
of_kinds: Callable[..., Sequence[Hit]] = _of_kinds_py
if _fast is not None and hasattr(_fast, "hit_views"):  # the same two functions in C (~90 calls an article)
    _fast.hit_views(Hits, _NO_HITS, _of_kind_py, _of_kinds_py)
    of_kind, of_kinds = _fast.of_kind, _fast.of_kinds
if _fast is not None and hasattr(_fast, "word_layout"):  # TokenChars (visits.surface) reads its words' layout in C
    normalize_module.WORD_LAYOUT = _fast.word_layout

# Page furniture that introduces lists of related headlines ("read also"): the short lines after it are
# other stories, not this article, until real prose (a long sentence) resumes.
JUNK_MARKERS = tuple(normalize(m) for m in (
    "اقرأ أيضا", "إقرأ أيضاً", "اقرأ ايضا", "مقالات مشابهة", "مواضيع قد تهمك", "مواضيع ذات صلة", "أخبار ذات صلة",
    "المزيد من الأخبار", "كلمات دلالية", "الأكثر قراءة", "اخترنا لك", "مقالات ذات صلة", "تابعونا",
))
JUNK_LINE = 140  # a related-headline line is shorter than this
_END_WORD = "نهايه"  # "مواضيع قد تهمك نهاية": the block ends here
_JUNK_RE = re.compile("|".join(re.escape(m) for m in JUNK_MARKERS))


def _junk_flags(sents: list[Sentence]) -> list[bool]:
    flags: list[bool] = []
    in_junk = False
    for s in sents:
        if len(s.text) < JUNK_LINE and _JUNK_RE.search(" ".join(s.toks[:6])):
            in_junk = _END_WORD not in s.toks
            flags.append(True)
            continue
        if in_junk:
            if _END_WORD in s.toks:
                flags.append(True)
                in_junk = False
                continue
            if len(s.text) >= JUNK_LINE:
                in_junk = False
        flags.append(in_junk)
    return flags


@dataclass(frozen=True, slots=True)
class Doc:
    """Sentences of an article (title sentences first) with their phrase hits."""

    sentences: list[Sentence]
    hits: list[list[Hit]]  # Hits (a list with a per-kind index) from both analysis paths
    n_title: int  # how many leading sentences come from the title


def analyse_text(title: str, body: str, kn: Knowledge | None = None) -> Doc:
    """Analyse a title and a body (either may be empty); text beyond MAX_CHARS is ignored."""
    kn = kn or get_knowledge()
    return _analyse(title[:2000], body[:MAX_CHARS], id(kn), kn)




_memo: dict[tuple[str, str, int], Doc] = {}


def _analyse(title: str, body: str, kn_id: int, kn: Knowledge) -> Doc:
    key = (title, body, kn_id)
    doc = _memo.get(key)
    if doc is not None:
        return doc
    doc = _analyse_c(title, body, kn) if _fast is not None else None
    if doc is None:
        doc = _analyse_py(title, body, kn)
    if len(_memo) >= 8:  # the enrich agent calls classify() then extract_visits() on the same article
        _memo.pop(next(iter(_memo)))
    _memo[key] = doc
    return doc


def _analyse_py(title: str, body: str, kn: Knowledge) -> Doc:
    """The pure-Python analysis of a title and a body."""
    ts = analyse(title, kn.vocab) if title else []
    bs = analyse(body, kn.vocab) if body else []
    sents = ts + bs
    for i, s in enumerate(sents):
        s.index = i
    junk = [False] * len(ts) + _junk_flags(bs)
    return Doc(sents, [Hits() if j else Hits(kn.scan(s.stems)) for s, j in zip(sents, junk, strict=True)], len(ts))


def _analyse_c(title: str, body: str, kn: Knowledge) -> Doc | None:
    """``_analyse_py`` by the C accelerator, reading the Knowledge's own memos and phrase index (sentences get their
    token lists at once, hits come as Hits); None for text with presentation forms (normalised as a whole: the
    Python path)."""
    assert _fast is not None
    res = _fast.analyse_doc(title, body, kn.vocab._word_parts, kn.index1, kn.index2, kn.firsts,
                            JUNK_MARKERS, JUNK_LINE, _END_WORD, Sentence, Hits, kn.seconds, TOKEN_BITS, STEM_BITS,
                            len(_CLASSES))
    return None if res is None else Doc(*res)


def article_parts(title: str, summary: str, body: str) -> tuple[str, str]:
    """Title and analysable body of an article (summary kept only when the body does not repeat it)."""
    rest = body if (not summary or summary in body) else summary + "\n" + body
    return title or "", rest
