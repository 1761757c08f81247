"""`trucewatch classify`: labels and visits for files/JSONL, as JSONL for score.py or a readable report."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

from processors.classify import classify
from processors.visits import extract_visits, join_undated, split_key
from producers.files import iter_paths
from trucewatch.errors import InputError, TrucewatchError
from trucewatch.schema import LABEL_NAMES, Article, Labels, Visit

log = logging.getLogger(__name__)

VISIT_FIELDS = ("visitor", "visitor_id", "role", "role_en", "visitor_country", "destination_city",
                "destination_country", "status", "first_in", "key", "evidence")


def result_record(article: Article, labels: Labels, visits: list[Visit]) -> dict[str, Any]:
    """The --jsonl record of one article."""
    return {
        "id": article.id,
        "labels": {n: getattr(labels, n).value for n in LABEL_NAMES},
        "scores": {n: getattr(labels, n).score for n in LABEL_NAMES},
        "evidence": {n: getattr(labels, n).evidence for n in LABEL_NAMES},
        "visits": [{f: getattr(v, f) for f in VISIT_FIELDS} for v in visits],
    }


def _print_report(console: Any, article: Article, labels: Labels, visits: list[Visit]) -> None:
    from rich.markup import escape

    head = (article.title or article.body[:80].replace("\n", " ") or "(empty)").strip()
    tags = " ".join(f"[bold green]{n}[/]({getattr(labels, n).score:.2f})" for n in labels.true_labels())
    tags = tags or "[dim]none[/]"
    console.print(f"[bold]{escape(article.id)}[/] {escape(article.source)}  {tags}")
    console.print(f"  \u2067{escape(head[:120])}\u2069")
    for n in labels.true_labels():
        ev = getattr(labels, n).evidence
        terms = [e for e in ev if len(e) < 60][:5]
        console.print(f"    {n}: \u2067{escape('، '.join(terms))}\u2069")
    for v in visits:
        who = v.visitor or v.role or v.visitor_id
        where = ", ".join(x for x in (v.destination_city, v.destination_country) if x)
        extra = f"  first: \u2067{escape(v.first_in)}\u2069" if v.first_in else ""
        console.print(f"  [cyan]visit[/] \u2067{escape(who)}\u2069 ({v.visitor_country or 'intl'}) -> {where} "
                      f"\\[{v.status}] key={escape(v.key)}{extra}")


def run_classify(paths: list[str], jsonl: bool, out: TextIO) -> int:
    """Classify every article in ``paths`` and write one result per article to ``out``.

    Articles are written in input order, except those without a ``date`` that report visits: they are written
    last, after every dated report has been read, so that such a report takes the key of the same trip reported
    with a date (``join_undated``; a month written in an undated text is often a background date).
    Unreadable records are reported on stderr as ``path:line: reason`` and skipped. Returns 0 when every
    record was processed, 1 when some records were reported as errors, 2 when nothing could be read.
    """
    console = None
    if not jsonl:
        from rich.console import Console

        console = Console(file=out, highlight=False, soft_wrap=True)
    n_ok = n_err = 0
    dated: dict[str, set[str]] = {}  # identity>country (and person>country) -> buckets of the dated reports so far
    held: list[tuple[Article, Labels, list[Visit]]] = []  # articles without a date that report visits, written last

    def write(item: Article, labels: Labels, visits: list[Visit]) -> None:
        if jsonl:
            out.write(json.dumps(result_record(item, labels, visits), ensure_ascii=False) + "\n")
        else:
            _print_report(console, item, labels, visits)

    for item in iter_paths(paths):
        if isinstance(item, InputError):
            n_err += 1
            path, line = getattr(item, "path", "?"), getattr(item, "line", None)
            where = f"{path}:{line}" if line else f"{path}"
            print(f"{where}: {item.message}", file=sys.stderr)
            continue
        try:
            visits = extract_visits(item)
            labels = classify(item, visits)
        except TrucewatchError:
            raise  # configuration problems stop the run: every record would fail the same way
        except Exception as e:  # one bad article never stops the run
            n_err += 1
            log.exception("classify failed for article %s", item.id)
            print(f"{item.id}: cannot classify: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        n_ok += 1
        if visits and item.published_at is None:  # its keys' months come from its text, or are unknown
            held.append((item, labels, visits))
            continue
        for v in visits:
            trip, bucket = split_key(v.key)
            dated.setdefault(trip, set()).add(bucket)
            if v.visitor_id:  # (the person too, for an office several people hold: join_undated)
                dated.setdefault(f"{v.visitor_id}>{v.destination_country}", set()).add(bucket)
        write(item, labels, visits)
    for item, labels, visits in held:
        write(item, labels, join_undated(visits, dated))
    if console is not None:
        console.print(f"[dim]{n_ok} article(s) classified, {n_err} error(s)[/]")
    out.flush()
    if n_ok == 0 and n_err:
        return 2
    return 1 if n_err else 0
