"""Scenario 1: workers SIGKILLed mid-stream (one restarted; one of two killed, partitions moving): nothing lost."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from typing import Any

import pytest

from processors.visit_packs import visits_of
from sinks.merge import article_ids_of
from tests.faults.conftest import (
    PacedPublisher,
    Tally,
    add_worker,
    group_positions,
    numbered_articles,
    read_topic,
    read_visit_reports,
    sigkill,
    stack_dumps,
)

N = 800
RATE = 200.0  # articles/s: the stream keeps flowing through every kill and rebalance
REPEATS = 10
IDLE = 150.0  # a stage that makes no progress for this long is stuck (a loaded CI box is slow, not silent)
WATCH = float(os.environ.get("TW_FAULTS_WATCH", "0"))  # after a miss: keep watching this long (diagnosis)


def diagnose(p: Any, stage: str, missing: set[str], topics: list[str], observe: Any) -> None:
    """Print where the missing articles sit (partition, offset), the group's committed offsets against the
    topics' high watermarks, the workers' re-seek lines and stacks; with TW_FAULTS_WATCH, keep watching."""
    where = Counter()
    offsets: dict[int, list[int]] = {}
    for r in read_topic(p.bootstrap, topics[0], idle=2.0):
        key = (r.key or b"").decode()
        aids = [key] if stage == "enrich" else [v.article_id for v in visits_of(r.value)]  # a pack of reports
        for aid in set(aids) & missing:
            where[r.partition] += 1
            offsets.setdefault(r.partition, []).append(r.offset)
    print(f"DIAG {stage}: {len(missing)} missing; by partition of {topics[0]}: {dict(where)}; offset ranges: "
          f"{ {k: (min(v), max(v)) for k, v in offsets.items()} }")
    for tp, (committed, high) in sorted(group_positions(p.bootstrap, p.settings.app_id, topics).items()):
        print(f"DIAG {stage}: {tp} committed={committed} high={high}")
    for c in p.stack.children:
        if c.name.startswith("worker") and c.log_path.exists():
            lines = c.log_path.read_text(errors="replace").splitlines()
            reseeks = [ln for ln in lines if "re-seeked" in ln]
            print(f"DIAG {c.name}: {len(lines)} log lines, {len(reseeks)} re-seeks; last: {reseeks[-3:]}")
    print(stack_dumps(c for c in p.stack.children if c.name.startswith("worker")))
    t0 = time.monotonic()
    while time.monotonic() - t0 < WATCH:
        time.sleep(10)
        print(f"DIAG {stage}: still missing after +{time.monotonic() - t0:.0f}s: {len(observe())}", flush=True)


@pytest.mark.parametrize("rep", range(REPEATS))
def test_worker_sigkill_loses_nothing(pipeline, tail_factory, tmp_path, rep) -> None:
    p = pipeline(start=False)
    worker_a = p.child("worker")
    worker_b = add_worker(p, "worker-b", tmp_path)
    p.start()
    articles = numbered_articles(N, tag=f"k{rep}")
    ids = {a.id for a in articles}
    tail = tail_factory(p.bootstrap, [p.topics.enriched, p.topics.deadletter])
    t0 = time.monotonic()
    pub = PacedPublisher(p, articles, RATE)
    pub.start()
    progress = lambda: tail.distinct(ids)  # noqa: E731
    done = lambda frac: lambda: progress() >= frac * N  # noqa: E731

    # 1) one of two workers killed: its partitions move to the other
    assert tail.until_progress(done(0.2), progress, idle=IDLE), p.logs()
    sigkill(worker_a)
    killed_at = progress()
    # 2) the killed worker comes back (partitions are split again)
    tail.until_progress(done(0.45), progress, idle=IDLE)
    worker_a.start()
    # 3) the other one is killed and restarted at once (its partitions wait for the group to evict it)
    tail.until_progress(done(0.7), progress, idle=IDLE)
    sigkill(worker_b)
    worker_b.start()

    complete = tail.until_progress(lambda: progress() == N, progress, idle=IDLE)
    recovery = time.monotonic() - t0
    pub.join(30)
    assert pub.error is None, pub.error
    tail.settle(idle=2.0)
    enriched = Tally.of(f"s1 rep{rep} enrich-stage (enriched|dead-letter topics)", sorted(ids), tail.total(),
                        killed_at=killed_at, seconds=round(recovery, 1)).show()
    if enriched.never:
        def unenriched() -> list[str]:
            tail.poll()
            return [i for i in ids if not tail.total()[i]]
        diagnose(p, "enrich", set(enriched.never), [p.topics.raw], unenriched)
    assert complete and not enriched.never, f"lost {enriched.never[:20]}\n{p.logs()}"

    # at the sinks: every article that produced a visit is in a stored alert
    visit_ids = {r.key.decode() for r in tail.records if r.topic == p.topics.enriched
                 and b'"visits":[]' not in r.value.replace(b" ", b"")}

    def stored() -> set[str]:
        return {i for a in p.alerts() for i in article_ids_of(a)}

    covered: set[str] = set()

    def store_progress() -> int:
        covered.clear()
        covered.update(stored())
        return len(covered)

    t1 = time.monotonic()
    last_seen, last_at = -1, t1
    while not visit_ids <= covered and time.monotonic() - last_at < IDLE:
        if store_progress() != last_seen:
            last_seen, last_at = len(covered), time.monotonic()
        time.sleep(0.5)
    got = stored()
    at_store = Tally.of(f"s1 rep{rep} store (alerts covering each visit article)", sorted(visit_ids),
                        Counter(got), alerts=len(p.alerts()), seconds=round(time.monotonic() - t1, 1)).show()
    if at_store.never:  # where did they stop? (visits topic -> novelty -> alerts topic -> sinks -> store)
        missing = set(at_store.never)
        on_visits = {v.article_id for v in read_visit_reports(p.bootstrap, p.topics.visits)}
        on_alerts = set()
        for r in read_topic(p.bootstrap, p.topics.alerts, idle=2.0):
            on_alerts |= set(json.loads(r.value).get("article_ids") or [])
        print(f"missing at the store: {len(missing)}; on the visits topic: {len(missing & on_visits)}; "
              f"in an alert on the alerts topic: {len(missing & on_alerts)}")
        diagnose(p, "novelty", missing, [p.topics.visits, p.topics.alerts],
                 lambda: sorted(missing - stored()))
    assert not at_store.never, f"visits never stored: {at_store.never[:20]}\n{p.logs()}"
