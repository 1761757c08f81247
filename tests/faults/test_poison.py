"""Scenario 5: poison in articles.raw is dead-lettered with a reason; every good article is processed."""

from __future__ import annotations

import json
import random
import time

from tests.faults.conftest import Tally, numbered_articles
from trucewatch.schema import DeadLetter

N = 300


def poison_messages() -> dict[str, bytes]:
    """One message of each kind of poison, keyed by name."""
    ok = json.loads(numbered_articles(1, tag="p")[0].to_bytes())
    return {
        "invalid-json": b'{"id": "x", "title": ',
        "wrong-version": json.dumps(ok | {"id": "poison-v", "version": 99}).encode(),
        "5mb-body": json.dumps(ok | {"id": "poison-5mb", "body": "غزة " * (5 * 1024 * 1024 // 7)},
                               ensure_ascii=False).encode(),
        "nul-bytes": b'{"id": "poison-nul\x00", "title": "\x00\x00"}\x00',
        "invalid-utf8": b'{"id": "poison-utf8", "title": "\xff\xfe\xc3\x28"}',
        "not-an-object": b"[1, 2, 3]",
        "missing-id": json.dumps({k: v for k, v in ok.items() if k != "id"}).encode(),
        "empty": b"",
    }


def test_poison_is_dead_lettered_and_every_good_article_processed(pipeline, tail_factory) -> None:
    p = pipeline()
    good = numbered_articles(N, tag="g")
    poison = poison_messages()
    rng = random.Random(9)
    stream: list[tuple[str, bytes]] = [(a.id, a.to_bytes()) for a in good]
    for name, value in poison.items():
        for _copy in range(2):  # twice each, anywhere in the stream
            stream.insert(rng.randrange(len(stream) + 1), (f"poison-{name}", value))
    from producers.publish import Publisher, make_producer

    t0 = time.monotonic()
    pub = Publisher(make_producer(p.bootstrap), p.topics.raw)
    for key, value in stream:
        pub.send_bytes(pub.topic, key, value)
    pub.close()
    tail = tail_factory(p.bootstrap, [p.topics.enriched, p.topics.deadletter])
    ids = {a.id for a in good}
    poison_keys = {f"poison-{n}" for n in poison}
    done = tail.until(lambda: tail.distinct(ids) == N and all(tail.counts[p.topics.deadletter][k] >= 2
                                                               for k in poison_keys), timeout=120)
    seconds = time.monotonic() - t0
    tail.settle(idle=2.0)
    reasons: dict[str, set[str]] = {}
    for r in tail.records:
        if r.topic == p.topics.deadletter:
            dl = DeadLetter.model_validate_json(r.value)
            reasons.setdefault(r.key.decode(), set()).add(f"{dl.stage}: {dl.reason[:80]}")
    for k in sorted(reasons):
        print(f"  dead letter {k}: {sorted(reasons[k])}")
    good_tally = Tally.of("s5 good articles (enriched)", sorted(ids), tail.counts[p.topics.enriched],
                          seconds=round(seconds, 1)).show()
    dead = Tally.of("s5 poison messages (dead-lettered, 2 copies each)", sorted(poison_keys),
                    tail.counts[p.topics.deadletter]).show()
    assert done, p.logs()
    assert not good_tally.never and not dead.never
    assert not any(tail.counts[p.topics.deadletter][i] for i in ids), "a good article was dead-lettered"
    assert all(reasons[k] for k in poison_keys)
    assert any("version" in r for r in reasons["poison-wrong-version"])
    assert any("UTF-8" in r for r in reasons["poison-invalid-utf8"])
    assert any("exceeds" in r or "bytes" in r for r in reasons["poison-5mb-body"])
    # the worker survived all of it
    assert p.child("worker").alive()
