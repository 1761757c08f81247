"""Scenario: the story-stage process (its own consumer group under `up`) SIGKILLed mid-stream and restarted:
the stream workers go on, and every labelled article still reaches a stored story alert."""

from __future__ import annotations

import json
import time
from collections import Counter

from sinks.merge import article_ids_of
from tests.faults.conftest import PacedPublisher, Tally, numbered_articles, read_topic, sigkill
from trucewatch.topics import story_group

N = 400
RATE = 100.0  # articles/s: the kill and the restart happen while the stream flows
IDLE = 150.0  # no progress for this long: stuck (a loaded box is slow, not silent)


def test_stories_process_sigkill_loses_no_story_member(pipeline, tail_factory) -> None:
    p = pipeline()
    stories = p.child("stories")
    assert stories.env["TRUCEWATCH_WORKER_STAGES"] == "stories"
    assert p.child("worker").env["TRUCEWATCH_WORKER_STAGES"] == "stream"
    articles = numbered_articles(N, tag="sk")  # ceasefire reports of one visit, a day apart: all indexed, labelled
    ids = {a.id for a in articles}
    tail = tail_factory(p.bootstrap, [p.topics.enriched])
    pub = PacedPublisher(p, articles, RATE)
    pub.start()
    progress = lambda: tail.distinct(ids)  # noqa: E731

    assert tail.until_progress(lambda: progress() >= 0.3 * N, progress, idle=IDLE), p.logs()
    sigkill(stories)
    killed_at = progress()
    tail.until_progress(lambda: progress() >= 0.6 * N, progress, idle=IDLE)
    stories.start()  # recovers the stories table from its changelog, re-reads the uncommitted story items
    assert tail.until_progress(lambda: progress() == N, progress, idle=IDLE), p.logs()
    pub.join(30)
    assert pub.error is None, pub.error

    def covered() -> set[str]:
        return {i for a in p.alerts(kind="story") for i in article_ids_of(a)} & ids

    t0 = last_at = time.monotonic()
    seen = -1
    while len(got := covered()) < N and time.monotonic() - last_at < IDLE:
        if len(got) != seen:
            seen, last_at = len(got), time.monotonic()
        time.sleep(1.0)
    got = covered()
    Tally.of("stories-kill story alerts (store)", sorted(ids), Counter(got), killed_at=killed_at,
             seconds=round(time.monotonic() - t0, 1)).show()
    assert got == ids, f"{len(ids - got)} articles in no story alert: {sorted(ids - got)[:20]}\n{p.logs()}"
    assert stories.alive() and p.child("worker").alive()
    # the table as its changelog rebuilds it: every article a member of the one story, counted once; a restart
    # that lost the table would have started a second cluster for the articles after it
    state: dict[str, object] = {}
    for r in read_topic(p.bootstrap, f"{story_group(p.settings)}-stories-changelog", idle=2.0):
        state[json.loads(r.key)] = None if r.value is None else json.loads(r.value)
    members = {k[2:]: v for k, v in state.items() if k.startswith("m:") and isinstance(v, dict)}
    assert set(members) == ids and state["count"] == N
    assert len({row["cluster"] for row in members.values()}) == 1
