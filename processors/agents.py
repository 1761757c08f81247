"""Faust agents: wiring only — decode, call the pure functions, send; per-event errors go to the dead-letter topic."""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from processors.changelog import QueuedTable
from processors.enrich import enrich_article
from processors.novelty import KeyState, observe_or_resend, roll_up
from processors.stories import StoryIndex, StoryItem, StoryItems, fold_batch, indexed, story_item
from processors.visit_packs import KeyPartitions, pack_visits, visits_of
from sinks.metrics import Metrics
from trucewatch.errors import DecodeError
from trucewatch.schema import Alert, Article, EnrichedArticle, Visit, dead_letter, decode, utcnow

if TYPE_CHECKING:
    from processors.app import Pipeline

log = logging.getLogger(__name__)
STORY_TICK_SECONDS = 0.5


async def _to_deadletter(pipe: Pipeline, metrics: Metrics, stage: str, reason: str, event: Any,
                         payload: bytes | None = None) -> None:
    """Send the event's payload (or ``payload``, the part of it that failed) with its reason to the dead-letter
    topic."""
    msg = event.message
    log.warning("dead-lettering %s/%s@%s at %s: %s", msg.topic, msg.partition, msg.offset, stage, reason)
    metrics.deadletters.labels(stage).inc()
    record = dead_letter(stage, reason, event.value if payload is None else payload, topic=msg.topic,
                         partition=msg.partition, offset=msg.offset, key=event.key)
    await pipe.deadletter.send(key=event.key, value=record.to_bytes())


ENRICH_BATCH = 200  # raw articles the enrich agent takes at a time (each acked once its outputs are queued)
ENRICH_BATCH_SECONDS = 0.05  # the longest an article waits for its batch to fill
NOVELTY_BATCH = 100  # visits messages (packs of a batch's reports, processors/visit_packs.py) folded at a time
NOVELTY_BATCH_SECONDS = 1.0  # the longest a report waits: a key reported several times within it gets one alert


def producer_send(app: Any) -> Any:
    """The ``send`` coroutine of the aiokafka producer behind ``app`` (partitioning by key as Faust's Topic.send).

    Faust's per-message wrapper (message objects, sensors, callbacks) costs more than the send itself; the
    worker flushes this same producer before every offset commit (``Consumer.commit`` -> ``producer.flush``), so
    outputs sent here are acknowledged by the broker before the inputs that produced them are committed.
    """
    return aiokafka_producer(app).send


def aiokafka_producer(app: Any) -> Any:
    """The aiokafka producer behind ``app``'s Faust producer."""
    return app.producer._ensure_producer()


def wire(pipe: Pipeline, metrics: Metrics) -> None:
    """Register the enrich and novelty agents on ``pipe.app`` (enrich also feeds the story stage's topic).

    Enrich sends each batch's visit reports packed per partition of the visits topic (processors/visit_packs.py),
    so novelty takes one event per pack; a report that fails in novelty is dead-lettered alone.

    Both take their input in batches (``noack_take``) and ack each event only once its outputs are queued on the
    producer (which the worker flushes before committing), so a crash or a failed batch never commits an input
    whose outputs were not sent: at-least-once, as with one event at a time. Per-event failures go to the
    dead-letter topic and are acked.
    """
    import weakref

    from faust.streams import _current_event

    app = pipe.app
    window = timedelta(days=pipe.settings.novelty_window_days)
    table = pipe.novelty_table
    enriched_topic = pipe.topics.enriched
    visits_topic = pipe.topics.visits
    alerts_topic = pipe.topics.alerts
    stories_topic = pipe.stories.get_topic_name() if pipe.stories is not None else None
    enrich_seconds = metrics.stage_seconds.labels("enrich")
    novelty_seconds = metrics.stage_seconds.labels("novelty")

    async def to_deadletter(stage: str, reason: str, event: Any) -> None:
        await _to_deadletter(pipe, metrics, stage, reason, event)

    partition_of = KeyPartitions(lambda key: app.producer.key_partition(visits_topic, key).partition)

    async def enrich_one(send: Any, event: Any, counts: Counter[tuple[str, str]],
                         visits: dict[int, list[bytes]]) -> bytes | None:
        """Enrich one raw event and queue its enriched article; its visit reports go to ``visits`` (partition ->
        JSONs) for the batch's packs. Returns its story item (JSON) for the batch's story message. Its metric
        increments are added to ``counts`` (the batch applies them once per label value)."""
        t0 = time.perf_counter()
        try:
            article = decode(Article, event.value)
            enriched = enrich_article(article)
        except DecodeError as e:
            await to_deadletter("decode", str(e), event)
            return None
        except Exception as e:  # noqa: BLE001 - never let an exception reach faust (it would drop the event)
            log.exception("enrich failed for %s", event.key)
            await to_deadletter("enrich", f"{type(e).__name__}: {e}", event)
            return None
        try:
            story = story_payload(enriched) if stories_topic is not None else None
        except Exception:  # noqa: BLE001 - the article still goes on without its story item
            log.exception("story features failed for %s", event.key)
            story = None
        try:
            reports = [(partition_of(visit.key), visit.to_bytes()) for visit in enriched.visits]
            await send(enriched_topic, enriched.to_bytes(), key=article.id.encode("utf-8"))
        except Exception as e:  # noqa: BLE001 - e.g. a message over the broker's size limit: this event only
            log.exception("sending the outputs of %s failed", event.key)
            await to_deadletter("enrich-send", f"{type(e).__name__}: {e}", event)
            return None
        for partition, report in reports:
            visits.setdefault(partition, []).append(report)
        counts["source", article.source] += 1
        for name in enriched.labels.true_labels():
            counts["label", name] += 1
        if enriched.visits:
            counts["visits", ""] += len(enriched.visits)
        enrich_seconds.observe(time.perf_counter() - t0)
        return story

    def count(counts: Counter[tuple[str, str]]) -> None:
        for (kind, value), n in counts.items():
            if kind == "source":
                metrics.articles_processed.labels(value).inc(n)
            elif kind == "label":
                metrics.articles_labelled.labels(value).inc(n)
            else:
                metrics.visits_detected.inc(n)

    @app.agent(pipe.raw, name="enrich")
    async def enrich(stream: Any) -> None:
        async for events in stream.noack_take(ENRICH_BATCH, within=ENRICH_BATCH_SECONDS):
            send = producer_send(app)
            await aiokafka_producer(app).partitions_for(visits_topic)  # the topic's metadata, for partition_of
            counts: Counter[tuple[str, str]] = Counter()
            visits: dict[int, list[bytes]] = {}
            items = [item for event in events if (item := await enrich_one(send, event, counts, visits)) is not None]
            count(counts)
            for partition, reports in visits.items():  # the same partition each report's key would be sent to
                for message in pack_visits(reports):
                    await send(visits_topic, message, partition=partition)
            for message in story_messages(items):
                await send(stories_topic, message, key=STORY_SHARD)
            for event in events:  # every output of the batch is queued: the next commit (after a flush) may pass it
                await stream.ack(event)

    published_hist, ingested_hist = metrics.published_to_alert_seconds, metrics.ingested_to_alert_seconds
    children: dict[tuple[Any, str], Any] = {}

    def child(metric: Any, kind: str) -> Any:
        """``metric.labels(kind)``, looked up once per kind (a labels() call takes a lock and builds a key)."""
        hit = children.get((metric, kind))
        if hit is None:
            hit = children[metric, kind] = metric.labels(kind)
        return hit

    async def novelty_batch(events: list[Any]) -> None:
        t0 = time.perf_counter()
        states: dict[str, KeyState | None] = {}  # the batch's view of the table: read once, written once per key
        last_event: dict[str, Any] = {}  # key -> the last event reporting it (its partition holds the key's state)
        alerts: dict[str, list[Alert]] = {}
        alerts_raised: Counter[tuple[str, str]] = Counter()
        n = 0
        reports: list[tuple[Any, Visit]] = []
        for event in events:
            try:
                reports.extend((event, visit) for visit in visits_of(event.value))
            except DecodeError as e:
                await to_deadletter("novelty-decode", str(e), event)
        for event, visit in reports:
            try:
                if visit.key in states:
                    state = states[visit.key]
                else:
                    # rocksdb tables read only the current event's partition DB: make it this report's
                    _current_event.set(weakref.ref(event))
                    raw_state = table.get(visit.key)
                    state = KeyState.from_dict(raw_state) if raw_state else None
                state, alert, counted = observe_or_resend(state, visit, window)
            except Exception as e:  # noqa: BLE001 - see enrich; the one report goes to the dead-letter topic
                log.exception("novelty failed for %s of %s", visit.key, visit.article_id)
                await _to_deadletter(pipe, metrics, "novelty", f"{type(e).__name__}: {e}", event, visit.to_bytes())
                continue
            n += 1
            states[visit.key] = state
            alerts.setdefault(visit.key, []).append(alert)
            if not counted:
                continue  # a redelivery: state unchanged, its alert is sent again (rolled up with the key's others)
            last_event[visit.key] = event
            alerts_raised[alert.kind, alert.severity] += 1
            now = utcnow()
            if visit.published_at:
                child(published_hist, alert.kind).observe(max(0.0, (now - visit.published_at).total_seconds()))
            if visit.fetched_at:
                child(ingested_hist, alert.kind).observe(max(0.0, (now - visit.fetched_at).total_seconds()))
        for (kind, severity), count in alerts_raised.items():
            metrics.alerts.labels(kind, severity).inc(count)
        # state first, then the alerts (as one event at a time did): a crash in between re-sends on redelivery
        for key, event in last_event.items():
            state = states[key]
            assert state is not None
            _current_event.set(weakref.ref(event))  # the changelog write goes to this event's partition
            table[key] = state.to_dict()
        send = producer_send(app)
        for raised in alerts.values():
            alert = roll_up(raised)
            await send(alerts_topic, alert.to_bytes(), key=alert.id.encode("utf-8"))
        if n:
            per_report = (time.perf_counter() - t0) / n
            for _ in range(n):
                novelty_seconds.observe(per_report)

    @app.agent(pipe.visits, name="novelty")
    async def novelty(stream: Any) -> None:
        async for events in stream.noack_take(NOVELTY_BATCH, within=NOVELTY_BATCH_SECONDS):
            await novelty_batch(events)
            for event in events:
                await stream.ack(event)

    pipe.agents.update({"enrich": enrich, "novelty": novelty})


STORY_SHARD = b"stories"  # every story item goes to one partition: the cluster index must see them all
_TICK = b'{"tick": true}'
STORY_BATCH = 20  # story messages (of up to STORY_ITEMS_PER_MESSAGE items) folded per batch: each changed table
STORY_BATCH_SECONDS = 0.2  # key is written once per batch; the longest a story message waits for its batch


STORY_ITEMS_PER_MESSAGE = 100  # story items per message on the internal stories topic (~2 KB each)
_ITEMS_HEAD = b'{"items":['


def story_payload(enriched: EnrichedArticle) -> bytes | None:
    """The StoryItem JSON for the internal stories topic, or None when the article does not enter the index."""
    if not indexed(enriched):
        return None
    item = story_item(enriched)
    return item.__pydantic_serializer__.to_json(item)


def story_messages(items: list[bytes], size: int = STORY_ITEMS_PER_MESSAGE) -> list[bytes]:
    """StoryItem JSONs packed into ``StoryItems`` messages (``{"items": [...]}``) of at most ``size`` items:
    the story stage runs on one partition, so one Faust event per article would be its largest cost."""
    return [_ITEMS_HEAD + b",".join(items[i:i + size]) + b"]}" for i in range(0, len(items), size)]


def story_items_of(value: bytes) -> list[StoryItem]:
    """The items of one stories-topic message: a ``StoryItems`` batch, or a single StoryItem (older workers).
    Raises DecodeError."""
    if value[:len(_ITEMS_HEAD)] == _ITEMS_HEAD:
        return decode(StoryItems, value).items
    return [decode(StoryItem, value)]


def wire_stories(pipe: Pipeline, metrics: Metrics) -> None:
    """Register the story stage (see processors/stories.py) on ``pipe.app``.

    The enrich agent sends a StoryItem for each enriched article carrying a label or a visit to the internal
    ``<prefix>stories`` topic, packed into messages of up to ``STORY_ITEMS_PER_MESSAGE`` items per batch (one key,
    so one partition holds the whole cluster index); ``stories`` folds items into the ``stories`` table in batches
    (``STORY_BATCH`` messages or ``STORY_BATCH_SECONDS``) through an in-memory StoryIndex, writes each changed table
    key once per batch, and sends the story alerts that are due: a new cluster's after the debounce, an alerted
    cluster's update once ``stories.UPDATE_EVERY_ITEMS`` items were folded since it grew, or when the stage is idle
    (``stories.fold_batch``; its key waits in the table's ``updates``), so a replay sends the same updates at any
    processing speed. The debounce runs on processing time inside the agent: a timer sends a tick message while
    clusters wait, so every table change happens in stream context (Faust writes the changelog per key).
    The in-memory index is rebuilt from the table after every rebalance (and at start, after recovery).
    """
    import weakref

    from faust.streams import _current_event

    app = pipe.app
    table = QueuedTable(pipe.stories_table)  # a batch's changelog records go to the producer in one pass
    topic = pipe.stories
    alerts_topic = pipe.topics.alerts
    hint = {"pending": True}  # send ticks until the agent has seen the table (also after a restart)
    held: dict[str, StoryIndex | None] = {"index": None}

    async def stale(*_: Any, **__: Any) -> None:
        held["index"] = None  # partitions moved: the table may hold other rows now

    app.on_partitions_assigned.connect(stale)
    app.on_partitions_revoked.connect(stale)

    async def fold(events: list[Any]) -> None:
        t0 = time.perf_counter()
        index = held["index"]
        if index is None:
            index = held["index"] = StoryIndex(table)
            log.info("story index loaded: %d members", len(index.cluster_of))
        _current_event.set(weakref.ref(events[-1]))  # table writes of the batch belong to its last event
        partition = events[-1].message.partition
        failed: list[tuple[str, str, Any, StoryItem | None]] = []  # stage, reason, event, the item that failed
        tagged: list[tuple[Any, StoryItem]] = []
        for event in events:
            if event.value == _TICK:
                continue
            try:
                tagged.extend((event, item) for item in story_items_of(event.value))
            except DecodeError as e:
                failed.append(("stories-decode", str(e), event, None))

        def on_error(event: Any, item: StoryItem, e: Exception) -> None:
            log.error("story clustering failed for %s", item.article_id, exc_info=e)
            failed.append(("stories", f"{type(e).__name__}: {e}", event, item))

        try:
            folded = fold_batch(index, tagged, time.time(), on_error)
        finally:  # whatever reached the table goes to its changelog (before the alerts that depend on it)
            await table.send_pending(aiokafka_producer(app), partition)
        n = folded.n
        alerts = []
        for k in folded.keys:
            try:
                alert = index.alert(k)
                if alert is not None:
                    alerts.append(alert)
            except Exception:  # noqa: BLE001 - one bad cluster never stops the batch
                log.exception("story alert failed for cluster %s", k)
        hint["pending"] = folded.waiting
        for stage, reason, event, bad in failed:
            payload = bad.model_dump_json().encode("utf-8") if bad is not None else None
            await _to_deadletter(pipe, metrics, stage, reason, event, payload)
        send = producer_send(app)
        for alert in alerts:
            await send(alerts_topic, alert.to_bytes(), key=alert.id.encode("utf-8"))
            metrics.alerts.labels(alert.kind, alert.severity).inc()
        if n:
            per_item = (time.perf_counter() - t0) / n
            hist = metrics.stage_seconds.labels("story")
            for _ in range(n):
                hist.observe(per_item)

    @app.agent(topic, name="stories")
    async def stories(stream: Any) -> None:
        async for events in stream.take_events(STORY_BATCH, within=STORY_BATCH_SECONDS):
            try:
                await fold(list(events))
            except Exception:  # noqa: BLE001 - never let an exception reach faust
                log.exception("story batch of %d events failed", len(events))
                held["index"] = None  # rebuilt from the table, whatever the batch left behind

    @app.timer(interval=STORY_TICK_SECONDS)  # type: ignore[untyped-decorator]  # faust's timer is untyped
    async def story_tick() -> None:
        if hint["pending"]:
            await topic.send(key=STORY_SHARD, value=_TICK)

    pipe.agents.update({"stories": stories})
