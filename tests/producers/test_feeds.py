"""Unit tests of the feed poller on httpx.MockTransport with a list-appending publish."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from producers.feedconfig import FeedConfig
from producers.feeds import FeedPoller, PollResult, parse_document, run_poll, ttl_hint
from producers.fetch import Limits, make_client, parse_retry_after
from producers.fulltext import FullText
from producers.seen import SqliteSeenStore
from sinks.metrics import build_metrics
from trucewatch.errors import FeedError, PublishError
from trucewatch.schema import Article
from trucewatch.settings import Settings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
FAST = Limits(connect_timeout=1, read_timeout=1, total_timeout=2, max_bytes=64 * 1024, max_redirects=3, jitter=0.0)


def rss(items: list[tuple[str, str]], *, ttl: int | None = None) -> bytes:
    """A tiny RSS 2.0 document from (title, link) pairs."""
    body = "".join(f"<item><title>{t}</title><link>{link.replace('&', '&amp;')}</link>"
                   f"<description>وصف {t}</description></item>" for t, link in items)
    ttl_el = f"<ttl>{ttl}</ttl>" if ttl else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>ت</title>'
            f"<link>https://a.example/</link>{ttl_el}{body}</channel></rss>").encode()


def feed(name: str, url: str, **kw: Any) -> FeedConfig:
    return FeedConfig(name=name, url=url, source=kw.pop("source", name), **kw)


class Harness:
    """A poller on a MockTransport handler, a fresh registry, an in-memory seen store and a list publish."""

    def __init__(self, handler: Callable[[httpx.Request], Any], feeds: list[FeedConfig], limits: Limits = FAST,
                 seen: SqliteSeenStore | None = None, publish: Callable[[Article], None] | None = None,
                 fulltext: bool = False) -> None:
        self.published: list[Article] = []
        self.requests: list[httpx.Request] = []

        async def wrapped(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            r = handler(request)
            if asyncio.iscoroutine(r):
                r = await r
            return r  # type: ignore[no-any-return]

        self.client = make_client(limits, transport=httpx.MockTransport(wrapped))
        self.metrics = build_metrics(CollectorRegistry())
        self.seen = seen or SqliteSeenStore(":memory:")
        ft = FullText(self.client, limits, extractor=lambda html, url: "نص كامل " + url) if fulltext else None
        self.poller = FeedPoller(feeds, self.client, publish or self.published.append, self.seen, self.metrics,
                                 limits, fulltext=ft)

    def value(self, name: str, **labels: str) -> float:
        v = self.metrics.registry.get_sample_value(f"trucewatch_{name}", labels)
        return 0.0 if v is None else v

    def once(self) -> list[PollResult]:
        return asyncio.run(self._once())

    async def _once(self) -> list[PollResult]:
        return await self.poller.poll_once()


def test_conditional_get_and_304_publishes_nothing() -> None:
    doc = rss([("خبر أول", "https://a.example/1"), ("خبر ثان", "https://a.example/2")])

    def handler(req: httpx.Request) -> httpx.Response:
        if req.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=doc, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml",
                                                         "Last-Modified": "Sun, 30 May 2021 10:00:00 GMT"})

    h = Harness(handler, [feed("a", "https://a.example/rss")])

    async def go() -> tuple[list[PollResult], list[PollResult]]:
        first = await h.poller.poll_once()
        second = await h.poller.poll_once()
        return first, second

    first, second = asyncio.run(go())
    assert [r.outcome for r in first] == ["ok"] and first[0].new == 2
    assert [r.outcome for r in second] == ["not_modified"] and second[0].new == 0
    assert len(h.published) == 2
    assert h.requests[1].headers["if-none-match"] == '"v1"'
    assert h.requests[1].headers["if-modified-since"] == "Sun, 30 May 2021 10:00:00 GMT"
    assert h.value("feed_polls_total", source="a", kind="not_modified") == 1
    assert h.value("feed_items_total", source="a") == 2
    assert h.value("articles_ingested_total", source="a") == 2
    assert h.value("feed_fetch_seconds_count", source="a") == 2


def test_seen_items_and_tracking_parameters_are_not_new() -> None:
    versions = [
        rss([("خبر", "https://a.example/n/1?utm_source=rss&id=7#top")]),
        rss([("خبر", "https://A.example:443/n/1?id=7&fbclid=abc&utm_medium=x"), ("جديد", "https://a.example/n/2")]),
    ]
    calls = {"n": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        body = versions[min(calls["n"], 1)]
        calls["n"] += 1
        return httpx.Response(200, content=body)

    h = Harness(handler, [feed("a", "https://a.example/rss")])

    async def go() -> None:
        await h.poller.poll_once()
        await h.poller.poll_once()
        await h.poller.poll_once()

    asyncio.run(go())
    assert [a.url for a in h.published] == ["https://a.example/n/1?id=7", "https://a.example/n/2"]


def test_identical_body_without_validators_is_not_parsed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    import producers.feeds as feeds_mod

    doc = rss([("خبر", "https://a.example/1")])
    h = Harness(lambda r: httpx.Response(200, content=doc), [feed("a", "https://a.example/rss")])
    parses: list[int] = []
    real = feeds_mod.parse_document
    monkeypatch.setattr(feeds_mod, "parse_document", lambda *a, **k: parses.append(1) or real(*a, **k))

    async def go() -> list[str]:
        return [(await h.poller.poll_once())[0].outcome for _ in range(3)]

    assert asyncio.run(go()) == ["ok", "not_modified", "not_modified"]
    assert len(parses) == 1 and len(h.published) == 1


def test_restart_with_same_state_emits_nothing(tmp_path: Path) -> None:
    doc = rss([("خبر", "https://a.example/1"), ("آخر", "https://a.example/2")])
    feeds = [feed("a", "https://a.example/rss")]
    h1 = Harness(lambda r: httpx.Response(200, content=doc), feeds, seen=SqliteSeenStore(tmp_path / "s.db"))
    h1.once()
    h1.seen.close()
    h2 = Harness(lambda r: httpx.Response(200, content=doc), feeds, seen=SqliteSeenStore(tmp_path / "s.db"))
    res = h2.once()
    assert len(h1.published) == 2
    assert h2.published == [] and res[0].outcome == "ok" and res[0].entries == 2


def _errors_handler(req: httpx.Request) -> httpx.Response:
    path = req.url.path
    if path == "/good":
        return httpx.Response(200, content=rss([("سليم", "https://good.example/1")]))
    if path == "/500":
        return httpx.Response(500, text="boom")
    if path == "/html":
        return httpx.Response(200, text="<!DOCTYPE html><html><body><p>not a feed</p></body></html>",
                              headers={"Content-Type": "text/html"})
    if path == "/invalid":
        return httpx.Response(200, content=b'<?xml version="1.0"?><rss version="2.0"><channel><<<&&&')
    if path == "/huge-declared":
        return httpx.Response(200, content=b"x" * 10, headers={"Content-Length": str(50 * 1024 * 1024)})
    if path == "/huge-streamed":
        async def chunks() -> Any:
            for _ in range(50 * 16):
                yield b"<" * 65536
        return httpx.Response(200, content=chunks())
    if path.startswith("/loop"):
        return httpx.Response(302, headers={"Location": "/loop2" if path == "/loop" else "/loop"})
    if path == "/timeout":
        raise httpx.ReadTimeout("read timed out", request=req)
    if path == "/refused":
        raise httpx.ConnectError("connection refused", request=req)
    return httpx.Response(404)


@pytest.mark.parametrize(("path", "kind"), [
    ("/500", "http"), ("/html", "not_feed"), ("/invalid", "parse"), ("/huge-declared", "too_large"),
    ("/huge-streamed", "too_large"), ("/loop", "redirect"), ("/timeout", "timeout"), ("/refused", "connect"),
])
def test_a_failing_feed_is_an_error_for_that_feed_only(path: str, kind: str) -> None:
    feeds = [feed("good", "https://good.example/good"), feed("bad", f"https://bad.example{path}")]
    h = Harness(_errors_handler, feeds)
    results = {r.feed: r for r in h.once()}
    assert results["good"].outcome == "ok" and results["good"].new == 1
    assert results["bad"].outcome == "error"
    assert isinstance(results["bad"].error, FeedError) and results["bad"].error.kind == kind
    assert results["bad"].error.feed_url == f"https://bad.example{path}"
    assert h.value("feed_errors_total", source="bad", kind=kind) == 1
    assert h.value("feed_polls_total", source="bad", kind="error") == 1
    assert [a.source for a in h.published] == ["good"]


def test_streamed_body_is_cut_at_the_cap() -> None:
    sent = {"bytes": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        async def chunks() -> Any:
            for _ in range(800):
                sent["bytes"] += 65536
                yield b"a" * 65536
        return httpx.Response(200, content=chunks())

    h = Harness(handler, [feed("big", "https://big.example/rss")])
    (res,) = h.once()
    assert res.error is not None and res.error.kind == "too_large"
    assert sent["bytes"] <= FAST.max_bytes + 2 * 65536  # stopped reading, not 50 MB


def test_bozo_feed_with_recoverable_entries_is_used_as_a_warning() -> None:
    broken = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
              b"<item><title>A</title><link>https://a.example/1</link></item><item><title>B</ti")
    h = Harness(lambda r: httpx.Response(200, content=broken), [feed("a", "https://a.example/rss")])
    (res,) = h.once()
    assert res.outcome == "bozo" and res.warning and res.new >= 1
    assert h.value("feed_polls_total", source="a", kind="bozo") == 1
    assert h.value("feed_errors_total", source="a", kind="parse") == 0


def test_retry_after_on_429_and_503_is_honoured() -> None:
    when = email.utils.formatdate(time.time() + 7200, usegmt=True)

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.host == "a.example":
            return httpx.Response(429, headers={"Retry-After": "5000"})
        return httpx.Response(503, headers={"Retry-After": when})

    feeds = [feed("a", "https://a.example/rss", interval=60), feed("b", "https://b.example/rss", interval=60)]
    h = Harness(handler, feeds)
    res = {r.feed: r for r in h.once()}
    assert res["a"].error is not None and res["a"].error.status == 429 and res["a"].delay >= 5000
    assert res["b"].error is not None and 7100 <= res["b"].delay <= 7300


def test_exponential_backoff_and_reset_on_success() -> None:
    state = {"fail": True}

    def handler(req: httpx.Request) -> httpx.Response:
        if state["fail"]:
            return httpx.Response(500)
        return httpx.Response(200, content=rss([("خبر", "https://a.example/1")]))

    f = feed("a", "https://a.example/rss", interval=100)
    h = Harness(handler, [f])

    async def go() -> list[float]:
        delays = [(await h.poller.poll_feed(f)).delay for _ in range(4)]
        state["fail"] = False
        delays.append((await h.poller.poll_feed(f)).delay)
        return delays

    delays = asyncio.run(go())
    assert delays == [200.0, 400.0, 800.0, 1600.0, 100.0]


def test_backoff_is_capped() -> None:
    f = feed("a", "https://a.example/rss", interval=3600)
    h = Harness(lambda r: httpx.Response(500), [f])

    async def go() -> float:
        d = 0.0
        for _ in range(12):
            d = (await h.poller.poll_feed(f)).delay
        return d

    assert asyncio.run(go()) == FAST.max_backoff


def test_ttl_hint_lengthens_the_interval() -> None:
    h = Harness(lambda r: httpx.Response(200, content=rss([("خبر", "https://a.example/1")], ttl=15)),
                [feed("a", "https://a.example/rss", interval=60)])
    (res,) = h.once()
    assert res.delay == 900.0
    assert ttl_hint({"sy_updateperiod": "hourly", "sy_updatefrequency": "4"}) == 900.0
    assert ttl_hint({"ttl": "abc"}) is None


def test_jitter_stays_within_bounds() -> None:
    f = feed("a", "https://a.example/rss", interval=1000)
    h = Harness(lambda r: httpx.Response(304), [f], limits=Limits(jitter=0.1))
    from producers.feeds import FeedRuntime

    delays = {h.poller.next_delay(f, FeedRuntime()) for _ in range(200)}
    assert min(delays) >= 900 and max(delays) <= 1100 and len(delays) > 100


def test_per_host_concurrency_limit() -> None:
    inflight: dict[str, int] = {}
    peak: dict[str, int] = {}

    async def handler(req: httpx.Request) -> httpx.Response:
        host = req.url.host
        inflight[host] = inflight.get(host, 0) + 1
        peak[host] = max(peak.get(host, 0), inflight[host])
        await asyncio.sleep(0.02)
        inflight[host] -= 1
        return httpx.Response(304)

    feeds = [feed(f"s{i}", f"https://same.example/rss/{i}") for i in range(8)]
    feeds += [feed(f"o{i}", f"https://other{i}.example/rss") for i in range(4)]
    h = Harness(handler, feeds, limits=Limits(per_host=2, jitter=0.0))
    results = h.once()
    assert all(r.outcome == "not_modified" for r in results)
    assert peak["same.example"] == 2


def test_publish_failure_keeps_the_item_for_the_next_poll() -> None:
    doc = rss([("أ", "https://a.example/1"), ("ب", "https://a.example/2")])
    published: list[Article] = []
    state = {"fail": True}

    def publish(a: Article) -> None:
        if state["fail"] and a.url == "https://a.example/2":
            raise PublishError("buffer full", topic="t", key=a.id)
        published.append(a)

    h = Harness(lambda r: httpx.Response(200, content=doc), [feed("a", "https://a.example/rss")], publish=publish)

    async def go() -> tuple[PollResult, PollResult]:
        first = await h.poller.poll_once()
        state["fail"] = False
        second = await h.poller.poll_once()
        return first[0], second[0]

    first, second = asyncio.run(go())
    assert first.outcome == "error" and first.error is not None and first.error.kind == "publish"
    assert second.outcome == "ok" and second.new == 1
    assert [a.url for a in published] == ["https://a.example/1", "https://a.example/2"]


def test_fulltext_fills_the_body_without_blocking() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path == "/rss":
            return httpx.Response(200, content=rss([("خبر", f"https://{req.url.host}/story/1")]))
        return httpx.Response(200, text="<html><body><article><p>نص</p></article></body></html>",
                              headers={"Content-Type": "text/html; charset=utf-8"})

    h = Harness(handler, [feed("a", "https://a.example/rss", fulltext=True),
                          feed("b", "https://b.example/rss")], fulltext=True)
    h.once()
    bodies = {a.source: a.body for a in h.published}
    assert bodies["a"] == "نص كامل https://a.example/story/1"
    assert bodies["b"] == ""  # feed b is not configured for full text
    assert [r.url.path for r in h.requests].count("/story/1") == 1


def test_real_trafilatura_extracts_main_text() -> None:
    from producers.fulltext import extract_main_text

    para = "أعلنت مصر وقطر اليوم عن جولة جديدة من المفاوضات بشأن وقف إطلاق النار في غزة. " * 5
    html = f"<html><head><title>t</title></head><body><nav>القائمة</nav><article><h1>عنوان</h1><p>{para}</p>" \
           f"<p>{para}</p></article><footer>حقوق</footer></body></html>"
    text = extract_main_text(html, "https://a.example/1")
    assert text and "وقف إطلاق النار" in text and "حقوق" not in text


def test_run_loop_polls_repeatedly_and_stops_cleanly() -> None:
    calls = {"n": 0}

    def handler(req: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        return httpx.Response(200, content=rss([(f"خبر {calls['n']}", f"https://a.example/{calls['n']}")]))

    h = Harness(handler, [feed("a", "https://a.example/rss", interval=0.05)])

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(h.poller.run(stop, initial_spread=0.0))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if calls["n"] >= 3:
                break
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(go())
    assert calls["n"] >= 3 and len(h.published) == calls["n"]


def test_disabled_feeds_are_not_polled() -> None:
    h = Harness(lambda r: httpx.Response(304), [feed("a", "https://a.example/rss"),
                                                feed("b", "https://b.example/rss", enabled=False)])
    assert [r.feed for r in h.once()] == ["a"]


def test_parse_document_rejects_non_feeds() -> None:
    f = feed("a", "https://a.example/rss")
    with pytest.raises(FeedError) as e:
        parse_document(b'{"items": []}', {}, f, f.url)
    assert e.value.kind == "parse"
    empty = parse_document(b'<rss version="2.0"><channel><title>t</title></channel></rss>', {}, f, f.url)
    assert empty.entries == [] and empty.warning is None


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    d = parse_retry_after(email.utils.formatdate(1_000_060, usegmt=True), now=1_000_000)
    assert d is not None and 59 <= d <= 61


def test_run_poll_without_broker_says_how(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_poll(Settings(kafka_bootstrap=None), None, once=True) == 2
    err = capsys.readouterr().err
    assert "TRUCEWATCH_KAFKA_BOOTSTRAP" in err and "trucewatch up --poll" in err


def test_items_are_marked_seen_only_after_the_broker_acknowledged_them() -> None:
    doc = rss([("أ", "https://a.example/1"), ("ب", "https://a.example/2")])
    h = Harness(lambda r: httpx.Response(200, content=doc), [feed("a", "https://a.example/rss")])
    state = {"fail": True}
    unseen_during_flush: list[int] = []

    def flush() -> None:
        unseen_during_flush.append(len(h.seen.unseen([a.id for a in h.published])))
        if state["fail"]:
            raise PublishError("2 message(s) were not acknowledged", topic="t", key=None)

    h.poller.flush = flush
    first = h.once()[0]
    assert first.outcome == "error" and first.error is not None and first.error.kind == "publish"
    assert unseen_during_flush == [2]  # nothing marked before the acknowledgement
    assert len(h.seen.unseen([a.id for a in h.published])) == 2  # not acknowledged: still unseen
    state["fail"] = False
    h.poller.runtime["https://a.example/rss"].digest = None  # same body: parse it again
    second = h.once()[0]
    assert second.outcome == "ok" and second.new == 2  # published again
    assert h.seen.unseen([a.id for a in h.published]) == []
    third = h.once()[0]
    assert third.new == 0 and len(h.published) == 4


def test_run_poll_archives_upstream_of_the_broker_and_flushes_before_marking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import producers.feeds as feeds_mod
    from producers.publish import Publisher

    doc = rss([("أ", "https://a.example/1")])
    (tmp_path / "feeds.yaml").write_text('feeds:\n  - name: "a"\n    url: "https://a.example/rss"\n    source: "a"\n',
                                         encoding="utf-8")
    calls: list[Any] = []

    class FakePublisher:
        def publish(self, a: Article) -> None:
            calls.append(("publish", a.id))

        def flush(self) -> None:
            calls.append(("flush", None))

        def close(self) -> None:
            calls.append(("close", None))

    def from_settings(settings: Settings, bootstrap: str, archive: bool = False) -> FakePublisher:
        calls.append(("from_settings", archive))
        return FakePublisher()

    monkeypatch.setattr(Publisher, "from_settings", staticmethod(from_settings))
    monkeypatch.setattr("trucewatch.broker.ensure_topics", lambda *a, **k: None)
    monkeypatch.setattr(feeds_mod, "serve_metrics", lambda *a, **k: None)
    monkeypatch.setattr(feeds_mod, "build_metrics", lambda: build_metrics(CollectorRegistry()))
    monkeypatch.setattr(feeds_mod, "make_client", lambda limits: make_client(
        FAST, transport=httpx.MockTransport(lambda r: httpx.Response(200, content=doc))))
    settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path / "var")
    assert run_poll(settings, tmp_path / "feeds.yaml", once=True) == 0
    assert calls[0] == ("from_settings", True)
    kinds = [k for k, _ in calls]
    assert kinds[1:3] == ["publish", "flush"]  # the poll's own flush, before its items were marked seen
