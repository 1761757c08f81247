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

5. Per-record delivery cost (not a fault; the largest per-event cost of a worker). ``_drain_messages`` hands
   every fetched record to the conductor with ``wait_first(callback(message), suspend_flow.wait())``, which
   creates four tasks (the callback, the flow wait, and the service's stopped/crashed waits), waits for the
   first, then cancels three: ~80 µs per record, two records per article (raw + visit). The callback (the
   conductor's ``on_message``: decode, put into the stream's queue) almost never suspends. Now its first step
   runs at once (in a copy of the context, as a task would); if it completes there, nothing could have
   interrupted it and the result is what ``wait_first`` gave. Only when it suspends (flow suspended by a
   rebalance, a full stream buffer, the producer buffer over its limit) does the rest of it run as a task
   under the same ``wait_first`` as before, so a rebalance interrupts it exactly as it did.

``apply()`` patches the classes once (idempotent); ``processors.app.create_app`` calls it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import types
from collections import Counter
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
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


@types.coroutine
def _resume(coro: Any, first: Any) -> Generator[Any, Any, Any]:
    """Go on driving ``coro``, whose first step yielded ``first`` (a future, or None for a bare yield), under the
    calling task: the task sees ``first`` as if the coroutine had yielded it there (waits for it, cancels it on
    cancellation) and every later step is passed through unchanged."""
    value = first
    while True:
        try:
            sent = yield value
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task (cancellation): into the coroutine
            try:
                value = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
            continue
        try:
            value = coro.send(sent)
        except StopIteration as stop:
            return stop.value


async def _finish(coro: Any, first: Any) -> Any:
    return await _resume(coro, first)


async def deliver(consumer: Any, callback: Callable[[Any], Any], message: Any) -> None:
    """``await consumer.wait_first(callback(message), consumer.suspend_flow.wait())``, without its four tasks when
    the callback completes in its first step (see 5. above)."""
    coro = callback(message)
    ctx = contextvars.copy_context()
    try:
        first = ctx.run(coro.send, None)
    except StopIteration:
        stats["records_delivered_at_once"] += 1
        return
    task = asyncio.get_running_loop().create_task(_finish(coro, first), context=ctx)
    await consumer.wait_first(task, consumer.suspend_flow.wait())


async def _drain_messages(self: Any, fetcher: Any) -> None:  # pragma: no cover - the worker's fetch loop
    """faust 0.15.3 ``Consumer._drain_messages`` with ``deliver`` in place of its per-record ``wait_first``."""
    from faust.transport.consumer import CONSUMER_FETCHING

    callback = self.callback
    getmany = self.getmany
    consumer_should_stop = self._stopped.is_set
    fetcher_should_stop = fetcher._stopped.is_set

    get_read_offset = self._read_offset.__getitem__
    set_read_offset = self._read_offset.__setitem__
    flag_consumer_fetching = CONSUMER_FETCHING
    set_flag = self.diag.set_flag
    unset_flag = self.diag.unset_flag
    commit_every = self._commit_every
    acks_enabled_for = self.app.topics.acks_enabled_for

    yield_every = 100
    num_since_yield = 0
    sleep = asyncio.sleep

    try:
        while not (consumer_should_stop() or fetcher_should_stop()):
            set_flag(flag_consumer_fetching)
            ait = getmany(timeout=1.0)

            # Sleeping because sometimes getmany is called in a loop never releasing to the event loop
            await self.sleep(0)
            if not self.should_stop:
                async for tp, message in ait:
                    num_since_yield += 1
                    if num_since_yield > yield_every:
                        await sleep(0)
                        num_since_yield = 0

                    offset = message.offset
                    r_offset = get_read_offset(tp)
                    if r_offset is None or offset >= r_offset:
                        gap = offset - (r_offset or 0)
                        # We have a gap in income messages
                        if gap > 1 and r_offset:
                            acks_enabled = acks_enabled_for(message.topic)
                            if acks_enabled:
                                await self._add_gap(tp, r_offset + 1, offset)
                        if commit_every is not None:
                            if self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                        await deliver(self, callback, message)
                        set_read_offset(tp, offset)
                    else:
                        self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset, message.key, message.value)
                unset_flag(flag_consumer_fetching)

    except self.consumer_stopped_errors:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Broker stopped consumer, shutting down...")
            return
        raise
    except asyncio.CancelledError:
        if self.transport.app.should_stop:
            # we're already stopping so ignore
            self.log.info("Consumer shutting down for user cancel.")
            return
        raise
    except Exception as exc:
        self.log.exception("Drain messages raised: %r", exc)
        raise
    finally:
        unset_flag(flag_consumer_fetching)


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
    Consumer._drain_messages = _drain_messages  # type: ignore[method-assign]
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
