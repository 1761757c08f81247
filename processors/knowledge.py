"""The YAML knowledge (lexicon, officials, roles, places): loaded once, validated, compiled into one phrase index."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress, islice
from operator import is_not
from pathlib import Path
from typing import Any

import yaml

from processors.normalize import PUNCT, Vocab, bare, normalize, phrase_stems
from trucewatch.errors import ConfigError
from trucewatch.settings import PACKAGE_CONFIG_DIR

FILES = ("lexicon.yaml", "roles.yaml", "places.yaml", "officials.yaml")
LABELS = ("ceasefire", "mediation", "aid")
TRAVEL_KINDS = ("arrived", "upcoming", "ongoing", "noun", "tour", "attend", "hosting", "meeting", "talks", "lodge",
                "press")
TRAVEL_MARKERS = ("venue", "invitation", "negation", "denial", "remote", "future", "companion", "led_by",
                  "titles_before_names")
_LINE = "__line__"


# --- YAML with line numbers ------------------------------------------------------------------------

class _LineLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A safe loader whose mappings remember the line they start on (key ``__line__``)."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value in node.value:
        key = key_node.value
        if key in seen:  # YAML would keep the last silently: an entry written twice is a mistake in the file
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key]})", key_node.start_mark)
        seen[key] = key_node.start_mark.line + 1
    m: dict[Any, Any] = loader.construct_mapping(node, deep=True)
    m[_LINE] = node.start_mark.line + 1
    return m


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_with_line)
# YAML 1.1 reads NO (Norway), yes, on, off as booleans; in knowledge files only true/false are booleans.
_LineLoader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:bool"] for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", path=str(path)) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise ConfigError(f"invalid YAML: {getattr(e, 'problem', e)}", path=str(path),
                          line=mark.line + 1 if mark else None) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("top level must be a mapping", path=str(path), line=1)
    return data


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``extra`` into ``base``: mappings merge by key (user entries override), lists extend."""
    out = dict(base)
    for k, v in extra.items():
        if k == _LINE and k in out:
            continue
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        elif isinstance(v, list) and isinstance(out.get(k), list):
            out[k] = out[k] + [x for x in v if x not in out[k]]
        else:
            out[k] = v
    return out


# --- compiled knowledge ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Title:
    id: str
    en: str
    gap: int = 2
    org: str | None = None  # built-in international body (no country)
    country: str | None = None  # built-in country (e.g. CIA director)
    as_role: str | None = None  # identity role for keys (e.g. cia-director -> intelligence-chief)
    delegation: bool = False
    org_only: bool = False


@dataclass(frozen=True, slots=True)
class Official:
    id: str
    names: tuple[str, ...]
    role: str
    country: str | None
    status: str
    org: str | None = None
    key_as: str | None = None


@dataclass(frozen=True, slots=True)
class Place:
    city: str | None
    country: str
    capital: bool = False


@dataclass
class Knowledge:
    """Everything the classifier and the visit extractor know, compiled for fast matching."""

    vocab: Vocab
    index: dict[str, list[tuple[tuple[str, ...], str, Any]]]
    thresholds: dict[str, float]
    title_weights: dict[str, float]
    domains: dict[str, dict[str, Any]]
    titles: dict[str, Title]
    officials: dict[str, Official]
    orgs: dict[str, dict[str, Any]]
    intl_orgs: dict[str, dict[str, Any]]
    capitals: dict[str, str]  # country -> capital city name
    name_words: frozenset[str] = frozenset()  # words that occur only in officials' names
    concrete_bonus: dict[str, float] = field(default_factory=dict)  # per label: bonus of a substantive sentence
    concrete_min: dict[str, float] = field(default_factory=dict)  # per label: weight a term needs for that bonus
    mediated_terms: frozenset[tuple[str, str]] = frozenset()  # (label, term): truce terms raised in mediation stories
    # first stems of place names written without the article ("باريس"): "الباريس" is a name ("ألباريس"), no place
    bare_places: frozenset[str] = frozenset()
    sources: list[str] = field(default_factory=list)

    def scan(self, stems: list[str]) -> list[tuple[int, int, str, Any]]:
        """All phrase hits in a stem sequence as (start, end, kind, payload); per kind, longest first, no overlap.

        The entries starting at each position are looked up in C first (phrases of two or more stems by their
        first two stems, single stems by the stem); only positions with some entry are visited in Python.
        Only phrases of two or more stems can block later hits (a one-stem hit ends where the next position
        starts), so single-stem entries are checked against ``busy`` only while such a phrase is open.
        """
        n = len(stems)
        singles = list(map(self.index1.get, stems))
        multis = list(map(self.index2.get, zip(stems, islice(stems, 1, None), strict=False)))
        multis.append(None)
        hits: list[tuple[int, int, str, Any]] = []
        add = hits.append
        busy: dict[str, int] = {}
        open_until = 0  # end of the longest multi-stem hit so far
        for i in compress(range(n), map(is_not, singles, multis)):  # a single and a multi list are never the same
            multi = multis[i]
            if multi is not None:
                for ph, kind, payload in multi:
                    m = len(ph)
                    if busy.get(kind, 0) > i:
                        continue
                    if m == 2 or (i + m <= n and tuple(stems[i + 2:i + m]) == ph[2:]):
                        add((i, i + m, kind, payload))
                        busy[kind] = i + m
                        if i + m > open_until:
                            open_until = i + m
            single = singles[i]
            if single is not None:
                j = i + 1
                if i >= open_until:
                    for kind, payload in single:
                        add((i, j, kind, payload))
                else:
                    for kind, payload in single:
                        if busy.get(kind, 0) <= i:
                            add((i, j, kind, payload))
        return hits

    def __post_init__(self) -> None:
        # one-stem phrases: (kind, payload), the first entry of each kind only (a second one of the same kind at
        # the same position would overlap the first)
        self.index1: dict[str, list[tuple[str, Any]]] = {}
        self.index2: dict[tuple[str, str], list[tuple[tuple[str, ...], str, Any]]] = {}
        self.firsts = frozenset(self.index)
        for first, entries in self.index.items():
            for e in entries:  # already longest first
                if len(e[0]) == 1:
                    lst = self.index1.setdefault(first, [])
                    if all(k != e[1] for k, _p in lst):
                        lst.append((e[1], e[2]))
                else:
                    self.index2.setdefault((first, e[0][1]), []).append(e)
        self.seconds = frozenset(second for _first, second in self.index2)  # (lets the C scan skip index2 lookups)


class _Builder:
    def __init__(self) -> None:
        self.vocab = Vocab()
        self.index: dict[str, list[tuple[tuple[str, ...], str, Any]]] = {}

    def add(self, phrase: Any, kind: str, payload: Any, *, path: str, line: int | None, entry: str) -> None:
        if not isinstance(phrase, str) or not phrase.strip():
            raise ConfigError(f"phrase must be a non-empty string, not {phrase!r}", path=path, line=line, entry=entry)
        if "ؤو" in phrase:  # "الشؤون"/"مسؤول" are also written "الشئون"/"مسئول" (Egyptian spelling)
            self._add(phrase.replace("ؤو", "ئو"), kind, payload, path=path, line=line, entry=entry)
        self._add(phrase, kind, payload, path=path, line=line, entry=entry)

    def _add(self, phrase: str, kind: str, payload: Any, *, path: str, line: int | None, entry: str) -> None:
        st = phrase_stems(phrase, self.vocab)
        st = tuple(s for s in st if s not in PUNCT)
        if not st:
            raise ConfigError(f"phrase {phrase!r} has no words", path=path, line=line, entry=entry)
        lst = self.index.setdefault(st[0], [])
        if not any(p == st and k == kind and pl == payload for p, k, pl in lst):
            lst.append((st, kind, payload))

    def finish(self) -> dict[str, list[tuple[tuple[str, ...], str, Any]]]:
        for lst in self.index.values():
            lst.sort(key=lambda e: -len(e[0]))
        return self.index


def _items(d: Any, path: str, entry: str, line: int | None = None) -> Iterator[tuple[str, Any]]:
    if d is None:
        return
    if not isinstance(d, dict):
        raise ConfigError("must be a mapping", path=path, line=line, entry=entry)
    for k, v in d.items():
        if k != _LINE:
            yield str(k), v


def _line(d: Any) -> int | None:
    return d.get(_LINE) if isinstance(d, dict) else None


def _strlist(v: Any, path: str, line: int | None, entry: str) -> list[str]:
    if isinstance(v, str):
        return [v]
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ConfigError("must be a list of strings", path=path, line=line, entry=entry)
    return v


def _compound_weights(index: dict[str, list[tuple[tuple[str, ...], str, Any]]]) -> None:
    """A compound term hides the shorter terms inside it (longest match wins), so it weighs at least as much
    as the heaviest of them ("جهود الوساطة" >= "الوساطة"); zero-weight blockers stay zero."""
    terms: dict[str, dict[tuple[str, ...], float]] = {}
    for lst in index.values():
        for ph, kind, payload in lst:
            if kind.startswith("lex:"):
                terms.setdefault(kind, {})[ph] = payload[1]
    for lst in index.values():
        for i, (ph, kind, payload) in enumerate(lst):
            if not kind.startswith("lex:") or len(ph) < 2 or payload[1] == 0:
                continue
            inner = [w for sub, w in terms[kind].items() if len(sub) < len(ph) and any(
                ph[j:j + len(sub)] == sub for j in range(len(ph) - len(sub) + 1))]
            if inner and max(inner) > payload[1]:
                lst[i] = (ph, kind, (payload[0], max(inner), payload[2]))


_SLOT_RE = re.compile(r"\{(\w+)\}")


def expand_slots(term: str, slots: dict[str, list[str]], *, path: str, line: int | None, entry: str) -> list[str]:
    """A lexicon term with a ``{SLOT}`` (the lexicon's ``slots``: word lists) stands for the term with each word of
    the slot in its place, and with each pair of them joined by "و" ("وقف {ADJ} لإطلاق النار" -> "وقف فوري لإطلاق
    النار", "وقف فوري ودائم لإطلاق النار", ...). A term without a slot is itself."""
    m = _SLOT_RE.search(term)
    if m is None:
        return [term]
    words = slots.get(m.group(1))
    if words is None:
        raise ConfigError(f"unknown slot {{{m.group(1)}}} (slots: {', '.join(sorted(slots)) or 'none'})", path=path,
                          line=line, entry=entry)
    fills = words + [f"{a} و{b}" for a in words for b in words if a != b]
    return [x for f in fills for x in expand_slots(term[:m.start()] + f + term[m.end():], slots, path=path,
                                                   line=line, entry=entry)]


def compile_knowledge(docs: dict[str, dict[str, Any]], origins: dict[str, str]) -> Knowledge:
    """Validate the four merged documents and compile them; ConfigError names the file, line and entry."""
    b = _Builder()
    lex, roles, places, offs = (docs.get(f, {}) for f in FILES)
    p_lex, p_roles, p_places, p_offs = (origins.get(f, f) for f in FILES)

    thresholds: dict[str, float] = {}
    title_weights: dict[str, float] = {}
    concrete_bonus: dict[str, float] = {}
    concrete_min: dict[str, float] = {}
    mediated: set[tuple[str, str]] = set()
    slots = {name: _strlist(words, p_lex, _line(lex.get("slots")), f"slots.{name}")
             for name, words in _items(lex.get("slots"), p_lex, "slots")}
    labels = lex.get("labels")
    if not isinstance(labels, dict):
        raise ConfigError("missing mapping 'labels'", path=p_lex, line=1, entry="labels")
    for lab in LABELS:
        spec = labels.get(lab)
        ln = _line(spec)
        if not isinstance(spec, dict):
            raise ConfigError("missing label", path=p_lex, line=_line(labels), entry=f"labels.{lab}")
        try:
            thresholds[lab] = float(spec.get("threshold", 3.0))
            title_weights[lab] = float(spec.get("title_weight", 2.0))
        except (TypeError, ValueError):
            raise ConfigError("threshold/title_weight must be numbers", path=p_lex, line=ln,
                              entry=f"labels.{lab}") from None
        for term, w in _items(spec.get("terms"), p_lex, f"labels.{lab}.terms", ln):
            if not isinstance(w, int | float) or isinstance(w, bool):
                raise ConfigError(f"weight must be a number, not {w!r}", path=p_lex, line=ln,
                                  entry=f"labels.{lab}.terms.{term}")
            for phrase in expand_slots(term, slots, path=p_lex, line=ln, entry=f"labels.{lab}.terms.{term}"):
                b.add(phrase, f"lex:{lab}", (lab, float(w), phrase), path=p_lex, line=ln,
                      entry=f"labels.{lab}.terms.{term}")
        for term in _strlist(spec.get("suppress", []), p_lex, ln, f"labels.{lab}.suppress"):
            b.add(term, f"sup:{lab}", lab, path=p_lex, line=ln, entry=f"labels.{lab}.suppress")
        # `concrete`: words that make a sentence with a strong term of the label substantive (a pledge, access)
        try:
            concrete_bonus[lab] = float(spec.get("concrete_bonus", 0.0))
            concrete_min[lab] = float(spec.get("concrete_min_weight", 2.0))
        except (TypeError, ValueError):
            raise ConfigError("concrete_bonus/concrete_min_weight must be numbers", path=p_lex, line=ln,
                              entry=f"labels.{lab}") from None
        known = {str(t) for t, _w in _items(spec.get("terms"), p_lex, f"labels.{lab}.terms", ln)}
        for term in _strlist(spec.get("mediated_terms", []), p_lex, ln, f"labels.{lab}.mediated_terms"):
            if term not in known:
                raise ConfigError(f"mediated term {term!r} is not one of the label's terms", path=p_lex, line=ln,
                                  entry=f"labels.{lab}.mediated_terms")
            mediated.update((lab, phrase) for phrase in expand_slots(term, slots, path=p_lex, line=ln,
                                                                     entry=f"labels.{lab}.mediated_terms"))
        for term in _strlist(spec.get("concrete", []), p_lex, ln, f"labels.{lab}.concrete"):
            b.add(term, f"con:{lab}", lab, path=p_lex, line=ln, entry=f"labels.{lab}.concrete")
    domains: dict[str, dict[str, Any]] = {}
    for name, spec in _items(lex.get("domains"), p_lex, "domains"):
        ln = _line(spec)
        if not isinstance(spec, dict):
            raise ConfigError("must be a mapping", path=p_lex, line=ln, entry=f"domains.{name}")
        domains[name] = {"factor": float(spec.get("factor", 1.0)), "min_hits": int(spec.get("min_hits", 2)),
                         "labels": {k: float(v) for k, v in _items(spec.get("labels"), p_lex, f"domains.{name}")}}
        for term in _strlist(spec.get("terms", []), p_lex, ln, f"domains.{name}.terms"):
            b.add(term, f"dom:{name}", name, path=p_lex, line=ln, entry=f"domains.{name}")
        # `unless`: the domain does not apply when one of these occurs in the article (e.g. war vocabulary)
        for term in _strlist(spec.get("unless", []), p_lex, ln, f"domains.{name}.unless"):
            b.add(term, f"unl:{name}", name, path=p_lex, line=ln, entry=f"domains.{name}.unless")
    # `words`: ordinary words whose first letter looks like a particle or whose end looks like a suffix, so that
    # stripping would turn them into a knowledge word (وزارة -> و+زار+ة "visited", الرياضية -> الرياض "Riyadh");
    # as vocabulary forms of their own they stem to themselves and match nothing
    for word in _strlist(lex.get("words", []), p_lex, _line(lex), "words"):
        phrase_stems(word, b.vocab)
    travel = lex.get("travel") or {}
    for kind in TRAVEL_KINDS + TRAVEL_MARKERS:
        for term in _strlist(travel.get(kind, []), p_lex, _line(travel), f"travel.{kind}"):
            k = "trig" if kind in TRAVEL_KINDS else kind
            b.add(term, k, kind, path=p_lex, line=_line(travel), entry=f"travel.{kind}")

    # roles
    titles: dict[str, Title] = {}
    intl_orgs = {k: v for k, v in _items(roles.get("intl_orgs"), p_roles, "intl_orgs")}
    for tid, spec in _items(roles.get("titles"), p_roles, "titles"):
        ln = _line(spec)
        entry = f"titles.{tid}"
        if not isinstance(spec, dict) or "ar" not in spec:
            raise ConfigError("a title needs 'ar' (Arabic forms) and 'en'", path=p_roles, line=ln, entry=entry)
        org = spec.get("org")
        if org is not None and org not in intl_orgs:
            raise ConfigError(f"unknown org {org!r} (not in intl_orgs)", path=p_roles, line=ln, entry=entry)
        titles[tid] = Title(tid, str(spec.get("en", tid)), int(spec.get("gap", 2)), org, spec.get("country"),
                            spec.get("as"), bool(spec.get("delegation", False)), bool(spec.get("org_only", False)))
        for term in _strlist(spec["ar"], p_roles, ln, entry):
            b.add(term, "title", tid, path=p_roles, line=ln, entry=entry)
    orgs: dict[str, dict[str, Any]] = {}
    for oid, spec in _items(roles.get("orgs"), p_roles, "orgs"):
        ln = _line(spec)
        if not isinstance(spec, dict) or not isinstance(spec.get("country"), str):
            raise ConfigError("an org needs 'country' and 'ar'", path=p_roles, line=ln, entry=f"orgs.{oid}")
        based = spec.get("based_in", [])
        if not isinstance(based, list) or not all(isinstance(c, str) and len(c) == 2 and c.isupper() for c in based):
            raise ConfigError("based_in must be a list of ISO alpha-2 codes", path=p_roles, line=ln,
                              entry=f"orgs.{oid}.based_in")
        orgs[oid] = {"country": spec["country"], "en": spec.get("en", oid), "based_in": frozenset(based)}
        for term in _strlist(spec.get("ar", []), p_roles, ln, f"orgs.{oid}"):
            b.add(term, "org", oid, path=p_roles, line=ln, entry=f"orgs.{oid}")
    countries: set[str] = set()
    for cc, terms in _items(roles.get("nationalities"), p_roles, "nationalities"):
        if len(cc) != 2 or not cc.isupper():
            raise ConfigError("country must be an ISO alpha-2 code", path=p_roles,
                              line=_line(roles.get("nationalities")), entry=f"nationalities.{cc}")
        countries.add(cc)
        for term in _strlist(terms, p_roles, _line(roles.get("nationalities")), f"nationalities.{cc}"):
            b.add(term, "nat", cc, path=p_roles, line=_line(roles.get("nationalities")), entry=f"nationalities.{cc}")

    # places
    capitals: dict[str, str] = {}
    place_firsts: dict[str, bool] = {}  # first stem of a place phrase -> written with the article somewhere

    def _first(term: str) -> None:
        words = normalize(term).split()
        if words:
            st = bare(words[0])
            place_firsts[st] = place_firsts.get(st, False) or st != words[0]

    for cc, terms in _items(places.get("countries"), p_places, "countries"):
        if len(cc) != 2 or not cc.isupper():
            raise ConfigError("country must be an ISO alpha-2 code", path=p_places, line=_line(places.get("countries")),
                              entry=f"countries.{cc}")
        for term in _strlist(terms, p_places, _line(places.get("countries")), f"countries.{cc}"):
            _first(term)
            b.add(term, "place", Place(None, cc), path=p_places, line=_line(places.get("countries")),
                  entry=f"countries.{cc}")
    for city, spec in _items(places.get("cities"), p_places, "cities"):
        ln = _line(spec)
        if not isinstance(spec, dict) or not isinstance(spec.get("country"), str) or len(spec["country"]) != 2:
            raise ConfigError("a city needs 'country' (ISO alpha-2) and 'ar'", path=p_places, line=ln,
                              entry=f"cities.{city}")
        pl = Place(city, spec["country"], bool(spec.get("capital", False)))
        if pl.capital:
            capitals[pl.country] = city
        for term in _strlist(spec.get("ar", []), p_places, ln, f"cities.{city}"):
            _first(term)
            b.add(term, "place", pl, path=p_places, line=ln, entry=f"cities.{city}")

    # officials
    officials: dict[str, Official] = {}
    for oid, spec in _items(offs.get("officials"), p_offs, "officials"):
        ln = _line(spec)
        entry = f"officials.{oid}"
        if not isinstance(spec, dict):
            raise ConfigError("must be a mapping", path=p_offs, line=ln, entry=entry)
        names = _strlist(spec.get("names", []), p_offs, ln, entry + ".names")
        if not names:
            raise ConfigError("needs at least one full name in 'names'", path=p_offs, line=ln, entry=entry)
        role = spec.get("role")
        if role not in titles:
            raise ConfigError(f"unknown role {role!r} (not a title in roles.yaml)", path=p_offs, line=ln, entry=entry)
        country = spec.get("country")
        if country is not None and (not isinstance(country, str) or len(country) != 2):
            raise ConfigError(f"country must be ISO alpha-2, not {country!r}", path=p_offs, line=ln, entry=entry)
        status = spec.get("status", "current")
        if status not in ("current", "former"):
            raise ConfigError(f"status must be current or former, not {status!r}", path=p_offs, line=ln, entry=entry)
        off = Official(oid, tuple(names), role, country, status, spec.get("org"), spec.get("key_as"))
        officials[oid] = off
        foreign = country not in ARAB_COUNTRIES
        for n in _name_variants(names, foreign):
            b.add(n, "off", (oid, "full"), path=p_offs, line=ln, entry=entry)
        for n in _strlist(spec.get("aliases", []), p_offs, ln, entry + ".aliases"):
            for v in _translit_variants(n) if foreign else (n,):
                b.add(v, "off", (oid, "alias"), path=p_offs, line=ln, entry=entry)
        for n in _strlist(spec.get("context", []), p_offs, ln, entry + ".context"):
            b.add(n, "off", (oid, "context"), path=p_offs, line=ln, entry=entry)

    _compound_weights(b.index)
    other_words = {w for lst in b.index.values() for ph, kind, _p in lst if kind != "off" for w in ph}
    name_words = frozenset({w for lst in b.index.values() for ph, kind, _p in lst if kind == "off" for w in ph}
                           - other_words)
    return Knowledge(vocab=b.vocab, index=b.finish(), name_words=name_words, thresholds=thresholds,
                     bare_places=frozenset(w for w, art in place_firsts.items() if not art),
                     concrete_bonus=concrete_bonus, concrete_min=concrete_min, mediated_terms=frozenset(mediated),
                     title_weights=title_weights,
                     domains=domains, titles=titles, officials=officials, orgs=orgs, intl_orgs=intl_orgs,
                     capitals=capitals, sources=sorted(set(origins.values())))


# Spellings outlets alternate for the same given name; "عبد X" is written joined or apart.
_GIVEN_VARIANTS = {"جوزيف": ("جوزف", "جوزاف"), "جوزاف": ("جوزيف", "جوزف"), "ويليام": ("وليام",), "وليام": ("ويليام",),
                   "ديفيد": ("دافيد",), "ستيفن": ("ستيفان",), "ستيفان": ("ستيفن",), "مايكل": ("ميخائيل",)}
_ABD_APART = re.compile(r"\bعبد (?=ال)")
_ABD_JOINED = re.compile(r"\bعبد(?=ال)")


# Arabic-speaking countries (and Palestine): their officials' names are written one way; foreign names are
# transliterated with either letter for the hard g ("غوتيريش"/"جوتيريش")
ARAB_COUNTRIES = frozenset({"EG", "SA", "QA", "AE", "JO", "LB", "SY", "IQ", "KW", "OM", "BH", "YE", "SD", "LY", "TN",
                            "DZ", "MA", "PS", "MR", "SO", "DJ", "KM"})


def _translit_variants(name: str) -> tuple[str, ...]:
    """A foreign name with either letter for the hard g: "غوتيريش" -> "جوتيريش" (and back)."""
    out = [name]
    if "غ" in name:
        out.append(name.replace("غ", "ج"))
    if "ج" in name:
        out.append(name.replace("ج", "غ"))
    return tuple(out)


def _name_variants(names: list[str], foreign: bool = False) -> list[str]:
    """The listed full names plus their routine variants: "عبد العزيز"/"عبدالعزيز", "جوزيف"/"جوزف", and for a
    foreign official either letter for the hard g."""
    out = list(names)
    for n in names:
        out.append(_ABD_APART.sub("عبد", n) if _ABD_APART.search(n) else _ABD_JOINED.sub("عبد ", n))
        first, _, rest = n.partition(" ")
        out.extend(f"{v} {rest}" for v in _GIVEN_VARIANTS.get(first, ()) if rest)
    if foreign:
        out = [v for n in out for v in _translit_variants(n)]
    return list(dict.fromkeys(out))


def load_knowledge(config_dir: Path | str | None = None, base_dir: Path | str = PACKAGE_CONFIG_DIR) -> Knowledge:
    """Load the shipped YAML from ``base_dir``, extended/overridden by same-named files in ``config_dir``.

    Raises ConfigError (file, line, entry) for unreadable or invalid knowledge.
    """
    docs: dict[str, dict[str, Any]] = {}
    origins: dict[str, str] = {}
    for name in FILES:
        p = Path(base_dir) / name
        if not p.exists():
            raise ConfigError("shipped knowledge file is missing", path=str(p))
        docs[name] = _read_yaml(p)
        origins[name] = str(p)
        if config_dir is not None:
            up = Path(config_dir) / name
            if up.exists():
                docs[name] = _merge(docs[name], _read_yaml(up))
                origins[name] = f"{p} + {up}"
    return compile_knowledge(docs, origins)


_lock = threading.Lock()
_cache: dict[str, Knowledge] = {}


def get_knowledge(config_dir: Path | str | None = None) -> Knowledge:
    """The knowledge for ``config_dir`` (None: from Settings.config_dir), loaded once per process and cached."""
    if config_dir is None:
        k = _cache.get("<settings>")
        if k is not None:
            return k
        from trucewatch.settings import load_settings

        k = get_knowledge(load_settings().config_dir or "")
        _cache["<settings>"] = k
        return k
    key = str(config_dir)
    k = _cache.get(key)
    if k is None:
        with _lock:
            k = _cache.get(key)
            if k is None:
                k = load_knowledge(config_dir or None)
                _cache[key] = k
    return k
