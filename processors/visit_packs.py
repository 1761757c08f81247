"""Visit reports packed per partition of the visits topic: the enrich agent sends one message per batch and partition.

Every report of one visit key must reach one partition (the novelty table is sharded by it), so a pack holds the
reports whose keys the producer's own partitioner sends to the same partition, and it is sent to that partition:
the novelty agent then handles one Faust event per pack instead of one per report (each event costs more than the
report's own work). A single Visit message is still read (older workers, tests).
"""

from __future__ import annotations

from collections.abc import Callable

from trucewatch.schema import Visit, VisitReports, decode

VISITS_HEAD = b'{"visits":['
VISITS_PER_MESSAGE = 200  # ~1 KB each: a pack stays far below the producer's 1 MB request limit
PARTITION_MEMO_MAX = 100_000


def pack_visits(reports: list[bytes], size: int = VISITS_PER_MESSAGE) -> list[bytes]:
    """Visit JSONs (``Visit.to_bytes()``) packed into ``VisitReports`` messages of at most ``size`` reports."""
    return [VISITS_HEAD + b",".join(reports[i:i + size]) + b"]}" for i in range(0, len(reports), size)]


def visits_of(value: bytes | None) -> list[Visit]:
    """The reports of one visits-topic message: a ``VisitReports`` pack or a single Visit. Raises DecodeError."""
    if value is not None and value[:len(VISITS_HEAD)] == VISITS_HEAD:
        return decode(VisitReports, value).visits
    return [decode(Visit, value)]


class KeyPartitions:
    """Visit key -> its partition of the visits topic, by ``partition_of`` (the producer's partitioner over the
    key's UTF-8 bytes), remembered: keys recur (every report of a trip) and the partitioner hashes in Python."""

    def __init__(self, partition_of: Callable[[bytes], int], max_size: int = PARTITION_MEMO_MAX) -> None:
        self.partition_of = partition_of
        self.max_size = max_size
        self.memo: dict[str, int] = {}

    def __call__(self, key: str) -> int:
        hit = self.memo.get(key)
        if hit is None:
            if len(self.memo) >= self.max_size:
                self.memo.clear()
            hit = self.memo[key] = self.partition_of(key.encode("utf-8"))
        return hit
