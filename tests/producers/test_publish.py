"""Unit tests for the publish path with a fake producer (no broker)."""

from __future__ import annotations

import pytest
from kafka.future import Future

from producers.publish import Publisher
from trucewatch.errors import BufferFullError, PublishError
from trucewatch.schema import Article, decode


class FakeProducer:
    """Records sends; futures resolve only on flush (like a broker that acks late) unless stuck."""

    def __init__(self, stuck: bool = False, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes | None, bytes]] = []
        self.pending: list[Future] = []
        self.stuck, self.fail = stuck, fail

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> Future:
        self.sent.append((topic, key, value))
        f = Future()
        self.pending.append(f)
        return f

    def flush(self, timeout: float | None = None) -> None:
        if self.stuck:
            return
        for f in self.pending:
            f.failure(RuntimeError("broker said no")) if self.fail else f.success(None)
        self.pending = []

    def close(self, timeout: float | None = None) -> None:
        pass


def test_publish_keys_by_article_id_with_schema_bytes() -> None:
    prod = FakeProducer()
    pub = Publisher(prod, "p.articles.raw")
    pub.publish(Article(id="a1", title="عنوان"))
    pub.flush()
    topic, key, value = prod.sent[0]
    assert (topic, key) == ("p.articles.raw", b"a1")
    assert decode(Article, value).title == "عنوان"
    assert pub.in_flight == 0


def test_unacknowledged_messages_raise_on_flush() -> None:
    pub = Publisher(FakeProducer(fail=True), "t")
    pub.publish(Article(id="a1"))
    with pytest.raises(PublishError, match="not acknowledged"):
        pub.flush()


def test_bounded_buffer_fails_clearly_when_the_broker_does_not_ack() -> None:
    pub = Publisher(FakeProducer(stuck=True), "t", max_in_flight=3, block_seconds=0.01)
    for i in range(3):
        pub.publish(Article(id=f"a{i}"))
    with pytest.raises(BufferFullError, match="buffer of 3 full"):
        pub.publish(Article(id="a4"))


def test_bounded_buffer_drains_when_acks_arrive() -> None:
    pub = Publisher(FakeProducer(), "t", max_in_flight=2)
    for i in range(10):
        pub.publish(Article(id=f"a{i}"))
    pub.flush()
    assert pub.sent == 10 and pub.in_flight == 0
