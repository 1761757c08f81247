"""Story clusters as pure functions: the same story told by several outlets becomes one cluster and one alert.

**Features** (``story_item``): the article's *content words* — normalised Arabic (processors/normalize.py),
attached particles (و ف ب ل ك ال) stripped, stop words removed — hashed (crc32, stable across processes)
into a set of 1-shingles; the *visit keys* the extractor found (the same trip, whatever the outlet); and
*salient entities*: visitors, destination cities and non-year numbers.

**Same story** (``same_story``), for two articles whose event times (``published_at``, else
``fetched_at``) are at most ``WINDOW`` apart, Δ = that distance in days:

- Jaccard(content words) >= ``TEXT_BASE`` + ``TEXT_SLOPE`` × Δ  (0.17 + 0.01/day), or
- they report the same visit (a shared visit key) and Jaccard >= ``VISIT_MIN`` (0.05), or
- they share >= 2 salient entities and Jaccard >= ``ENTITY_MIN`` (0.12).

Checked on ``shared/data/devset.jsonl`` (tests/processors/test_stories.py reads it in place): the
multi-outlet reports of one trip are independent rewrites, not syndicated copies — their content-word
Jaccard is 0.07-0.28 (headline overlap is often nil), while two different stories within a day of each
other score <= 0.05 and unrelated same-day stories up to 0.16. Text alone at 0.17 joins the close
rewrites; the shared visit key joins the loose ones (e.g. 0.074 for two Hochstein-in-Beirut reports);
the time slope keeps a follow-up a week later out unless it is much closer. MinHash/LSH banding is
not used: at these similarities banding has poor recall.

**Candidates** (``StoryIndex``, in memory, rebuilt from the table's member rows): an inverted index from
(event-time bucket of ``WINDOW``, word hash) to *shapes* — distinct (words, visit keys, entities)
signatures, so copies of one text are compared once — plus visit key → shapes. An article reads the
postings of its words in the 3 buckets around it, counts shared words per shape, skips up to
ceil(``ENTITY_MIN`` × |words|) − 1 of its most common words (an exact bound: any pair meeting
``ENTITY_MIN`` shares that many words) and verifies at most ``MAX_CANDIDATES`` shapes; a shared visit
key brings its shapes in whatever the overlap. The work per article depends on the postings of its own
words in ±2 weeks, not on the number of clusters. The shapes related to a shape are counted once and kept
(``_Near`` lists, symmetric): a copy of a text already in its bucket (wire copies, a replayed archive) reads
its shape's list instead of counting again.

**Clusters** are the connected components of that relation (single link). ``assign`` folds one item
into a mutable mapping (the stories Faust table, or a dict) holding plain JSON values: members
``m:<id>`` (compact rows: event time, packed word hashes, visit keys, entities, link fields, cluster
key), clusters ``c:<key>`` (head, size, labels, debounce state; its members are the rows naming it),
``count`` and ``pending``. A cluster's key is its earliest member by event time (ties: lowest article
id), so the final clusters and keys do not depend on arrival order. An alert freezes the key: once a
story alert went out, later (even earlier-dated) members join under that key. Emission is debounced
in processing time (``QUIET_SECONDS`` without change, at most ``MAX_DELAY_SECONDS``), which absorbs
bursts of out-of-order input (a shuffled archive, a feed batch) before any key is frozen. ``StoryIndex.batch``
buffers a batch's writes so each changed key reaches the table (and its changelog) once.
"""

from __future__ import annotations

import base64
import heapq
import math
import re
import sys
import unicodedata
import zlib
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple, cast

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from trucewatch.schema import Alert, AlertLink, EnrichedArticle, alert_id

try:  # the classifier's normaliser (processors/normalize.py)
    from processors.normalize import TOKEN_RE, normalize
except ImportError:  # pragma: no cover - minimal fallback while normalize.py is being written
    TOKEN_RE = re.compile(r"[\u0621-\u064a\u0671-\u06d3a-z0-9]+")

    def normalize(text: str) -> str:
        """Minimal normalisation: diacritics/tatweel out, alef/ta marbuta/alef maqsura unified."""
        text = re.sub(r"[\u064b-\u065f\u0670\u0640]", "", text or "")
        return text.translate(str.maketrans("أإآٱةى", "ااااهي")).lower()

WINDOW = timedelta(days=7)
TEXT_BASE = 0.17
TEXT_SLOPE = 0.01  # per day of event-time distance
VISIT_MIN = 0.05
ENTITY_MIN = 0.12
RETENTION = timedelta(days=30)  # when over MAX_MEMBERS, members older than the newest event time − this go
MAX_MEMBERS = 20_000  # below this nothing is evicted, so clustering cannot depend on arrival order
QUIET_SECONDS = 2.0
MAX_DELAY_SECONDS = 30.0
MAX_LINKS = 200
SKIP_DF = 64  # a word whose postings in a bucket hold more shapes than this may go unread (StoryIndex.touched)
MAX_CANDIDATES = 2_000  # shapes verified per article at most, highest word overlap first
STORY_LABELS = ("ceasefire", "mediation", "aid")

_STOP_WORDS = """في من على إلى الى عن مع أن ان إن التي الذي الذين اللذين اللتين هذا هذه ذلك تلك هناك هنا كان كانت
يكون تكون قد لقد لم لن ما لا أو او ثم حيث كما بعد قبل بين حول خلال عند منذ حتى أي اي كل غير عبر وفق ضد لدى قال وقال
أضاف وأضاف أشار وأشار اليوم أمس يوم السبت الأحد الاثنين الثلاثاء الأربعاء الخميس الجمعة وذلك وهو وهي هو هي هم التى إلا
الا أنه انه أنها انها بأن وأن فيه فيها عليه عليها إليه منه منها له لها لهم به بها وقد كذلك أيضا ايضا مثل نحو ضمن تم يتم
عام العام الماضي المقبل أجل اجل لدي سوف إذا اذا وفي ومن وعلى وإلى""".split()
STOP_WORDS = frozenset(normalize(w) for w in _STOP_WORDS)
_PREFIXES = tuple(sorted(("وبال", "وال", "بال", "كال", "فال", "لل", "ولل", "فلل", "ال", "و", "ف", "ب", "ل"),
                         key=len, reverse=True))
_MIN_STEM = 3
_NUMBER = re.compile(r"\d+")


def stem(word: str) -> str:
    """A normalised word without one leading particle group (و ف ب ل ك ال), keeping >= 3 letters."""
    for p in _PREFIXES:
        if word.startswith(p) and len(word) - len(p) >= _MIN_STEM:
            return word[len(p):]
    return word


def _content(tok: str) -> str | None:
    """The stemmed content word of one normalised token, or None (stop word, 1 letter, not alphanumeric)."""
    if len(tok) < 2 or not tok.isalnum() or tok in STOP_WORDS:
        return None
    s = stem(tok)
    return None if s in STOP_WORDS else s


_WORD_MEMO: dict[str, tuple[str, int] | None] = {}  # token -> (content word, its hash) or None
_WORD_MEMO_MAX = 200_000


def _memo(tok: str) -> tuple[str, int] | None:
    hit = _WORD_MEMO.get(tok, _WORD_MEMO)
    if hit is _WORD_MEMO:
        w = _content(tok)
        hit = None if w is None else (w, zlib.crc32(w.encode("utf-8")))
        if len(_WORD_MEMO) >= _WORD_MEMO_MAX:
            _WORD_MEMO.clear()
        _WORD_MEMO[tok] = hit
    return hit  # type: ignore[return-value]


def content_words(text: str) -> list[str]:
    """The stemmed content words of ``text`` (normalised, stop words and 1-letter tokens out)."""
    return [hit[0] for tok in TOKEN_RE.findall(normalize(text)) if (hit := _memo(tok)) is not None]


def word_hashes(text: str) -> list[int]:
    """``shingles(content_words(text))`` through the token memo."""
    return sorted({hit[1] for tok in TOKEN_RE.findall(normalize(text)) if (hit := _memo(tok)) is not None})


def shingles(words: Iterable[str]) -> list[int]:
    """Sorted, distinct crc32 hashes of the words (1-shingles), stable across processes."""
    return sorted({zlib.crc32(w.encode("utf-8")) for w in words})


def _is_number(n: str) -> str | None:
    n2 = n.lstrip("0")
    return n2 if len(n2) >= 2 and not (len(n) == 4 and n[:2] in ("19", "20")) else None


def numbers(text: str) -> set[str]:
    """Numbers of two or more digits that are not years (1900-2099): casualty counts, hostages, days."""
    return {n2 for n in _NUMBER.findall(normalize(text)) if (n2 := _is_number(n)) is not None}


_RAW_MEMO: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {}  # raw word -> (its word hashes, its numbers)
_RAW_MEMO_MAX = 300_000
_EMPTY: tuple[tuple[int, ...], tuple[str, ...]] = ((), ())


def _raw_word(word: str) -> None:
    norm = normalize(word)
    hashes = tuple(hit[1] for tok in TOKEN_RE.findall(norm) if (hit := _memo(tok)) is not None)
    nums = tuple(n2 for n in _NUMBER.findall(norm) if (n2 := _is_number(n)) is not None)
    _RAW_MEMO[word] = (hashes, nums) if hashes or nums else _EMPTY


def text_features(text: str) -> tuple[list[int], set[str]]:
    """``(word_hashes(text), numbers(text))`` from a memo keyed by the raw whitespace-delimited words.

    Equal to the two functions: normalisation maps characters one by one, no whitespace character is deleted by
    it, and neither a token nor a number spans whitespace, so the tokens of the text are the tokens of its words
    (tests/processors/test_stories.py checks it for every character). The exception is text that NFKC changes:
    ``normalize`` applies NFKC to a whole text when it holds presentation forms, changing its other words too,
    so such text (rare) takes the whole-text path.
    """
    if not unicodedata.is_normalized("NFKC", text):
        return word_hashes(text), numbers(text)
    memo = _RAW_MEMO
    if len(memo) >= _RAW_MEMO_MAX:
        memo.clear()
    words = text.split()
    hits = list(map(memo.get, words))  # one lookup per word, in C; misses (None) are filled in below
    if None in hits:
        for word in {w for w, h in zip(words, hits, strict=True) if h is None}:
            _raw_word(word)
        hits = list(map(memo.__getitem__, words))
    found = cast("list[tuple[tuple[int, ...], tuple[str, ...]]]", hits)  # every word has its entry now
    hashes = set(chain.from_iterable(map(itemgetter(0), found)))
    return sorted(hashes), set(chain.from_iterable(map(itemgetter(1), found)))


class StoryItem(BaseModel):
    """What the story stage needs of one enriched article (JSON on the stories topic)."""

    model_config = ConfigDict(frozen=True)

    article_id: str
    t: AwareDatetime
    source: str = ""
    url: str | None = None
    title: str = ""
    labels: list[str] = Field(default_factory=list)
    words: list[int] = Field(default_factory=list)
    visit_keys: list[str] = Field(default_factory=list)
    entities: list[str] = Field(default_factory=list)
    replay: bool = False
    notify: bool = True


class StoryItems(BaseModel):
    """Several story items in one message of the stories topic (the enrich agent sends one per batch)."""

    model_config = ConfigDict(frozen=True)

    items: list[StoryItem]


def _snippet(text: str, limit: int = 90) -> str:
    """The first words of an untitled article, for the alert title."""
    first = " ".join(text.split())
    return first if len(first) <= limit else first[:limit].rsplit(" ", 1)[0] + "…"


def story_item(article: EnrichedArticle) -> StoryItem:
    """The story features of an enriched article."""
    text = article.text
    words, nums = text_features(text)
    ents: set[str] = {f"n:{n}" for n in nums}
    for v in article.visits:
        ents.add(f"who:{v.visitor_id}")
        if v.destination_city:
            ents.add(f"city:{normalize(v.destination_city)}")
    # every field is built here with its declared type (the article is validated): no second validation
    return StoryItem.model_construct(article_id=article.id, t=article.event_time, source=article.source,
                                     url=article.url, title=article.title or _snippet(text),
                                     labels=article.labels.true_labels(), words=words,
                                     visit_keys=sorted({v.key for v in article.visits}), entities=sorted(ents),
                                     replay=article.replay, notify=article.notify)


def jaccard(a: Iterable[int], b: Iterable[int]) -> float:
    """Jaccard similarity of two hash sets (0 for two empty sets)."""
    sa, sb = set(a), set(b)
    union = len(sa | sb)
    return len(sa & sb) / union if union else 0.0


def days_apart(a: StoryItem, b: StoryItem) -> float:
    """Event-time distance in days."""
    return abs((a.t - b.t).total_seconds()) / 86400.0


@dataclass(frozen=True)
class Match:
    """Why two items are (not) the same story."""

    same: bool
    jaccard: float
    days: float
    reason: str


def decide(j: float, d: float, shared_visit: bool, shared_entities: int) -> str | None:
    """The rule that makes two items within the window one story (``text``/``visit``/``entities``), or None."""
    if j >= TEXT_BASE + TEXT_SLOPE * d:
        return "text"
    if j >= VISIT_MIN and shared_visit:
        return "visit"
    if j >= ENTITY_MIN and shared_entities >= 2:
        return "entities"
    return None


def compare(a: StoryItem, b: StoryItem) -> Match:
    """The same-story decision for two items, with the figures behind it (see the module docstring)."""
    d = days_apart(a, b)
    if d * 86400.0 > WINDOW.total_seconds():
        return Match(False, 0.0, d, "outside window")
    j = jaccard(a.words, b.words)
    reason = decide(j, d, bool(set(a.visit_keys) & set(b.visit_keys)), len(set(a.entities) & set(b.entities)))
    return Match(reason is not None, j, d, reason or "below threshold")


def same_story(a: StoryItem, b: StoryItem) -> bool:
    """True when ``a`` and ``b`` report the same story."""
    return compare(a, b).same


# --- compact member rows (the values of the stories table) -----------------------------------------------

def pack_words(words: Iterable[int]) -> str:
    """Sorted 32-bit word hashes as one base64 string (little-endian): a compact table value."""
    arr = array("I", sorted(words))
    if sys.byteorder == "big":  # pragma: no cover - pinned to little-endian on every host
        arr.byteswap()
    return base64.b64encode(arr.tobytes()).decode("ascii")


def unpack_words(packed: str) -> list[int]:
    """The inverse of ``pack_words``."""
    arr = array("I")
    arr.frombytes(base64.b64decode(packed))
    if sys.byteorder == "big":  # pragma: no cover
        arr.byteswap()
    return arr.tolist()


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _row(item: StoryItem, cluster: str) -> dict[str, Any]:
    """The table value of a member: plain JSON types only, words packed."""
    return {"cluster": cluster, "t": _iso(item.t), "w": pack_words(item.words), "v": list(item.visit_keys),
            "e": list(item.entities), "s": item.source, "u": item.url, "ti": item.title, "l": list(item.labels),
            "r": item.replay, "n": item.notify}


def _item(aid: str, row: dict[str, Any]) -> StoryItem:
    """The StoryItem of a member row (rows written before the compact format are validated as they are)."""
    if "article_id" in row:
        return StoryItem.model_validate({k: v for k, v in row.items() if k != "cluster"})
    return StoryItem.model_construct(
        article_id=aid, t=datetime.fromisoformat(row["t"]), source=row.get("s", ""), url=row.get("u"),
        title=row.get("ti", ""), labels=list(row.get("l", [])), words=unpack_words(row.get("w", "")),
        visit_keys=list(row.get("v", [])), entities=list(row.get("e", [])), replay=bool(row.get("r")),
        notify=bool(row.get("n", True)))


def _row_sig(row: dict[str, Any]) -> tuple[float, frozenset[int], frozenset[str], frozenset[str]]:
    """(event time as epoch seconds, words, visit keys, entities) of a member row, old or compact."""
    if "article_id" in row:
        return (datetime.fromisoformat(str(row["t"])).timestamp(), frozenset(row.get("words", [])),
                frozenset(row.get("visit_keys", [])), frozenset(row.get("entities", [])))
    return (datetime.fromisoformat(row["t"]).timestamp(), frozenset(unpack_words(row.get("w", ""))),
            frozenset(row.get("v", [])), frozenset(row.get("e", [])))


class Link(NamedTuple):
    """What an alert needs of a member (kept in memory by the index); sorts by event time, then id."""

    t: datetime
    article_id: str
    source: str
    url: str | None
    title: str
    labels: tuple[str, ...]
    replay: bool
    notify: bool


def _link(item: StoryItem) -> Link:
    return Link(item.t, item.article_id, item.source, item.url, item.title, tuple(item.labels), item.replay,
                item.notify)


# --- the in-memory candidate index -------------------------------------------------------------------------

_WINDOW_S = WINDOW.total_seconds()
_DAY_S = 86400.0


class _Shape:
    """The members of one event-time bucket with one signature (words, visit keys, entities): copies of a
    text in a bucket are compared once."""

    __slots__ = ("words", "n", "visits", "ents", "bucket", "members", "near")

    def __init__(self, words: frozenset[int], visits: frozenset[str], ents: frozenset[str], bucket: int) -> None:
        self.words, self.visits, self.ents, self.bucket = words, visits, ents, bucket
        self.n = len(words)
        self.members: dict[str, float] = {}  # article id -> event time (epoch seconds)
        self.near: list[_Near] | None = None  # the shapes it is related to (StoryIndex.touched), once known


class _Near(NamedTuple):
    """A shape related to another at event-time distance 0 (the loosest case), with the figures ``decide`` needs
    at any distance. The relation is symmetric: the same figures hold from either side."""

    shape: _Shape
    j: float
    shared_visit: bool
    shared_ents: int
    always: bool  # related at the widest distance of the window too: every member within the window counts


def _relate(shape: _Shape, j: float, visits: frozenset[str], ents: frozenset[str]) -> _Near | None:
    """``shape`` as a neighbour of an item with ``visits`` and ``ents`` sharing words at Jaccard ``j``, or None
    when they are not the same story even at distance 0."""
    shared_visit = bool(visits & shape.visits)
    shared_ents = len(ents & shape.ents) if j >= ENTITY_MIN else 0
    if decide(j, 0.0, shared_visit, shared_ents) is None:
        return None
    return _Near(shape, j, shared_visit, shared_ents, decide(j, WINDOW.days, shared_visit, shared_ents) is not None)


class StoryIndex:
    """The cluster index over ``state`` (the stories table or a dict) with an in-memory candidate index.

    ``state`` is the durable truth (rows ``m:<id>``, clusters ``c:<key>``, ``count``, ``pending``);
    the candidate index is rebuilt from its ``m:`` rows (``load``) and kept in step by ``assign`` and
    ``evict``. Postings map an event-time bucket (``WINDOW`` wide) and a word hash to *shapes* (one
    signature within one bucket), so an article reads 3 buckets per word, whatever the index size.
    """

    def __init__(self, state: MutableMapping[str, Any]) -> None:
        self.state = state
        self.load()

    def load(self) -> None:
        """(Re)build the candidate index from the member rows of ``state``."""
        self.shapes: dict[tuple[int, frozenset[int], frozenset[str], frozenset[str]], _Shape] = {}
        self.postings: dict[int, dict[int, list[_Shape]]] = {}  # bucket -> word hash -> shapes
        self.visit_postings: dict[str, set[_Shape]] = {}
        self.cluster_of: dict[str, str] = {}  # article id -> cluster key
        self.members_of: dict[str, set[str]] = {}  # cluster key -> article ids
        self.where: dict[str, _Shape] = {}  # article id -> its shape
        self.links: dict[str, Link] = {}  # article id -> its alert fields
        self.days: dict[int, set[str]] = {}  # event day number -> article ids
        self.newest: float | None = None
        self.capped: set[int] = set()  # buckets where a shape's candidates were capped: no neighbour lists near them
        self._fresh: tuple[tuple[int, frozenset[int], frozenset[str], frozenset[str]], list[_Near]] | None = None
        for k, v in list(self.state.items()):
            if isinstance(k, str) and k.startswith("m:") and isinstance(v, dict):
                t, words, visits, ents = _row_sig(v)
                self._add(k[2:], str(v.get("cluster") or k[2:]), t, words, visits, ents)
                self.links[k[2:]] = _link(_item(k[2:], v))

    # -- in-memory bookkeeping
    def _add(self, aid: str, cluster: str, t: float, words: frozenset[int], visits: frozenset[str],
             ents: frozenset[str]) -> None:
        b = int(t // _WINDOW_S)
        key = (b, words, visits, ents)
        shape = self.shapes.get(key)
        fresh, self._fresh = self._fresh, None
        if shape is None:
            shape = self.shapes[key] = _Shape(words, visits, ents, b)
            if fresh is not None and fresh[0] == key:  # its neighbours, found by touched(): each gains it too
                shape.near = fresh[1]
                for near in fresh[1]:
                    if near.shape.near is not None:
                        near.shape.near.append(near._replace(shape=shape))
            for vk in visits:
                self.visit_postings.setdefault(vk, set()).add(shape)
            post = self.postings.get(b)
            if post is None:
                post = self.postings[b] = {}
            for w in words:
                s = post.get(w)
                if s is None:
                    post[w] = [shape]
                else:
                    s.append(shape)
        shape.members[aid] = t
        self.cluster_of[aid] = cluster
        self.members_of.setdefault(cluster, set()).add(aid)
        self.where[aid] = shape
        self.days.setdefault(int(t // _DAY_S), set()).add(aid)
        if self.newest is None or t > self.newest:
            self.newest = t

    def _remove(self, aid: str) -> None:
        key = self.cluster_of.pop(aid, None)
        self.links.pop(aid, None)
        if key is not None:
            rest = self.members_of.get(key)
            if rest is not None:
                rest.discard(aid)
                if not rest:
                    del self.members_of[key]
        shape = self.where.pop(aid, None)
        if shape is None:
            return
        shape.members.pop(aid, None)
        if shape.members:
            return
        b = shape.bucket
        del self.shapes[(b, shape.words, shape.visits, shape.ents)]
        for near in shape.near or ():
            if near.shape.near is not None:
                near.shape.near = [x for x in near.shape.near if x.shape is not shape]
        post = self.postings.get(b, {})
        for w in shape.words:
            s = post.get(w)
            if s is not None:
                s.remove(shape)
                if not s:
                    del post[w]
        if not post:
            self.postings.pop(b, None)
        for vk in shape.visits:
            vs = self.visit_postings.get(vk)
            if vs is not None:
                vs.discard(shape)
                if not vs:
                    del self.visit_postings[vk]

    def touched(self, item: StoryItem) -> set[str]:
        """Keys of the clusters holding a member that is the same story as ``item`` (exact, see below).

        Candidates are the shapes sharing words with ``item`` in the 3 buckets around it, counted with
        the postings; up to ``ceil(ENTITY_MIN × |words|) − 1`` of the longest postings (over ``SKIP_DF``)
        are not read, which cannot lose a pair that meets ``ENTITY_MIN`` (it shares at least that many
        words); the visit rule's candidates come from the visit-key postings. At most ``MAX_CANDIDATES``
        shapes (the highest counts) are verified per article.

        The shapes related to a shape (``_Near``) are found once: a later copy of a known shape (same bucket,
        words, visit keys, entities) reads its neighbour list instead of counting again, and a new shape joins
        the lists of its neighbours (also where its own list is not read). The relation is symmetric and exact, so
        the lists equal a new count; a count the ``MAX_CANDIDATES`` cap cut is not exact and joins no list, so every
        item within a bucket of it counts again.
        """
        words = frozenset(item.words)
        if not words:
            return set()
        t = item.t.timestamp()
        b = int(t // _WINDOW_S)
        visits, ents = frozenset(item.visit_keys), frozenset(item.entities)
        key = (b, words, visits, ents)
        shape = self.shapes.get(key)
        listed = not self.capped or self.capped.isdisjoint((b - 1, b, b + 1))
        out: set[str] = set()
        collect = self._collect
        if shape is not None and shape.near is not None and listed:
            itself = _relate(shape, 1.0, visits, ents)
            if itself is not None:
                collect(itself, t, out)
            for near in shape.near:
                collect(near, t, out)
            return out
        related, exact = self._related(words, b, visits, ents)
        for near in related.values():
            collect(near, t, out)
        if not exact:
            self.capped.add(b)
        elif shape is None:  # kept even when unused here: its neighbours' lists must gain it (see _add)
            self._fresh = (key, list(related.values()))
        else:
            shape.near = [near for s, near in related.items() if s is not shape]
        return out

    def _related(self, words: frozenset[int], b: int, visits: frozenset[str],
                 ents: frozenset[str]) -> tuple[dict[_Shape, _Near], bool]:
        """The shapes related to an item (``words`` in bucket ``b``) by counting shared words over the postings
        (see ``touched``), and whether that is all of them (False when the ``MAX_CANDIDATES`` cap applied)."""
        n = len(words)
        gets = [p.get for p in (self.postings.get(b - 1), self.postings.get(b), self.postings.get(b + 1)) if p]
        lists = [s for get in gets for s in map(get, words) if s]
        need = max(1, math.ceil(ENTITY_MIN * n - 1e-9))  # shared words any text/entity match must have
        skipped = 0
        if len(lists) > need and SKIP_DF < max(map(len, lists)):
            lists.sort(key=len, reverse=True)
            while skipped < need - 1 and len(lists[skipped]) > SKIP_DF:
                skipped += 1
        counts: Counter[_Shape] = Counter(chain.from_iterable(lists[skipped:] if skipped else lists))
        floor = need - skipped  # fewer counted shared words than this: below ENTITY_MIN, only the visit rule
        related: dict[_Shape, _Near] = {}
        exact = True
        if not skipped and len(counts) <= MAX_CANDIDATES:  # the common case: every count is exact, no cap applies
            for shape, c in counts.items():
                if c >= floor:
                    j = c / (n + shape.n - c)
                    if j >= ENTITY_MIN and (near := _relate(shape, j, visits, ents)) is not None:
                        related[shape] = near
        else:
            cands = [(s, c) for s, c in counts.items() if c >= floor]
            if len(cands) > MAX_CANDIDATES:
                cands = heapq.nlargest(MAX_CANDIDATES, cands, key=lambda kv: kv[1])
                exact = False
            for shape, c in cands:
                if skipped:
                    c = len(words & shape.words)
                j = c / (n + shape.n - c)
                if j >= ENTITY_MIN and (near := _relate(shape, j, visits, ents)) is not None:
                    related[shape] = near
        for vk in visits:  # the visit rule (Jaccard >= VISIT_MIN) holds below ENTITY_MIN too
            for shape in self.visit_postings.get(vk, ()):
                if abs(shape.bucket - b) <= 1 and shape not in related:
                    c = len(words & shape.words)
                    j = c / (n + shape.n - c)
                    if VISIT_MIN <= j and (near := _relate(shape, j, visits, ents)) is not None:
                        related[shape] = near
        return related, exact

    def _collect(self, near: _Near, t: float, out: set[str]) -> None:
        """Add to ``out`` the clusters of the members of ``near.shape`` within the window of event time ``t`` that
        are the same story at their distance."""
        cluster_of = self.cluster_of
        always = near.always
        for aid, mt in near.shape.members.items():
            key = cluster_of[aid]
            if key in out:
                continue
            dt = abs(t - mt)
            if dt > _WINDOW_S:
                continue
            if always or decide(near.j, dt / _DAY_S, near.shared_visit, near.shared_ents) is not None:
                out.add(key)

    # -- the durable index
    def assign(self, item: StoryItem, now: float = 0.0) -> Outcome:
        """Fold ``item`` into the index; ``now`` is processing time (for the debounce only)."""
        state = self.state
        aid = item.article_id
        known = self.cluster_of.get(aid)
        if known is not None:
            return Outcome(key=known, changed=False)
        self.evict(item.t)
        touched = sorted(self.touched(item))
        clusters = [c for c in (state.get(f"c:{k}") for k in touched) if c is not None]
        me_t = _iso(item.t)
        emitted = sorted((c for c in clusters if c.get("emitted")), key=lambda c: (c["head_t"], c["key"]))
        if emitted:
            head_key, head_t = emitted[0]["key"], emitted[0]["head_t"]
        else:
            head_t, head_key = min([(me_t, aid)] + [(c["head_t"], c["key"]) for c in clusters])
        for c in clusters:
            if c["key"] == head_key:
                continue
            del state[f"c:{c['key']}"]
            moved = self.members_of.pop(c["key"], set())
            for a in sorted(moved):  # members of a merged cluster now carry the head's key
                row = state.get(f"m:{a}")
                if row is not None and row.get("cluster") != head_key:
                    state[f"m:{a}"] = {**row, "cluster": head_key}
                self.cluster_of[a] = head_key
            self.members_of.setdefault(head_key, set()).update(moved)
        state[f"m:{aid}"] = _row(item, head_key)
        self._add(aid, head_key, item.t.timestamp(), frozenset(item.words), frozenset(item.visit_keys),
                  frozenset(item.entities))
        self.links[aid] = _link(item)
        state["count"] = int(state.get("count") or 0) + 1
        old = state.get(f"c:{head_key}") or {}
        labels = sorted(set(item.labels).union(*(c.get("labels", []) for c in clusters)))
        cluster = {"key": head_key, "head_t": head_t, "size": len(self.members_of[head_key]), "labels": labels,
                   "emitted": bool(old.get("emitted")) or bool(emitted),
                   "first_change": old.get("first_change", now), "changed_at": now}
        state[f"c:{head_key}"] = cluster
        if not cluster["emitted"] and labels:
            pending = state.get("pending") or []
            if touched or head_key not in pending:
                keep = set(pending) - set(touched)
                keep.add(head_key)
                state["pending"] = sorted(keep)
        return Outcome(key=head_key, changed=True, merged=[k for k in touched if k != head_key],
                       emitted=cluster["emitted"] and bool(labels))

    def evict(self, t: datetime, *, max_members: int = MAX_MEMBERS) -> int:
        """See ``evict``."""
        ts = t.timestamp()
        newest = ts if self.newest is None else max(ts, self.newest)
        state = self.state
        count = int(state.get("count") or 0)
        if count <= max_members:
            return 0
        cutoff = int((newest - RETENTION.total_seconds()) // _DAY_S)
        old = sorted(d for d in self.days if d < cutoff)
        dropped = 0
        for d in old:
            for aid in sorted(self.days.pop(d)):
                key = self.cluster_of.get(aid)
                self._remove(aid)
                if key is not None and key not in self.members_of and f"c:{key}" in state:
                    del state[f"c:{key}"]  # its last member went
                if f"m:{aid}" in state:
                    del state[f"m:{aid}"]
                    dropped += 1
        if old:
            state["count"] = count - dropped
        return dropped

    def members(self, key: str) -> list[StoryItem]:
        """The members of cluster ``key``, earliest first."""
        state = self.state
        items = [_item(a, row) for a in self.members_of.get(key, ()) if (row := state.get(f"m:{a}")) is not None]
        return sorted(items, key=lambda m: (m.t, m.article_id))

    def alert(self, key: str) -> Alert | None:
        """The story alert of cluster ``key`` from the in-memory member fields (no table reads)."""
        links = [self.links[a] for a in self.members_of.get(key, ()) if a in self.links]
        return alert_of(key, links) if links else None

    @contextmanager
    def batch(self) -> Iterator[WriteBack]:
        """Buffer the writes of several ``assign``/``due`` calls; each changed key is written once at the end."""
        base = self.state
        wb = WriteBack(base)
        self.state = wb
        try:
            yield wb
        finally:
            self.state = base
            wb.flush()


_GONE = object()


class WriteBack(MutableMapping[str, Any]):
    """A write-back overlay of a mapping: reads see the pending writes; ``flush`` applies each key once."""

    def __init__(self, base: MutableMapping[str, Any]) -> None:
        self.base = base
        self.dirty: dict[str, Any] = {}
        self.read: dict[str, Any] = {}  # values read from the base during the batch (never mutated in place)

    def get(self, key: str, default: Any = None) -> Any:
        v = self.dirty.get(key, self.dirty)
        if v is self.dirty:
            v = self.read.get(key, self.read)
            if v is self.read:
                v = self.read[key] = self.base.get(key, _GONE)
        return default if v is _GONE else v

    def __getitem__(self, key: str) -> Any:
        v = self.get(key, _GONE)
        if v is _GONE:
            raise KeyError(key)
        return v

    def __setitem__(self, key: str, value: Any) -> None:
        self.dirty[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(key)
        self.dirty[key] = _GONE

    def __contains__(self, key: object) -> bool:
        return self.get(key, _GONE) is not _GONE  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        for k in self.base:
            if self.dirty.get(k) is not _GONE:
                yield k
        for k, v in self.dirty.items():
            if v is not _GONE and k not in self.base:
                yield k

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def flush(self) -> None:
        """Write every changed key to the base mapping once."""
        dirty, self.dirty, self.read = self.dirty, {}, {}
        for k, v in dirty.items():
            if v is _GONE:
                if k in self.base:
                    del self.base[k]
            else:
                self.base[k] = v


@dataclass
class Outcome:
    """What ``assign`` did with one item."""

    key: str | None  # the item's cluster key
    changed: bool
    merged: list[str] = field(default_factory=list)  # keys of clusters folded into ``key``
    emitted: bool = False  # the cluster already had its alert: send the update now


# --- functions over a plain mapping (tests, cluster_offline); the index is cached per mapping ---------------

_CACHE: OrderedDict[int, tuple[MutableMapping[str, Any], StoryIndex, int]] = OrderedDict()
_CACHE_SIZE = 8


def index_for(state: MutableMapping[str, Any]) -> StoryIndex:
    """The StoryIndex of ``state``, rebuilt when ``state`` changed size behind its back."""
    hit = _CACHE.get(id(state))
    if hit is not None and hit[0] is state and hit[2] == len(state):
        _CACHE.move_to_end(id(state))
        return hit[1]
    idx = StoryIndex(state)
    _CACHE[id(state)] = (state, idx, len(state))
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return idx


def _seen(state: MutableMapping[str, Any], idx: StoryIndex) -> None:
    _CACHE[id(state)] = (state, idx, len(state))


def assign(state: MutableMapping[str, Any], item: StoryItem, now: float = 0.0) -> Outcome:
    """Fold ``item`` into the cluster index ``state``; ``now`` is processing time (for the debounce only)."""
    idx = index_for(state)
    out = idx.assign(item, now)
    _seen(state, idx)
    return out


def due(state: MutableMapping[str, Any], now: float, *, quiet: float = QUIET_SECONDS,
        max_delay: float = MAX_DELAY_SECONDS, force: bool = False) -> list[str]:
    """Pending cluster keys whose story alert is due at processing time ``now``; marks them emitted."""
    out, keep = [], []
    pending = state.get("pending") or []
    for key in pending:
        c = state.get(f"c:{key}")
        if c is None or c.get("emitted"):
            continue
        if force or now - c["changed_at"] >= quiet or now - c["first_change"] >= max_delay:
            state[f"c:{key}"] = {**c, "emitted": True}
            out.append(key)
        else:
            keep.append(key)
    if out or keep != list(pending):
        state["pending"] = keep
    return out


UPDATE_EVERY_ITEMS = 1_000  # an alerted cluster that grows sends its update once this many items were folded since


def updates_due(state: MutableMapping[str, Any], grown: Mapping[str, int], seq: int, now: float, *, idle: bool,
                every: int = UPDATE_EVERY_ITEMS, max_delay: float = MAX_DELAY_SECONDS) -> list[str]:
    """Keys of alerted clusters whose update (their story alert, re-sent with its new members) is due.

    ``grown`` maps the alerted clusters that grew in this batch to the stage's item count (``seq``, items folded
    so far) at their growth; they wait in ``state["updates"]`` (key -> [item count, processing time] of their first
    unsent growth). An update is due once ``every`` items were folded since (counted in items, not seconds, so a
    replay sends the same updates at any processing speed), when the stage is ``idle`` (a batch without items: it
    has caught up, so a quiet live stream is not kept waiting), or after ``max_delay`` seconds of processing time
    (a safety net for a slow stream that is never idle). Due keys leave ``state["updates"]``.
    """
    old = state.get("updates") or {}
    updates = dict(old)
    for k, since in grown.items():
        updates.setdefault(k, [since, now])
    out = []
    for k, v in list(updates.items()):
        since, t = v if isinstance(v, list) else (seq, float(v))  # rows of older workers: processing time only
        if idle or seq - since >= every or now - t >= max_delay:
            out.append(k)
            del updates[k]
    if updates != old:
        state["updates"] = updates
    return out


@dataclass
class Folded:
    """What ``fold_batch`` did: the clusters whose story alert is due, items folded, whether anything waits."""

    keys: list[str]
    n: int
    waiting: bool  # clusters pending their first alert or an update: the stage needs ticks until they are sent


def fold_batch(index: StoryIndex, items: Iterable[tuple[Any, StoryItem]], now: float,
               on_error: Callable[[Any, StoryItem, Exception], None] | None = None) -> Folded:
    """One batch of the story stage: fold ``items`` (tag, item) into ``index`` through a write-back (each changed
    table key written once), then pick the story alerts that are due: new clusters after their debounce
    (``due``), grown alerted clusters per ``updates_due``. ``now`` is processing time. An item whose ``assign``
    raises is passed to ``on_error`` with its tag (re-raised without one) and the batch goes on."""
    grown: dict[str, int] = {}
    n = 0
    with index.batch() as state:
        seq = int(state.get("seq") or 0)
        for tag, item in items:
            try:
                outcome = index.assign(item, now)
            except Exception as e:
                if on_error is None:
                    raise
                on_error(tag, item, e)
                continue
            n += 1
            seq += 1
            if outcome.changed and outcome.emitted and outcome.key:
                grown.setdefault(outcome.key, seq)  # the cluster already alerted: its update is due soon
        if n:
            state["seq"] = seq
        keys = updates_due(state, grown, seq, now, idle=not n)
        keys += due(state, now)
        waiting = bool(state.get("pending")) or bool(state.get("updates"))
    return Folded(keys=list(dict.fromkeys(keys)), n=n, waiting=waiting)


def evict(state: MutableMapping[str, Any], t: datetime, *, max_members: int = MAX_MEMBERS) -> int:
    """Bound the index: once it holds more than ``max_members``, drop the members (and emptied clusters) of
    the event days older than the newest event time − RETENTION. Returns how many members were dropped.

    Eviction is the one place where arrival order can matter (a report older than the retention that
    arrives after its story was evicted starts a new cluster), so it only runs when the index is large.
    """
    idx = index_for(state)
    out = idx.evict(t, max_members=max_members)
    _seen(state, idx)
    return out


def cluster_members(state: MutableMapping[str, Any], key: str) -> list[StoryItem]:
    """The members of cluster ``key``, earliest first."""
    if f"c:{key}" not in state:
        return []
    return index_for(state).members(key)


def story_alert(key: str, members: list[StoryItem]) -> Alert:
    """The story alert of a cluster: id from the cluster key, links to every report."""
    return alert_of(key, [_link(m) for m in members])


def alert_of(key: str, members: list[Link]) -> Alert:
    """``story_alert`` over the members' link fields (what the index keeps in memory)."""
    members = sorted(members)
    head = next((m for m in members if m.article_id == key), members[0])
    sources = sorted({m.source for m in members})
    labels = sorted({lab for m in members for lab in m.labels})
    summary = f"{', '.join(labels) or 'story'}; {len(members)} report(s) from {len(sources)} source(s)"
    return Alert(
        id=alert_id("story", key), kind="story", key=key, severity="medium",
        title=head.title or head.article_id, summary=summary,
        links=[AlertLink.model_construct(source=m.source, url=m.url, article_id=m.article_id, title=m.title,
                                         published_at=m.t) for m in members[:MAX_LINKS]],
        article_ids=[m.article_id for m in members], labels=labels,
        first_seen=members[0].t, last_seen=members[-1].t, corroborations=len(members),
        replay=all(m.replay for m in members), notify=any(m.notify for m in members),
    )


def indexed(article: EnrichedArticle) -> bool:
    """Whether an article enters the story index: it carries a story label or reports a visit."""
    return bool(article.labels.true_labels() or article.visits)


def cluster_offline(items: Iterable[StoryItem]) -> dict[str, str]:
    """Article id -> story key for a batch, folded in event-time order: the reference the stream must match."""
    state: dict[str, Any] = {}
    out: dict[str, str] = {}
    for it in sorted(items, key=lambda i: (i.t, i.article_id)):
        res = assign(state, it)
        if res.key is None:
            continue
        out[it.article_id] = res.key
        if res.merged:
            gone = set(res.merged)
            out = {a: (res.key if k in gone else k) for a, k in out.items()}
    return out
