"""Multi-label story classifier (ceasefire / mediation / aid): weighted lexicon evidence, pure functions.

A label's raw score is the sum of the weights of its lexicon terms found in the article (a term in the
title counts ``title_weight`` times; a repeated term counts at most three times), skipping sentences
that also hold one of the label's ``suppress`` phrases (the word in another sense: IMF "مساعدات",
trade "مفاوضات", "تهدئة" of markets); a mediation word inside a longer truce phrase ("اتفاق" in "اتفاق وقف إطلاق
النار") is the truce's and counts for ceasefire only. Article domains (sport, economy, battle report) scale the
scores down when enough of their terms occur. The label is set when the raw score reaches the
label's threshold; ``Label.score`` is raw/threshold (1.0 = the threshold).
"""

from __future__ import annotations

from operator import itemgetter
from typing import Final, cast

from processors.analysis import Doc, Hits, analyse_text, article_parts, compiled_twin, use_compiled
from processors.knowledge import LABELS, Knowledge, get_knowledge
from trucewatch.schema import Article, Labels, Visit

MAX_REPEAT = 3
MAX_CONCRETE = 2  # substantive sentences (a label's ``concrete`` bonus) counted at most this many times
# In a story whose mediation score is at least MEDIATION_HEAVY (x threshold), a truce term (the lexicon's
# ``mediated_terms``: "التهدئة" in "مفاوضات التهدئة") names the truce being negotiated: the ceasefire score is
# raised by MEDIATION_CEASEFIRE_BONUS (once), provided the article has conflict context.
MEDIATION_HEAVY = 2.0
MEDIATION_CEASEFIRE_BONUS = 0.8
CONFLICT_DOMAIN = "commerce"  # the domain whose ``unless`` terms are the article's conflict context
# A ceasefire story that reports a high-level trip is diplomacy about the truce (in the labelled sets 37 of 38 such
# articles are mediation stories): the trip counts as one mid-weight mediation term.
VISIT_MEDIATION_BONUS = 1.0
# An article whose trips are mostly envoys' ("وصلت الممثلة الخاصة للأمين العام ... إلى بنغازي") is a mediation story
# whatever its words: the trip is the mediation (in the labelled sets every such article is; an envoy among many
# guests of a donor conference is not).
ENVOY_LEAD_MEDIATION = 1.0  # (a multiple of the mediation threshold)


LEX_KINDS = frozenset(f"lex:{lab}" for lab in LABELS)
SUP_KINDS = frozenset(f"sup:{lab}" for lab in LABELS)
CON_KINDS = {f"con:{lab}": lab for lab in LABELS}
# the same kinds as tuples: "any of these few kinds among a sentence's" looks up each of them in its by_kind index
# (X.isdisjoint(by_kind) iterates over every kind of the sentence instead)
_LEX_TUPLE = tuple(sorted(LEX_KINDS))
_SUP_TUPLE = tuple(sorted(SUP_KINDS))
_CON_TUPLE = tuple(CON_KINDS)
_KIND = itemgetter(2)
_COUNT = itemgetter(1)
# only the domain kinds' hits are counted (all that _domain_factors and the conflict context read); per kind, whether
# it is one (a memo: kinds are the knowledge's few hundred)
_COUNTED_PREFIXES = ("dom:", "unl:")
_COUNTED: Final[dict[str, bool]] = {}


def _domain_factors(counts: dict[str, int], kn: Knowledge) -> dict[str, float]:
    factors = dict.fromkeys(LABELS, 1.0)
    for kind, n in counts.items():
        if not kind.startswith("dom:"):
            continue
        spec = kn.domains.get(kind[4:])
        if not spec or n < spec["min_hits"] or counts.get("unl:" + kind[4:]):
            continue
        for lab in LABELS:
            factors[lab] *= spec["labels"].get(lab, spec["factor"])
    return factors


def classify_doc(doc: Doc, kn: Knowledge, visits: int = 0, envoy_lead: bool = False) -> Labels:
    """Labels of an analysed article that reports ``visits`` high-level trips (``envoy_lead``: mostly
    envoys')."""
    term_counts: dict[str, dict[str, int]] = {lab: {} for lab in LABELS}  # term -> hits, in order of first hit
    raw = dict.fromkeys(LABELS, 0.0)
    first_sentence: dict[str, str] = {}
    concrete = dict.fromkeys(LABELS, 0)
    truce = False  # a mediated truce term seen
    mediated = kn.mediated_terms
    counts: dict[str, int] = {}  # hits per domain kind, kinds in order of first hit (as a Counter over all hits)
    for si, hits in enumerate(doc.hits):
        if not hits:
            continue
        by = hits.by_kind if type(hits) is Hits else Hits(hits).by_kind  # the sentence's hits per kind
        for kind, lst in by.items():
            counted = _COUNTED.get(kind)
            if counted is None:
                counted = _COUNTED[kind] = kind.startswith(_COUNTED_PREFIXES)
            if counted:
                counts[kind] = counts.get(kind, 0) + len(lst)
        if not any(k in by for k in _LEX_TUPLE):  # only sentences with lexicon terms score
            continue
        suppressed = set() if not any(k in by for k in _SUP_TUPLE) \
            else {str(p) for _s, _e, k, p in hits if k in SUP_KINDS}
        cons = set() if not any(k in by for k in _CON_TUPLE) else {CON_KINDS[k] for k in by if k in CON_KINDS}
        mult = kn.title_weights if si < doc.n_title else None
        # each label's terms in sentence order ("lex:<label>" holds only that label's terms, and nothing below
        # mixes labels, so this is the same as one pass over all hits)
        truce_spans = [(s0, e0) for s0, e0, _k, _p in by.get("lex:ceasefire", ()) if e0 - s0 > 1] \
            if "lex:mediation" in by else []  # (only mediation words are checked against them)
        for kind, lex in by.items():
            if kind not in LEX_KINDS:
                continue
            for _s, _e, _k, payload in lex:
                lab, w, term = cast("tuple[str, float, str]", payload)
                if lab in suppressed:
                    continue
                if lab == "mediation" and truce_spans and any(a <= _s and _e <= b and b - a > _e - _s
                                                              for a, b in truce_spans):
                    continue  # "اتفاق" inside "اتفاق وقف إطلاق النار": the truce's own word
                if (lab, term) in mediated:
                    truce = True
                if lab in cons and w >= kn.concrete_min.get(lab, 2.0) and concrete[lab] < MAX_CONCRETE:
                    cons.discard(lab)  # one bonus per sentence
                    concrete[lab] += 1
                    raw[lab] += kn.concrete_bonus.get(lab, 0.0)
                c = term_counts[lab]
                n = c[term] = c.get(term, 0) + 1
                if n > MAX_REPEAT and mult is None:
                    continue
                raw[lab] += w * (mult[lab] if mult else 1.0)
                if lab not in first_sentence:
                    first_sentence[lab] = doc.sentences[si].text
    factors = _domain_factors(counts, kn)
    med_thr = kn.thresholds["mediation"]
    if (truce and med_thr and raw["mediation"] * factors["mediation"] >= MEDIATION_HEAVY
            * med_thr and counts.get("unl:" + CONFLICT_DOMAIN)):
        raw["ceasefire"] += MEDIATION_CEASEFIRE_BONUS
    if visits and raw["ceasefire"] * factors["ceasefire"] >= kn.thresholds["ceasefire"]:
        raw["mediation"] += VISIT_MEDIATION_BONUS
    if envoy_lead and factors["mediation"]:
        raw["mediation"] = max(raw["mediation"], ENVOY_LEAD_MEDIATION * med_thr / factors["mediation"])
    out: dict[str, dict[str, object]] = {}  # each label's fields: one validation of the whole Labels
    for lab in LABELS:
        score = raw[lab] * factors[lab]
        thr = kn.thresholds[lab]
        # Counter.most_common(6): the 6 most frequent, ties in order of first hit (a stable sort)
        top = sorted(term_counts[lab].items(), key=_COUNT, reverse=True)[:6]
        ev = [f"{t} ×{n}" if n > 1 else t for t, n in top]
        if lab in first_sentence:
            ev.append(first_sentence[lab][:300])
        out[lab] = {"value": score >= thr, "score": round(score / thr, 3) if thr else 0.0, "evidence": ev}
    return Labels.model_validate(out)


def classify(article: Article, visits: list[Visit] | None = None) -> Labels:
    """Classify one article as ceasefire / mediation / aid, each with a score and its evidence.

    ``visits``: the article's visits when the caller has them (``extract_visits``), else they are extracted here.
    Pure (no I/O beyond the once-loaded knowledge); never raises on odd text (empty, non-Arabic, huge).
    """
    kn = get_knowledge()
    title, body = article_parts(article.title, article.summary, article.body)
    if visits is None:
        from processors.visits import extract_visits

        visits = extract_visits(article)
    return classify_doc(analyse_text(title, body, kn), kn, len(visits), _envoy_lead(visits))


def _envoy_lead(visits: list[Visit]) -> bool:
    """Whether the trips an article reports are mostly envoys' (a key's identity names an envoy role: "us-envoy",
    "un-envoy", "au-envoy"): an envoy among many guests of a conference does not make the story his."""
    envoys = sum(v.key.partition(">")[0].endswith("-envoy") for v in visits)
    return bool(visits) and 2 * envoys >= len(visits)


if __name__ == "processors.classify":  # (not in the compiled copy itself): the mypyc build, when built from this file
    use_compiled(globals(), compiled_twin(__name__, __file__))
