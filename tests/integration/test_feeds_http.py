"""The feed poller against a real HTTP server on 127.0.0.1 serving the fixture feeds (and the real broker)."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from producers.feedconfig import FeedConfig
from producers.feeds import FeedPoller, PollResult, run_poll
from producers.fetch import Limits, make_client
from producers.seen import SqliteSeenStore
from sinks.metrics import build_metrics
from trucewatch.schema import Article, decode

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
CASES = yaml.safe_load((FIXTURES / "cases.yaml").read_text(encoding="utf-8"))
CTYPES = {c["file"]: c["content_type"] for c in CASES}  # first case per file
FEED_FILES = sorted(CTYPES)
LIMITS = Limits(connect_timeout=2, read_timeout=0.5, total_timeout=5, max_bytes=1024 * 1024, max_redirects=4,
                per_host=4, jitter=0.0)
HUGE = 50 * 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    """Routes: /f/<file> (ETag + Last-Modified, 304 on match), /plain/<file> (no validators), /mutable
    (tracking parameters change on every request), and the failures /slow /500 /html /huge /huge-declared
    /loop /invalid."""

    server: FeedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        srv = self.server
        path = self.path
        with srv.lock:
            srv.hits[path] = srv.hits.get(path, 0) + 1
            n = srv.hits[path]
        if path.startswith(("/f/", "/plain/")):
            name = path.split("/", 2)[2]
            body = (FIXTURES / name).read_bytes()
            headers = {"Content-Type": CTYPES[name]}
            if path.startswith("/f/"):
                etag = '"' + hashlib.sha1(body).hexdigest()[:12] + '"'  # noqa: S324 - an ETag
                headers |= {"ETag": etag, "Last-Modified": "Wed, 10 Jul 2024 12:00:00 GMT"}
                if self.headers.get("If-None-Match") == etag:
                    with srv.lock:
                        srv.not_modified += 1
                    return self._send(304, headers={"ETag": etag})
            return self._send(200, body, headers)
        if path == "/mutable":
            link = f"https://m.example.com/story/1?utm_source=rss&amp;utm_content=v{n}&amp;fbclid=F{n}#c{n}"
            body = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>ت</title>'
                    f"<item><title>خبر متغير</title><link>{link}</link><guid>g-{n}</guid></item>"
                    "</channel></rss>").encode()
            return self._send(200, body, {"Content-Type": "application/rss+xml"})
        if path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b'<?xml version="1.0"?><rss version="2.0">')
            self.wfile.flush()
            srv.stop.wait(3.0)
            return None
        if path == "/500":
            return self._send(500, b"internal error", {"Content-Type": "text/plain"})
        if path == "/html":
            return self._send(200, b"<!DOCTYPE html><html><head><title>x</title></head><body>login</body></html>",
                              {"Content-Type": "text/html; charset=utf-8"})
        if path == "/invalid":
            return self._send(200, b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><<&&>>\x01',
                              {"Content-Type": "application/rss+xml"})
        if path.startswith("/loop"):
            return self._send(302, headers={"Location": "/loop-b" if path == "/loop" else "/loop"})
        if path in ("/huge", "/huge-declared"):
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            if path == "/huge-declared":
                self.send_header("Content-Length", str(HUGE))
            else:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            chunk = b"<item>" + b"x" * (64 * 1024 - 6)
            try:
                while srv.huge_sent < HUGE and not srv.stop.is_set():
                    self.wfile.write(chunk)
                    with srv.lock:
                        srv.huge_sent += len(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return None
        return self._send(404, b"not found")


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.hits: dict[str, int] = {}
        self.not_modified = 0
        self.huge_sent = 0
        self.stop = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture()
def server() -> Iterator[FeedServer]:
    srv = FeedServer()
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        t.join(5)


def _feeds(srv: FeedServer, route: str = "f") -> list[FeedConfig]:
    out = []
    for name in FEED_FILES:
        case = next(c for c in CASES if c["file"] == name)
        out.append(FeedConfig(name=name, url=f"{srv.base}/{route}/{name}", source=Path(name).stem,
                              **case.get("feed", {})))
    return out


class Run:
    """A poller on a real AsyncClient with a list publish and a fresh registry."""

    def __init__(self, feeds: list[FeedConfig], seen: SqliteSeenStore) -> None:
        self.feeds = feeds
        self.seen = seen
        self.published: list[Article] = []
        self.metrics = build_metrics(CollectorRegistry())

    def cycles(self, n: int = 1) -> list[list[PollResult]]:
        async def go() -> list[list[PollResult]]:
            async with make_client(LIMITS) as client:
                poller = FeedPoller(self.feeds, client, self.published.append, self.seen, self.metrics, LIMITS)
                return [await poller.poll_once() for _ in range(n)]

        return asyncio.run(go())

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(f"trucewatch_{name}", labels) or 0.0


def test_fixture_feeds_then_304s_publish_nothing(server: FeedServer, tmp_path: Path) -> None:
    run = Run(_feeds(server), SqliteSeenStore(tmp_path / "seen.db"))
    first, second = run.cycles(2)
    assert [r.outcome for r in first] == ["ok"] * len(FEED_FILES), [r.error for r in first]
    n = len(run.published)
    # 17 entries; the three windows-1256 files list the same two stories: published once
    assert n == sum(r.new for r in first) == 13 == len({a.id for a in run.published})
    assert sum(r.entries for r in first) == 17
    assert [r.outcome for r in second] == ["not_modified"] * len(FEED_FILES)
    assert len(run.published) == n and server.not_modified == len(FEED_FILES)
    assert run.value("feed_polls_total", source="rdf-rss10", kind="not_modified") == 1
    assert run.value("feed_bytes_total", source="rdf-rss10") > 1000


def test_restart_of_the_poller_emits_no_duplicates(server: FeedServer, tmp_path: Path) -> None:
    db = tmp_path / "seen.db"
    feeds = _feeds(server, "plain")  # no validators: every poll is a full 200
    first = Run(feeds, SqliteSeenStore(db))
    first.cycles(1)
    first.seen.close()
    second = Run(feeds, SqliteSeenStore(db))  # a new poller process on the same state
    (results,) = second.cycles(1)
    assert len(first.published) == 13
    assert second.published == [] and all(r.outcome == "ok" for r in results)
    assert server.hits[f"/plain/{FEED_FILES[0]}"] == 2


def test_an_item_changing_only_tracking_parameters_is_not_new(server: FeedServer, tmp_path: Path) -> None:
    run = Run([FeedConfig(name="m", url=f"{server.base}/mutable", source="m")], SqliteSeenStore(tmp_path / "s.db"))
    run.cycles(3)
    assert server.hits["/mutable"] == 3
    assert [a.url for a in run.published] == ["https://m.example.com/story/1"]


def test_failing_feeds_are_per_feed_errors_while_the_others_flow(server: FeedServer, tmp_path: Path) -> None:
    bad = {"/slow": "timeout", "/500": "http", "/html": "not_feed", "/huge": "too_large",
           "/huge-declared": "too_large", "/loop": "redirect", "/invalid": "parse"}
    feeds = _feeds(server) + [FeedConfig(name=p, url=server.base + p, source="bad" + p.replace("/", "-"))
                              for p in bad]
    run = Run(feeds, SqliteSeenStore(tmp_path / "s.db"))
    t0 = time.monotonic()
    (results,) = run.cycles(1)
    elapsed = time.monotonic() - t0
    by = {r.feed: r for r in results}
    for path, kind in bad.items():
        r = by[path]
        assert r.outcome == "error" and r.error is not None and r.error.kind == kind, (path, r.error)
        assert run.value("feed_errors_total", source="bad" + path.replace("/", "-"), kind=kind) == 1
        assert run.value("feed_polls_total", source="bad" + path.replace("/", "-"), kind="error") == 1
    good = [by[f] for f in FEED_FILES]
    assert all(r.outcome == "ok" and r.entries > 0 for r in good)
    assert sum(r.new for r in good) == 13
    assert len(run.published) == sum(r.new for r in good)
    assert server.hits["/loop"] + server.hits["/loop-b"] == LIMITS.max_redirects + 1
    assert server.huge_sent < HUGE // 2, server.huge_sent  # the cap cut the stream
    assert elapsed < 30  # sanity only: nothing waited for the 50 MB or the slow server to finish


def test_end_to_end_into_the_embedded_broker(server: FeedServer, tmp_path: Path, broker: str, prefix: str) -> None:
    from tests.integration.conftest import read_topic
    from trucewatch.broker import ensure_topics
    from trucewatch.settings import Settings
    from trucewatch.topics import Topics

    settings = Settings(kafka_bootstrap=broker, topic_prefix=prefix, data_dir=tmp_path, metrics_port=0)
    topics = Topics.from_settings(settings)
    ensure_topics(broker, topics.all(), settings.partitions)
    feeds_yaml = tmp_path / "feeds.yaml"
    feeds_yaml.write_text(yaml.safe_dump({"feeds": [
        {"name": f.name, "url": f.url, "source": f.source, "timezone": f.timezone,
         "tz_correction_hours": f.tz_correction_hours, **({"encoding": f.encoding} if f.encoding else {})}
        for f in _feeds(server)
    ] + [{"name": "broken", "url": server.base + "/500", "source": "broken"}]}), encoding="utf-8")

    assert run_poll(settings, feeds_yaml, once=True) == 0
    expected = Run(_feeds(server), SqliteSeenStore(":memory:"))
    expected.cycles(1)
    want = {a.id: a for a in expected.published}

    records = read_topic(broker, topics.raw, expect=len(want), timeout=60)
    got = [decode(Article, r.value) for r in records]
    assert sorted(a.id for a in got) == sorted(want)
    for a in got:
        assert r_key(records, a.id) == a.id.encode()
        assert a.title == want[a.id].title and a.summary == want[a.id].summary
        assert a.source == want[a.id].source
        if want[a.id].published_at != want[a.id].fetched_at:  # not a clamped future date (= fetch time)
            assert a.published_at == want[a.id].published_at
        else:
            assert a.published_at == a.fetched_at

    # a second run (new process, same state dir) publishes nothing new: 304s and seen items
    assert run_poll(settings, feeds_yaml, once=True) == 0
    again = read_topic(broker, topics.raw, timeout=30, idle=2.0)
    assert len(again) == len(want)


def r_key(records: list[Any], aid: str) -> bytes | None:
    return next((r.key for r in records if decode(Article, r.value).id == aid), None)
