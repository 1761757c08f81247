"""Visit reports packed per partition: round trip, single reports, bad messages, the partition memo."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from processors.visit_packs import KeyPartitions, pack_visits, visits_of
from trucewatch.errors import DecodeError
from trucewatch.schema import Visit


def visits(n: int) -> list[Visit]:
    return [Visit(visitor="وزير الخارجية", visitor_id=f"v{i}", key=f"k{i % 7}", article_id=f"a{i}", source="s",
                  destination_city="القاهرة", published_at=datetime(2025, 1, 1, i % 24, tzinfo=UTC))
            for i in range(n)]


@pytest.mark.parametrize(("n", "size", "messages"), [(0, 200, 0), (1, 200, 1), (200, 200, 1), (201, 200, 2),
                                                     (7, 3, 3)])
def test_visit_reports_round_trip_through_packs(n: int, size: int, messages: int) -> None:
    reports = visits(n)
    out = pack_visits([v.to_bytes() for v in reports], size)
    assert len(out) == messages
    assert [v for m in out for v in visits_of(m)] == reports


def test_a_single_visit_message_is_one_report() -> None:
    v = visits(1)[0]
    assert visits_of(v.to_bytes()) == [v]


@pytest.mark.parametrize("raw", [b'{"visits":[{"key": "x"}]}', b'{"visits":[', b"not json", b"", None,
                                 b'{"visits":[], "version": 99}'])
def test_a_bad_visits_message_raises_decode_error(raw: bytes | None) -> None:
    with pytest.raises(DecodeError):
        visits_of(raw)


def test_key_partitions_are_the_producers_and_are_remembered() -> None:
    partitioner = DefaultPartitioner()
    calls: list[bytes] = []

    def partition_of(key: bytes) -> int:
        calls.append(key)
        return int(partitioner(key, [0, 1, 2, 3], [0, 1, 2, 3]))

    parts = KeyPartitions(partition_of, max_size=3)
    keys = [f"visit|{i}|القاهرة" for i in range(5)]
    got = [parts(k) for k in keys + keys[-2:]]
    assert got == [partition_of(k.encode("utf-8")) for k in keys + keys[-2:]]
    assert len(calls) == 5 + 7  # the last two keys were remembered (7 more calls are the check above)
    assert len(parts.memo) <= 3
