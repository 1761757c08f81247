"""A Faust table written in batches: values go into its store, changelog records straight to the producer."""

from __future__ import annotations

import json
from collections.abc import Iterator, MutableMapping
from typing import Any

from faust.types import TP

_DELETED = None  # a changelog record without a value deletes its key (what Faust's on_key_del sends)


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode_key(key: str) -> bytes:
    """A table key as the app's ``json`` key serializer writes it to the changelog (recovery reads it back)."""
    return _ENCODER.encode(key).encode("utf-8")


def encode_value(value: Any) -> bytes:
    """A plain-JSON table value as its changelog record (decoded by the ``json`` value serializer on recovery)."""
    return _ENCODER.encode(value).encode("utf-8")


class QueuedTable(MutableMapping[str, Any]):
    """A Faust table (``json`` keys and values, plain JSON values) whose writes queue their changelog records.

    ``table[key] = value`` in Faust builds a message object per key and sends it through its producer buffer,
    which cost the story stage more than its own table logic. Here a write goes into the table's store at once
    and its record waits in ``pending`` until ``send_pending`` hands every record to the producer: the same
    records (json key; json value, or none for a delete) on the same changelog partition, so recovery is
    unchanged. Writes must happen in stream context (the store of a ``rocksdb`` table picks its partition from
    the current event), and the producer is flushed before every commit, as for Faust's own sends. Reads skip
    Faust's per-key sensor.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.pending: list[tuple[bytes, bytes | None]] = []

    @property
    def store(self) -> Any:
        """The table's store (the table may open a new one after a rebalance)."""
        return self.table.data

    def __getitem__(self, key: str) -> Any:
        return self.store[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self.store[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return key in self.store

    def __iter__(self) -> Iterator[str]:
        return iter(self.store)

    def __len__(self) -> int:
        return len(self.store)

    def __setitem__(self, key: str, value: Any) -> None:
        self.store[key] = value
        self.pending.append((encode_key(key), encode_value(value)))

    def __delitem__(self, key: str) -> None:
        del self.store[key]
        self.pending.append((encode_key(key), _DELETED))

    async def send_pending(self, producer: Any, partition: int) -> int:
        """Send the queued records to the changelog's ``partition`` through ``producer`` (the aiokafka producer), in
        record batches of the producer's batch size (one ``send_batch`` per batch, not one ``send`` per record);
        returns how many. The store's persisted offset follows the last batch's acknowledgement, as it follows each
        record with Faust's own sends. Raises what ``send_batch`` raises."""
        records, self.pending = self.pending, []
        if not records:
            return 0
        topic = self.table.changelog_topic.get_topic_name()
        batch = producer.create_batch()
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
                await producer.send_batch(batch, topic, partition=partition)
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None)  # a new batch takes its first record, any size
        last = batch.record_count() - 1
        fut = await producer.send_batch(batch, topic, partition=partition)
        store, tp = self.store, TP(topic, partition)

        def persisted(done: Any) -> None:
            if not done.cancelled() and done.exception() is None:
                store.set_persisted_offset(tp, done.result().offset + last)  # the batch's base offset + its last

        fut.add_done_callback(persisted)
        return len(records)
