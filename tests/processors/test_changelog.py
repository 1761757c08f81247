"""QueuedTable: a Faust table's writes reach its store at once and its changelog as the records Faust would send."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.memory_records import MemoryRecords

from processors.app import create_app
from processors.changelog import QueuedTable, encode_key, encode_value
from sinks.metrics import build_metrics
from trucewatch.settings import Settings


@pytest.fixture
def table(tmp_path: Path) -> Any:
    from prometheus_client import CollectorRegistry

    settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, app_id="tw", worker_stages="stories")
    return create_app(settings, "127.0.0.1:1", build_metrics(CollectorRegistry())).stories_table


class _Meta:
    def __init__(self, offset: int) -> None:
        self.offset = offset


class BatchingProducer:
    """The two aiokafka producer calls QueuedTable uses, with real record batches of ``batch_size`` bytes."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.sent: list[tuple[str, int, list[tuple[bytes | None, bytes | None, int]]]] = []
        self.offset = 0

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0, is_transactional=0, key_serializer=None, value_serializer=None)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[_Meta]:
        records = MemoryRecords(bytes(batch._build())).next_batch()
        self.sent.append((topic, partition, [(r.key, r.value, self.offset + r.offset) for r in records]))
        fut: asyncio.Future[_Meta] = asyncio.get_running_loop().create_future()
        fut.set_result(_Meta(self.offset))  # a batch's future carries its base offset
        self.offset += batch.record_count()
        return fut


@pytest.mark.parametrize("batch_size", [1 << 20, 100])  # one batch; a batch per record or two
def test_writes_reach_the_store_and_their_records_decode_as_faust_reads_them(table: Any, batch_size: int) -> None:
    persisted: list[tuple[Any, int]] = []
    table.data.set_persisted_offset = lambda tp, offset: persisted.append((tp, offset))
    producer = BatchingProducer(batch_size)
    queued = QueuedTable(table)
    row = {"cluster": "a1", "t": "2025-01-01T00:00:00+00:00", "ti": "وقف إطلاق النار", "l": ["ceasefire"], "r": True}
    queued["m:a1"] = row
    queued["count"] = 1
    queued["gone"] = 0
    del queued["gone"]
    assert table.data["m:a1"] == row and queued.get("count") == 1 and "gone" not in queued
    assert sorted(queued) == ["count", "m:a1"] and len(queued) == 2

    async def drain() -> int:
        n = await queued.send_pending(producer, 2)
        await asyncio.sleep(0)  # the persisted-offset callback runs
        return n

    assert asyncio.run(drain()) == 4 and not queued.pending
    topic = table.changelog_topic.get_topic_name()
    assert {(t, p) for t, p, _ in producer.sent} == {(topic, 2)}
    assert (len(producer.sent) == 1) == (batch_size > 1000)
    serializers = table.app.serializers
    records = [(serializers.loads_key(str, k, serializer="json"),
                None if v is None else serializers.loads_value(None, v, serializer="json"))
               for _, _, recs in producer.sent for k, v, _ in recs]
    assert records == [("m:a1", row), ("count", 1), ("gone", 0), ("gone", None)]
    assert persisted == [((topic, 2), 3)]  # the last record's offset, as Faust's own sends keep it
    assert asyncio.run(queued.send_pending(producer, 2)) == 0  # nothing left to send


def test_records_are_the_json_faust_writes() -> None:
    from faust.serializers import codecs

    for value in ({"a": [1, 2.5, None, True], "b": "غزة"}, "x", 3, ["m:1"]):
        assert codecs.loads("json", encode_value(value)) == value
    assert codecs.loads("json", encode_key("m:1")) == "m:1"
