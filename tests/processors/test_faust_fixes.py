"""The Faust corrections as logic: stale records after a seek are not delivered; highwaters take the larger value."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, NamedTuple

from processors.faust_fixes import corrected_highwater, deliver_fresh, fresh_records, note_seek


class FakeConsumer:
    """The bits of a faust Consumer the correction touches: read offsets, assignment, seek."""

    def __init__(self, assigned: set[str]) -> None:
        self._read_offset: dict[str, int | None] = defaultdict(lambda: None)
        self.assigned = assigned
        self.seeks: list[tuple[str, int]] = []

    def assignment(self) -> set[str]:
        return self.assigned

    async def seek(self, tp: str, offset: int) -> None:
        self.seeks.append((tp, offset))
        self._read_offset[tp] = offset
        note_seek(self, [tp], {tp: offset})

    def fetch(self) -> None:
        from processors.faust_fixes import _seeks

        self.__dict__["_tw_fetch_seeks"] = dict(_seeks(self))


def msg(offset: int) -> Any:
    return SimpleNamespace(offset=offset)


async def drain(consumer: FakeConsumer, batch: list[tuple[str, int]], during: Any = None) -> list[tuple[str, int]]:
    """What _drain_messages does with each delivered record: note it as read (optionally run ``during``)."""

    async def records() -> AsyncIterator[tuple[str, Any]]:
        for tp, off in batch:
            yield tp, msg(off)

    out = []
    async for tp, m in deliver_fresh(consumer, records()):
        if during is not None:
            await during(tp, m.offset)
        consumer._read_offset[tp] = m.offset
        out.append((tp, m.offset))
    return out


def test_records_fetched_before_a_seek_are_not_delivered_and_the_partition_is_fetched_again() -> None:
    c = FakeConsumer({"a", "b"})
    c.fetch()  # the fetch starts at old positions (a: 150…)
    # meanwhile a rebalance seeks both partitions to their committed offsets
    c._read_offset.update({"a": 100, "b": 7})
    note_seek(c, ["a", "b"], {"a": 100, "b": 7})
    got = asyncio.run(drain(c, [("a", 150), ("a", 151), ("b", 9)]))
    assert got == []
    # the read offsets the seek set survive (so records 100… are not dropped later) and both are re-fetched
    assert c._read_offset["a"] == 100 and c._read_offset["b"] == 7
    assert sorted(c.seeks) == [("a", 100), ("b", 7)]


def test_records_of_unseeked_partitions_flow_normally() -> None:
    c = FakeConsumer({"a", "b"})
    c.fetch()
    note_seek(c, ["b"], {"b": 3})
    got = asyncio.run(drain(c, [("a", 1), ("b", 5), ("a", 2)]))
    assert got == [("a", 1), ("a", 2)]
    assert c.seeks == [("b", 3)]


def test_a_seek_during_delivery_restores_the_read_offset_it_set() -> None:
    c = FakeConsumer({"a"})
    c.fetch()

    async def rebalance_once(tp: str, offset: int) -> None:
        if offset == 40:
            c._read_offset["a"] = 30  # perform_seek: back to the committed offset
            note_seek(c, ["a"], {"a": 30})

    got = asyncio.run(drain(c, [("a", 40), ("a", 41)], during=rebalance_once))
    # 40 was handed on (and will be redelivered from 30), 41 is stale; the seek's read offset stands
    assert got == [("a", 40)]
    assert c._read_offset["a"] == 30
    assert c.seeks == [("a", 30)]


def test_a_revoked_partition_is_not_reseeked() -> None:
    c = FakeConsumer(set())
    c.fetch()
    note_seek(c, ["a"])  # revoked
    assert asyncio.run(drain(c, [("a", 5)])) == []
    assert c.seeks == []
    assert fresh_records(c, {}, "b")


def test_corrected_highwater_keeps_the_larger() -> None:
    assert corrected_highwater(1, 5) == 5  # Tansu: listed = last batch base + 1
    assert corrected_highwater(9, 5) == 9
    assert corrected_highwater(3, None) == 3
    assert corrected_highwater(None, None) is None


def test_invalid_seek_offsets_become_the_log_start() -> None:
    from processors.faust_fixes import valid_seek_offsets

    assert valid_seek_offsets({"a": 5, "b": None, "c": -2, "d": 0}) == {"a": 5, "b": 0, "c": 0, "d": 0}


class TP(NamedTuple):
    topic: str
    partition: int


def test_uncommitted_agent_partitions_are_the_ones_seek_to_committed_leaves_in_place() -> None:
    from processors.faust_fixes import uncommitted

    tp = TP
    committed = {tp("visits", 0): 120, tp("visits", 1): None, tp("visits", 2): 0, tp("novelty-changelog", 1): None}
    out = uncommitted(committed, lambda topic: topic == "visits")
    assert sorted(t.partition for t in out) == [1, 2] and all(t.topic == "visits" for t in out)


def test_rewind_uncommitted_seeks_them_to_the_start_only_with_earliest() -> None:
    from processors.faust_fixes import rewind_uncommitted

    seeks: list[tuple[str, int]] = []

    class Consumer:
        def __init__(self, reset: str) -> None:
            self.app = SimpleNamespace(conf=SimpleNamespace(consumer_auto_offset_reset=reset),
                                       topics=SimpleNamespace(acks_enabled_for=lambda topic: topic == "raw"))

        async def _seek(self, tp: Any, offset: int) -> None:
            seeks.append((f"{tp.topic}/{tp.partition}", offset))

    committed = {TP("raw", 0): 40, TP("raw", 1): None, TP("t-changelog", 1): None}
    asyncio.run(rewind_uncommitted(Consumer("earliest"), committed))
    assert seeks == [("raw/1", 0)]  # fetched-but-unprocessed records of raw/1 are read again, not skipped
    seeks.clear()
    asyncio.run(rewind_uncommitted(Consumer("latest"), committed))
    assert seeks == []
