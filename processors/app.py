"""The one faust.App of trucewatch, its topics and table, and the worker entry point."""

from __future__ import annotations

import gc
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

import faust

from sinks.metrics import Metrics, build_metrics, serve_metrics, wire_faust_metrics
from trucewatch.settings import Settings
from trucewatch.topics import Topics, story_group

log = logging.getLogger(__name__)

Stages = Literal["all", "stream", "stories"]  # what one worker process runs (Settings.worker_stages)

PRODUCER_BATCH_BYTES = 512 * 1024
PRODUCER_LINGER_SECONDS = 0.005


@dataclass
class Pipeline:
    """The app with its topic and table handles (what agents.py wires together)."""

    app: faust.App
    settings: Settings
    topics: Topics
    raw: Any
    enriched: Any
    visits: Any
    alerts: Any
    deadletter: Any
    novelty_table: Any
    stories: Any = None  # the internal story topic and the cluster-index table (processors/agents.wire_stories)
    stories_table: Any = None
    agents: dict[str, Any] = field(default_factory=dict)  # name -> the agents wired on ``app``


def store_url(settings: Settings) -> str:
    """RocksDB (rocksdict) when importable and asked for, else memory.

    Memory is the default: on the embedded Tansu broker, changelog recovery after a restart is
    unreliable (see shared/research/infra.md) and alert ids are deterministic, so losing novelty
    state can never create a second alert — only relabel an update as new, which the store merges.
    """
    if settings.faust_store == "rocksdb":
        try:
            import rocksdict  # noqa: F401

            return "rocksdb://"
        except ImportError:
            log.warning("rocksdict is not installed; using the memory table store")
    return "memory://"


def app_id(settings: Settings, stages: Stages) -> str:
    """The Faust app id (consumer group) of a worker running ``stages``: the story stage alone has a group of its
    own, so its process never takes part in the stream workers' rebalances (nor they in its)."""
    return story_group(settings) if stages == "stories" else settings.app_id


def create_app(settings: Settings, bootstrap: str, metrics: Metrics | None = None,
               stages: Stages | None = None) -> Pipeline:
    """Build the Faust app for ``bootstrap`` with the fast-join settings measured for the embedded broker.

    ``stages`` (default ``settings.worker_stages``): ``all`` wires enrich, novelty and the story stage; ``stream``
    enrich and novelty (enrich still feeds the stories topic); ``stories`` the story stage alone, under the app id
    ``story_group(settings)``.

    Topics carry raw bytes: every payload is decoded by trucewatch.schema.decode inside the agent,
    so a message that does not decode reaches the dead-letter topic with its reason instead of
    being dropped by Faust's own deserialiser.
    """
    from processors import faust_fixes

    stages = stages or settings.worker_stages
    faust_fixes.apply()  # at-least-once across rebalances + changelog highwaters on Tansu (see the module)
    datadir = settings.data_dir / "faust"
    datadir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id(settings, stages),
        broker=[f"kafka://{b}" for b in bootstrap.split(",")],
        store=store_url(settings),
        datadir=str(datadir),
        autodiscover=False,
        key_serializer="json",  # the table's changelog; the topics below are declared raw
        value_serializer="json",
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_commit_interval=settings.commit_interval,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # batches of many messages per produce request (the default 16 KB holds ~4 enriched articles); the
        # linger lets a batch fill while the agents work. Outputs are flushed before every commit regardless.
        producer_max_batch_size=PRODUCER_BATCH_BYTES,
        producer_linger=PRODUCER_LINGER_SECONDS,
        web_enabled=bool(settings.worker_web_port),
        web_port=settings.worker_web_port or 6066,
        web_bind="127.0.0.1",
        table_cleanup_interval=60.0,
        logging_config=None,
    )
    topics = Topics.from_settings(settings)

    def topic(name: str) -> Any:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                         partitions=settings.partitions, internal=False)

    stories = app.topic(topics.stories, key_type=bytes, value_type=bytes, key_serializer="raw",
                        value_serializer="raw", partitions=settings.partitions, internal=True)
    novelty_table = None
    if stages != "stories":
        novelty_table = app.Table("novelty", default=None, partitions=settings.partitions, key_type=str,
                                  help="visit key -> first/last event time, articles and sources")
    pipe = Pipeline(app=app, settings=settings, topics=topics, raw=topic(topics.raw),
                    enriched=topic(topics.enriched), visits=topic(topics.visits), alerts=topic(topics.alerts),
                    deadletter=topic(topics.deadletter), novelty_table=novelty_table, stories=stories)
    if stages != "stream":
        pipe.stories_table = app.Table("stories", default=None, partitions=settings.partitions, key_type=str,
                                       help="story cluster index: members, day buckets, clusters")
    from processors.agents import wire, wire_stories

    metrics = metrics or build_metrics()
    if stages != "stories":
        wire(pipe, metrics)
    if stages != "stream":
        wire_stories(pipe, metrics)
    return pipe


def run_worker(settings: Settings) -> int:
    """Run the Faust worker (the stages ``settings.worker_stages`` names) until SIGINT/SIGTERM. Needs a configured
    broker (``up`` passes the embedded one)."""
    from trucewatch.errors import ConfigError

    if not settings.kafka_bootstrap:
        raise ConfigError("no broker: set TRUCEWATCH_KAFKA_BOOTSTRAP (or run `trucewatch up`, which starts one)",
                          path="environment", entry="TRUCEWATCH_KAFKA_BOOTSTRAP")
    metrics = build_metrics()
    serve_metrics(metrics, settings.metrics_host, settings.metrics_port)
    pipe = create_app(settings, settings.kafka_bootstrap, metrics)
    if settings.metrics_port:  # Faust's sensor + trucewatch_consumer_lag on the same /metrics; without an endpoint
        wire_faust_metrics(pipe.app, metrics)  # nobody reads them, and the sensor costs ~5% of the worker per event
    from faust.worker import Worker

    from processors.knowledge import get_knowledge

    # The knowledge index lives as long as the process: load it before joining the group (a bad YAML file stops
    # the worker here, naming the file and entry) and move everything allocated so far out of the collector's
    # generations, so full collections stop traversing it (~13% of the classifier's CPU, see BENCHMARKS.md).
    if settings.worker_stages != "stories":  # the story stage reads no knowledge
        get_knowledge()
    gc.freeze()
    worker = Worker(pipe.app, loglevel=settings.log_level.lower(), quiet=True, redirect_stdouts=False)
    worker.execute_from_commandline()
    return 0
