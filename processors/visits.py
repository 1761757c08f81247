"""High-level visit extraction: who travelled (or will) to which city and country, with a cross-outlet visit key.

How a visit is found, sentence by sentence:

* **Visitors** are mentions of known officials (``officials.yaml``: full names anywhere; short
  ``context`` forms only when a full name of the same person is in the article) or role mentions
  (``roles.yaml``: a title followed by a nationality adjective, country or movement: "رئيس المخابرات
  المصرية", "وفد حركة حماس", or a title with its own body: "الأمين العام للأمم المتحدة"). A role
  mention followed by a name takes that name. Delegations of states count only when high-level
  ("رفيع المستوى", "أمني", "قيادي") or led by a named person ("برئاسة ...").
* **Triggers** (``lexicon.yaml`` ``travel``) give the status: arrived (وصل، زار، توجه…), upcoming
  (يصل، سيزور، يتوجه…), ongoing (في زيارة، خلال زيارته…). The visitor is the mention right before
  the trigger (subject first) or else the first one after it (verb first), or else the visitor of a
  previous sentence. Hosting triggers (استقبل…) make the *guest* the visitor and the host's country the
  destination; meetings (التقى…) count only for participants abroad at a named place. A trigger right
  after a negation (لم، رفض…) or a hedge (قد يصل), anywhere after a denial (نفى، ألغى، أرجأ…), or in a
  sentence about a phone/video call gives no visit.
* **Destination**: the first place named after the trigger (``places.yaml``; "من X" is an origin and
  is skipped), plus places coordinated with it ("مصر وإسرائيل والأردن"). "قادما من X" after a trip
  reports the previous leg: the traveller was in X (a visit, when X is abroad for him). A visit to the visitor's own
  country, or an international official at their organisation's seat, is no visit.

**Visit key** = ``<identity>><destination country>@<bucket>``:

* *identity*: an official's ``key_as`` if set (e.g. every Hamas leader -> ``ps-hamas``, the body that
  travels), else country + office (``eg-intelligence-chief``, ``us-envoy``), so "اللواء حسن رشاد" in one
  outlet and "رئيس المخابرات المصرية" in another share a key; unnamed role mentions use the same
  country + office slug; international offices use the office (``un-secretary-general``).
* *bucket*: the calendar month (``YYYY-MM``, UTC) of the article's ``published_at``. Reports of one trip are
  published within days of each other, and a month is coarse enough that outlets a day apart agree. A trip the
  sentence names by a day relative to the dated article ("غداً الثلاثاء" for a trip to come, or a weekday ahead;
  "أمس" for one reported) takes that day's month (``trip_bucket``), so the reports of 30 November and 1 December of
  a trip on 1 December share a key; otherwise a trip straddling a month end can split in two keys (the novelty
  window then still merges nothing wrongly, it only raises two alerts). An article without a date uses the latest
  "month year" or numeric date ("9/1/2025" day/month/year, "2025-01-09") written in its text, else the latest year,
  else ``undated`` (a bare weekday, "اليوم الخميس", cannot be placed deterministically). In the stream
  (``enrich_article``) an article without a date takes the month it was fetched instead: it is news of that moment,
  and the archive keeps the fetch time for replays. ``trucewatch classify`` gives an undated report the key of the
  same trip reported with a date in its input (``join_undated``). Keys depend only on the article's text and
  ``published_at``, never on the wall clock, so replays give the same keys.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta
from itertools import pairwise
from operator import itemgetter
from typing import Final

from processors.analysis import (
    Doc,
    Hit,
    Hits,
    analyse_text,
    article_parts,
    compiled_twin,
    of_kind,
    of_kinds,
    use_compiled,
    word_class,
)
from processors.knowledge import Knowledge, Official, Place, Title, get_knowledge
from processors.normalize import PUNCT, Sentence, TokenChars, normalize
from trucewatch.schema import Article, Visit

# Word classes (analysis.word_class): "does the sentence hold any of these words" is ``sent.bits & <CLASS>_BIT``, one
# AND instead of a scan of its tokens (``not <CLASS>.isdisjoint(sent.toks)``); a class is registered next to its set.

HIGH_DELEGATION_WORDS = frozenset({"رفيع", "امني", "قيادي", "قياديا", "امنيا", "رفيعا", "مستوي"})
STOPWORDS = frozenset(
    "في من الى إلى على عن مع ان أن إن قد لقد كما التي الذي الذين هذا هذه ذلك تلك حيث بعد قبل خلال عند لدى "
    "اليوم امس أمس غدا يوم صباح مساء الليله الاحد الاثنين الثلاثاء الاربعاء الخميس الجمعه السبت "
    "قال قالت اكد أكد اكدت اعلن أعلن اعلنت اشار أشار اوضح شدد بحث ناقش دعا طالب اضاف أضاف وقال واكد "
    "وذلك وفق وفقا بحسب حسب او أو ثم بين ضمن اثر إثر بسبب لبحث لمناقشه للقاء وسط نحو حول الي "
    "هو هي هم كان كانت يكون ليس لا لم لن ما ماذا متى كيف والذي والتي فيما بينما اذ إذ اذا إذا "
    "كذلك أيضا أيضاً ايضا بدوره بدورها بدورهم".split()
)
# token forms are normalised (ة->ه, ى->ي, أ->ا), so normalise the stopword list too
STOPWORDS = frozenset(normalize(w) for w in STOPWORDS)
_KIND = itemgetter(2)
_STATUS = {"arrived": "arrived", "upcoming": "upcoming", "ongoing": "ongoing"}  # a travel trigger's status
LAST_KEEP = 3
FORMER_WORDS = frozenset({"السابق", "السابقه", "الاسبق", "الاسبقه", "سابق", "سابقه", "اسبق", "سابقا"})
FORWARD_WINDOW = 14
BACK_WINDOW = 6
AFTER_SUBJECT_WINDOW = 6  # words (asides, places, numbers not counted)
PLACE_WINDOW = 14

_MONTHS = {
    1: ["يناير", "كانون الثاني"], 2: ["فبراير", "شباط"], 3: ["مارس", "آذار"], 4: ["أبريل", "ابريل", "نيسان"],
    5: ["مايو", "أيار"], 6: ["يونيو", "يونيه", "حزيران"], 7: ["يوليو", "يوليه", "تموز"],
    8: ["أغسطس", "اغسطس", "آب"], 9: ["سبتمبر", "أيلول"], 10: ["أكتوبر", "تشرين الأول"],
    11: ["نوفمبر", "تشرين الثاني"], 12: ["ديسمبر", "كانون الأول"],
}
_MONTH_NAMES = sorted((normalize(n) for ns in _MONTHS.values() for n in ns), key=len, reverse=True)
# the names longest first, grouped by their first letter (in that order within a group, so the same name matches
# first): the regex engine tries only the names that begin with the letter at hand
_MONTH_RE = re.compile("(" + "|".join(
    re.escape(c) + "(?:" + "|".join(re.escape(n[1:]) for n in _MONTH_NAMES if n[0] == c) + ")"
    for c in dict.fromkeys(n[0] for n in _MONTH_NAMES)) + ")")
_MONTH_NUM = {normalize(n): m for m, ns in _MONTHS.items() for n in ns}
# "(?<!\d)(19[5-9]\d|20[0-4]\d)(?!\d)" with the lookbehind after the first digit (the same matches): a pattern that
# begins with a literal lets the regex engine skip to the candidate characters instead of trying every position
_YEAR_RE = re.compile(r"(1(?<!\d1)9[5-9]\d|2(?<!\d2)0[0-4]\d)(?!\d)")
_NUMDATE_RE = re.compile(r"(?<![\d/.-])(?:(\d{1,2})[/.-](\d{1,2})[/.-](19[5-9]\d|20[0-4]\d)"
                         r"|(19[5-9]\d|20[0-4]\d)-(\d{1,2})-\d{1,2})(?![\d/.-]*\d)")
_NUMDATE_CUE = re.compile(r"\d[/.-]\d")  # in every _NUMDATE_RE match (and far cheaper to look for)
_FIRST_RE = re.compile(
    r"((?:في\s+)?(?:ال)?زيار[ةه]\s+(?:هي\s+)?(?:ال)?[أاإ]ول[ىي]|[أاإ]ول\s+زيار[ةه]|للمر[ةه]\s+(?:ال)?[أاإ]ول[ىي]"
    r"|(?:ال)?[أاإ]ول[ىي]\s+من\s+نوعها)[^.،,؛;\n]{0,140}"
)
_DIACRITIC_RE = re.compile(r"[\u064B-\u065F\u0670\u0640]")
# A background sentence recalls an earlier trip rather than reporting one: pluperfect framing ("وكان X قد زار",
# "وكانت آخر زيارة لـ") together with a date that puts the trip in the past (a month, a year, "الماضي", "آخر مرة").
# "وكان X قد وصل مساء أمس" has no such date and stays a report.
_PLUPERFECT = frozenset({"كان", "كانت", "وكان", "وكانت", "فكان", "فكانت"})
_PLUPERFECT_BIT: Final = word_class(_PLUPERFECT)
_PERIODS = frozenset({"الشهر", "الاسبوع", "العام", "السنه"})
_SINCE = frozenset({"من", "منذ", "عقب", "بعد", "اثر"})
_AGO = frozenset({"الماضي", "الماضيه", "السابق", "السابقه"})
_PAST_WORDS = frozenset({"الماضي", "الماضيه", "مره", "مطلع", "اوايل", "منتصف"}
                        | {normalize(n).split()[0] for ns in _MONTHS.values() for n in ns})


@dataclass
class Mention:
    """A person or body that may travel: a known official or a role (title + country/org)."""

    start: int
    end: int
    official: Official | None = None
    title: Title | None = None
    country: str | None = None
    org: str | None = None
    name: tuple[int, int] | None = None  # token span of the written name
    role_span: tuple[int, int] | None = None
    high: bool = True
    former: bool = False  # "وزير الخارجية الأميركي السابق": no longer in office, so no high-level visit
    alias_of: Mention | None = None  # a later bare surname ("وقال هاريس") of a role mention with a written name
    sent: Sentence | None = None  # the sentence the spans refer to

    # Written out (the dataclass keeps it and adds the rest): mypyc compiles it, whereas the generated one runs as
    # Python from a compiled caller (~4,000 instructions a mention). Same fields, order and defaults as above
    # (tests/processors/test_visits.py checks).
    def __init__(self, start: int, end: int, official: Official | None = None, title: Title | None = None,
                 country: str | None = None, org: str | None = None, name: tuple[int, int] | None = None,
                 role_span: tuple[int, int] | None = None, high: bool = True, former: bool = False,
                 alias_of: Mention | None = None, sent: Sentence | None = None) -> None:
        self.start = start
        self.end = end
        self.official = official
        self.title = title
        self.country = country
        self.org = org
        self.name = name
        self.role_span = role_span
        self.high = high
        self.former = former
        self.alias_of = alias_of
        self.sent = sent


@dataclass
class _Found:
    mention: Mention
    sentence: Sentence
    place: Place
    status: str
    identity: str = ""
    extra: dict[str, str | None] = field(default_factory=dict)

    def __init__(self, mention: Mention, sentence: Sentence, place: Place, status: str, identity: str = "",
                 extra: dict[str, str | None] | None = None) -> None:  # (compiled: see Mention.__init__)
        self.mention = mention
        self.sentence = sentence
        self.place = place
        self.status = status
        self.identity = identity
        self.extra = {} if extra is None else extra


_LAST_TRIP = frozenset({"الاخيره", "السابقه", "الماضيه"})
_LAST_TRIP_BIT: Final = word_class(_LAST_TRIP)
_VISIT_NOUNS_BIT: Final = word_class(("زياره", "زيارات"))


def _background(sent: Sentence, hits: list[Hit]) -> bool:
    """The sentence recalls a past trip (see _PLUPERFECT, or "خلال زيارة X الأخيرة إلى مصر" when that is the
    sentence's only trip word): its visits are background, not news."""
    toks = sent.toks
    last = [i for i, t in enumerate(toks)
            if (t.startswith(("زيار", "لزيار", "بزيار")) or t == "الزياره")
            and _LAST_TRIP.intersection(toks[i + 1:i + 6])] if sent.bits & _LAST_TRIP_BIT else []
    if last and all(any(i - 2 <= s <= i for i in last) for s, _e, k, _p in of_kind(hits, "trig") if k == "trig"):
        return True
    # "وتأتي الزيارة بعد نحو شهرين من زيارة الأمير فيصل إلى طهران في يونيو الماضي": an earlier trip, dated
    since = [i for i, t in enumerate(toks) if t in ("زياره", "زيارات") and i and toks[i - 1] in _SINCE] \
        if sent.bits & _VISIT_NOUNS_BIT else []
    if since and any(t in _AGO for t in toks[since[0]:]) and all(
            p == "noun" or s0 > since[0] for s0, _e, k, p in hits if k == "trig"):
        return True  # (a trip word after it is that earlier trip's: "والتي التقى خلالها الرئيس")
    if not sent.bits & _PLUPERFECT_BIT or not any(t in _PLUPERFECT for t in toks[:3]):
        return False
    trig = min((s0 for s0, _e, k, _p in hits if k == "trig"), default=0)
    for i, t in enumerate(toks[:trig + 12]):  # the trip's own date, not one in a later clause
        if "منذ" in toks[max(0, i - 3):i]:
            continue  # "منذ عام 2013", "منذ أواخر مايو/أيار": a duration ("the first since"), not the trip's date
        if t in _PAST_WORDS and (t != "مره" or "اخر" in toks[max(0, i - 2):i]):
            if toks[i - 1:i] == ["الاسبوع"] or toks[i + 1:i + 2] == ["الاسبوع"] or toks[i - 1:i] and (
                    toks[i - 1] in _WEEKDAYS):
                # "وكان قالن قد زار القاهرة الأسبوع الماضي", "الثلاثاء الماضي": a trip of the last days is still news
                continue
            return True
        if t == "سابق" and toks[i + 1:i + 2] == ["من"] and not _PERIODS.isdisjoint(toks[i + 2:i + 3]):
            return True  # "في وقت سابق من الشهر الجاري" (but "في وقت سابق من اليوم" is the same trip)
        if len(t) == 4 and t.isdigit() and 1950 <= int(t) <= 2049:
            return True
    return False


# --- mentions --------------------------------------------------------------------------------------

def _present_officials(doc: Doc) -> set[str]:
    out: set[str] = set()
    for hits in doc.hits:
        for _s, _e, _k, payload in of_kind(hits, "off"):
            if payload[1] != "context":
                out.add(payload[0])
    return out


def _hamza_al(sent: Sentence, j: int) -> bool:
    """Token j is written with "إل"/"أل" (a name such as "إلهام", "إلياس", "ألكسندر"), not the article "ال"."""
    return sent.toks[j].startswith("ال") and surface(sent, (j, j + 1), strip_particles=False).startswith(("إل", "أل"))


# honorifics that announce a personal name (not titles such as "رئيس", which may begin the next person's role)
_NAME_HONORIFICS = frozenset({"الامير", "الاميره", "الشيخ", "الشيخه", "السيد", "السيده", "الدكتور", "الدكتوره"})


def _name_after(sent: Sentence, i: int, hon: set[int], kn: Knowledge) -> tuple[int, int] | None:
    """An unknown written name (2-3 plain words) right after token i, skipping commas and honorifics."""
    toks, n = sent.toks, len(sent.toks)
    i0 = i
    while i < n and (toks[i] in PUNCT and toks[i] in ",\"" or i in hon):
        i += 1
    # after an honorific ("الأمير يزيد بن فرحان", "الشيخ محمد بن عبد الرحمن") a name is expected: its words may
    # also be common words, and "بن" links its parts
    honoured = any(toks[k] in _NAME_HONORIFICS for k in range(i0, i))
    longest = 5 if honoured else 3
    j = i
    while j < n and j - i < longest + 1:
        t = toks[j]
        if j > i and t == "الله":  # "عبد الله اليحيا"
            j += 1
            continue
        if honoured and j > i and t in ("بن", "بنت") and j + 1 < n and toks[j + 1] not in PUNCT:
            j += 1
            continue
        if not _plain_name_word(sent, j, kn, known_ok=honoured and j - i < 2) \
                or (j == i and t.startswith(("ال", "لل", "بال", "وال", "و")) and not _hamza_al(sent, j)):
            break
        j += 1
    if j - i < 2 or j - i > longest or toks[j - 1] in ("بن", "بنت"):
        return None
    if j < n and toks[j] not in PUNCT and toks[j] not in STOPWORDS and (
            sent.stems[j] not in kn.vocab.words or sent.stems[j] in kn.name_words or not toks[j].endswith(sent.stems[j])
            or _article_on_bare(sent, j, kn)):
        return None  # not clearly delimited (a known word such as a place or a trigger ends a name): running text
    return (i, j)


def _plain_name_word(sent: Sentence, j: int, kn: Knowledge, known_ok: bool = False) -> bool:
    """Token j can be part of an unknown written name: no punctuation, function word, digit or known word (a known
    word is accepted with ``known_ok``: the first words after an honorific)."""
    t, st = sent.toks[j], sent.stems[j]
    return not (t in PUNCT or t in STOPWORDS or len(t) < 2 or t.isdigit() or t in _COMPANIONS or t in _PURPOSE
                or (st in kn.vocab.words and st not in kn.name_words and t.endswith(st)
                    and not _article_on_bare(sent, j, kn) and not known_ok))


def _hit_words(hits: list[Hit], hon: set[int]) -> set[int]:
    """Token positions covered by any hit or honorific: never part of a name written before a title."""
    return {i for hs, he, _k, _p in hits for i in range(hs, he)} | hon


def _name_before(sent: Sentence, s: int, kn: Knowledge, taken: set[int]) -> tuple[int, int] | None:
    """An unknown written name (2-3 plain words) set before a title with a comma: "وصل X Y، وزير الخارجية
    الأمريكي". The name must open the clause: after a trigger word, a punctuation mark or the sentence start."""
    if s < 3 or sent.toks[s - 1] != ",":
        return None
    e = s - 1
    i = e
    while i > 0 and e - i < 3 and i - 1 not in taken and _plain_name_word(sent, i - 1, kn):
        i -= 1
    if e - i < 2 or (sent.toks[i].startswith(("ال", "و")) and not _hamza_al(sent, i)):
        return None
    if i and sent.toks[i - 1] not in PUNCT and sent.stems[i - 1] not in kn.vocab.words:
        return None  # not delimited: the words run on from unknown text
    return (i, e)


# Titles whose own wording may name a country ("المبعوث الأممي الخاص إلى اليمن", "الموفد الأميركي لدى لبنان"):
# that country is part of the title, never the destination of the trip.
ENVOY_TITLES = frozenset({"envoy", "un-envoy", "white-house-envoy", "quartet-envoy"})
_TITLE_QUAL = frozenset({"الخاص", "الخاصه", "الاممي", "الامميه", "الرياسي", "الدايم", "الدولي", "الدوليه"})
_TITLE_OF = frozenset({"لدي", "بشان", "لشوون", "لملف"})  # always part of the title: "لدى X", "لشؤون X"


def _title_tail(toks: list[str], k: int, place_ends: dict[int, int]) -> int:
    """End of an envoy title's own qualifiers: "الخاص"، "لدى X"، "لشؤون X", and "إلى X" when it cannot be the
    trip (after "الخاص", or when another "إلى/في <place>" follows: "المبعوث إلى اليمن ... وصل إلى مسقط")."""
    n = len(toks)
    k0 = k
    while k < n and toks[k] in _TITLE_QUAL:
        k += 1
    if toks[k:k + 2] == ["للشرق", "الاوسط"]:  # "المبعوث الأميركي للشرق الأوسط": a region's brief
        return k + 2
    if toks[k:k + 3] == ["لشوون", "الشرق", "الاوسط"]:
        return k + 3
    if k + 1 < n and k + 1 in place_ends and (toks[k] in _TITLE_OF or toks[k] == "الي" and (
            k > k0 and toks[k - 1] in ("الخاص", "الخاصه") and _brief_follows(toks, place_ends[k + 1])
            or any(j in place_ends and toks[j - 1] in ("الي", "في")
                   for j in range(place_ends[k + 1] + 1, min(n, place_ends[k + 1] + 9))))):
        k = place_ends[k + 1]
        while k < n and toks[k] in _TITLE_QUAL:
            k += 1
    elif k < n and k in place_ends and toks[k].startswith("ل"):
        # "المبعوث الأميركي الخاص لأوكرانيا وروسيا": لـ + place is the envoy's brief (with its coordinated places)
        # after "الخاص" or when the trip's own "إلى/في <place>" follows; "وصل المبعوث الأمريكي لبيروت" is a trip
        e = place_ends[k]
        while e < n and e in place_ends and toks[e].startswith("و"):
            e = place_ends[e]
        if (k > k0 and toks[k - 1] in ("الخاص", "الخاصه")) or any(
                j in place_ends and toks[j - 1] in ("الي", "في") for j in range(e + 1, min(n, e + 9))):
            k = e
    return k


def _brief_follows(toks: list[str], pe: int) -> bool:
    """"المبعوث الخاص إلى سوريا توم باراك": after "الخاص", "إلى X" is the envoy's brief when more of the title or
    a name follows; "وصل المبعوث الأميركي الخاص إلى بيروت" (then the end, an aside or a purpose) is the trip."""
    if pe >= len(toks):
        return False
    t = toks[pe]
    comma = t == "," and pe + 1 < len(toks)  # "المبعوث الفرنسي الخاص إلى لبنان، إتيان موران،": a name after a comma
    if comma:
        t = toks[pe + 1]
    return not (t in PUNCT or t in _ASIDE_WORDS or t in _AFTER_TRIP or t.startswith(("لل", "لبحث", "لمناقش"))
                or comma and (t in ("حيث", "وذلك") or t.startswith("و")))


# words after "إلى X" that continue a trip, not a title: "وصل المبعوث الخاص إلى بيروت في زيارة", "... قادما من"
_AFTER_TRIP = frozenset(normalize(w) for w in ("في", "قادما", "قادماً", "حيث", "على", "من", "مساء", "صباح", "اليوم",
                                               "أمس", "غدا", "لبحث", "لإجراء", "ضمن", "وسط"))


def _longer_name_of(toks: list[str], s: int, e: int, off: Official) -> bool:
    """"الشيخ تميم بن حمد آل ثاني": the lineage after a matched name is another of the official's own names."""
    for name in off.names:
        nt = normalize(name).split()
        for i in range(s, e):
            if len(nt) > e - i and toks[i:i + len(nt)] == nt:
                return True
    return False


_PRINCIPALS = frozenset({"head-of-state", "prime-minister", "emir", "king", "crown-prince"})
_AGENT_OF = frozenset(normalize(w) for w in ("مبعوث", "موفد", "ممثل", "مستشار", "مساعد", "نائب", "مبعوثة", "ممثلة",
                                             "مستشارة", "رسالة", "رسائل", "إدارة", "حكومة", "نظام", "عهد"))


_STATE_WORDS = frozenset(normalize(w) for w in ("جمهورية", "دولة", "مملكة", "سلطنة", "إمارة"))
# generic titles that refer back to an international official named before ("المسؤول الأممي")
_BACK_REFERENCES = frozenset({"un-official"})


# places named after people ("مطار حيدر علييف", "شارع الملك فيصل", "جامعة الملك سعود")
_NAMED_AFTER = frozenset(normalize(w) for w in ("مطار", "شارع", "ميدان", "جامعة", "مسجد", "مستشفى", "قاعة", "جسر",
                                                "قاعدة", "ميناء"))


def _mentions(sent: Sentence, hits: list[Hit], kn: Knowledge, present: set[str],
              coref: _Coref | None = None) -> list[Mention]:
    offs: dict[int, tuple[int, Official]] = {}
    nats: dict[int, tuple[int, str]] = {}
    orgs: dict[int, tuple[int, str]] = {}
    hon: set[int] = set()
    titles: list[tuple[int, int, Title]] = []
    for s, e, _k, payload in of_kind(hits, "off"):  # each kind's hits in order (the kinds are independent)
        oid, mode = payload
        if e < len(sent.toks) and sent.toks[e] in ("بن", "بنت", "ابن") and mode == "full" \
                and not _longer_name_of(sent.toks, s, e, kn.officials[oid]):
            continue  # "الأمير محمد بن عبد الرحمن بن عبد العزيز": a longer lineage, another person
        if s and (sent.stems[s - 1] in _NAMED_AFTER or s > 1 and sent.stems[s - 2] in _NAMED_AFTER):
            continue  # "مطار حيدر علييف الدولي", "مطار معيتيقة": a place named after someone
        if mode == "alias" and s >= 2 and _plain_name_word(sent, s - 1, kn) and any(
                he == s - 1 for _hs, he, k2, _p in hits if k2 in ("titles_before_names", "nat", "title")):
            continue  # "وزير الدفاع النيجري الفريق ساليفو مودي": another man's full name, not Modi's surname
        if mode != "context" or oid in present:
            offs[s] = (e, kn.officials[oid])
    for s, e, _k, payload in of_kind(hits, "nat"):
        nats.setdefault(s, (e, payload))
    for s, e, _k, payload in of_kind(hits, "org"):
        orgs.setdefault(s, (e, payload))
    for s, e, _k, payload in of_kind(hits, "title"):
        titles.append((s, e, kn.titles[payload]))
    for s, e, _k, _p in of_kind(hits, "titles_before_names"):
        hon.update(range(s, e))
    toks = sent.toks
    place_ends: dict[int, int] | None = None  # start -> end of places and nationalities, made when an envoy needs it
    used: set[int] = set()
    out: list[Mention] = []
    taken: set[int] | None = None  # words of other hits (made when a name before a title is looked for)
    for s, e, t in titles:
        m = Mention(s, e, title=t)
        inner: list[int] = []
        if t.org or t.country:
            m.country = t.country
            if t.country and e in nats and nats[e][1] == t.country:
                m.end = nats[e][0]  # "مدير وكالة المخابرات المركزية الأميركية": the office's own adjective
        else:
            k = e
            limit = min(len(toks), e + t.gap + 1)
            limit = min(len(toks), limit + toks[e:limit].count('"'))  # "وفد حركة «حماس»": quotes are no words
            inner = [ts for ts, _te, _t in titles if e <= ts < limit and ts not in hon] if len(titles) > 1 else []
            if inner:
                limit = min(limit, inner[0] + 1) if not t.delegation else limit
            # "رئيس الجمهورية الإسلامية الإيرانية": the country's name begins inside the title
            if not t.org_only and (within := next((ns for ns in range(s + 1, e) if ns in nats and nats[ns][0] > e),
                                                  None)) is not None:
                m.country = nats[within][1]
                m.end = nats[within][0]
                limit = k
            while k < limit and (toks[k] == '"' or toks[k] not in PUNCT and toks[k] not in ("الي", "في")):
                if k in orgs:
                    m.org = orgs[k][1]
                    m.country = kn.orgs[m.org]["country"]
                    m.end = orgs[k][0]
                    if m.end < len(toks) and toks[m.end] == '"' and toks[e:m.end].count('"') % 2:
                        m.end += 1  # the closing quote of "«حماس»"
                    break
                if k in nats and not t.org_only:
                    m.country = nats[k][1]
                    m.end = nats[k][0]
                    # "رئيس الوزراء ووزير الخارجية القطري": a second title before the adjective is fine
                    break
                k += 1
            if m.country is None and not t.org_only and k < len(toks) - 2 and toks[k] == "في" \
                    and toks[k + 1] in _STATE_WORDS and k + 2 in nats:
                m.country = nats[k + 2][1]  # "وزير التجارة والتكامل في جمهورية كازاخستان"
                m.end = nats[k + 2][0]
            if m.country is None and t.delegation and s >= 2 and s - 1 in nats and nats[s - 1][0] == s and (
                    toks[s - 2] in _SEND or sent.stems[s - 2] in _SEND):
                m.country = nats[s - 1][1]  # "أرسلت مصر وفدا": the sender's delegation
            if m.country is None and t.delegation:
                back = [(os_, oe_, o) for os_, (oe_, o) in orgs.items() if 0 <= s - oe_ <= 2]
                if not back and (toks[s - 1:s] in (["ان"], ["بان"]) or any(w.endswith("ها") for w in toks[e:e + 3])):
                    # "أعلنت حركة حماس ... أن وفدا من قيادتها برئاسة X وصل": the body that announces its own
                    back = [(os_, oe_, o) for os_, (oe_, o) in orgs.items() if 0 <= s - oe_ <= 12]
                if back:
                    m.org = back[-1][2]
                    m.country = kn.orgs[m.org]["country"]
            inner = [ts for ts in inner if ts < m.end]  # a title after the adjective is another person
            if m.country is None and not t.delegation:
                # "ووزير الخارجية جدعون ساعر": a title without an adjective, then a known holder of that office
                k = e
                while k < len(toks) and (toks[k] in ",\"" or k in hon):
                    k += 1
                if k in offs and offs[k][1].role == t.id and offs[k][1].country:
                    m.country = offs[k][1].country
            if m.country is None:
                # "ويتوجه رئيس الوزراء بعد غد إلى القاهرة": a bare title is the traveller of that office reported
                # earlier in the article (or of a written role it begins: "الأمين العام" -> "... للأمم المتحدة")
                src = coref.offices.get(t.as_role or t.id) if coref else None
                if src is None and coref is not None and coref.roles:
                    src = coref.by_role_prefix(toks[s:e])
                if src is None or t.delegation or any(e <= ts <= e + 1 for ts, _te, _t in titles) \
                        or (e < len(toks) and (toks[e] in PUNCT or e in offs)):
                    continue  # not "رئيس الوزراء ووزير الخارجية القطري", "رئيس الوزراء، X", "رئيس الوزراء X"
                out.append(_alias(src, s, e, role_span=(s, e)))
                continue
            if t.delegation and m.org:  # "وفدين من حركتي حماس والجهاد الإسلامي": one delegation each
                k2 = m.end
                while k2 in orgs or (k2 < len(toks) and toks[k2] == "و" and k2 + 1 in orgs):
                    if toks[k2] == "و":
                        k2 += 1
                    oe2, o2 = orgs[k2]
                    if k2 != m.end or toks[k2].startswith("و"):
                        extra = Mention(k2, oe2, title=t, country=kn.orgs[o2]["country"], org=o2)
                        extra.role_span = (s, oe2)
                        out.append(extra)
                    k2 = oe2
        if t.delegation and m.org is None:
            words = set(toks[s:m.end + 3])
            m.high = bool(words & HIGH_DELEGATION_WORDS)
        if t.id in ENVOY_TITLES or t.as_role == "envoy":
            if place_ends is None:
                place_ends = {s: e for s, e, kind, _p in of_kinds(hits, "place", "nat") if kind in ("place", "nat")}
            m.end = _title_tail(toks, m.end, place_ends)
        m.role_span = (s, m.end)
        # (not for a generic "المسؤول الأممي السابق", an epithet of someone's past post)
        m.former = m.end < len(toks) and toks[m.end] in FORMER_WORDS and "official" not in t.id
        # a name right after the role: a known official, else a plain written name; a bracketed abbreviation
        # may come between ("المفوض العام لوكالة ... (أونروا) فيليب لازاريني")
        k = m.end
        if k < len(toks) and toks[k] == "(":
            close = next((j for j in range(k + 1, min(len(toks), k + 5)) if toks[j] == ")"), None)
            if close is not None:
                k = close + 1
        bracket_end = k
        while k < len(toks) and (toks[k] in ",\"" or k in hon):
            k += 1
        ahead = sorted([j for j in offs if m.end <= j < k + 5 and j < len(toks)]) if offs else []
        if ahead and any(toks[x] in PUNCT and toks[x] != "," for x in range(bracket_end, ahead[0])):
            ahead = []
        if inner and not t.delegation:
            ahead = []  # "مبعوثي الرئيس الأمريكي دونالد ترامب": the name belongs to the inner title
        if ahead and any(m.end <= ts < ahead[0] and (t2.id == offs[ahead[0]][1].role or t2.delegation)
                         for ts, _te, t2 in titles):
            # "الرئيس الأمريكي مبعوثه الخاص ستيف ويتكوف", "الرئيس الفلسطيني وفدا برئاسة حسين الشيخ": the name is
            # the next title's
            ahead = []
        if ahead and ahead[0] > k and offs[ahead[0]][1].role != t.id and not t.delegation \
                and any(toks[x] in ("الي", "في") for x in range(k, ahead[0])):
            ahead = []  # "وزير الخارجية المصري إلى الخرطوم حاملا رسالة السيسي": another person, further on
        if ahead and (t.id in ENVOY_TITLES or t.as_role == "envoy") \
                and offs[ahead[0]][1].role in _PRINCIPALS and ahead[0] - m.end <= 2:
            # "مبعوث الرئيس الأمريكي المنتخب دونالد ترامب": the name is the envoy's principal, part of the role
            m.end = offs[ahead[0]][0]
            m.role_span = (s, m.end)
            used.add(ahead[0])
        elif ahead:
            oe, off = offs[ahead[0]]
            compatible = (off.country == m.country) if not t.org else (off.role == t.id)
            if compatible or (t.delegation and off.country == m.country):
                m.high = True
                m.official = off
                m.name = (ahead[0], oe)
                m.end = oe
                used.add(ahead[0])
        elif not t.delegation and not inner:
            # (after a bracketed abbreviation: "مدير وكالة المخابرات المركزية الأميركية (سي آي إيه) X")
            span = _name_after(sent, bracket_end if bracket_end > m.end else m.end + m.former, hon, kn)
            if span:
                m.name = span
                m.end = span[1]
            elif m.country and not t.org and s >= 3 and toks[s - 1] == "," and (span := _name_before(
                    sent, s, kn, taken if taken is not None else (taken := _hit_words(hits, hon)))):
                m.name = span  # "وصل X Y، وزير الخارجية الأمريكي": the name opens the mention
                m.start = span[0]
        if t.id in _BACK_REFERENCES and m.name is None and m.official is None and coref is not None \
                and coref.intl is not None:
            out.append(_alias(coref.intl, s, m.end, role_span=(s, m.end)))  # "المسؤول الأممي": the one named before
            continue
        out.append(m)
    covered = {i for m in out for i in range(m.start, m.end)} if offs else set()
    for s, (e, off) in offs.items():
        if s in used or s in covered:
            continue
        if off.role in _PRINCIPALS and s and (sent.stems[s - 1] in _AGENT_OF or toks[s - 1] in _AGENT_OF):
            # "مبعوث ترامب يصل الدوحة": the envoy travels, the principal is part of the envoy's role
            envoy = next((t for ts, te, t in titles if te == s and (t.id in ENVOY_TITLES or t.as_role == "envoy")),
                         None)
            if envoy is not None:
                out.append(Mention(s - 1, e, title=envoy, country=off.country, role_span=(s - 1, e)))
            continue
        # "وزيرا الخارجية البريطاني ديفيد لامي والفرنسي ستيفان سيجورنيه": the second's nationality opens its mention
        lead = next((ns for ns, (ne, c) in nats.items() if ne == s and c == off.country and ns not in covered), s)
        out.append(Mention(lead, e, official=off, country=off.country, org=off.org, name=(s, e)))
    # "الوفد الإسرائيلي برئاسة رون ديرمر": the leader is the visitor
    led = [(s, e) for s, e, _k, _p in of_kind(hits, "led_by")]
    for ls, le in led:
        for m in out:
            if m.title and m.title.delegation and 0 <= ls - m.end <= 3:
                k = le
                while k < len(toks) and (toks[k] in ",\"" or k in hon):
                    k += 1
                k0 = le + (le < len(toks) and toks[le] in ",\"")
                # (a title is also an honorific: "برئاسة رئيس الموساد" must not skip "رئيس")
                lt = next(((te, t_) for ts, te, t_ in titles if ts in (k0, k, k + 1)), None)
                if lt is not None:  # "وفد برازيلي برئاسة وزير الخارجية ماورو فييرا": a minister leads it
                    # the leader's office is the delegation's identity ("برئاسة رئيس الموساد" -> the Mossad chief)
                    m.high, m.title = True, lt[1]
                    k = m.end = lt[0]
                    while k < len(toks) and (toks[k] in ",\"" or k in hon):
                        k += 1
                if k in offs:
                    oe, off = offs[k]
                    m.official, m.name, m.high = off, (k, oe), True
                    m.end = max(m.end, oe)
                    out[:] = [x for x in out if not (x.official is off and x is not m)]
                else:
                    span = _name_after(sent, k, hon, kn)
                    if span:
                        m.name, m.high = span, True
                        m.end = span[1]
    # "ويرأس وفد الحكومة الكونغولية نائب رئيس الوزراء وزير الداخلية X": the person after the delegation's titles
    # heads it (and takes its country)
    led_delegations = [d for d in out if d.title is not None and d.title.delegation and d.name is None
                       and d.official is None and d.start and toks[d.start - 1] in _LEADS]
    if led_delegations:
        title_at = {ts: te for ts, te, _t in titles}
        for d in led_delegations:
            # the name after the titles (some of them unknown: "نائب رئيس الوزراء وزير الداخلية", "عضو مجلس السيادة
            # الانتقالي الفريق أول ركن"), in the clause
            for k in range(title_at.get(d.end, d.end), min(len(toks), d.end + 10)):
                if toks[k] in PUNCT or k in offs:
                    break  # (a known official after the titles is a mention of his own)
                if (span := _name_after(sent, k, hon, kn)) is not None:
                    d.name, d.end, d.high = span, span[1], True
                    break
    # the leader's own mention inside a delegation's ("وفد كويتي برئاسة وزير الخارجية X"): the delegation speaks
    dele = [m for m in out if m.title and m.title.delegation and m.end - m.start > 2]
    if dele:
        out[:] = [x for x in out if not any(d is not x and d.start < x.start and x.end <= d.end for d in dele)]
    if coref is not None and coref.ministers:
        # "الوزير الياباني" after "وزير الخارجية الياباني تاكيشي إيوايا": the one minister of that country named
        for m in out:
            if m.title is not None and m.title.id == "minister" and m.official is None and m.name is None \
                    and m.country and (src := coref.ministers.get(m.country)) is not None:
                m.alias_of = src.alias_of or src
                m.title, m.official, m.org = src.title, src.official, src.org
    if coref is not None and coref.surnames:
        surnames = coref.surnames
        covered = {i for m in out for i in range(m.start, m.end)}
        for i, tok in enumerate(toks):
            src = surnames.get(tok[1:] if tok[:1] == "و" and tok[1:] in surnames else tok)
            if src is not None and i not in covered and (src.sent is not sent or i >= src.end):
                out.append(_alias(src, i, i + 1, name=(i, i + 1)))
    for m in out:
        m.sent = sent
        if m.start and toks[m.start - 1] in _KIN or m.title is not None and m.title.id in _NOT_VISITORS \
                or m.official is not None and m.official.role in _NOT_VISITORS \
                or m.official is None and m.title is not None and m.title.id == "council-head":
            # "جاريد كوشنر صهر الرئيس دونالد ترامب", "برفقة ابنة ترمب": named for a relative; "رئيس البرلمان
            # الإيراني", "السفير السعودي لدى اليمن محمد آل جابر": an office whose holder is no high-level visitor
            m.high = False
    out.sort(key=lambda m: m.start)
    return out


_NOT_VISITORS = frozenset({"parliament-speaker", "chief-of-staff", "ambassador"})
_KIN = frozenset(normalize(w) for w in (
    "صهر", "ابنة", "ابن", "نجل", "نجلة", "زوجة", "زوج", "شقيق", "شقيقة", "كريمة", "حفيد", "حفيدة", "والد", "والدة",
    "أرملة", "عم", "خال"))


def _alias(src: Mention, start: int, end: int, *, name: tuple[int, int] | None = None,
           role_span: tuple[int, int] | None = None) -> Mention:
    """A later mention (a bare surname or title) of the person ``src`` stands for: same identity, and its visits
    report ``src``'s name and role (``alias_of``)."""
    return Mention(start, end, official=src.official, title=src.title, country=src.country, org=src.org, name=name,
                   role_span=role_span, high=src.high, former=src.former, alias_of=src.alias_of or src)


@dataclass
class _Coref:
    """What later sentences of an article can refer back to with a shorter form."""

    surnames: dict[str, Mention] = field(default_factory=dict)  # last word of a plain written name -> its mention
    offices: dict[str, Mention] = field(default_factory=dict)  # office -> the traveller holding it ("رئيس الوزراء")
    ministers: dict[str, Mention | None] = field(default_factory=dict)  # country -> its one minister (None: several)
    roles: list[tuple[tuple[str, ...], Mention]] = field(default_factory=list)  # travellers' written roles
    intl: Mention | None = None  # the latest traveller holding an international office ("المسؤول الأممي" later)

    def by_role_prefix(self, words: list[str]) -> Mention | None:
        """The latest traveller whose written role starts with these words: "الأمين العام" after "الأمين العام
        للأمم المتحدة" (a bare title that names no country or body)."""
        n = len(words)
        return next((m for r, m in reversed(self.roles) if len(r) > n and list(r[:n]) == words), None)

    def register(self, mentions: list[Mention]) -> None:
        """Remember the ministers named per country ("الوزير الياباني" later), and the last written word of role
        mentions with a plain name ("وزير الخارجية الإيرلندي سايمون هاريس"), so that the bare surname in later
        sentences ("ومن المقرر أن يتوجه هاريس") is the same person."""
        for m in mentions:
            role = m.title.id if m.title else (m.official.role if m.official else "")
            if m.country and m.alias_of is None and role.endswith("-minister") and role != "prime-minister":
                prev = self.ministers.get(m.country, m)
                same = prev is not None and (
                    prev is m or (prev.official is not None and prev.official is m.official)
                    or (prev.official is None and m.official is None and prev.title is m.title))
                self.ministers[m.country] = m if same else None  # two different ministers: "الوزير X" stays generic
            if m.name is None or m.official is not None or m.title is None or m.alias_of is not None or m.sent is None:
                continue
            last = m.sent.toks[m.name[1] - 1]
            if len(last) >= 3 and last not in STOPWORDS and last not in PUNCT and not last.isdigit():
                self.surnames[last] = m


# --- identity --------------------------------------------------------------------------------------

def identity(m: Mention, kn: Knowledge) -> str:
    """Canonical identity of a mention for keys: key_as, else country + office (or org)."""
    off, t = m.official, m.title
    if off is not None:
        if off.key_as:
            return off.key_as
        role = kn.titles.get(off.role)
        rid = (role.as_role or role.id) if role else off.role
        if rid == "delegation-head":
            rid = "delegation"  # a named delegation head keys as his delegation does ("رئيس الوفد الأوكراني")
        if off.country is None:
            return rid
        return f"{off.country.lower()}-{rid}"
    assert t is not None
    if m.org:
        return f"{(m.country or 'xx').lower()}-{m.org}"
    rid = t.as_role or t.id
    if rid in ("delegation-head", "delegation"):
        rid = "delegation"
    if t.org and not m.country:
        return rid
    return f"{(m.country or 'xx').lower()}-{rid}"


def _visitor_id(m: Mention, kn: Knowledge) -> str:
    return m.official.id if m.official else identity(m, kn)


# --- dates -----------------------------------------------------------------------------------------

UNDATED = "undated"


def split_key(key: str) -> tuple[str, str]:
    """``"us-foreign-minister>EG@2014-10"`` -> ``("us-foreign-minister>EG", "2014-10")``."""
    trip, _, bucket = key.rpartition("@")
    return trip, bucket


def join_undated(visits: list[Visit], dated: dict[str, set[str]]) -> list[Visit]:
    """The visits of an article without a date take the bucket of the same visitor and destination reported with a
    date.

    ``dated`` maps ``identity>country`` (and ``visitor_id>country``: a known person) to the buckets seen for it in
    dated articles of the same input. A visit whose trip has exactly one such bucket is the same trip and gets
    that key (its own bucket came from a month written in the text, often a background date, or is
    ``undated``); when its office has several (two envoys of one country, in different months), the buckets of
    the person himself decide; with none or several it keeps its key. Used where a batch of articles is read
    together (``trucewatch classify``); the stream always has an event time.
    """
    out = []
    for v in visits:
        trip, bucket = split_key(v.key)
        seen = dated.get(trip, set())
        if len(seen) > 1 and v.visitor_id:
            seen = dated.get(f"{v.visitor_id}>{v.destination_country}", seen)
        if len(seen) == 1 and bucket not in seen:
            v = v.model_copy(update={"key": f"{trip}@{next(iter(seen))}"})
        out.append(v)
    return out


def date_bucket(article: Article, norm_text: str | None = None, *, fetch_time: bool = False) -> str:
    """The key's trip bucket: YYYY-MM of published_at, else (``fetch_time``) of fetched_at, else the latest
    month/year written in the text."""
    if article.published_at is not None:
        return article.published_at.strftime("%Y-%m")
    if fetch_time and article.fetched_at is not None:
        return article.fetched_at.astimezone(UTC).strftime("%Y-%m")
    text = norm_text if norm_text is not None else normalize(article.text[:200_000])
    years = [(m.start(), int(m.group(1))) for m in _YEAR_RE.finditer(text)]
    if not years:
        return UNDATED
    months = [(m.start(), _MONTH_NUM[m.group(1)]) for m in _MONTH_RE.finditer(text)]
    best: tuple[int, int] | None = None
    # "9/1/2025" (day/month/year), "2025-01-09"
    for m in _NUMDATE_RE.finditer(text) if _NUMDATE_CUE.search(text) else ():
        if m.group(1):
            a, b, y = int(m.group(1)), int(m.group(2)), int(m.group(3))
            mon = b if 1 <= b <= 12 else (a if 1 <= a <= 12 and b <= 31 else 0)
        else:
            y, mon = int(m.group(4)), int(m.group(5))
        if 1 <= mon <= 12:
            best = max(best, (y, mon)) if best else (y, mon)
    for ypos, y in years:
        near = [mm for pos, mm in months if 0 < ypos - pos <= 25]  # "مايو/ أيار 2021"
        if near:
            cand = (y, near[-1])
            best = max(best, cand) if best else cand
    if best:
        return f"{best[0]:04d}-{best[1]:02d}"
    y = max(y for _p, y in years)
    ypos = max(p for p, yy in years if yy == y)
    after = [mm for pos, mm in months if pos > ypos]
    return f"{y:04d}-{after[0]:02d}" if after else f"{y:04d}"


# (Monday = 0, as datetime.weekday; "الإثنين" normalises to "الاثنين")
_WEEKDAYS = {normalize(w): i for i, w in enumerate(("الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت",
                                                     "الأحد"))}


def trip_bucket(article: Article, sent: Sentence, status: str, bucket: str) -> str:
    """The key's month of one trip: the article's month, moved to the month of the trip's day when the sentence
    names it relative to a dated article ("يتوجه ... غداً الثلاثاء إلى واشنطن" in a report of 30 November is a
    trip of 1 December; "وصل أمس" in one of 1 March, of February), so reports on either side of a month's end
    share a key."""
    if article.published_at is None:
        return bucket
    toks = sent.toks
    delta: int | None = None
    if status == "upcoming":
        if "غدا" in toks:
            g = toks.index("غدا")
            delta = 2 if g and toks[g - 1] == "بعد" else 1
        else:
            day = next((_WEEKDAYS[t] for t in toks if t in _WEEKDAYS), None)
            if day is not None:
                delta = (day - article.published_at.weekday()) % 7 or 7
    elif "امس" in toks:  # (a weekday alone does not say whether a reported trip is past or to come)
        delta = -2 if toks[max(0, toks.index("امس") - 1)] == "اول" else -1
    if not delta:
        return bucket
    return (article.published_at + timedelta(days=delta)).strftime("%Y-%m")


# --- surface text ----------------------------------------------------------------------------------

_Aligned = TokenChars  # (a sentence text's token positions, computed per word on demand)


def _aligned(text: str) -> _Aligned:
    return TokenChars(text)


def surface(sent: Sentence, span: tuple[int, int], strip_particles: bool = True,
            aligned: dict[str, _Aligned] | None = None) -> str:
    """The original (unnormalised) text of a token span of a sentence (``aligned``: a per-article memo)."""
    orig = sent.text
    if aligned is None:
        al = _aligned(orig)
    else:
        if orig not in aligned:
            aligned[orig] = _aligned(orig)
        al = aligned[orig]
    if al.count != len(sent.toks) or span[1] > al.count or span[0] >= span[1]:
        return " ".join(sent.toks[span[0]:span[1]])
    skip = 0
    article = ""
    tok, st = sent.toks[span[0]], sent.stems[span[0]]
    if strip_particles and st != tok and tok.endswith(st) and len(st) >= 2:
        skip = len(tok) - len(st)
        if tok[:skip].endswith("ال"):
            skip -= 2  # keep the article: "الحية", not "حية"
        elif tok[:skip].endswith("لل"):
            article = "ال"  # "للحية" is "ل" + "الحية" with the alef dropped in writing
    a, b = al.span(span[0], skip, span[1] - 1)
    b += 1
    return article + orig[a:b].strip()


_FIRST_TOKS = frozenset({"اول", "الاولي", "الاول", "اولي", "للمره", "والاولي"})
_FIRST_TOKS_BIT: Final = word_class(_FIRST_TOKS)


def _first_in(sent: Sentence) -> str | None:
    if not sent.bits & _FIRST_TOKS_BIT:
        return None
    if type(sent) is Sentence:  # (the C analysis: tokens normalised per character, so without the marks)
        # every match holds "زيار", "للمر" or "نوعها", which normalisation keeps in one token (the same letters; the
        # marks _DIACRITIC_RE deletes it deletes too): no such token, no match, and no regex search of the text
        joined = " ".join(sent.toks)
        if "زيار" not in joined and "للمر" not in joined and "نوعها" not in joined:
            return None
    text = _DIACRITIC_RE.sub("", sent.text)
    m = _FIRST_RE.search(text)
    if not m:
        return None
    return m.group(0).strip(" ,،")


# --- extraction ------------------------------------------------------------------------------------

# lexicon terms whose following "إلى X"/"في X" is where the topic is, not where anyone travels
TOPIC_KINDS = frozenset({"lex:ceasefire", "lex:aid"})
_CONCERNING = frozenset({"الخاص", "الخاصه", "المعني", "المعنيه", "المتعلق", "المتعلقه", "الخاصين"})
def _topic_ends(hits: list[Hit]) -> set[int]:
    """Ends of strong ceasefire/aid terms (not ending a title): a "إلى X"/"في X" right after one is the topic's
    place ("وقف إطلاق النار في غزة"), not a destination."""
    title_ends = {e for _s, e, _k, _p in of_kind(hits, "title")}
    return {e for _s, e, k, p in of_kinds(hits, *TOPIC_KINDS) if k in TOPIC_KINDS and p[1] >= 1.0
            and e not in title_ends}


_TOPIC_NOUNS = frozenset(normalize(w) for w in (
    "التطورات", "الأوضاع", "المستجدات", "الوضع", "الأزمة", "الأحداث", "التصعيد", "الاستقرار", "الأمن", "السلام",
    "والتطورات", "والأوضاع", "والمستجدات", "التوترات", "الحرب", "المعارك", "الاشتباكات", "القتال"))
_DELIVERY = ("ادخال", "لادخال", "وادخال", "ايصال", "لايصال", "وايصال", "تسليم", "لتسليم")
_INTRO = frozenset({"الي", "في", "العاصمه", "مدينه", "منتجع", ",", "بلده", "لدوله", "دوله", "منطقه", "محافظه",
                    "ولايه", "اقليم", "مطار"})
_DIRECTION = frozenset({"جنوب", "جنوبي", "شمال", "شمالي", "شرق", "شرقي", "غرب", "غربي", "وسط", "قرب", "بالقرب"})
_INTRO_PREFIX = ("ل", "ب", "وب", "ول", "فب", "فل")


_AT_PLACE = frozenset({"بمطار", "بمدينه", "بالعاصمه", "بقصر", "بمقر"})  # "استقبل ... بمطار الرباط"
_NOT_TO = frozenset({"من", "منذ", "عن", "بعد", "قبل", "بين"})  # ("بين لبنان وإسرائيل": parties)
_ALLOTTED = frozenset(normalize(w) for w in ("المخصصة", "المخصص", "المخصصين", "المتجهة", "المتجه", "الموجهة",
                                              "الموجه", "مخصصة", "متجهة"))


def _places_after(hits: list[Hit], sent: Sentence, start: int, stop: int, *, direct_ok: int | None = None,
                  need_intro: bool = True, need_fi: bool = False) -> list[tuple[int, Place]]:
    """The first acceptable place in [start, stop) and the places coordinated with it.

    A destination is introduced ("إلى X", "في X", "لمصر", "العاصمة X", ", X") or directly follows the trigger
    (``direct_ok``); "من X" (an origin) is never one.
    """
    toks = sent.toks
    places = sorted([(s, e, p) for s, e, _k, p in of_kind(hits, "place") if start <= s < stop])
    if not places:
        return []
    topic_ends = _topic_ends(hits)
    out: list[tuple[int, Place]] = []
    weak: list[tuple[int, Place]] = []
    last_end = -1
    for s, e, p in places:
        prev = toks[s - 1] if s > 0 else ""
        raw = toks[s]
        if s - 1 in topic_ends and prev in ("الي", "في") or s in topic_ends and raw.startswith(("لل", "ب")):
            continue  # "المساعدات الإنسانية إلى غزة", "جهود التهدئة في ليبيا": the place of a topic, not a trip
        if out:
            gap = toks[last_end:s]
            if gap[-1:] == ["الي"]:
                gap = gap[:-1]  # "إلى الدوحة، ثم إلى أبوظبي"
            if (s - last_end == 0 and raw.startswith("و")) or gap in ([","], ["و"], ["ثم"], [",", "ثم"]):
                out.append((s, p))
                last_end = e
                continue
            break
        if prev in _NOT_TO or prev in _CONCERNING and raw.startswith("ب") or prev in _ALLOTTED:
            # an origin; "بعد بيروت" (the leg before); "لجنة المانحين الخاصة بفلسطين" (concerning Palestine);
            # "المساعدات المخصصة لقطاع غزة"
            continue
        if prev == "في" and s >= 2 and toks[s - 2] in _TOPIC_NOUNS:
            continue  # "تناولت التطورات في قطاع غزة", "الأوضاع في السودان": the place of a topic
        if prev == "الي" and s >= 2 and toks[s - 2].startswith(_DELIVERY):
            continue  # "تمهيداً لإدخالها إلى قطاع غزة": where goods go, not where the traveller goes
        # "العاصمة المغربية الرباط": the capital named after its adjective
        capital = s >= 2 and sent.stems[s - 2] == "عاصمه"
        intro = prev in _INTRO or capital or (raw.startswith(_INTRO_PREFIX) and not raw.startswith("ال"))
        if prev == "في" and s - _skip_aside(toks, start) > 3:
            intro = False  # "في زيارة ... يبحث خلالها الأوضاع في غزة": a far "في X" is a topic, not the destination
        if not need_intro:
            intro = True
        elif need_fi:
            intro = prev == "في" or prev in _AT_PLACE or raw.startswith(("بال", "فال")) or (
                raw.startswith(("ب", "وب", "فب")) and raw != sent.stems[s])  # "استقبل العاهل الأردني بعمان"
        elif direct_ok is not None and (s in (direct_ok, _skip_aside(toks, direct_ok))
                                        or capital and s - 2 == direct_ok):
            intro = True  # "زار X الجمعة الجانب المصري من معبر رفح": a direct object after an aside
        if not intro and prev in _DIRECTION and s - _skip_aside(toks, start) <= 8:
            intro = True  # "إلى ولاية أضنة جنوبي تركيا", "في منطقة رفح جنوبي قطاع غزة"
        if not intro:
            continue
        if raw.startswith("لل") and prev.startswith(("زيارته", "زيارتها")) and not weak:
            weak.append((s, p))  # "يتوجه بعد ختام زيارته للمملكة إلى الإمارات": the trip ending, not the next
            continue
        out.append((s, p))
        last_end = e
    return out or weak


# an aside between a subject and its predicate: "، الخميس،", "، اليوم الأحد،", "، على رأس وفد رفيع،"
_ASIDE_WORDS = frozenset(normalize(w) for w in (
    "اليوم", "أمس", "امس", "غدا", "يوم", "صباح", "مساء", "ظهر", "فجر", "الليلة", "ليل", "هذا", "الأسبوع", "المقبل",
    "الجاري", "الماضي", "الأحد", "الاثنين", "الإثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت",
    "أيضا", "أيضاً", "كذلك",
    # "، لليوم الثاني على التوالي،"
    "لليوم", "الثاني", "الثالث", "الرابع", "التوالي",
))
# the verb before a subject that precedes a noun predicate ("بدأ X زيارة", "حل X ضيفا على", "أجرى X محادثات")
_LEAD_PAST = frozenset(normalize(w) for w in (
    "بدأ", "بدأت", "اختتم", "اختتمت", "حل", "حلت", "أجرى", "أجرت", "عقد", "عقدت", "استهل", "استهلت", "أنهى", "أنهت"))
_LEAD_FUTURE = frozenset(normalize(w) for w in (
    "يبدأ", "تبدأ", "سيبدأ", "ستبدأ", "يحل", "تحل", "سيحل", "ستحل", "يستهل", "تستهل", "سيستهل", "سيجري", "ستجري",
    "سيعقد", "ستعقد"))


# dual subjects that stand for the two people named before: "وكان الوزيران قد وصلا إلى جدة"
_DUAL = frozenset({"الوزيران", "الوزيرين", "الرييسان", "الرييسين", "الزعيمان", "الزعيمين", "المبعوثان", "المبعوثين",
                   "الوفدان", "الوفدين", "المسوولان", "المسوولين"})
_LEAD_ONGOING = frozenset(normalize(w) for w in ("يواصل", "تواصل", "واصل", "واصلت", "ويواصل", "وواصل"))


def _skip_aside(toks: list[str], i: int) -> int:
    """The position after an aside starting at token i (i itself when there is none)."""
    n = len(toks)
    comma = i < n and toks[i] == ","
    k = j = i + 1 if comma else i
    while j < n and (toks[j] in _ASIDE_WORDS or toks[j].isdigit() or toks[j] == "علي" and toks[j + 1:j + 2] == [
            "التوالي"]):
        j += 1
    if j == k and comma and j + 1 < n and toks[j] == "علي" and toks[j + 1] == "راس":
        j = next((x for x in range(j + 2, min(n, j + 9)) if toks[x] == ","), k)
    elif j == k and comma and j + 1 < n and toks[j] in ("برياسه", "بقياده"):  # "وفد حماس، برئاسة أبو شنب، ..."
        j = next((x for x in range(j + 1, min(n, j + 7)) if toks[x] == ","), k)
    elif j == k and comma and j + 2 < n and toks[j] in _RELATIVE:
        # "X، الذي يتولى التنسيق مع الاتحاد في ملف التعافي، سيزور القاهرة": a relative clause closed by a comma
        j = next((x for x in range(j + 1, min(n, j + 15)) if toks[x] in PUNCT), k)
        if j >= n or toks[j] != "," or not _ARRIVAL_VERBS.isdisjoint(toks[k:j]):
            j = k  # (not a clause that reports a trip of its own: "X، الذي وصل إلى المدينة مساء الأربعاء،")
    if j == k:
        return i
    if comma:
        return j + 1 if j < n and toks[j] == "," else i
    return j


def _lead_status(toks: list[str], m: Mention) -> str | None:
    """The tense of the verb right before a subject: "بدأ X زيارة" arrived, "يحل X ضيفا" upcoming."""
    return _lead_tense(toks[m.start - 1]) if m.start else None


def _lead_tense(t: str) -> str | None:
    """"arrived"/"upcoming" for a leading verb ("بدأ", "ويحل"), else None."""
    if t not in _LEAD_PAST and t not in _LEAD_FUTURE and t[:1] in ("و", "ف") and len(t) > 3:
        t = t[1:]
    return "arrived" if t in _LEAD_PAST else "upcoming" if t in _LEAD_FUTURE else None


def _words_between(sent: Sentence, hits: list[Hit], a: int, b: int) -> int:
    """Words between tokens a and b that are not asides, punctuation, numbers or a destination phrase: a subject
    after its verb ("وصل إلى القاهرة، مساء اليوم الأحد، وزير ...") is near; one in a later clause ("في زيارة تستغرق
    48 ساعة في إطار ... من خطة ترمب") is not."""
    toks = sent.toks
    skip: set[int] = set()
    for s, e, k, _p in of_kinds(hits, "place", "nat"):
        if k in ("place", "nat") and a <= s < b:
            skip.update(range(s, e))
    return sum(1 for i in range(a, b) if i not in skip and toks[i] not in PUNCT and toks[i] not in _ASIDE_WORDS
               and toks[i] not in _INTRO and not toks[i].isdigit())


# "القمة التي عقدت في X", "المؤتمر المنعقد في X": the venue of the event someone attends
_HELD = frozenset(normalize(w) for w in ("عقدت", "عقد", "تعقد", "يعقد", "انعقدت", "انعقد", "تنعقد", "ينعقد", "المنعقدة",
                                         "المنعقد", "المقامة", "المقام", "استضافت", "تستضيفها", "تستضيفه"))
# a host city as the subject of the hosting verb: "القمة التي استضافتها نيروبي"
_HOSTED_BY = frozenset(normalize(w) for w in ("استضافتها", "استضافته", "تستضيفها", "تستضيفه", "ستستضيفها",
                                              "ستستضيفه", "احتضنتها", "احتضنته", "تحتضنها", "تحتضنه", "استضافها",
                                              "يستضيفها", "سيستضيفها"))
# an event named by its city: "قمة نيروبي", "مؤتمر جنيف", "محادثات جدة"
_EVENT_OF_CITY = frozenset(normalize(w) for w in ("قمة", "مؤتمر", "اجتماع", "اجتماعات", "محادثات", "مباحثات",
                                                  "مفاوضات", "منتدى", "لقاء", "جولة"))
_BARE_INVITATION = frozenset(normalize(w) for w in ("دعوة", "الدعوة", "دعوات", "يدعو", "تدعو", "دعا", "دعت", "ويدعو",
                                                    "ودعا", "ودعت"))
_ACCEPTED = frozenset(normalize(w) for w in ("تلبية", "استجابة", "تلبيه", "استجابه", "قبل", "قبلت", "لبى", "لبت"))
_CARRIED_OUT = frozenset(normalize(w) for w in ("قام", "قامت", "يقوم", "تقوم", "سيقوم", "ستقوم", "أجرى", "أجرت", "يجري",
                                                "تجري"))
_INCLUDE = frozenset({"يضم", "تضم", "ضم", "ضمت"})
_BRINGS_TOGETHER = frozenset({"جمعت", "يجمع", "ستجمع", "سيجمع"})
_MEETING_NOUNS = frozenset({"اجتماع", "لقاء", "قمه", "محادثات", "مباحثات", "مفاوضات", "موتمر", "رباعي", "ثلاثي",
                            "خماسي", "رباعيه", "ثلاثيه"})
_NOT_TRAVELLER = frozenset({"مع", "فريق", "وفريق", "اداره", "حكومه", "لحكومه"})
_NOT_AND = frozenset({"وزير", "وزيره", "وزراء", "وفد", "وكيل", "وكاله", "وحده", "وسيط", "وسطاء", "وسط"})
_WELCOME = frozenset(normalize(w) for w in ("رحب", "رحبت", "يرحب", "ترحب", "ورحب", "ورحبت", "ويرحب", "وترحب"))
_HOST_CUES = _WELCOME | _NOT_TRAVELLER  # the word right before a mention that makes it a host
_HEDGES = frozenset(normalize(w) for w in ("قد", "وقد", "ربما", "وربما"))
_HEDGES_BIT: Final = word_class(_HEDGES)
_WHETHER_BIT: Final = word_class(("اذا",))  # ("ما إذا كان")


def _imperfect(tok: str) -> bool:
    """A present/future verb form ("يستقبل", "تستقبل", "سيستقبل", "ويستقبل"): the event is still to come."""
    if tok[:1] in ("و", "ف") and len(tok) > 4:
        tok = tok[1:]
    return tok.startswith(("ي", "ت", "سي", "ست"))


def _conj(sent: Sentence, i: int) -> bool:
    """Token i carries the conjunction و as an attached particle (not "وفد", "وزير"; but "ووزير")."""
    t, st = sent.toks[i], sent.stems[i]
    return t.startswith("و") and (not st.startswith("و") or t.startswith(("و" + st, "وال" + st)))


def _prev_sentence_place(prev_hits: list[Hit] | None, prev: Sentence | None) -> Place | None:
    if not prev_hits or prev is None:
        return None
    # the venue named last ("في X"), not the place of a topic
    # ("اجتماع للدول الضامنة لاتفاق وقف إطلاق النار في غزة")
    topic_ends = _topic_ends(prev_hits)
    for s, _e, k, p in sorted(of_kind(prev_hits, "place"), key=lambda h: -h[0]):  # (stable: as over all hits)
        if k == "place" and s > 0 and prev.toks[s - 1] == "في" and s - 1 not in topic_ends:
            return p  # type: ignore[no-any-return]
        if k == "place" and s > 1 and prev.toks[s - 1] in ("مدينه", "العاصمه") and prev.toks[s - 2] in _TO_CITY:
            return p  # type: ignore[no-any-return]  # "توافد القادة على مدينة شرم الشيخ"
    return None


_TO_CITY = frozenset({"في", "الي", "علي"})


_PURPOSE = frozenset(normalize(w) for w in ("لبحث", "لمناقشة", "لبحثه", "حول", "بشأن", "بشان", "لاستعراض", "وبحث",
                                             "وناقش", "ناقش", "بحث", "لتناول"))


def _meeting_venue(sent: Sentence, hits: list[Hit], s: int, e: int, after: list[Mention],
                   place_starts: set[int]) -> tuple[int | None, Place | None]:
    """Where a meeting (trigger at s..e) takes place: ``(index of its "في", place)``; the place is None when none is
    named for it."""
    toks = sent.toks
    anchor = e
    for m in after:  # the meeting place follows the participants: "التقى X، Y، في القدس"
        if m.start - anchor <= 3:
            anchor = m.end
    fi = next((i for i in range(anchor, min(len(toks), anchor + 4)) if toks[i] == "في"), None)
    if fi is not None and not _PURPOSE.isdisjoint(toks[anchor:fi]):
        fi = None  # "يلتقي نظيره لبحث الأوضاع في غزة": the topic's place, not the meeting's
    if fi is not None and fi + 1 not in place_starts:
        # "التقى في وقت سابق من اليوم في تل أبيب الرئيس": the venue is the "في" that names a place
        fi = next((i for i in range(fi, min(len(toks), anchor + 8))
                   if toks[i] == "في" and i + 1 in place_starts), fi)
        if fi + 1 not in place_starts:
            # "التقى في وقت سابق من اليوم فيدان وأعضاء من الوفد الأوكراني في إسطنبول": the participants after the
            # time phrase, then the venue after them
            first = next((m for m in after if m.start - e <= 8), None)
            if first is not None:
                anchor2 = first.end
                for m in after:
                    if m.start > first.start and m.start - anchor2 <= 3:
                        anchor2 = m.end
                fi = next((i for i in range(anchor2, min(len(toks), anchor2 + 4))
                           if toks[i] == "في" and i + 1 in place_starts), fi)
    if fi is None:  # "التقى الوزير البرتغالي في عمان نظيره الأردني": the place between the participants
        fi = next((i for i in range(e, anchor) if toks[i] == "في" and i + 1 in place_starts), None)
    if fi is None:  # "التقى X، الخميس 24 من تموز، Y في العاصمة الفرنسية باريس": after the participants
        fi = next((m.end for m in after if m.start - anchor <= 12 and m.end < len(toks)
                   and toks[m.end] == "في" and m.end + 1 in place_starts), None)
    if fi is None and after:  # "التقى X، يرافقه Y، وفداً إسرائيلياً برئاسة Z، في العاصمة الفرنسية باريس"
        fi = next((i for i in range(anchor, min(len(toks) - 1, e + 32)) if toks[i] == "في" and toks[i - 1] == ","
                   and i + 1 in place_starts), None)
        if fi is not None and "." in toks[e:fi]:
            fi = None
    if fi is None and toks[0] in ("في", "وفي") and 1 in place_starts and "," in toks[2:s]:
        fi = 0  # "وفي بيروت، التقى الموفد الفرنسي ...": the venue leads the sentence
    places = _places_after(hits, sent, fi + 1, fi + 2, need_intro=False) if fi is not None else []
    if not places and fi is not None and fi + 1 < len(toks) and toks[fi + 1] in ("مدينه", "منتجع", "العاصمه"):
        places = _places_after(hits, sent, fi + 2, fi + 4)  # "في مدينة العلمين", "في العاصمة المصرية القاهرة"
    if not places and fi is not None:  # "في البيت الأبيض بالعاصمة واشنطن", "في قصر الضيافة بمدينة جدة"
        places = [(ps, p) for ps, _pe, _k, p in of_kind(hits, "place")
                  if fi + 2 < ps <= fi + 5 and toks[ps - 1] in ("بالعاصمه", "بمدينه") and "," not in toks[fi:ps]][:1]
    if not places and s >= 2 and toks[s - 1] == "حيث":  # "ثم رام الله حيث التقيا الرئيس الفلسطيني"
        places = [(ps, p) for ps, pe, _k, p in of_kind(hits, "place")
                  if pe == s - 1 or pe == s - 2 and toks[s - 2] == ","][-1:]
    return fi, (places[0][1] if places else None)


def _meeting_participants(sent: Sentence, hits: list[Hit], s: int, e: int, fi: int | None, mentions: list[Mention],
                          after: list[Mention], adj_before: list[Mention],
                          pair: list[Mention] | None) -> list[Mention]:
    """Who takes part in a meeting (trigger at s..e, its "في" at fi): its subject and object, partners after "مع",
    those listed after "بينهم", and the ones named around the venue (hosts are sorted out by the caller)."""
    toks = sent.toks
    if _with_conj(toks[s], _DUAL_VERBS):
        # "حيث اجتمعا برئيس الوزراء نتنياهو في القدس": the two named before, not the last person named
        cands = list(pair) if pair else []
    else:
        cands = adj_before[-1:] + [m for m in after if m.start - e <= 4][:2]
    with_ = next((i for i in range(e, min(len(toks), e + 12)) if toks[i] == "مع"), None)
    if with_ is not None and fi is not None:
        # "اجتمع برنياع، الاثنين، في العاصمة البولندية وارسو، مع بيرنز ورئيس الوزراء القطري": the partners met
        # there too (those at home there are excluded by the caller)
        stop = next((i for i in range(with_, len(toks)) if toks[i] in _ATTEND_STOP), len(toks))
        cands += [m for m in mentions if with_ < m.start < min(stop, with_ + 16) and all(m is not c for c in cands)]
    among = next((i for i in range(e, len(toks)) if toks[i] in _AMONG), None)
    if among is not None:  # "ويلتقي في القاهرة موفدون من خمسين دولة، بينهم ... والأمين العام للأمم المتحدة"
        cands += [m for m in mentions if among < m.start < among + 20 and all(m is not c for c in cands)]
    if fi is not None:
        # "التقى X، الخميس 24 من تموز، Y في العاصمة الفرنسية باريس": the participant right before the venue
        cands += [m for m in after if m.end <= fi and fi - m.end <= 1 and all(m is not c for c in cands)][-1:]
        # "التقى الرئيس السيسي في القاهرة اليوم رئيس الوزراء الإسباني": the object after the meeting place
        cands += [m for m in after if m.start > fi and m not in cands
                  and _words_between(sent, hits, fi + 1, m.start) == 0][:1]
    return cands


def _included(sent: Sentence, hits: list[Hit], s: int, e: int, mentions: list[Mention], hosts: set[int],
              found: list[_Found], status: str) -> list[_Found]:
    """The participants listed after "يضم"/"ضم" (at s..e), only right after a meeting noun ("اجتماع رباعي يضم"), in a
    sentence that reports the trip to it or opens with the meeting's venue ("اختتم في باريس اجتماع رفيع المستوى ضم
    X، وY")."""
    together = sent.toks[s] in _BRINGS_TOGETHER  # "جمعت X وY": the meeting noun may be further back
    if not any(st in _MEETING_NOUNS for st in sent.stems[max(0, s - (10 if together else 4)):s]):
        return []
    trip = next((f for f in reversed(found) if f.sentence is sent and f.mention.end <= s), None)
    venue = (_lead_venue(sent, hits) or (_talks_venue(sent, hits) if together else None)) if trip is None \
        else trip.place
    if venue is None:
        return []
    out = []
    prev_end = e
    for m in mentions:  # the list after the word, each name close to the one before
        if m.start < e or id(m) in hosts or trip is not None and m is trip.mention:
            continue
        if _words_between(sent, hits, prev_end, m.start) > (12 if prev_end == e else 3):
            break
        prev_end = m.end
        if m.country != venue.country:
            out.append(_Found(m, sent, venue, trip.status if trip else status))
    return out


def _attendance(sent: Sentence, hits: list[Hit], s: int, e: int, kinds: set[str], mentions: list[Mention],
                adj_before: list[Mention], hosts: set[int], prev_place: Place | None, status: str) -> list[_Found]:
    """Who attends an event ("شارك في", "بحضور" at s..e) and where it is held: named after the trigger, before it
    (the venue verb), in a relative clause about the event, or the previous sentence's place."""
    toks = sent.toks
    if adj_before and id(adj_before[-1]) not in hosts:
        subj = [adj_before[-1]]
    else:
        # those named in the attendance clause: not "بحضور X، حيث نقل Y تحيات الرئيس Z" (a relative clause before the
        # first of them is the event's: "يشارك في المؤتمر، الذي تستضيفه ميركل، قادة بينهم X")
        first_end = next((m.end for m in mentions if m.start >= e and id(m) not in hosts), len(toks))
        stop = next((i for i in range(first_end, len(toks)) if toks[i] in _ATTEND_STOP), len(toks))
        subj = [m for m in mentions if e <= m.start < stop and id(m) not in hosts]
    if not subj:
        return []
    venue = _lead_venue(sent, hits)  # "انتهت في القاهرة جولة المحادثات التي شارك فيها X"
    lo = max([e] + [m.end for m in subj if m.start >= e])  # (after the trigger and its subjects)
    # "شارك في قمة نيروبي": the event is named by its city (before any "في X" further on, often a topic)
    places = [(2, venue)] if venue is not None else [
        (ps, p) for ps, _pe, _k, p in of_kind(hits, "place")
        if e < ps <= lo + 4 and toks[ps - 1] in _EVENT_OF_CITY
        and not toks[ps].startswith(("وال", "بال", "لل")) and "." not in toks[e:ps]][:1]
    if not places:
        places = _places_after(hits, sent, e, len(toks), need_fi=True)
    if not places:
        # "شارك في القمة العربية التي عقدت في الرياض": the venue in a relative clause about the event
        held = next((i for i in range(e, min(len(toks), lo + 8)) if sent.stems[i] in _HELD or toks[i] in _HOSTED_BY),
                    None)
        if held is not None and toks[held] in _HOSTED_BY:
            places = _places_after(hits, sent, held + 1, held + 2, need_intro=False)
        elif held is not None:
            places = _places_after(hits, sent, held + 1, held + 3, need_fi=True)
    place = places[0][1] if places else None
    if place is None:
        pb = _places_after(hits, sent, 0, s, need_fi="venue" not in kinds, need_intro="venue" not in kinds)
        place = pb[0][1] if pb else prev_place
    if place is None:
        return []
    return [_Found(m, sent, place, status) for m in subj]


_HELD_BY = frozenset(normalize(w) for w in ("أجراها", "عقدها", "أجراهما", "عقدهما", "يجريها", "يعقدها", "سيجريها",
                                             "سيعقدها"))
# "بحث X مع نظيره Y في الدوحة": talks a subject held with someone at a named place (a meeting trigger only in
# that shape: "بحث الوزير الأوضاع في غزة" names a topic's place)
_DISCUSSED = frozenset(normalize(w) for w in (
    "بحث", "بحثت", "يبحث", "تبحث", "سيبحث", "ستبحث", "ناقش", "ناقشت", "يناقش", "تناقش", "تباحث", "يتباحث",
    "وبحث", "وبحثت", "وناقش", "وناقشت"))


def _discussed_with(toks: list[str], s: int, e: int, after: list[Mention], fi: int | None) -> bool:
    """"بحث X مع Y في <place>": the subject right after the verb, "مع" and the other party, then the venue."""
    if fi is None or len(after) < 2 or after[0].start - e > 1:
        return False
    w = _skip_aside(toks, after[0].end)
    return w < len(toks) and toks[w] == "مع" and after[1].start == w + 1 and after[1].end <= fi \
        and set(toks[after[1].end:fi]) <= {","}


_MEDIATED_BY = frozenset(normalize(w) for w in ("بوساطة", "وبوساطة", "برعاية", "وبرعاية"))
_SEND = frozenset(normalize(w) for w in ("أرسل", "أرسلت", "وأرسل", "وأرسلت", "أرسلها", "أرسله", "أوفد", "أوفدت"))
# "زيارة سموه", "زيارة معاليه": the honorific pronoun of the sentence's subject
_HIS_EXCELLENCY = frozenset(normalize(w) for w in ("سموه", "معاليه", "فخامته", "دولته", "سيادته", "سعادته"))
_AWAITS = frozenset(normalize(w) for w in ("تنتظر", "تترقب", "ينتظر", "يترقب", "تستعد", "تتهيأ"))
_RECEIVES = frozenset(normalize(w) for w in ("لاستقبال", "تستقبل", "ستستقبل", "استقبلت"))
_ASIDE_OPEN = frozenset({"علي", "برفقه", "ضمن", "بصفته", "بصفتها"})  # "على رأس وفد وزاري،"
_RELATIVE = frozenset({"الذي", "التي", "اللذين", "اللذان", "الذين", "اللتين", "اللتان"})


def _relative_subject(toks: list[str], s: int, before: list[Mention]) -> Mention | None:
    """The person a relative clause opening the trigger at s is about: "التقى السيسي وزير الخارجية الإيراني الذي
    يزور القاهرة", "... بحث مع الوزير، الذي يقوم بزيارة ...": the one met is the traveller of this clause, even
    though the meeting made him its object."""
    k = s - 1
    if k >= 1 and toks[k] not in _RELATIVE and _lead_tense(toks[k]) is not None:
        k -= 1  # "الذي يقوم بزيارة"
    if k < 1 or toks[k] not in _RELATIVE:
        return None
    k -= 1
    while k >= 0 and toks[k] == ",":
        k -= 1
    return next((m for m in reversed(before) if m.end == k + 1), None)


def _noun_trip(sent: Sentence, hits: list[Hit], s: int, e: int, before: list[Mention], after: list[Mention],
               adj_before: list[Mention], hosts: set[int], negs: list[int], status: str,
               future: bool) -> list[_Found]:
    """A trip named by a noun ("زيارة", "جولة" at s..e): its subject right after it ("زيارة الوزير إلى"), after "قامت
    بها", right before it after a leading verb ("بدأ الوزير الإيطالي زيارة رسمية إلى بيروت"), or the subjects of a
    leading verb named with asides; the place after the subject, or as the noun's direct object."""
    toks = sent.toks
    subj = [m for m in after if m.start - e <= 1]
    if not subj and e + 2 < len(toks) and toks[e + 1] in ("بها", "بهما") and sent.stems[e] in _CARRIED_OUT:
        subj = [m for m in after if m.start == e + 2]  # "زيارة قامت بها رئيسة المفوضية الأوروبية إلى القاهرة"
    pstart = subj[0].end if subj else e
    if not subj and toks[s] in ("زياره", "جوله") and (rel := _relative_subject(toks, s, before)) is not None:
        subj = [rel]  # "... نظيره الإيراني الذي يقوم بزيارة إلى القاهرة"
    honorific = e < len(toks) and toks[e] in _HIS_EXCELLENCY
    if not subj and toks[s] in ("زياره", "جوله") and (toks[s - 2:s] == ["في", "اطار"] or toks[s - 1:s] == ["ضمن"]
                                                      or honorific):
        # "تفقد X، وكيل الأمين العام ...، منفذ رفح ...، في إطار زيارة لمصر", "التقى الشيخ تميم ... في مستهل زيارة
        # سموه الرسمية إلى الولايات المتحدة": the trip of the sentence's subject
        # (an honorific names the sentence's first person even when a meeting made him its object)
        opener = [m for m in before if m.high and (honorific or id(m) not in hosts) and m.sent is sent]
        if opener and opener[0].start <= 6:  # (after honorifics: "التقى حضرة صاحب السمو الشيخ تميم")
            reach = e + (5 if honorific else 3)
            stop = next((i for i in range(e, min(len(toks), reach)) if toks[i] in PUNCT), min(len(toks), reach))
            places = _places_after(hits, sent, e, stop)  # "في إطار زيارة لمصر" (not "جولة إقليمية، ويتوجه إلى X")
            st = "ongoing" if status == "arrived" and not future else status
            return [_Found(opener[0], sent, place, st) for _ps, place in places]
    if not subj and toks[s] in ("زياره", "جوله") and adj_before and _skip_aside(toks, adj_before[-1].end) == s \
            and id(adj_before[-1]) not in hosts:
        subj = adj_before[-1:]  # "بدأ الوزير الإيطالي زيارة رسمية إلى بيروت"
        if any(0 <= subj[0].start - ne <= 1 for ne in negs):
            return []  # "ألغى وزير الدفاع الأمريكي زيارة كانت مقررة"
        lead = _lead_status(toks, subj[0])
        if lead and not future:
            status = lead
    if not subj and toks[s] in ("زياره", "جوله") and before and (lead := _lead_tense(toks[0])) is not None \
            and not (set(toks[1:s]) & PUNCT) - {",", "-"} \
            and not any(h[2] == "trig" and h[0] < s for h in hits):
        # "أنهت وزيرة الخارجية الألمانية، أنالينا بيربوك، ووزير الخارجية الفرنسي، جان نويل بارو، زيارة إلى دمشق":
        # the leading verb's subjects, named with asides
        subj = [m for m in before if m.start >= 1 and id(m) not in hosts and m.high]
        if lead and not future:
            status = lead
        places = _places_after(hits, sent, e, min(len(toks), e + 6), direct_ok=e) if subj else []
        return [_Found(m, sent, place, status) for _ps, place in places for m in subj]
    if not subj:
        return []
    # "يعتزم الوزير التركي زيارة الأردن": after its own subject the noun takes the place as a direct object;
    # "زيارة الوزير الأردن ..." (a subject after the noun) does not
    direct = e if subj[0].end <= s else None
    places = _places_after(hits, sent, pstart, min(len(toks), pstart + 6), direct_ok=direct)
    if not places and s >= 2 and toks[s - 1] in _AWAITS:
        # "القاهرة تنتظر وصول وفد من حركة حماس": the city that awaits the arrival
        places = [(ps, p) for ps, pe, _k, p in of_kind(hits, "place") if pe == s - 1][:1]
        status = "upcoming"
    return [_Found(subj[0], sent, place, status) for _ps, place in places]


_HONOUR_WORDS = frozenset(normalize(w) for w in ("معالي", "سمو", "فخامة", "دولة", "السيد", "السيدة", "الدكتور",
                                                 "سعادة", "صاحب", "السمو"))


def _bare_host(sent: Sentence, hits: list[Hit], e: int, mentions: list[Mention]) -> int | None:
    """End of a host named by a title alone right after the hosting verb ("استقبل معالي السيد وزير الخارجية"), a
    title no mention was made of (it names no country: the report's own, as wire copy writes it)."""
    toks = sent.toks
    k = e
    while k < len(toks) and toks[k] in _HONOUR_WORDS:
        k += 1
    title = next((te for ts, te, _k, _p in of_kind(hits, "title") if ts == k), None)
    if title is None or any(m.start <= k < m.end for m in mentions):
        return None
    return title


def _dateline(doc: Doc) -> Place | None:
    """The place of a wire report's dateline ("مسقط في 12 أبريل /العُمانية/", "الرياض - واس"): a city opening the
    body's first sentence, followed by a date, a dash, a slash or a bracket."""
    for sent, hits in zip(doc.sentences[doc.n_title:doc.n_title + 2], doc.hits[doc.n_title:doc.n_title + 2],
                          strict=False):
        toks = sent.toks
        place = next((p for s, _e, _k, p in of_kind(hits, "place") if s == 0 and p.city), None)
        if place is not None and any(t in ("-", "/", "(", ":", "–") or t.isdigit() or t == "في" and j == 0
                                     for j, t in enumerate(toks[1:6])):
            return place  # type: ignore[no-any-return]
    return None


def _trigger_visits(sent: Sentence, hits: list[Hit], mentions: list[Mention], last: Mention | None,
                    kn: Knowledge, prev_place: Place | None = None, kinds: set[str] | None = None,
                    pair: list[Mention] | None = None, home: Place | None = None) -> list[_Found]:
    toks = sent.toks
    if kinds is None:
        kinds = {k for _s, _e, k, _p in hits}
    if "remote" in kinds:
        return []
    negs = [e for s, e, k, _p in of_kinds(hits, "negation", "denial") if k in ("negation", "denial")]
    # "قد ينضم إلى المحادثات في أنقرة" (may join): a hedge governs the trip words right after it, like a negation
    if sent.bits & _HEDGES_BIT:
        negs += [i + 1 for i in range(len(toks) - 1) if toks[i] in _HEDGES and _imperfect(toks[i + 1])]
    future = "future" in kinds
    if future and all(toks[fs0:fe0] == ["في", "وقت", "لاحق"] for fs0, fe0, _fk, _fp in of_kind(hits, "future")) \
            and not any(_imperfect(toks[ts]) for ts, _te, _tk, _tp in of_kind(hits, "trig")):
        future = False  # "وصل X، حيث انضم إليه في وقت لاحق Y": later that day, in the past
    # "كما وصل X ...، فيما ينتظر أن ينضم غدا Y": a future word holds for its own clause only
    fut_pos = [fs0 for fs0, _fe, _fk, _fp in of_kind(hits, "future")] \
        if future and sent.bits & _CLAUSE_OPENERS_BIT else None
    trigs = sorted((s, e, p) for s, e, _k, p in of_kind(hits, "trig"))
    # objects of meetings, hosts of receptions and authors of invitations are hosts, never the travelling
    # subject of another trigger; the subject of a meeting ("يلتقي الوزير الألماني نتنياهو ... قبل أن يتوجه")
    # stays the sentence's traveller across clauses
    hosts: set[int] = set()
    subjects: set[int] = set()
    # "رحب الرئيس اللبناني بزيارة الموفد السعودي": whoever welcomes a visit is its host; "اجتماعات مع الوسطاء وفريق
    # الرئيس جو بايدن": someone met or someone's team did not travel
    hosts.update(id(m) for m in mentions if m.start and m.sent is sent and toks[m.start - 1] in _HOST_CUES)
    for s0, e, kd, p in of_kinds(hits, "invitation", "trig"):
        if kd == "invitation":
            hosts.update(id(m) for m in mentions if e <= m.start <= e + 3)
            if toks[s0] in _BARE_INVITATION and (s0 == 0 or toks[s0 - 1] not in _ACCEPTED):
                # "وجه بزشكيان دعوة إلى الرئيس السيسي لزيارة طهران", "يدعو السيسي لزيارة طهران": an invitation
                # extended is no trip yet
                negs += [i for i in range(e, min(len(toks), e + 10))
                         if toks[i].startswith("لزيار") or toks[i] == "زياره" and toks[i - 1] == "الي"]
        elif kd == "trig" and p in ("meeting", "hosting"):
            pre = [m for m in mentions if m.end <= s0 and s0 - m.end <= 3]
            post = [m for m in mentions if m.start >= e]
            chain: list[Mention] = []
            if post and post[0].start - e > 3 and e + 1 < len(toks) and toks[e] == "في" and (
                    _words_between(sent, hits, e, post[0].start) == 0):
                chain = [post[0]]  # "سيلتقي في تل أبيب نتنياهو": the object after the venue
            elif post and post[0].start - e <= 3:
                chain = [post[0]]
                for m in post[1:]:
                    gap = toks[chain[-1].end:m.start]
                    plain = len(gap) <= 5 and PUNCT.isdisjoint(gap)
                    and_title = bool(gap) and gap[0][:1] == "و" and gap[0] not in _NOT_AND
                    if m.start - chain[-1].end <= 1 and (_conj(sent, m.start) or gap == [","]):
                        chain.append(m)
                    elif plain and and_title and len(gap) <= 3:
                        chain.append(m)  # "... وقائد الجيش العماد جوزيف عون": a coordinated title we do not know
                    elif not chain[1:] and not pre and (m.start - chain[-1].end <= 1 or (
                            plain and gap and not and_title) or _skip_aside(toks, chain[-1].end) == m.start):
                        # "يلتقي الوزير الألماني نتنياهو", "يلتقي المبعوث الأميركي رئيس حكومة تصريف الأعمال
                        # نجيب ميقاتي": subject then object
                        chain.append(m)
                    else:
                        break
            if p == "hosting":
                host = pre[-1] if pre else (chain[0] if chain else None)
                if host is not None:
                    hosts.add(id(host))
                continue
            hosts.update(id(m) for m in post if m.title and m.title.id == "counterpart" and m.start - e <= 8)
            if pre:
                subjects.add(id(pre[-1]))
                hosts.update(id(m) for m in chain)
            elif chain and any(id(m) in hosts for m in post if m.start > chain[0].start):
                subjects.add(id(chain[0]))  # "التقى الوزير البرتغالي في عمان نظيره الأردني"
                hosts.update(id(m) for m in chain[1:])
            elif len(chain) > 1 and not _conj(sent, chain[1].start) and not (  # (not "بالرئيس"; "بلينكن" is a name)
                    toks[chain[0].start].startswith("ب") and sent.stems[chain[0].start] != toks[chain[0].start]):
                subjects.add(id(chain[0]))  # "يلتقي الوزير الألماني نتنياهو": subject, then the object(s)
                hosts.update(id(m) for m in chain[1:])
            else:
                hosts.update(id(m) for m in chain)  # "وسيلتقي بالرئيس المصري": the subject is the previous one
    place_starts = {s for s, _e, _k, _p in of_kind(hits, "place")}
    found: list[_Found] = []
    place: Place | None
    tour_words: set[int] | None = None  # positions of "جولة" forms, computed for the first tour trigger
    # "ما إذا كان X سيتوجه إلى موسكو" (whether): a question about a trip, not a report of one
    whether = [i for i in range(1, len(toks)) if toks[i] == "اذا" and toks[i - 1] == "ما"] \
        if sent.bits & _WHETHER_BIT else []
    # a denial governs the whole sentence: "نفى مكتب نتنياهو، الجمعة، أنباء تحدثت عن زيارة مرتقبة له"
    denied = min((ns for ns, _ne, k, _p in of_kind(hits, "denial") if k == "denial"), default=len(toks))
    for ti, (s, e, kind) in enumerate(trigs):
        if negs and any(0 <= s - ne <= 2 for ne in negs) or whether and any(0 < s - w <= 12 for w in whether) \
                or s > denied:
            continue
        nxt = trigs[ti + 1][0] if ti + 1 < len(trigs) else len(toks)
        before = [m for m in mentions if m.end <= s]
        after = [m for m in mentions if m.start >= e and m.start - e <= FORWARD_WINDOW]
        adj_before = [m for m in before if s - m.end <= 3 or s - _skip_aside(toks, m.end) <= 3]  # (skip >= end)
        if fut_pos is not None:
            future = any(_CLAUSE_OPENERS.isdisjoint(toks[min(fp, s):max(fp, s)]) for fp in fut_pos)
        status = _STATUS.get(str(kind), "arrived")
        if future and status != "upcoming":
            status = "upcoming"
        if kind == "hosting":
            if toks[s] in _HOSTED_BY:
                continue  # "محادثات استضافها في أنقرة": it hosted the talks; whoever follows is no guest of a person
            if e in place_starts:  # "تستقبل أنقرة غدا وزير الخارجية الروسي": a place is the host
                found += [f for f in _city_hosts(sent, hits, mentions, future) if f.place is not None
                          and s < f.mention.start < nxt]
                continue
            if home is not None and not adj_before and (bare := _bare_host(sent, hits, e, mentions)) is not None:
                # "استقبل معالي السيد وزير الخارجية كلًّا على حدة، X، وY" in a report datelined Muscat: the host
                # is named by his office alone, at home; the guests follow
                places = _places_after(hits, sent, e, len(toks), need_fi=True)
                place = places[0][1] if places else home
                prev_end = -2
                for g in [m for m in mentions if m.start >= bare]:
                    appositive = g.start - prev_end <= 1 and g.official is None and g.name is None \
                        and not _conj(sent, g.start)  # "ستيف ويتكوف المبعوث الخاص للرئيس الأمريكي": the same man
                    prev_end = g.end
                    if not appositive and (g.title is None or g.title.id != "counterpart"):
                        found.append(_Found(g, sent, place, "upcoming" if future or _imperfect(toks[s]) else "arrived"))
                continue
            if adj_before and not after:
                continue
            if adj_before:
                host, anchor = adj_before[-1], e
            elif after:
                host, anchor = after[0], after[0].end
            else:
                continue
            if last is not None and (host.alias_of is (last.alias_of or last) or (
                    host.official is not None and host.official is last.official) or (
                    host.official is None and host.name is None and host.country == last.country and host.title
                    is not None and (host.title.id == "minister" or host.title is last.title))):
                continue  # "وصل الوزير الأرميني إلى باكو ... واستقبل الوزير الأرميني في المطار نائب الوزير": received
            # "استقبل رئيس مجلس السيادة ... الفريق أول ركن عبد الفتاح البرهان، ... ضيفه المبعوث": the host's own name
            # (a mention of the host's country right after his title) is part of the host
            own = next((m for m in mentions if m.start >= anchor and m is not host), None)
            if own is not None and host.country and own.country == host.country and own.official is not None \
                    and _words_between(sent, hits, anchor, own.start) <= 8:
                anchor = own.end
            # the guest follows the host, after asides ("استقبل الرئيس X، اليوم الاثنين، بقصر الاتحادية، الفريق Y")
            guests = [m for m in mentions if m.start >= anchor and m is not host
                      and _words_between(sent, hits, anchor, m.start) <= FORWARD_WINDOW][:1]
            if not guests and host.country:
                # "استقبل الملك X، مرفوقا بولي العهد ...، اليوم بمطار الرباط، رئيس الجمهورية الفرنسية": a foreign
                # guest after the host's retinue and the time and place of the reception
                guests = [m for m in mentions if m.start >= anchor and m.country and m.country != host.country
                          and m.high and m.start - anchor <= 3 * FORWARD_WINDOW and "." not in toks[anchor:m.start]][:1]
            if guests and guests[0].start and toks[guests[0].start - 1] == "بين":
                # "يستضيف ... محادثات بين رئيس الوزراء الكمبودي X ورئيس الوزراء التايلاندي Y": both are guests
                guests += [m for m in mentions if 0 <= m.start - guests[0].end <= 1 and _conj(sent, m.start)][:1]
            # the place of the reception is named before the guest ("في رام الله، وزير الخارجية ..."); one after
            # the guest is often the guest's own title ("رئيس مجلس السيادة في جمهورية السودان"), so the host's
            # country comes first
            places = _places_after(hits, sent, e, guests[0].start if guests else len(toks), need_fi=True)
            if not places and not host.country:
                places = _places_after(hits, sent, e, len(toks), need_fi=True)
            elif not places and guests:
                # "استقبلت رئيسة الوزراء الإيطالية وزير الخارجية اللبناني في روما": a city of the host's country
                # right after the guest is where he was received
                places = [(ps, pl) for ps, pl in _places_after(hits, sent, guests[0].end, len(toks), need_fi=True)
                          if ps - guests[0].end <= 1 and pl.city and pl.country == host.country][:1]
            if places:
                place = places[0][1]
            elif host.country:
                place = Place(None, host.country)
            else:
                continue
            for g in guests:
                if g.title and g.title.id == "counterpart" and (host.title or host.official):
                    g.title = kn.titles.get(host.official.role, host.title) if host.official else host.title
                found.append(_Found(g, sent, place, "upcoming" if future or _imperfect(toks[s]) else "arrived"))
            continue
        if kind == "meeting":
            fi, place = _meeting_venue(sent, hits, s, e, after, place_starts)
            if place is None or (toks[s] in _DISCUSSED or sent.stems[s] in _DISCUSSED) and (
                    toks[s] not in _DISCUSSED or not _discussed_with(toks, s, e, after, fi)):  # not "لبحث"
                continue
            cands = _meeting_participants(sent, hits, s, e, fi, mentions, after, adj_before, pair)
            # "التقى X، Y، في باريس، بوساطة المبعوث الأمريكي Z": the mediator of a meeting held there is there too
            cands += [m for m in mentions if m not in cands and m.start > e and (
                toks[m.start - 1] in _MEDIATED_BY or m.start >= 2 and toks[m.start - 2] in _MEDIATED_BY
                and toks[m.start - 1] in (",", "من"))]  # ("بوساطة من المبعوث الأميركي")
            if all(id(m) in hosts for m in cands):  # "اجتمع مع الرئيس المصري": the subject is the one just named
                earlier = [m for m in before if id(m) not in hosts]
                cands += earlier[-1:] if earlier else ([last] if last is not None else [])
            for m in cands:
                intl = m.country is None and ((m.title is not None and m.title.org is not None)
                                              or (m.official is not None and m.official.country is None))
                if (m.country or intl) and m.country != place.country and m.high:
                    if m.title and m.title.id == "counterpart" and m.official:
                        m.title = kn.titles.get(m.official.role, m.title)
                    elif m.title and m.title.id == "counterpart":
                        # "يلتقي وزير الدفاع الأمريكي نظيره الإسرائيلي في واشنطن": the counterpart holds the office
                        # of the one he meets
                        peer = next((c for c in cands if c is not m and c.title and c.title.id != "counterpart"),
                                    None)
                        if peer is not None and peer.title is not None:
                            m.title = kn.titles.get(peer.official.role, peer.title) if peer.official else peer.title
                    found.append(_Found(m, sent, place, "upcoming" if future or _imperfect(toks[s]) else "arrived"))
            continue
        subj: list[Mention]
        if kind == "attend" and (toks[s] in _INCLUDE or sent.stems[s] in _INCLUDE or toks[s] in _BRINGS_TOGETHER):
            found += _included(sent, hits, s, e, mentions, hosts, found, status)
            continue
        if kind == "attend":
            found += _attendance(sent, hits, s, e, kinds, mentions, adj_before, hosts, prev_place, status)
            continue
        if kind == "talks":
            # "يواصل رئيس الحركة ...، خليل الحية، لقاءاته في القاهرة": after a leading verb the subject may
            # close with a comma
            ok_punct = {","} if toks[0] in _LEAD_ONGOING or _lead_tense(toks[0]) else set()
            subj = [m for m in adj_before[-1:]
                    if id(m) not in hosts and not (set(toks[_skip_aside(toks, m.end):s]) & PUNCT) - ok_punct]
            k = e
            if e < len(toks) and toks[e] in _HELD_BY and after and after[0].start == e + 1 \
                    and id(after[0]) not in hosts:
                subj, k = [after[0]], after[0].end  # "بعد أيام من محادثات أجراها رئيس الوزراء القطري في واشنطن"
            while k < min(len(toks), e + 3) and toks[k] != "في" and toks[k] not in PUNCT and not (
                    k in place_starts and toks[k].startswith("ب") and toks[k] != sent.stems[k]):
                k += 1  # "محادثات رسمية في", "محادثات مكثفة في", "محادثات بدمشق"
            # "أجرى في القدس مباحثات": the place between the leading verb and the noun
            held_at = [p for ps, pe, _k, p in of_kind(hits, "place") if pe == s and ps >= 2 and toks[ps - 1] == "في"
                       and _lead_tense(toks[ps - 2]) is not None] if subj else []
            if held_at and not any(0 <= subj[0].start - ne <= 1 for ne in negs):
                found.append(_Found(subj[0], sent, held_at[0], "upcoming" if future else "arrived"))
                continue
            if not subj or k >= len(toks) or toks[k] in PUNCT or any(0 <= subj[0].start - ne <= 1 for ne in negs):
                continue
            # "في عمان", "في مدينة العقبة", "في العاصمة المغربية الرباط", "بدمشق"
            places = _places_after(hits, sent, k, k + 5)
            if places and places[0][0] > k and toks[k] != "في":
                places = []
            lead = _lead_status(toks, subj[0])
            for _ps, place in places:
                found.append(_Found(subj[0], sent, place, "upcoming" if future else lead or "ongoing"))
            continue
        if kind == "lodge":
            # "وحل رئيس الوزراء القطري ... في القاهرة": only with the subject right after the verb and "في X" after it
            subj = [m for m in after[:1]
                    if m.start - e <= 2 and PUNCT.isdisjoint(toks[e:m.start]) and id(m) not in hosts]
            if not subj:
                continue
            places = _places_after(hits, sent, subj[0].end, subj[0].end + 4, need_fi=True)
            for _ps, place in places[:1]:
                found.append(_Found(subj[0], sent, place, "upcoming" if future or _imperfect(toks[s]) else "arrived"))
            continue
        if kind == "press":
            # "قال روبيو للصحافيين في جدة", "عقد الوزير الأميركي مؤتمرا صحفيا في الدوحة": the speaker is there
            subj = [m for m in before if s - _skip_aside(toks, m.end) <= 1 and id(m) not in hosts][-1:]
            if not subj and toks[s - 1:s] and _lead_tense(toks[s - 1]) is None:
                subj = [m for m in before if m.end <= s - 1 and s - 1 - _skip_aside(toks, m.end) <= 0][-1:]
            if not subj:
                continue
            places = _places_after(hits, sent, e, min(len(toks), e + 3), need_fi=True)
            for _ps, place in places[:1]:
                found.append(_Found(subj[0], sent, place, "upcoming" if future else "arrived"))
            continue
        if kind == "noun" and toks[e:e + 1] == ["مماثله"] and found and found[-1].sentence is sent:
            # "زار X إسلام آباد، بعد يوم من زيارة مماثلة إلى نيودلهي": the same traveller's other trip
            other = _places_after(hits, sent, e + 1, e + 4)
            found += [_Found(found[-1].mention, sent, p, "arrived") for _ps, p in other
                      if p.country != found[-1].place.country][:1]
            continue
        if kind == "noun":
            found += _noun_trip(sent, hits, s, e, before, after, adj_before, hosts, negs, status, future)
            continue
        if kind == "tour":
            if tour_words is None:
                tour_words = {i for i, st in enumerate(sent.stems) if "جول" in st}
            if not any(0 < s - w <= 8 for w in tour_words):
                continue
        # travel: the subject right before the verb, else right after it, else earlier, else the previous visitor
        subj = []
        rel = None
        send = toks[s] in _SEND or sent.stems[s] in _SEND
        if send:
            # "أرسلت مصر وفدا أمنيا إلى تل أبيب", "أرسل الرئيس الأمريكي مبعوثه إلى الدوحة": the one sent travels, on
            # behalf of the sender named before him; "المساعدات التي أرسلها المغرب": no one
            near = [m for m in after[:2] if m.start - e <= 8]
            if len(near) == 2 and near[0].start - e <= 1 and near[1].start - near[0].end <= 3:
                sent_ = near[1]  # "أوفد الرئيس السيسي رئيس المخابرات إلى تل أبيب": the second is sent
            elif near and near[0].title is not None and near[0].start - e <= 4 and (
                    near[0].title.delegation or near[0].title.id in ENVOY_TITLES or near[0].title.as_role == "envoy"):
                sent_ = near[0]  # "أرسلت مصر وفدا"
            else:
                continue
            if sent_.country is None:
                by = [m.country for m in after if m.end <= sent_.start and m.country] or [
                    p.country for ps, _pe, _k, p in of_kind(hits, "place") if e <= ps < sent_.start]
                sent_.country = by[0] if by else None
            hosts.update(id(m) for m in after if m.end <= sent_.start)  # (the sender stays home)
        dual = not _DUAL.isdisjoint(toks[max(0, s - 3):s]) or (e < len(toks) and toks[e] in _DUAL)
        if send:
            subj = [sent_]
        elif toks[max(0, s - 2):s] in (["قبل", "ان"], ["بعد", "ان"], ["علي", "ان"]) and found \
                and found[-1].sentence is sent and found[-1].mention.sent is sent \
                and id(found[-1].mention) not in hosts:
            # "سيتوجه X من العريش إلى القاهرة للقاء الرئيس Y، قبل أن يغادر إلى عمّان": the traveller of the main
            # clause goes on, not the one he meets
            subj = [found[-1].mention]
        elif dual and pair and not [m for m in adj_before + after[:1] if m.title is None or m.title.id != "minister"]:
            subj = list(pair)  # "وكان الوزيران قد وصلا إلى جدة": the two named before
        elif (rel := _relative_subject(toks, s, before)) is not None:
            subj = [rel]  # "التقى السيسي وزير الخارجية الإيراني الذي يزور القاهرة": the one met is the traveller
        elif adj_before and after and after[0].start == e and id(after[0]) not in hosts and any(
                f.sentence is sent and f.mention is adj_before[-1] for f in found):
            subj = [after[0]]  # "وصل X إلى بيروت، فيما وصل Y إلى أنقرة، ووصل Z إلى دمشق": Z, right after his verb
        elif adj_before and id(adj_before[-1]) not in hosts \
                and _CLAUSE_OPENERS.isdisjoint(toks[adj_before[-1].end:s]):  # (not "X، بينما وصل Y")
            subj = [adj_before[-1]]
            if id(subj[0]) not in subjects and "," in toks[subj[0].end:s]:
                # "هوكشتاين سيلتقي ... نتنياهو غداً، على أن يعود إلى واشنطن": the meeting's subject goes on
                subj = [m for m in before if id(m) in subjects][-1:] or subj
        elif (after and id(after[0]) not in hosts
              and _words_between(sent, hits, e, after[0].start) <= AFTER_SUBJECT_WINDOW):
            subj = [after[0]]
        else:
            earlier = [m for m in before if id(m) not in hosts]
            subj_ = [m for m in earlier if id(m) in subjects]
            if kind == "tour" and found and found[-1].mention.sent is sent and found[-1].mention.start < s:
                subj = [found[-1].mention]  # "وتتوجه X إلى رام الله للقاء Y، ضمن جولة تشمل مصر": X's tour
            elif subj_ and earlier[-1] is not subj_[-1] and id(earlier[-1]) not in subjects \
                    and not (s - earlier[-1].end <= 3):
                subj = subj_[-1:]  # "هوكشتاين سيلتقي ... نتنياهو غداً، على أن يعود": the meeting's subject
            elif earlier and (kind == "tour" or s - earlier[-1].end <= BACK_WINDOW or id(earlier[-1]) in subjects):
                subj = [earlier[-1]]
            elif found and toks[s].startswith(("و", "ف")) and found[-1].mention.sent is sent:
                subj = [found[-1].mention]  # "الذي يزور مصر ...، ويتوجه بعدها إلى قطر": the same traveller
            elif len(earlier) == 1 and (toks[s - 1] == "ان" or toks[s].startswith(("و", "ف"))):
                subj = earlier  # "بدأ الوزير الياباني جولة ... حيث التقى نظيره، على أن يتوجه الاثنين إلى إسرائيل"
            elif last is not None:
                subj = [last]
        if not subj:
            continue
        # coordinated subjects: "ويتكوف وكوشنر", "ويتكوف، ومستشار البيت الأبيض كوشنر، سيصلان"
        ms = sorted(mentions, key=lambda m: m.start)
        first, link = subj[0], subj[0]
        joint: set[int] = set()
        for m in ms if first.sent is sent else []:
            gap = toks[link.end:m.start]
            rest = gap[1:] if gap[:1] == [","] else gap
            # "برنياع ورئيس جهاز الأمن العام (الشاباك) رونين بار", "السراج، والقائد العام للقوات المسلحة المشير
            # خليفة حفتر": a coordinated title we do not know
            and_title = 0 < len(rest) <= 7 and rest[0][:1] == "و" and rest[0] not in _NOT_AND and "," not in rest
            # "وصل إلى القاهرة X على رأس وفد وزاري، ووزير الخارجية النرويجي Y الذي تترأس بلاده لجنة ...، ومفوضة
            # الاتحاد الأوروبي Z": after an aside or a relative clause closed by a comma, "و" + the next person
            listed = first.start > e and len(gap) >= 2 and gap[-1] == "," and _conj(sent, m.start) and (
                len(gap) <= 6 and gap[0] in _ASIDE_OPEN or len(gap) <= 14 and gap[0] in _RELATIVE) \
                and PUNCT.isdisjoint(gap[:-1]) and "," not in gap[:-1]
            if m.start >= link.end and (m.start - link.end <= 1 and (_conj(sent, m.start) or gap == [","])
                                        or and_title or listed) and (m.start < s or m.start > e):
                subj.append(m)
                link = m
                if "," not in gap:
                    joint.add(id(m))  # "برنياع ورئيس الشاباك بار": one party; "السراج، وحفتر": two
        if first.sent is sent and first.end <= s and _conj(sent, first.start):
            for m in reversed([x for x in ms if x.end <= first.start]):
                if first.start - m.end <= 1:
                    subj.insert(0, m)
                break
        start = max([e] + [m.end for m in subj if m.sent is sent and m.start >= e])
        stop = min(len(toks), start + PLACE_WINDOW, max(nxt, start + 4))
        if any(start <= cs < stop for cs, _ce, _k, _p in of_kind(hits, "companion")):
            stop = min(len(toks), stop + 8, max(nxt, stop))  # "X، إلى جانب مسؤول ملف الرهائن، إلى الدوحة"
        places = []
        if start > e and subj[0].sent is sent and subj[0].start > e and not send:
            # "وصل إلى القاهرة وفد من حركة حماس": the place between the verb and its subject is the destination
            # (a place after the subject may be its title's: "يصل إلى بيروت المبعوث الأميركي إلى سوريا")
            places = _places_after(hits, sent, e, subj[0].start, direct_ok=e)
        if not places:
            places = _places_after(hits, sent, start, stop, direct_ok=start)
        if places and subj[0].country and all(p.country == subj[0].country for _ps, p in places):
            # "وفد من حماس برئاسة نائب رئيس الحركة في قطاع غزة خليل الحية، اليوم، إلى القاهرة": a place of the
            # subject's own title is at home; the trip's place follows
            nxt_from = max(ps for ps, _p in places) + 1
            later = _places_after(hits, sent, nxt_from, min(len(toks), nxt_from + PLACE_WINDOW))
            places = [(ps, p) for ps, p in later if p.country != subj[0].country] or places
        if not places and s >= 2 and toks[s - 1] in _RELATIVE and toks[e - 1].endswith("ها"):  # ("وصلها", "إليها")
            # "في مدينة العريش المصرية، التي توجه إليها الوزير X": the place the relative clause is about
            ante = s - 3 if toks[s - 2] == "," else s - 2  # (the word before the relative pronoun)
            places = [(ps, p) for ps, pe, _k, p in of_kind(hits, "place") if pe - 1 in (ante, ante - 1)][-1:]
        if not places and rel is not None and subj[0] is rel:
            # "التقى السيسي في القاهرة الوزير ... الذي وصل في زيارة مفاجئة": the venue named before him
            places = _places_after(hits, sent, 0, rel.start, need_fi=True)[-1:] or [
                (ps, p) for ps, pe, _k, p in of_kind(hits, "place")
                if pe < rel.start and pe < len(toks) and toks[pe] in _RECEIVES][-1:]  # "تتهيأ بيروت لاستقبال X"
        if not places and _JOINS.intersection(toks[s:e + 1]) and (any(
                toks[j] in _EVENT_NOUNS for j in range(e, min(len(toks), e + 3))) or any(
                toks[j] == "الي" and (toks[j + 1] in _EVENT_NOUNS or toks[j + 1] in _EVENT_OF_CITY)
                for j in range(e, min(len(toks) - 1, e + 16)))):
            # ("انضم فيه وزير الدولة القطري، الذي وصل صباح أمس، إلى اجتماعات الوسطاء")
            # "فيما ينتظر أن ينضم إلى الاجتماع غدا X": the meeting of the arrival just reported
            places = [(s, found[-1].place)] if found else ([(s, prev_place)] if prev_place is not None else [])
        if not places and _JOINS.intersection(toks[s:e + 1]) and toks[e:e + 1] in (["اليه"], ["اليهم"], ["اليها"]) \
                and found and found[-1].sentence is sent:
            places = [(s, found[-1].place)]  # "وصل X إلى الدوحة، حيث انضم إليه في وقت لاحق Y": where X is
        if not places and toks[s - 1:s] == ["كما"] and found and found[-1].sentence is sent:
            places = [(s, found[-1].place)]  # "وصل X إلى القاهرة، كما وصل وفد ...": the same place
        elif not places and s == 1 and toks[0] == "كما" and prev_place is not None and status == "arrived":
            places = [(s, prev_place)]  # "... إلى جدة. كما وصل وفد أوكراني": the previous arrival's place
        lead_id = identity(subj[0], kn) if len(subj) > 1 else ""
        for m in subj:
            for _ps, place in places:
                f = _Found(m, sent, place, status)
                if id(m) in joint and m.country == subj[0].country:
                    f.extra["trip"] = lead_id  # "وصل برنياع ورئيس الشاباك رونين بار": one delegation, one trip
                found.append(f)
    return found


def _article_on_bare(sent: Sentence, i: int, kn: Knowledge) -> bool:
    """Token i is a place name written without the article, here with one: "ألباريس" is a name, not Paris."""
    st = sent.stems[i]
    return st in kn.bare_places and sent.toks[i].endswith("ال" + st)


_KINGDOM = frozenset({"المملكه", "للمملكه", "بالمملكه", "والمملكه"})
_KINGDOM_BIT: Final = word_class(_KINGDOM)
_CAPITAL_BIT: Final = word_class(("العاصمه",))
_OTHER_KINGDOMS = frozenset({"JO", "MA", "BH"})


def _real_places(sent: Sentence, hits: list[Hit], kn: Knowledge) -> list[Hit]:
    if sent.bits & _KINGDOM_BIT:
        # "المملكة" is Saudi Arabia unless the sentence is in another kingdom: "استقبل الملك عبدالله في قصر
        # الحسينية ... الذي يزور المملكة حالياً"
        other = next((p for _s, _e, _k, p in of_kind(hits, "place") if p.country in _OTHER_KINGDOMS), None)
        if other is not None:  # (rebuilt as Hits, so the rules keep reading one kind at a time)
            hits = Hits((s, e, k, Place(None, other.country)) if k == "place" and sent.toks[s] in _KINGDOM
                        and e - s == 1 else (s, e, k, p) for s, e, k, p in hits)  # (not "المملكة العربية السعودية")
    if sent.bits & _CAPITAL_BIT:
        # "العاصمة الإدارية الماليزية بوتراجايا": a capital named by its kind belongs to the adjective after it
        nat_at = {ns: c for ns, _ne, _k, c in of_kind(hits, "nat")}
        swap = {s: nat_at[e] for s, e, _k, p in of_kind(hits, "place")
                if sent.toks[s] == "العاصمه" and e in nat_at and nat_at[e] != p.country}
        if swap:
            hits = Hits((s, e, k, Place(None, swap[s])) if k == "place" and s in swap else (s, e, k, p)
                        for s, e, k, p in hits)
    # (a place hit on a bare place's stem implies the sentence holds one: no scan of its stems first)
    if any(k == "place" and _article_on_bare(sent, s, kn) for s, _e, k, _p in of_kind(hits, "place")):
        hits = Hits(h for h in hits if not (h[2] == "place" and _article_on_bare(sent, h[0], kn)))
    if sent.bits & _PLACE_KIND_WORDS_BIT:
        # "وصل الوفد إلى المدينة السويسرية", "كما وصل إلى المنتجع المصري": a place named by its kind and country
        toks = sent.toks
        starts = {hs for hs, _he, _k, _p in of_kind(hits, "place")}
        extra = {(h[0], h[1]): (h[0] - 1, h[1], "place", Place(None, h[3])) for h in of_kind(hits, "nat")
                 if h[0] and toks[h[0] - 1] in _PLACE_KIND_WORDS and h[0] - 1 not in starts and h[0] not in starts}
        if extra:
            hits = Hits(x for h in hits for x in (
                (h, extra[(h[0], h[1])]) if h[2] == "nat" and (h[0], h[1]) in extra else (h,)))
    return hits


_JOINS = frozenset(normalize(w) for w in ("ينضم", "سينضم", "انضم", "تنضم", "ستنضم", "انضمت"))
_EVENT_NOUNS = frozenset(normalize(w) for w in ("الاجتماع", "الاجتماعات", "المحادثات", "المفاوضات", "المباحثات",
                                                "المؤتمر", "القمة", "اللقاء", "الوفد", "الوفود"))
_EVENT_NOUNS_BIT: Final = word_class(_EVENT_NOUNS)
_CLAUSE_OPENERS = frozenset({"بينما", "فيما", "عندما", "اذ"})
_CLAUSE_OPENERS_BIT: Final = word_class(_CLAUSE_OPENERS)
_PLACE_KIND_WORDS = frozenset({"المدينه", "المنتجع", "البلده"})
_PLACE_KIND_WORDS_BIT: Final = word_class(_PLACE_KIND_WORDS)
_CANCEL = frozenset(normalize(w) for w in ("ألغيت", "أُلغيت", "ألغي", "إلغاء", "أرجئت", "إرجاء", "تأجلت", "أجلت",
                                            "تأجيل", "ألغاها", "أرجأها", "ألغت", "أرجأت"))
_CANCEL_BIT: Final = word_class(_CANCEL)
_TRIP_NOUNS = frozenset(normalize(w) for w in ("الزيارة", "زيارته", "زيارتها", "زيارة", "الرحلة", "رحلته", "جولته",
                                               "الجولة", "زيارتهما", "زيارتهم"))


_PRESENCE = frozenset(normalize(w) for w in ("الموجود", "المتواجد", "الموجودة", "المتواجدة"))
# a trip stated as the subject's own ("في ختام زيارته إلى إسرائيل"): a call mentioned beside it does not undo it
_STATED_TRIP = _PRESENCE | frozenset(normalize(w) for w in ("زيارته", "زيارتها", "جولته", "جولتها"))
_STATED_TRIP_BIT: Final = word_class(_STATED_TRIP)


# verbs of a physical arrival or departure: no call or video link can be them
_ARRIVAL_VERBS = frozenset(normalize(w) for w in (
    "وصل", "وصلت", "وصلا", "وصلوا", "يصل", "تصل", "سيصل", "ستصل", "توجه", "توجهت", "يتوجه", "تتوجه", "سيتوجه",
    "ستتوجه", "حط", "حطت", "غادر", "غادرت", "ووصل", "ووصلت", "وتوجه", "وتوجهت"))


def _remote_after_arrival(sent: Sentence, hits: list[Hit], kinds: set[str]) -> tuple[list[Hit], set[str]]:
    """"وصل X إلى الدوحة، ... في اجتماع رباعي مع Y، وممثل عن الإدارة الأميركية عبر الاتصال المرئي": a video link
    named well after an arrival is someone else's; the arrival stands (the triggers after the link are dropped)."""
    r0 = min(rs for rs, _re, _k, _p in of_kind(hits, "remote"))
    arrivals = [te for ts, te, _k, _p in of_kind(hits, "trig") if sent.toks[ts] in _ARRIVAL_VERBS]
    if not arrivals or r0 - min(arrivals) < 12:
        return hits, kinds
    keep = Hits(h for h in hits if h[2] != "remote" and not (h[2] == "trig" and h[0] > r0))
    return keep, {h[2] for h in keep}


def _presence_only(sent: Sentence, hits: list[Hit]) -> tuple[list[Hit], set[str]]:
    """A call is no visit, but "تلقى السيسي اتصالا من ترمب، الموجود حاليا في إسرائيل" still says where the other
    party is, and "قال بايدن، في ختام زيارته إلى إسرائيل، إنه اتفق مع السيسي خلال اتصال هاتفي" where the speaker
    was: in a call sentence only these words stay trip words (and the call no longer vetoes them)."""
    toks = sent.toks
    keep = [h for h in hits if h[2] not in ("remote", "trig")
            or h[2] == "trig" and not _STATED_TRIP.isdisjoint(toks[h[0]:h[1]])]
    return Hits(keep), {h[2] for h in keep}


_CAME = frozenset(normalize(w) for w in ("قادما", "قادماً", "قادمة", "قادمين", "قادمون", "آتيا", "قادمًا"))
_CAME_BIT: Final = word_class(_CAME)


def _came_from(sent: Sentence, hits: list[Hit], fs: list[_Found], kn: Knowledge) -> list[_Found]:
    """"وصل الرئيس ترامب إلى شرم الشيخ قادما من إسرائيل": the traveller was in the place he came from (the
    previous leg of the trip), when that is abroad for him and not the place he arrives at."""
    toks = sent.toks
    out: list[_Found] = []
    for i, t in enumerate(toks[:-2]):
        if t not in _CAME or toks[i + 1] != "من":
            continue
        place = next((p for s0, _e, _k, p in of_kind(hits, "place") if s0 == i + 2), None)
        if place is None:
            continue
        f = next((f for f in reversed(fs) if f.mention.end <= i), None)
        if f is None or place.country in (f.mention.country, f.place.country):
            continue
        g = _Found(f.mention, sent, place, "arrived")
        if _valid(g, kn):
            out.append(g)
    return out


def _cancelled(sent: Sentence) -> bool:
    """"غير أن مصادر قالت لاحقا إن الزيارة ألغيت في اللحظة الأخيرة": the sentence's trip was called off (the
    cancellation may follow the trip words, unlike a denial, which governs what comes after it)."""
    toks = sent.toks
    if not sent.bits & _CANCEL_BIT:
        return False
    return any(t in _CANCEL and not _TRIP_NOUNS.isdisjoint(toks[max(0, i - 3):i + 4])
               and _SINCE.isdisjoint(toks[max(0, i - 2):i]) for i, t in enumerate(toks))  # not "بعد تأجيل الزيارة"


def _can_visit(hits: list[Hit], kinds: set[str], ctx: Mention | None, alias: bool = False) -> bool:
    """Whether the trigger rules can find a visit in a sentence: not a call ("remote"); someone to travel (a
    title or an official here, a known surname (``alias``), or the visitor of a recent sentence); and a
    destination: a place named here, or a hosting trigger (the host's country) or an attendance trigger (the
    previous sentence's place)."""
    if "remote" in kinds or (ctx is None and not alias and "title" not in kinds and "off" not in kinds):
        return False
    if of_kind(hits, "place"):
        return True
    for _s, _e, _k, p in of_kind(hits, "trig"):
        if p in ("hosting", "attend"):
            return True
    return False


# Talks held at a named place ("في محادثات جرت في إسطنبول", "الجولة الثالثة من محادثات السلام بينهما في
# إسطنبول") and the heads of the state delegations taking part ("رئيس الوفد الأوكراني"): those heads travelled there.
_VENUE_TALKS = frozenset(normalize(w) for w in ("محادثات", "مباحثات", "مفاوضات", "مشاورات", "المحادثات", "المباحثات",
                                                "المفاوضات", "المشاورات"))
_VENUE_TALKS_BIT: Final = word_class(_VENUE_TALKS, stems=True)  # (a talks noun as a token or a stem)
_VENUE_REACH = 7  # tokens from the talks noun to "في <place>"


_VENUE_EVENT = frozenset(normalize(w) for w in (
    "انتهت", "انطلقت", "بدأت", "اختتمت", "عقدت", "جرت", "استؤنفت", "استأنفت", "تتواصل", "تستمر", "تنطلق", "تبدأ",
    "تعقد", "تجري", "تختتم", "تستأنف", "تواصلت", "استمرت", "ستعقد", "ستنطلق", "ستبدأ", "ستجري", "ستستأنف",
    "انتهى", "انطلق", "بدأ", "اختتم", "عقد", "جرى", "استؤنف", "يتواصل", "يستمر", "ينطلق", "يبدأ", "يعقد", "يجري",
    "يختتم", "تواصل", "استمر", "سيعقد", "سينطلق", "سيبدأ", "سيجري"))


def _with_conj(tok: str, words: frozenset[str]) -> bool:
    """``tok`` is one of ``words``, alone or after an attached "و"/"ف" ("وانتهت", "فاجتمعا")."""
    return tok in words or tok[:1] in ("و", "ف") and tok[1:] in words


def _talks_venue(sent: Sentence, hits: list[Hit]) -> Place | None:
    """The place talks are said to be held at in this sentence: a talks noun followed, within a few words and no
    punctuation, by "في <place>"; a talks noun with the city as its complement ("محادثات إسطنبول", not "محادثات
    طهران وواشنطن": two parties); or "في <place>" right after a leading event verb ("انتهت في إسطنبول، اليوم، أول
    جولة من المحادثات")."""
    toks, stems = sent.toks, sent.stems
    if not sent.bits & _VENUE_TALKS_BIT:
        return None  # (most sentences with a place name no talks)
    nouns = [i for i, st in enumerate(stems) if st in _VENUE_TALKS or toks[i] in _VENUE_TALKS]
    if not nouns:
        return None
    places = {s: (e, p) for s, e, _k, p in of_kind(hits, "place")}
    if len({p.country for _e, p in places.values() if p.city}) > 1:
        return None  # "محادثات في الدوحة ... بينما تستضيف القاهرة جولة": which talks a head attends is unclear
    for i in nouns:
        if i + 1 in places and places[i + 1][1].city:
            end = places[i + 1][0]
            if end not in places and not (end < len(toks) and toks[end] == "بين" and end + 1 in places):
                return places[i + 1][1]  # type: ignore[no-any-return]
        for j in range(i + 1, min(len(toks), i + _VENUE_REACH + 1)):
            if toks[j] in PUNCT:
                break
            if toks[j] == "في" and j + 1 in places:
                return places[j + 1][1]  # type: ignore[no-any-return]
            if toks[j] == "في" and j + 2 in places and toks[j + 1] in ("مدينه", "العاصمه"):
                return places[j + 2][1]  # type: ignore[no-any-return]
    lead = _lead_venue(sent, hits)
    if lead is not None and any(i < 16 for i in nouns):
        return lead
    return None


_DELEGATIONS = frozenset({"الوفدان", "الوفدين", "الوفود", "وفود", "وفدا"})
_DELEGATIONS_BIT: Final = word_class(_DELEGATIONS)


def _delegations_arrive(sent: Sentence, hits: list[Hit]) -> Place | None:
    """Where the delegations of talks arrive: "وصل الوفدان الروسي والأوكراني إلى مدينة إسطنبول", "وقد وصل الوفدان إلى
    الدوحة" (their heads, named nearby, are the travellers)."""
    toks = sent.toks
    if not sent.bits & _DELEGATIONS_BIT:
        return None
    for _s, e, _k, st in of_kind(hits, "trig"):
        if st in ("arrived", "upcoming") and any(toks[i] in _DELEGATIONS for i in range(e, min(len(toks), e + 12))):
            # ("وصل إلى مدينة جدة السعودية، اليوم الثلاثاء، وفدا القوات المسلحة السودانية وقوات الدعم السريع")
            places = _places_after(hits, sent, e, min(len(toks), e + 12))
            if places:
                return places[0][1]
    return None


def _lead_venue(sent: Sentence, hits: list[Hit]) -> Place | None:
    """"انتهت في العاصمة المصرية، مساء الثلاثاء، جولة المحادثات ...": the venue right after a leading event verb."""
    toks = sent.toks
    if len(toks) > 2 and toks[1] == "في" and _with_conj(toks[0], _VENUE_EVENT):
        # "في الرياض"; "في قصر الدرعية بالرياض", "في مدينة جدة": the first place before any punctuation
        for s, _e, _k, p in of_kind(hits, "place"):
            if 2 <= s <= 5 and not any(t in PUNCT for t in toks[2:s]):
                return p  # type: ignore[no-any-return]
    return None


# (and "وضم الوفد الأمريكي X": a member); with a conjunction too ("ويرأس الوفد الأوكراني X": a stem keeps the "و")
_LEADS = frozenset(c + normalize(w) for c in ("", "و", "ف") for w in (
    "ترأس", "يترأس", "يرأس", "ترأست", "تترأس", "ترأسه", "قاد", "يقود", "قادت", "تقود", "ضم", "يضم", "ضمت", "تضم"))
_LEADS_BIT: Final = word_class(_LEADS, toks=False, stems=True)


def _leads_delegation(sent: Sentence, m: Mention) -> bool:
    """The official heads or joins a delegation: "وزير الدفاع الأوكراني رستم عمروف، الذي ترأس وفد بلاده"; "وترأس
    الوفد الأميركي وزير الخارجية ماركو روبيو ...، وضم وزير الدفاع رستم عمروف" (anyone named after such a verb)."""
    toks, stems = sent.toks, sent.stems
    i = m.end
    while i < len(toks) and i < m.end + 3 and toks[i] in (",", "الذي", "التي", "وهو", "وهي"):
        i += 1
    if i < m.end + 4 and i + 1 < len(toks) and stems[i] in _LEADS and stems[i + 1] in ("وفد", "الوفد"):
        return True
    for j in range(max(0, m.start - 24), m.start - 1):
        if stems[j] in _LEADS and stems[j + 1] in ("وفد", "الوفد"):
            # the same clause: not "ترأس وفد بلاده، أن كييف طلبت لقاء بين الرئيسين X وY"
            return not _CLAUSE_BREAK.intersection(toks[j + 2:m.start])
    return False


_DUAL_VERBS = frozenset(normalize(w) for w in ("التقيا", "اجتمعا", "يلتقيان", "سيلتقيان", "يجتمعان", "سيجتمعان",
                                                "التقتا", "اجتمعتا", "بحثا"))
_AMONG = frozenset({"بينهم", "بينهن", "ومنهم", "منهم"})
_ATTEND_STOP = frozenset({"حيث", "الذي", "التي", "ان", "انه", "انها", "مؤكدا", "مشيرا", "واكد", "وقال", "واضاف"})
_CLAUSE_BREAK = frozenset({"ان", "انه", "انها", ":", "بين", "الذي", "التي", "حيث"})


def _delegation_head(m: Mention) -> bool:
    """A delegation's head ("رئيس الوفد الأوكراني", "وفد إسرائيلي برئاسة رون ديرمر") or a movement's delegation
    ("وفد حماس"; where the movement's leaders live is no trip: ``_valid``)."""
    if m.country is None or not m.high or m.former or m.title is None:
        return False
    return m.title.id == "delegation-head" or m.title.delegation and (
        m.name is not None or m.official is not None or m.org is not None)


def _venue_visits(venues: list[tuple[Sentence, Place, str]], heads: list[Mention], found: list[_Found],
                  kn: Knowledge) -> list[_Found]:
    """The delegation heads of talks held at the article's one talks venue (one country), when no trip of theirs
    is found otherwise, travelled there."""
    if not venues or not heads or len({p.country for _s, p, _st in venues}) != 1:
        return []
    sent, place, status = venues[0]
    have = {_visitor_id(f.mention, kn) for f in found}
    out = []
    leads: dict[tuple[int, str], str] = {}  # (sentence, country) -> the trip's key identity
    for m in heads:
        ident, vid = identity(m, kn), _visitor_id(m, kn)
        if m.country == place.country or vid in have:
            continue
        have.add(vid)
        f = _Found(m, m.sent or sent, place, status)
        f.identity = ident
        if m.org is None and m.country:
            # the members of a state's delegation named together ("وضم الوفد الأمريكي روبيو ووالتز وويتكوف") make
            # one trip, keyed by the first of them (as another outlet reporting the lead's arrival would key it)
            f.extra["trip"] = leads.setdefault((id(m.sent), m.country), ident)
        if _valid(f, kn):
            out.append(f)
    return out


def extract_from_doc(doc: Doc, kn: Knowledge) -> list[_Found]:
    """Visits found in an analysed article (not yet deduplicated)."""
    present = _present_officials(doc)
    home = _dateline(doc)  # where a wire report was filed: the country of a host named by his office alone
    found: list[_Found] = []
    last: Mention | None = None
    last_idx = -10
    found_idx = -10  # the sentence of the latest visit found
    coref = _Coref()
    pair: list[Mention] = []  # the latest two people named together (for a dual subject)
    pair_idx = -10
    venues: list[tuple[Sentence, Place, str]] = []  # talks held at a named place
    heads: list[Mention] = []  # state delegation heads named without a trip of their own
    event_venue: Place | None = None  # the city the article says hosts a conference or summit
    for si, (sent, hits) in enumerate(zip(doc.sentences, doc.hits, strict=True)):
        if not hits:
            continue
        if event_venue is None and sent.bits & _HOSTS_EVENT_BIT:
            event_venue = _hosted_event_venue(sent, hits)
        kinds = set(hits.by_kind) if type(hits) is Hits else set(map(_KIND, hits))  # (the kinds: the index's keys)
        if "remote" in kinds and "trig" in kinds:
            if sent.bits & _STATED_TRIP_BIT:
                hits, kinds = _presence_only(sent, hits)
            else:
                hits, kinds = _remote_after_arrival(sent, hits, kinds)
        ctx = last if si - last_idx <= 3 else None
        background = False
        alias = bool(coref.surnames) and not coref.surnames.keys().isdisjoint(sent.toks)
        if "trig" in kinds:
            hits = _real_places(sent, hits, kn)
            if "place" not in kinds and of_kind(hits, "place"):
                kinds = kinds | {"place"}  # ("إلى المنتجع المصري": a place named by its kind and country)
            # "كما وصل وفد أوكراني رفيع ..." right after a reported arrival: to the same place
            also = sent.toks[:1] == ["كما"] and bool(found) and si - found_idx <= 2 and "place" not in kinds \
                and "remote" not in kinds
            if not also and not _can_visit(hits, kinds, ctx, alias):  # nothing to find: only the context is kept
                mentions = _mentions(sent, hits, kn, present, coref) \
                    if "off" in kinds or alias or "title" in kinds and "nat" in kinds else []
                fs = []
            else:
                mentions = _mentions(sent, hits, kn, present, coref)
                attend = any(p == "attend" for _s, _e, _k, p in of_kind(hits, "trig"))
                prev_place = _prev_sentence_place(doc.hits[si - 1], doc.sentences[si - 1]) if si and attend else None
                if attend and prev_place is None and found and (found[-1].sentence is doc.sentences[si - 1] or (
                        si - found_idx <= 2 and sent.bits & _EVENT_NOUNS_BIT)):
                    # where the previous sentence's traveller arrived; "ومن المقرر أن يشارك في المؤتمر X": where
                    # the conference just reported is held
                    prev_place = found[-1].place
                elif attend and prev_place is None and event_venue is not None \
                        and sent.bits & _EVENT_NOUNS_BIT:
                    prev_place = event_venue  # "تستعد القاهرة لاستضافة المؤتمر ... ومن المقرر أن يشارك في المؤتمر X"
                if also:
                    prev_place = found[-1].place
                fs = _trigger_visits(sent, hits, mentions, ctx, kn, prev_place, kinds,
                                     pair if si - pair_idx <= 4 else None, home)
                fs = [f for f in fs if _valid(f, kn)]
                if fs and _background(sent, hits):
                    fs = []
                    background = True
                elif fs and _cancelled(sent):
                    fs = []
                elif fs and sent.bits & _CAME_BIT:
                    fs = _came_from(sent, hits, fs, kn) + fs  # (the trip's own place stays the latest one)
        elif "off" in kinds or alias or "title" in kinds and (sent.bits & _COMPANIONS_BIT or "nat" in kinds):
            # no trip here, but a named official (or a role with a written name, or a known surname) becomes the
            # context of the next sentences, and companions ("ويرافقه وزير الدفاع ...") join the trip just reported
            mentions = _mentions(sent, hits, kn, present, coref)
            fs = []
        else:  # neither a trigger nor an official: nothing to find, the context stays
            mentions, fs = [], []
        if not fs and mentions and "place" in kinds and "remote" not in kinds:
            if si < doc.n_title:
                fs = [f for f in _headline_presence(sent, hits, mentions) if _valid(f, kn)]
            if not fs and "venue" in kinds and not _background(sent, hits):
                fs = [f for f in _city_hosts(sent, hits, mentions, "future" in kinds) if _valid(f, kn)]
        for f in fs:
            f.identity = identity(f.mention, kn)
        comp = _companions(sent, mentions, fs, found[-1] if found and si - found_idx <= 2 else None, found, kn) \
            if mentions and not background else []
        if fs and mentions and "جانب" in sent.toks:
            comp += _alongside(sent, mentions, fs, kn)
        if fs or comp:
            found_idx = si
        fi = _first_in(sent) if (fs or found) and not background else None
        if fi:
            if fs:
                for f in fs:
                    f.extra["first_in"] = fi
            else:
                lid = found[-1].identity or identity(found[-1].mention, kn)
                for f in found:
                    if (f.identity or identity(f.mention, kn)) == lid and "first_in" not in f.extra:
                        f.extra["first_in"] = fi
        found.extend(fs)
        found.extend(comp)
        for f in fs:  # the office of each traveller, for a later bare title ("رئيس الوزراء")
            role = f.mention.title or (kn.titles.get(f.mention.official.role) if f.mention.official else None)
            if role is not None and role.id != "counterpart":
                coref.offices[role.as_role or role.id] = f.mention
            if f.mention.country is None and (role is not None and role.org or (
                    f.mention.official is not None and f.mention.official.country is None)):
                coref.intl = f.mention
            rs = f.mention.role_span
            if rs is not None and f.mention.alias_of is None:
                coref.roles.append((tuple((f.mention.sent or sent).toks[rs[0]:rs[1]]), f.mention))
        if mentions:
            coref.register(mentions)
            if "remote" not in kinds and not background:  # (heads with a trip of their own are skipped later)
                leads = bool(sent.bits & _LEADS_BIT)  # (else no mention can lead or join a delegation)
                heads.extend(m for m in mentions if _delegation_head(m) or leads and m.country and m.high
                             and not m.former and _leads_delegation(sent, m))
        if "place" in kinds and "remote" not in kinds and not background \
                and (venue := _talks_venue(sent, hits) or _delegations_arrive(sent, hits)) is not None \
                and not _background(sent, hits):
            venues.append((sent, venue, "upcoming" if "future" in kinds else "arrived"))
        people = [m for m in mentions if m.high and (m.official or m.title)] if mentions else []
        named = [m for m in people if m.country and (m.official or m.name) and not m.former] if people else []
        for a, b in pairwise(named):  # "وزير الدفاع اللبناني X ونظيره السوري Y": a coordinated pair
            if b.start == a.end and _conj(sent, b.start) and a.country != b.country:
                if b.title is not None and b.title.id == "counterpart":  # "ونظيره السوري X": X holds a's office
                    b = replace(b, title=kn.titles.get(b.official.role, a.title) if b.official else a.title)
                pair, pair_idx = [a, b], si
        if fs:
            last, last_idx = fs[-1].mention, si
        elif people and any(m.official or m.name for m in people) and si - found_idx > LAST_KEEP:
            # (a visit reported in the last sentences keeps its traveller as the context: "وأكد الرئيس السيسي ...
            # ويزور بلنكن ... بزيارة القدس" is still the guest's tour)
            # the context is the sentence's named official, preferably not the counterpart someone meets
            offs_ = [m for m in people if m.official or m.name]  # (a written name: "وصل X، وزير ...")
            last = next((m for m in offs_ if not (m.title and m.title.id == "counterpart")), offs_[0])
            last_idx = si
    found.extend(_venue_visits(venues, heads, found, kn))
    return found


_HOSTS_EVENT = frozenset(normalize(w) for w in (
    "لاستضافة", "لاحتضان", "تستضيف", "يستضيف", "ستستضيف", "سيستضيف", "تحتضن", "يحتضن", "استضافة", "احتضان"))
_HOSTS_EVENT_BIT: Final = word_class(_HOSTS_EVENT)


def _hosted_event_venue(sent: Sentence, hits: list[Hit]) -> Place | None:
    """"تستعد القاهرة لاستضافة «المؤتمر الدولي ...»", "تحتضن الرياض القمة": the city named right before or after
    the hosting word, when a conference, summit or talks follow it."""
    toks = sent.toks
    for i, t in enumerate(toks):
        if t not in _HOSTS_EVENT or not any(
                toks[j] in _EVENT_NOUNS or toks[j] in _EVENT_OF_CITY for j in range(i + 1, min(len(toks), i + 5))):
            continue
        near: list[Place] = [p for s0, e0, _k, p in of_kind(hits, "place") if e0 in (i, i - 1) or s0 == i + 1]
        if near:
            return near[0]
    return None


# a place that receives someone: "تستضيف القاهرة اليوم وفدا إسرائيليا", "تستقبل أنقرة غدا وزير الخارجية الروسي"
_PLACE_RECEIVES = frozenset(normalize(w) for w in (
    "تستضيف", "يستضيف", "ستستضيف", "سيستضيف", "استضافت", "استضاف", "تستقبل", "يستقبل", "ستستقبل", "سيستقبل",
    "استقبلت", "تحتضن", "يحتضن", "احتضنت"))


def _city_hosts(sent: Sentence, hits: list[Hit], mentions: list[Mention], future: bool) -> list[_Found]:
    """The guest of a place named as the host right after the verb: "تستضيف القاهرة اليوم وفدا إسرائيليا"."""
    toks = sent.toks
    out: list[_Found] = []
    for s, e, _k, p in of_kind(hits, "place"):
        if not (s and toks[s - 1] in _PLACE_RECEIVES and isinstance(p, Place)):
            continue
        g = _skip_aside(toks, e)
        while g < len(toks) and toks[g] in _ASIDE_WORDS:
            g += 1
        m = next((m for m in mentions if m.start == g), None)
        if m is not None and m.high and not m.former and m.country != p.country:
            status = "upcoming" if future or toks[s - 1].startswith("س") else (
                "arrived" if not _imperfect(toks[s - 1]) else "ongoing")
            out.append(_Found(m, sent, p, status))
    return out


_HEADLINE_LEAD = frozenset({"عاجل", ":", "-", "فيديو", "بالفيديو", "بالصور"})


def _headline_presence(sent: Sentence, hits: list[Hit], mentions: list[Mention]) -> list[_Found]:
    """A headline that opens with an official and puts him in a place abroad: "الشيباني في أنقرة لبحث الملف الكردي",
    "وزير الخارجية السعودي في دمشق للمرة الأولى منذ 14 عاما"."""
    toks = sent.toks
    m = mentions[0]
    if any(t not in _HEADLINE_LEAD for t in toks[:m.start]) or not m.high or m.former or m.end + 1 >= len(toks) \
            or toks[m.end] != "في":
        return []
    place = next((p for s, _e, _k, p in of_kind(hits, "place") if s == m.end + 1), None)
    if place is None or place.country == m.country or (m.country is None and m.official is None and (
            m.title is None or m.title.org is None)):
        return []
    return [_Found(m, sent, place, "arrived")]


# Companions of a reported trip: "ويرافقه وزير الدفاع ...", "ويرافق الشيباني في زيارته وزير الدفاع X ورئيس ...",
# "برفقة وزير الخارجية ...", "على رأس وفد يضم فيدان وغولر". They travel with the visitor, to the same place.
_COMPANIONS = frozenset(normalize(w) for w in (
    "يرافقه", "ويرافقه", "يرافقها", "ويرافقها", "يرافقهم", "ويرافقهم", "يرافق", "ويرافق", "رافقه", "ورافقه",
    "رافقها", "ورافقها", "رافق", "ورافق", "برفقة", "وبرفقة", "بمعية", "وبمعية", "يضم", "يضمّ", "ويضم", "ضم", "وضم",
    "تضم", "وتضم", "ضمّ", "بصحبة", "وبصحبة"))
_COMPANIONS_BIT: Final = word_class(_COMPANIONS)


_COMPANION_SKIP = frozenset({"في", "خلال", "زيارته", "زيارتها", "الزياره", "جولته", "جولتها", "الجوله", ",", "كل",
                             "من"})


def _companions(sent: Sentence, mentions: list[Mention], fs: list[_Found], prev: _Found | None,
                known: list[_Found], kn: Knowledge) -> list[_Found]:
    """Officials named after a companion word in this sentence travel with the visitor reported before it (in
    this sentence, else ``prev``), to the same place: one trip, so their visit keys take the lead's identity
    (``extra["trip"]``). Returns the companions not already found in ``fs``."""
    if not sent.bits & _COMPANIONS_BIT:
        return []
    toks = sent.toks
    c = next((i for i, t in enumerate(toks) if t in _COMPANIONS), None)
    if c is None:
        return []
    lead = next((f for f in reversed(fs) if f.mention.sent is sent and f.mention.start < c), None) or prev
    if lead is None:
        return []
    trip = lead.extra.get("trip") or lead.identity or identity(lead.mention, kn)
    for f in fs:
        if f is not lead and f.mention.sent is sent and f.mention.start > c and f.place.country == lead.place.country \
                and (not f.mention.country or not lead.mention.country or f.mention.country == lead.mention.country):
            f.extra["trip"] = trip
    here = [f for f in known + fs if f.place.country == lead.place.country]
    have = {f.mention.official.id if f.mention.official else identity(f.mention, kn) for f in here}
    # the companions follow the word at once ("برفقة وزير الخارجية", not "برفقة ابنة ترمب"), after the lead
    # himself and "في زيارته" ("ويرافق الشيباني في زيارته وزير الدفاع ..."), and then follow each other
    j = c + 1
    lm = lead.mention
    for m in mentions:  # the lead named again: "ويرافق الشيباني في زيارته"
        if m.start == j and (m is lm or m.official is not None and m.official is lm.official):
            j = m.end
    while j < len(toks) and toks[j] in _COMPANION_SKIP:
        j += 1
    out: list[_Found] = []
    for m in sorted(mentions, key=lambda x: x.start):
        if m.start < j:
            continue
        if m.start > j and not (m.start - j <= 1 and (_conj(sent, m.start) or toks[j] == ",")) \
                and not _titled_name(toks, j, m, first=not out):
            break
        j = m.end
        if not (m.official or m.title) or (m.title and m.title.delegation):
            continue
        if m.country and lead.mention.country and m.country != lead.mention.country:
            continue  # "فيما ضم الوفد الأوكراني ...": another country's delegation, not the traveller's companions
        vid = m.official.id if m.official else identity(m, kn)
        if vid in have:
            continue
        f = _Found(m, sent, lead.place, lead.status)
        if _valid(f, kn):
            f.identity = identity(m, kn)
            f.extra["trip"] = trip
            have.add(vid)
            out.append(f)
    return out


def _alongside(sent: Sentence, mentions: list[Mention], fs: list[_Found], kn: Knowledge) -> list[_Found]:
    """"سيصل X إلى القاهرة للمشاركة في المحادثات، إلى جانب وفد إسرائيلي يرأسه رئيس جهاز «الموساد»": whoever is
    named right after "إلى جانب", after a reported trip, goes there too (of any country but the host's)."""
    toks = sent.toks
    out: list[_Found] = []
    for i in range(1, len(toks) - 1):
        if toks[i] != "جانب" or toks[i - 1] != "الي":
            continue
        lead = next((f for f in reversed(fs) if f.mention.end <= i - 1), None)
        m = next((m for m in mentions if i < m.start <= i + 6 and m.high and not m.former), None)
        if lead is None or m is None or m.country == lead.place.country or any(f.mention is m for f in fs):
            continue
        f = _Found(m, sent, lead.place, lead.status)
        if _valid(f, kn):
            f.identity = identity(m, kn)
            out.append(f)
    return out


def _titled_name(toks: list[str], j: int, m: Mention, first: bool) -> bool:
    """A named companion after a title we do not know: "يرافقه رئيس مكتبه أندريه يرماك"، "، ووزير الدفاع رستم
    أوميروف"، "ومسؤولة السياسة الخارجية في الاتحاد كايا كالاس" (the title words between j and the name)."""
    if m.official is None and m.name is None:
        return False
    gap = toks[j:m.start]
    if not first and gap[:1] == [","]:
        gap = gap[1:]
    if not gap or len(gap) > 5 or not PUNCT.isdisjoint(gap):
        return False
    return first or gap[0][:1] == "و" and gap[0] not in _NOT_AND


def _valid(f: _Found, kn: Knowledge) -> bool:
    m = f.mention
    if not m.high or m.former:
        return False
    if m.title and m.title.id == "counterpart" and m.official is None:
        return False  # "نظيره الأردني" alone; "نظيره الأردني أيمن الصفدي" is a known official
    if m.country and m.country == f.place.country:
        return False
    body = m.org or (m.official.org if m.official else None)
    if body and f.place.country in kn.orgs.get(body, {}).get("based_in", ()):
        return False  # "الخليفي يلتقي الحية في الدوحة": the movement's leaders live there
    org = m.title.org if m.title else None
    if m.official and m.official.country is None:
        t = kn.titles.get(m.official.role)
        org = t.org if t else None
    if org and f.place.city and f.place.city in (kn.intl_orgs.get(org, {}).get("base") or []):
        return False
    return True


def _back_ref(m: Mention) -> bool:
    """A generic back-reference ("المسؤول الأممي") rather than a named person or a specific office."""
    return m.title is not None and m.title.id in _BACK_REFERENCES and m.official is None


def _absorb(into: _Found, f: _Found, cities: dict[tuple[str, str], str | None], k: tuple[str, str]) -> None:
    """Merge a second report of the same visit in one article: fill the city and first_in."""
    if not cities[k] and f.place.city:
        cities[k] = f.place.city
    if f.status == "arrived":  # headlines use the present tense; a past-tense report of the same trip wins
        into.status = "arrived"
    if "first_in" in f.extra and "first_in" not in into.extra:
        into.extra["first_in"] = f.extra["first_in"]


def extract_visits(article: Article, *, fetch_time_bucket: bool = False) -> list[Visit]:
    """High-level visits reported by one article, deduplicated by visitor identity and destination country.

    ``fetch_time_bucket``: an article without ``published_at`` takes its key's month from ``fetched_at`` (the
    stream: a feed item without a date is news of the moment it was fetched, and the archive keeps that time, so
    a replay gives the same keys), instead of a date written in its text (``trucewatch classify``, where the
    fetch time is the wall clock of the run).
    Pure (no I/O beyond the once-loaded knowledge); never raises on odd text.
    """
    kn = get_knowledge()
    title, body = article_parts(article.title, article.summary, article.body)
    doc = analyse_text(title, body, kn)
    found = extract_from_doc(doc, kn)
    if not found:
        return []
    bucket = date_bucket(article, fetch_time=fetch_time_bucket)
    # one visit per person and destination; a role-only mention merges into the named person of its office
    merged: dict[tuple[str, str], _Found] = {}
    order: list[tuple[str, str]] = []
    cities: dict[tuple[str, str], str | None] = {}
    named_in_group: dict[tuple[str, str], list[tuple[str, str]]] = {}
    pending_roles: list[_Found] = []
    for f in found:
        if f.mention.official is None and f.mention.name is None:
            pending_roles.append(f)
            continue
        k = (_visitor_id(f.mention, kn), f.place.country)
        if k not in merged:
            merged[k] = f
            order.append(k)
            cities[k] = f.place.city
            named_in_group.setdefault((f.identity, f.place.country), []).append(k)
        else:
            _absorb(merged[k], f, cities, k)
    for f in pending_roles:
        g = (f.identity, f.place.country)
        if g in named_in_group:
            k = named_in_group[g][0]
            _absorb(merged[k], f, cities, k)
            continue
        k = (_visitor_id(f.mention, kn), f.place.country)
        if k not in merged:
            merged[k] = f
            order.append(k)
            cities[k] = f.place.city
        else:
            _absorb(merged[k], f, cities, k)
    # "المسؤول الأممي" (a headline or a later sentence) is the one international traveller to that country
    for k in [k for k in order if _back_ref(merged[k].mention)]:
        into = [k2 for k2 in order if k2 != k and k2[1] == k[1] and merged[k2].mention.country is None
                and not _back_ref(merged[k2].mention)]
        if len(into) == 1:
            _absorb(merged[into[0]], merged.pop(k), cities, into[0])
            order.remove(k)
    out: list[Visit] = []
    aligned: dict[str, _Aligned] = {}  # sentence text -> its normalised tokens' positions, for surface()
    for k in order:
        f = merged[k]
        m = f.mention.alias_of or f.mention  # a bare surname reports the person named in full before
        ms_ = m.sent or f.sentence
        visitor = surface(ms_, m.name, aligned=aligned) if m.name else None
        role = surface(ms_, m.role_span, False, aligned) if m.role_span else None
        if m.official is not None:
            t = kn.titles.get(m.official.role)
        else:
            t = m.title
        role_en = t.en if t else None
        month = trip_bucket(article, f.sentence, f.status, bucket)
        if t and m.country and not t.org and not m.org:
            role_en = f"{m.country} {t.en}"
        elif m.org:
            role_en = f"{kn.orgs[m.org]['en']} {t.en if t else ''}".strip()
        out.append(Visit(
            visitor=visitor, visitor_id=_visitor_id(m, kn), role=role, role_en=role_en,
            visitor_country=m.country, destination_city=cities[k], destination_country=f.place.country,
            status=f.status, first_in=f.extra.get("first_in"),  # type: ignore[arg-type]
            key=f"{f.extra.get('trip') or f.identity}>{f.place.country}@{month}",
            evidence=f.sentence.text[:500],
            article_id=article.id, source=article.source, url=article.url, title=article.title,
            published_at=article.published_at, replay=article.replay,
        ))
    return out


if __name__ == "processors.visits":  # (not in the compiled copy itself): the mypyc build, when built from this file
    use_compiled(globals(), compiled_twin(__name__, __file__))
