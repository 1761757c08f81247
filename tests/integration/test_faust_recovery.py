"""Faust table recovery on the embedded broker: changelog highwaters come from a fetch, so state survives a restart."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import pytest

from processors.faust_fixes import corrected_highwater, fetch_highwaters
from tests.faults.conftest import numbered_articles
from tests.integration.conftest import read_topic, read_visit_reports


def test_fetch_high_watermark_corrects_tansu_listed_end(broker, prefix) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition
    from kafka import KafkaProducer

    topic = f"{prefix}hw"
    producer = KafkaProducer(bootstrap_servers=broker, linger_ms=300, acks="all")
    for i in range(5):
        producer.send(topic, key=b"k", value=b"%d" % i, partition=0)
    producer.flush()  # one batch of five records
    producer.close()
    tp = TopicPartition(topic, 0)

    async def listed_and_fetched() -> tuple[int, int]:
        c = AIOKafkaConsumer(bootstrap_servers=broker, group_id=None)
        await c.start()
        try:
            listed = (await c.end_offsets([tp]))[tp]
        finally:
            await c.stop()
        fetched = await fetch_highwaters(broker, {tp: listed})
        return listed, fetched[tp]

    listed, fetched = asyncio.run(listed_and_fetched())
    print(f"end_offsets listed {listed}, fetch high watermark {fetched}, true end 5")
    assert fetched == 5
    assert corrected_highwater(listed, fetched) == 5


def visit_alerts(p) -> list[dict]:
    """Every visit alert the novelty agent emitted so far."""
    alerts = [json.loads(r.value) for r in read_topic(p.bootstrap, p.topics.alerts, idle=2.0)]
    return [a for a in alerts if a["kind"] in ("new_visit", "visit_update")]


@pytest.mark.parametrize("store", ["memory", "rocksdb"])
def test_novelty_table_recovers_after_a_worker_restart(pipeline, store) -> None:
    p = pipeline(faust_store=store)
    articles = numbered_articles(60, tag=f"r{store[0]}", distinct_visits=True)  # 60 keys, one report each
    p.send_raw([a.to_bytes() for a in articles])
    assert len(read_topic(p.bootstrap, p.topics.enriched, expect=60, timeout=90)) >= 60, p.logs()
    time.sleep(2.0)  # let the novelty agent finish and commit (changelog written)
    n_visits = len(read_visit_reports(p.bootstrap, p.topics.visits))
    assert n_visits >= 60
    before = visit_alerts(p)
    worker = p.child("worker")
    worker.stop()
    changelog = read_topic(p.bootstrap, f"{p.settings.app_id}-novelty-changelog", idle=2.0)
    state: dict = {}
    for r in changelog:
        state[r.key] = r.value
    n_ids = sum(len(json.loads(v)["article_ids"]) for v in state.values() if v and v != b"null")
    print(f"changelog before the restart: {len(changelog)} records, {len(state)} keys, {n_ids} article ids")
    worker.start()
    # a second report of each of the 60 visits (other articles, same keys): a recovered table makes each
    # a visit_update with 2 corroborations; a table that lost state would call them new visits again
    second = numbered_articles(60, tag=f"q{store[0]}", distinct_visits=True)
    p.send_raw([a.to_bytes() for a in second])
    assert len(read_visit_reports(p.bootstrap, p.topics.visits, expect=2 * n_visits, timeout=120)) >= 2 * n_visits, \
        p.logs()
    time.sleep(3.0)
    second_ids = {a.id for a in second}
    after = [a for a in visit_alerts(p) if second_ids & set(a["article_ids"])]
    log = worker.log_path.read_text(errors="replace")
    kinds = Counter("visit_update" if (a["kind"], a["corroborations"]) == ("visit_update", 2) else
                    f"{a['kind']} x{a['corroborations']}" for a in after)
    print(f"table store {store}: before the restart {len(before)} visit alerts; after it, for 60 second reports: "
          f"{dict(kinds)}")
    assert "ConsistencyError" not in log
    # each second report is an update of a remembered visit (a redelivered one may be sent twice)
    assert set(kinds) == {"visit_update"}, p.logs()
    assert {i for a in after for i in a["article_ids"]} == second_ids


def test_stories_table_recovers_after_a_restart(pipeline) -> None:
    """The story stage's table comes back from its changelog (written in record batches by QueuedTable): after a
    restart past its committed offsets, the index holds the earlier members and later reports join their story."""
    import re

    p = pipeline()
    stories = p.child("stories")
    first = numbered_articles(40, tag="sr")  # one story: ceasefire reports of one visit, a day apart
    p.send_raw([a.to_bytes() for a in first])
    assert len(read_topic(p.bootstrap, p.topics.enriched, expect=40, timeout=90)) >= 40, p.logs()
    time.sleep(4.0)  # the story stage folds them and commits past them (commit interval + batch window)
    stories.stop()
    stories.start()
    second = numbered_articles(80, tag="sr")[40:]  # the same story goes on
    p.send_raw([a.to_bytes() for a in second])
    ids = {a.id for a in first + second}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        covered = {i for a in p.alerts(kind="story") for i in a.article_ids}
        if ids <= covered:
            break
        time.sleep(1.0)
    loaded = [int(n) for n in re.findall(r"story index loaded: (\d+) members",
                                         stories.log_path.read_text("utf-8", "replace"))]
    print(f"story index loads: {loaded}")
    assert len(loaded) >= 2 and loaded[-1] >= 40, (loaded, p.logs())  # the members came back from the changelog
    keys = {a.key for a in p.alerts(kind="story") if ids & set(a.article_ids)}
    assert len(keys) == 1 and ids <= {i for a in p.alerts(kind="story") for i in a.article_ids}, (keys, p.logs())
