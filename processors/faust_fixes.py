"""Narrow corrections of faust-streaming 0.15.3 offsets: stale fetches, uncommitted partitions, Tansu ends.

1. Records skipped across a rebalance (``Consumer._drain_messages``).

   Faust fetches a batch (``Consumer.getmany`` -> ``_wait_next_records``) and hands its records to
   the streams one by one, recording each delivered offset as the partition's *read offset*. A
   rebalance or any seek (``perform_seek`` -> "Seek stream partitions to committed offsets") moves
   the partition back to its committed offset and resets the read offset to it. But a batch whose
   fetch was already in flight when the seek happened is still delivered afterwards: its records
   come from the *old* position, ahead of the committed offset. ``_drain_messages`` then

   - sees ``offset - read_offset > 1`` and records the offsets in between as a *gap*, which
     ``_new_offset`` treats as acknowledged (gaps exist for compacted topics and transaction
     markers), so the next commit moves past records that were never processed; and
   - advances the read offset to the stale record, so when the re-fetch from the committed offset
     returns those records, they are below the read offset and are dropped ("DROPPED MESSAGE ROFF").

   The same happens if a seek lands while a record is being handed to its stream: the drain loop
   writes that (old) offset over the read offset the seek just set.

   Correction: count seeks per partition (``perform_seek``, ``seek``, ``seek_wait`` and revocation
   all count). ``getmany`` notes the counts *before* its fetch starts and does not deliver a record
   of a partition that was seeked since (aiokafka itself already discards its own prefetched records
   on a seek and re-fetches from the new position, so nothing is lost by not delivering them). If a
   seek lands while a record is being delivered, the read offset the seek set is restored. The
   read-offset/gap logic itself is unchanged, so compacted topics keep working.

2. Changelog highwaters on brokers whose ListOffsets under-reports (Tansu 0.6 ``end_offsets``
   returns the base offset of the last stored batch + 1). Table recovery reads changelog ends through
   ``_highwaters``; an under-reported end makes ``memory://`` tables stop recovery early (losing the
   changelog's tail) and ``rocksdb://`` tables crash with ``ConsistencyError`` (persisted offset
   higher than highwater). Correction: take the listed value, do one fetch near it, use the Fetch
   response's high watermark (which is right), keep the larger.

3. Recovery seeks with invalid offsets: standby recovery can ask ``seek_wait`` for an offset that is
   neither -1 nor valid (None, -2), and aiokafka refuses it, crashing the worker. Such offsets become 0.

4. Uncommitted partitions are not rewound (``perform_seek`` -> aiokafka ``seek_to_committed``). "Seek to
   committed" moves a partition only when it has a committed offset > 0; a partition nobody has committed
   yet keeps its *fetch position*. A rebalance clears the streams' buffers (``flow_control.clear()``),
   trusting that seek to bring the dropped events back; for an uncommitted partition the events
   fetched before the rebalance but not yet processed are never fetched again, the read offset is reset
   to None (so no gap is noticed either), and the first commit after the next processed record moves
   the group past all of them. Measured in scenario 1: 183 consecutive records (offsets 0-195) of one
   ``visits`` partition committed past and never processed, right after start-up rebalances.
   Correction: with ``auto_offset_reset="earliest"``, an acked (agent) partition without a committed
   offset is rewound to offset 0 (the reset policy moves it to the log start if that is later).

``apply()`` patches the classes once (idempotent); ``processors.app.create_app`` calls it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

log = logging.getLogger(__name__)

_APPLIED = False

stats: Counter[str] = Counter()  # stale_records_skipped, read_offsets_restored, highwaters_raised


def _seeks(consumer: Any) -> Counter[Any]:
    """The per-partition seek counter of a Faust consumer (created on first use)."""
    counter = consumer.__dict__.get("_tw_seeks")
    if counter is None:
        counter = consumer.__dict__["_tw_seeks"] = Counter()
        consumer.__dict__["_tw_seek_read_offset"] = {}
    return counter  # type: ignore[no-any-return]


def note_seek(consumer: Any, tps: Iterable[Any], targets: Mapping[Any, Any] | None = None) -> None:
    """Record that ``tps`` were seeked (or revoked): count it, remember the read offset the seek left
    and the offset it moved to (``targets``; None for a revoked partition)."""
    counter = _seeks(consumer)
    positions = consumer.__dict__["_tw_seek_read_offset"]
    goals = consumer.__dict__.setdefault("_tw_seek_target", {})
    read_offset = consumer._read_offset
    for tp in tps:
        counter[tp] += 1
        positions[tp] = read_offset[tp] if tp in read_offset else _MISSING
        goals[tp] = (targets or {}).get(tp)


_MISSING = object()


def _restore_read_offset(consumer: Any, tp: Any) -> None:
    value = consumer.__dict__["_tw_seek_read_offset"].get(tp, _MISSING)
    if value is _MISSING:
        consumer._read_offset.pop(tp, None)
    else:
        consumer._read_offset[tp] = value
    stats["read_offsets_restored"] += 1


async def _reseek(consumer: Any, tp: Any) -> None:
    """Move ``tp`` back to where its last seek went, so records skipped as stale are fetched again."""
    target = consumer.__dict__.get("_tw_seek_target", {}).get(tp)
    if target is None or tp not in consumer.assignment():
        return  # revoked: its new owner starts from the committed offset
    try:
        await consumer.seek(tp, target)
        stats["partitions_reseeked"] += 1
        log.info("re-seeked %s to %s after stale records (%s)", tp, target, dict(stats))
    except Exception as e:  # noqa: BLE001 - a rebalance raced us; the next assignment seeks anyway
        log.warning("could not re-seek %s to %s: %s", tp, target, e)


def fresh_records(consumer: Any, seeks_before: Mapping[Any, int], tp: Any) -> bool:
    """True when ``tp`` was not seeked since ``seeks_before`` was taken (its fetched records are current)."""
    return _seeks(consumer)[tp] == seeks_before.get(tp, 0)


async def deliver_fresh(consumer: Any, records: AsyncIterator[tuple[Any, Any]]) -> AsyncIterator[tuple[Any, Any]]:
    """Pass on the (tp, message) pairs of one fetch, except those of partitions seeked since the fetch began.

    A skipped partition is moved back to its seek target so its records are fetched again. If a seek
    lands while a record is being handed on, the read offset the caller just recorded is undone.
    """
    reseeked: set[Any] = set()
    async for tp, message in records:
        if not fresh_records(consumer, consumer.__dict__.get("_tw_fetch_seeks", {}), tp):
            stats["stale_records_skipped"] += 1
            log.debug("not delivering %s@%s: fetched before a seek of its partition", tp, message.offset)
            if tp not in reseeked:
                reseeked.add(tp)
                await _reseek(consumer, tp)
            continue
        seeks_at_yield = _seeks(consumer)[tp]
        yield tp, message
        # the caller has now recorded message.offset as read; if a seek landed meanwhile, undo that
        if _seeks(consumer)[tp] != seeks_at_yield:
            _restore_read_offset(consumer, tp)


def uncommitted(committed: Mapping[Any, Any], acked: Any) -> list[Any]:
    """The partitions of ``committed`` (tp -> committed offset or None) that "seek to committed" leaves at their
    fetch position: no committed offset (None, or not > 0), restricted to topics ``acked(topic)`` (the
    agents' topics; changelogs are positioned by table recovery)."""
    return [tp for tp, offset in committed.items()
            if not (isinstance(offset, int) and offset > 0) and acked(tp.topic)]


async def rewind_uncommitted(consumer: Any, committed: Mapping[Any, Any]) -> None:
    """Seek the uncommitted agent partitions to 0 (``auto_offset_reset="earliest"`` only)."""
    if getattr(consumer.app.conf, "consumer_auto_offset_reset", "earliest") != "earliest":
        return
    for tp in uncommitted(committed, consumer.app.topics.acks_enabled_for):
        try:
            await consumer._seek(tp, 0)
        except Exception as e:  # noqa: BLE001 - revoked meanwhile: the next assignment seeks again
            log.warning("could not rewind uncommitted %s: %s", tp, e)
            continue
        stats["uncommitted_rewound"] += 1
        log.info("rewound %s to 0: no committed offset (its fetched, unprocessed records are read again)", tp)


def valid_seek_offsets(offsets: Mapping[Any, Any]) -> dict[Any, int]:
    """Offsets for ``seek_wait`` with anything that is not a non-negative int replaced by 0 (the log start).

    Standby recovery (``Recovery._seek_offsets``) only maps -1 to 0; other unknown offsets (None, -2)
    reach aiokafka's ``seek`` and crash the worker ("Offset must be a positive integer"), which scenario 1
    hit on a standby changelog partition. Re-reading a changelog from its start only rebuilds state.
    """
    out = {}
    for tp, offset in offsets.items():
        ok = isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0
        if not ok:
            stats["seek_offsets_fixed"] += 1
            log.warning("seek of %s to %r replaced by 0 (re-read from the start)", tp, offset)
        out[tp] = offset if ok else 0
    return out


def corrected_highwater(listed: int | None, fetched: int | None) -> int | None:
    """The larger of the listed end offset and the fetch's high watermark (None when neither is known)."""
    known = [x for x in (listed, fetched) if x is not None]
    return max(known) if known else None


async def fetch_highwaters(bootstrap: Any, listed: Mapping[Any, int], timeout: float = 2.0) -> dict[Any, int]:
    """One fetch per partition near its listed end; returns each partition's Fetch high watermark.

    Uses a throwaway assign()-only consumer so the caller's positions are not disturbed.
    """
    import aiokafka

    if not listed:
        return {}
    consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                         auto_offset_reset="latest", fetch_max_wait_ms=100,
                                         max_partition_fetch_bytes=64 * 1024)
    await consumer.start()
    try:
        tps = list(listed)
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(0, (listed[tp] or 0) - 1))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        out: dict[Any, int] = {}
        while loop.time() < deadline:
            await consumer.getmany(*tps, timeout_ms=200, max_records=1)
            out = {tp: hw for tp in tps if (hw := consumer.highwater(tp)) is not None}
            if len(out) == len(tps):
                break
        return out
    finally:
        await consumer.stop()


def apply() -> None:
    """Install both corrections on faust's consumer classes (once per process)."""
    global _APPLIED
    if _APPLIED:
        return
    from faust.transport import consumer as base
    from faust.transport.drivers import aiokafka as driver

    Consumer = base.Consumer
    orig_getmany = Consumer.getmany
    orig_perform_seek = Consumer.perform_seek
    orig_seek = Consumer.seek
    orig_revoked = Consumer.on_partitions_revoked
    orig_seek_wait = base.ThreadDelegateConsumer.seek_wait
    orig_fetch = base.ThreadDelegateConsumer._getmany
    orig_seek_to_committed = base.ThreadDelegateConsumer.seek_to_committed

    async def _getmany(self: Any, active_partitions: Any, timeout: float) -> Any:
        self.__dict__["_tw_fetch_seeks"] = dict(_seeks(self))  # taken right before the fetch is issued
        return await orig_fetch(self, active_partitions, timeout)

    def getmany(self: Any, timeout: float) -> AsyncIterator[tuple[Any, Any]]:
        return deliver_fresh(self, orig_getmany(self, timeout))

    async def perform_seek(self: Any) -> None:
        await orig_perform_seek(self)
        tps = set(self._read_offset.keys()) | set(self.assignment())
        # no committed offset -> read_offset None -> the reset policy (earliest): offset 0, or the log start
        note_seek(self, tps, {tp: self._read_offset.get(tp) or 0 for tp in tps})

    async def seek_to_committed(self: Any) -> Mapping[Any, int]:
        committed = await orig_seek_to_committed(self)
        await rewind_uncommitted(self, committed)
        return committed

    async def seek(self: Any, partition: Any, offset: int) -> None:
        await orig_seek(self, partition, offset)
        note_seek(self, [base.ensure_TP(partition)], {base.ensure_TP(partition): offset})

    async def seek_wait(self: Any, partitions: Mapping[Any, int]) -> None:
        partitions = valid_seek_offsets(partitions)
        await orig_seek_wait(self, partitions)
        note_seek(self, list(partitions), dict(partitions))

    async def on_partitions_revoked(self: Any, revoked: set[Any]) -> None:
        note_seek(self, revoked)
        await orig_revoked(self, revoked)
        note_seek(self, revoked)

    on_partitions_revoked.__wrapped__ = orig_revoked  # type: ignore[attr-defined]

    Consumer.getmany = getmany  # type: ignore[method-assign]
    Consumer.perform_seek = perform_seek  # type: ignore[method-assign]
    Consumer.seek = seek  # type: ignore[method-assign]
    Consumer.on_partitions_revoked = on_partitions_revoked  # type: ignore[method-assign]
    base.ThreadDelegateConsumer.seek_wait = seek_wait  # type: ignore[method-assign]
    base.ThreadDelegateConsumer._getmany = _getmany  # type: ignore[method-assign]
    base.ThreadDelegateConsumer.seek_to_committed = seek_to_committed  # type: ignore[method-assign]

    Thread = driver.AIOKafkaConsumerThread
    orig_highwaters = Thread._highwaters

    async def _highwaters(self: Any, partitions: list[Any]) -> Mapping[Any, int]:
        listed = dict(await orig_highwaters(self, partitions))
        if self.consumer.in_transaction or not listed:
            return listed
        try:
            bootstrap = self._ensure_consumer()._client._bootstrap_servers
            fetched = await fetch_highwaters(bootstrap, listed)
        except Exception as e:  # noqa: BLE001 - fall back to the listed offsets, as faust does
            log.warning("could not verify changelog highwaters with a fetch: %s", e)
            return listed
        out: dict[Any, int] = {}
        for tp, value in listed.items():
            out[tp] = corrected_highwater(value, fetched.get(tp)) or 0
            if out[tp] != value:
                stats["highwaters_raised"] += 1
                log.info("highwater of %s: listed %s, fetch says %s; using %s", tp, value, fetched.get(tp), out[tp])
        return out

    Thread._highwaters = _highwaters  # type: ignore[method-assign]
    _APPLIED = True
