"""The one publish path: every producer (files, feeds, replay) sends Articles through here."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from trucewatch.errors import BufferFullError, PublishError
from trucewatch.schema import Article
from trucewatch.settings import Settings
from trucewatch.topics import Topics

if TYPE_CHECKING:
    from sinks.archive import ArchiveWriter

log = logging.getLogger(__name__)

PublishFn = Callable[[Article], None]


MAX_IN_FLIGHT = 20_000  # unacknowledged messages a Publisher holds before it blocks, then fails


def make_producer(bootstrap: str, **extra: Any) -> KafkaProducer:
    """A kafka-python producer: acks=all, retries (kafka-python 3 has no byte-bounded buffer;
    the Publisher bounds the number of unacknowledged messages itself).

    Idempotence is off on purpose: on the embedded broker a restarted cluster makes an
    idempotent kafka-python producer fail forever (UnknownProducerIdError, see
    shared/research/infra.md); with it off the producer recovers.
    """
    conf: dict[str, Any] = dict(
        bootstrap_servers=bootstrap, acks="all", retries=5, enable_idempotence=False,
        linger_ms=5, batch_size=64 * 1024, max_block_ms=10_000,
        max_request_size=8 * 1024 * 1024, client_id="trucewatch-producer",
    )
    conf.update(extra)
    return KafkaProducer(**conf)


class Publisher:
    """Publishes Articles to ``articles.raw`` keyed by article id.

    ``publish(article)`` is asynchronous (delivery errors are collected); ``flush()``
    blocks until every message is acknowledged and raises PublishError if any failed.
    """

    def __init__(self, producer: Any, topic: str, archive: ArchiveWriter | None = None, *,
                 max_in_flight: int = MAX_IN_FLIGHT, block_seconds: float = 30.0) -> None:
        self.producer = producer
        self.max_in_flight = max_in_flight
        self.block_seconds = block_seconds
        self.in_flight = 0
        self.topic = topic
        self.archive = archive  # every published article is archived here first (upstream of the broker)
        self.archive_failed = 0
        self.sent = 0
        self.failed: list[tuple[str, str]] = []

    @classmethod
    def from_settings(cls, settings: Settings, bootstrap: str, archive: bool = False) -> Publisher:
        """A Publisher on the raw topic of ``settings``; with ``archive``, archiving to ``data_dir/archive``."""
        writer = None
        if archive:
            from sinks.archive import ArchiveWriter

            writer = ArchiveWriter(settings.data_dir / "archive")
        return cls(make_producer(bootstrap), Topics.from_settings(settings).raw, archive=writer)

    def publish(self, article: Article) -> None:
        """Archive (if configured), then queue one article; raises BufferFullError when the buffer stays full.

        An archive write failure is logged and counted (``archive_failed``); the article is still sent.
        """
        data = article.to_bytes()
        if self.archive is not None:
            try:
                self.archive.write(article, data)
            except OSError as e:
                self.archive_failed += 1
                log.error("archiving %s failed: %s", article.id, e)
        self.send_bytes(self.topic, article.id, data)

    def send_bytes(self, topic: str, key: str | None, value: bytes) -> None:
        """Queue raw bytes on any topic (used for tests and dead letters).

        When ``max_in_flight`` messages are unacknowledged, waits up to ``block_seconds`` for acks,
        then raises BufferFullError (the broker is not keeping up or is gone).
        """
        if self.in_flight >= self.max_in_flight:
            self.producer.flush(timeout=self.block_seconds)
            if self.in_flight >= self.max_in_flight:
                raise BufferFullError(f"{self.in_flight} messages unacknowledged after {self.block_seconds:.0f}s "
                                      f"(buffer of {self.max_in_flight} full)", topic=topic, key=key)
        try:
            fut = self.producer.send(topic, key=key.encode("utf-8") if key else None, value=value)
        except KafkaTimeoutError as e:
            raise BufferFullError(f"producer buffer full for {topic}: {e}", topic=topic, key=key) from e
        except KafkaError as e:
            raise PublishError(f"cannot publish to {topic}: {e}", topic=topic, key=key) from e
        self.sent += 1
        self.in_flight += 1
        fut.add_both(self._done)
        fut.add_errback(lambda exc: self._failed(key, exc))

    def _done(self, *_: object) -> None:
        self.in_flight -= 1

    def _failed(self, key: str | None, exc: BaseException) -> None:
        log.error("publish of %s to %s failed: %s", key, self.topic, exc)
        self.failed.append((key or "", str(exc)))

    def flush(self, timeout: float = 30.0) -> None:
        """Wait for every queued message to be acknowledged; PublishError if any failed."""
        self.producer.flush(timeout=timeout)
        if self.archive is not None:
            self.archive.flush()
        if self.failed:
            n, self.failed = len(self.failed), []
            raise PublishError(f"{n} message(s) were not acknowledged", topic=self.topic, key=None)

    def close(self) -> None:
        """Flush and close the producer, then complete the archive's open files."""
        try:
            self.producer.flush(timeout=30)
        finally:
            try:
                self.producer.close(timeout=10)
            finally:
                if self.archive is not None:
                    self.archive.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
