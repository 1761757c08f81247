"""Classifier + visit extractor throughput on one core: the dev articles replicated to a few thousand ~3 KB articles.

Usage: python bench/classify.py [DEVSET.jsonl] [--n 3000]
Prints articles/s and µs/article for classify(), extract_visits() and both (what the enrich agent runs).
Each replica gets a distinct id and a distinct leading line, so no per-article memo can be reused across replicas.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
from pathlib import Path

from processors.classify import classify
from processors.knowledge import get_knowledge
from processors.visits import extract_visits
from producers.files import iter_paths
from trucewatch.schema import Article

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "devset.jsonl"


def corpus(path: Path, n: int, size: int = 3000) -> list[Article]:
    """n articles of about ``size`` bytes of text, built from the dev articles (text repeated to size)."""
    base = [a for a in iter_paths([path]) if isinstance(a, Article)]
    out = []
    for i in range(n):
        a = base[i % len(base)]
        body = a.body
        while len(body.encode("utf-8")) < size:
            body += "\n" + a.body
        body = body.encode("utf-8")[:size].decode("utf-8", "ignore")
        out.append(a.model_copy(update={"id": f"{a.id}-{i}", "body": f"نسخة {i}\n{body}"}))
    return out


def run(arts: list[Article], fn: str) -> float:
    t0 = time.perf_counter()
    for a in arts:
        if fn == "both":  # what the enrich agent runs: visits, then the labels given those visits
            classify(a, extract_visits(a))
        elif fn == "classify":
            classify(a, [])  # the labels alone (no visit bonus)
        else:
            extract_visits(a)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("devset", nargs="?", default=str(DEFAULT))
    ap.add_argument("--n", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-freeze", action="store_true", help="skip gc.freeze() after loading the knowledge")
    a = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    get_knowledge()  # loading the YAML is a one-off, not part of the per-article cost
    if not a.no_freeze:
        gc.freeze()  # as the worker does after loading the knowledge (processors/app.py run_worker)
    arts = corpus(Path(a.devset), a.n)
    mean_kb = statistics.mean(len(x.text.encode("utf-8")) for x in arts) / 1024
    print(f"{len(arts)} articles, mean {mean_kb:.1f} KB of text, one core, Python {os.sys.version.split()[0]}")
    run(arts[:200], "both")  # warm the stem cache as a long-running worker would have it
    for fn in ("classify", "visits", "both"):
        best = min(run(arts, fn) for _ in range(a.repeat))
        print(f"{fn:9s} {len(arts) / best:10,.0f} articles/s  {best / len(arts) * 1e6:8.1f} µs/article")


if __name__ == "__main__":
    main()
