"""The async feed poller: fetch politely, parse bytes with feedparser, publish every new item once."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import signal
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import feedparser
import httpx

from producers.encoding import decode_feed, to_utf8_document
from producers.entries import entry_key, entry_to_article
from producers.feedconfig import FeedConfig, default_feeds_path, load_feeds
from producers.fetch import FetchResult, Limits, fetch, make_client
from producers.fulltext import FullText
from producers.seen import FeedState, SeenStore, open_seen_store
from sinks.metrics import Metrics, build_metrics, serve_metrics
from trucewatch.errors import FeedError, PublishError, TrucewatchError
from trucewatch.schema import Article, utcnow
from trucewatch.settings import Settings

log = logging.getLogger(__name__)

PublishFn = Callable[[Article], None]
_HTML_START = re.compile(r"^\s*(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>])",
                         re.IGNORECASE | re.DOTALL)
_FEED_ROOT = re.compile(r"<(?:rss|feed|rdf:RDF|RDF)[\s>]", re.IGNORECASE)
_SY_PERIOD = {"hourly": 3600.0, "daily": 86400.0, "weekly": 604800.0, "monthly": 2592000.0, "yearly": 31536000.0}
EXPIRE_EVERY = 3600.0


@dataclass
class ParsedFeed:
    """Entries and feed-level metadata of one document; ``warning`` set when feedparser had to recover."""

    entries: list[Any]
    meta: Mapping[str, Any]
    version: str
    warning: str | None = None
    ttl: float | None = None


@dataclass(frozen=True)
class PollResult:
    """What one poll of one feed did. ``outcome``: ok | bozo | not_modified | error."""

    feed: str
    source: str
    outcome: str
    entries: int = 0
    new: int = 0
    delay: float = 0.0
    warning: str | None = None
    error: FeedError | None = None


@dataclass
class FeedRuntime:
    """Mutable per-feed scheduling state (in memory; validators live in the SeenStore)."""

    failures: int = 0
    ttl: float | None = None
    last: PollResult | None = None
    polls: int = 0
    digest: bytes | None = None  # hash of the last body fully processed


def ttl_hint(meta: Mapping[str, Any]) -> float | None:
    """Seconds a feed asks readers to wait between polls: RSS ``<ttl>`` (minutes) or sy:updatePeriod/Frequency."""
    ttl = meta.get("ttl")
    if isinstance(ttl, str) and ttl.strip().isdigit() and int(ttl) > 0:
        return int(ttl) * 60.0
    period = str(meta.get("sy_updateperiod") or "").strip().lower()
    if period in _SY_PERIOD:
        freq = str(meta.get("sy_updatefrequency") or "1").strip()
        n = int(freq) if freq.isdigit() and int(freq) > 0 else 1
        return _SY_PERIOD[period] / n
    return None


def parse_document(body: bytes, headers: Mapping[str, str], feed: FeedConfig, url: str) -> ParsedFeed:
    """Decode and parse a feed body with feedparser (bytes + headers; charset normalised to UTF-8 first).

    Raises FeedError kind ``not_feed`` (an HTML page or anything without a feed root) or ``parse``
    (XML so broken that no entry survives). A recoverable bozo document is returned with a warning.
    """
    text, encoding = decode_feed(body, headers, override=feed.encoding, lang=feed.lang)
    head = text[:4096]
    if _HTML_START.match(head) and not _FEED_ROOT.search(head):
        raise FeedError(f"feed {url}: an HTML page, not a feed", feed_url=url, kind="not_feed")
    # The headers feedparser sees: the server's, with the charset we actually decoded with (now UTF-8).
    # No content-location: resolving every element against it costs ~35% of the parse; entry links are
    # resolved against the final URL in entries.canonical_url instead. No sanitising either: titles and
    # summaries are reduced to plain text by entries.clean_text, so sanitised HTML would be thrown away.
    hdrs = {k.lower(): v for k, v in headers.items() if k.lower() in ("content-language", "last-modified", "etag")}
    hdrs["content-type"] = "application/xml; charset=utf-8"
    parsed = feedparser.parse(to_utf8_document(text), response_headers=hdrs, sanitize_html=False,
                              resolve_relative_uris=False)
    entries = list(parsed.get("entries") or [])
    version = parsed.get("version") or ""
    bozo = bool(parsed.get("bozo"))
    reason = str(parsed.get("bozo_exception") or "malformed document") if bozo else None
    if not entries:
        if bozo:
            raise FeedError(f"feed {url}: unusable XML ({reason})", feed_url=url, kind="parse")
        if not version and not _FEED_ROOT.search(head):
            raise FeedError(f"feed {url}: not RSS, Atom or RDF", feed_url=url, kind="not_feed")
    meta = parsed.get("feed") or {}
    if encoding not in ("utf-8", "utf-8-sig", "ascii") and log.isEnabledFor(logging.DEBUG):
        log.debug("feed %s decoded as %s", url, encoding)
    return ParsedFeed(entries=entries, meta=meta, version=version, warning=reason, ttl=ttl_hint(meta))


class FeedPoller:
    """Polls a set of feeds on one shared AsyncClient and publishes new items.

    Every I/O boundary is injected: ``client`` (an httpx.AsyncClient, e.g. on a MockTransport),
    ``publish`` (Publisher.publish in production, list.append in tests), ``seen`` (the state store)
    and ``metrics``. ``poll_feed`` never raises (one feed's failure is a PollResult with an error).
    With ``flush`` (Publisher.flush), new items are marked seen only after it returned, i.e. after the
    broker acknowledged them; if it raises, they stay unseen and are published again on the next poll.
    """

    def __init__(self, feeds: list[FeedConfig], client: httpx.AsyncClient, publish: PublishFn, seen: SeenStore,
                 metrics: Metrics, limits: Limits | None = None, *, fulltext: FullText | None = None,
                 rng: random.Random | None = None, flush: Callable[[], None] | None = None) -> None:
        self.feeds = [f for f in feeds if f.enabled]
        self.client = client
        self.publish = publish
        self.flush = flush  # blocks until the broker acknowledged what was published (Publisher.flush)
        self.seen = seen
        self.m = metrics
        self.limits = limits or Limits()
        self.fulltext = fulltext
        self.rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.runtime: dict[str, FeedRuntime] = {f.url: FeedRuntime() for f in self.feeds}
        self._host_sems: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self.limits.per_host))
        self._global: asyncio.Semaphore | None = None
        self._inflight: set[str] = set()

    # ------------------------------------------------------------ scheduling

    def next_delay(self, feed: FeedConfig, rt: FeedRuntime, error: FeedError | None = None) -> float:
        """Seconds until the next poll: the interval (or the feed's TTL hint when longer, capped), doubled per
        consecutive failure up to ``max_backoff``, +- jitter, never shorter than a Retry-After."""
        base = feed.interval
        if rt.ttl:
            base = max(base, min(rt.ttl, self.limits.max_ttl))
        delay = base
        if error is not None and rt.failures:
            delay = min(base * 2 ** min(rt.failures, 16), max(self.limits.max_backoff, base))
        j = self.limits.jitter
        delay *= 1.0 + self.rng.uniform(-j, j)
        retry_after = getattr(error, "retry_after", None) if error is not None else None
        if retry_after:
            delay = max(delay, min(float(retry_after), self.limits.max_retry_after))
        return delay

    # ------------------------------------------------------------ one feed

    async def poll_feed(self, feed: FeedConfig) -> PollResult:
        """Fetch, parse and publish one feed; every failure becomes a PollResult carrying a FeedError."""
        rt = self.runtime.setdefault(feed.url, FeedRuntime())
        rt.polls += 1
        try:
            result = await self._poll(feed, rt)
        except FeedError as e:
            result = self._failed(feed, rt, e)
        except asyncio.CancelledError:
            raise
        except TrucewatchError as e:  # the state store or the publish path
            kind = "publish" if isinstance(e, PublishError) else "state"
            result = self._failed(feed, rt, FeedError(f"feed {feed.url}: {e}", feed_url=feed.url, kind=kind))
        except Exception as e:  # noqa: BLE001 - one feed never stops the others
            log.exception("feed %s: unexpected failure", feed.url)
            result = self._failed(feed, rt, FeedError(f"feed {feed.url}: {type(e).__name__}: {e}",
                                                      feed_url=feed.url, kind="internal"))
        rt.last = result
        return result

    def _failed(self, feed: FeedConfig, rt: FeedRuntime, e: FeedError) -> PollResult:
        rt.failures += 1
        kind = str(getattr(e, "kind", None) or "error")
        self.m.feed_polls.labels(feed.source, "error").inc()
        self.m.feed_errors.labels(feed.source, kind).inc()
        delay = self.next_delay(feed, rt, e)
        log.warning("feed %s (%s) failed [%s], retry in %.0fs: %s", feed.name, feed.source, kind, delay, e)
        return PollResult(feed.name, feed.source, "error", delay=delay, error=e)

    async def _fetch(self, feed: FeedConfig, headers: dict[str, str]) -> FetchResult:
        if self._global is None:
            self._global = asyncio.Semaphore(self.limits.max_concurrency)
        async with self._global, self._host_sems[feed.host]:
            return await fetch(self.client, feed.url, self.limits, headers=headers)

    async def _poll(self, feed: FeedConfig, rt: FeedRuntime) -> PollResult:
        src = feed.source
        state = self.seen.get_state(feed.url)
        headers: dict[str, str] = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        t0 = time.monotonic()
        try:
            res = await self._fetch(feed, headers)
        finally:
            self.m.feed_fetch_seconds.labels(src).observe(time.monotonic() - t0)
        self.m.feed_bytes.labels(src).inc(res.nbytes or len(res.body))
        if res.status == 304:
            rt.failures = 0
            self.m.feed_polls.labels(src, "not_modified").inc()
            return PollResult(feed.name, src, "not_modified", delay=self.next_delay(feed, rt))
        digest = hashlib.blake2b(res.body, digest_size=16).digest()
        if digest == rt.digest and not rt.failures:
            # a byte-identical body (servers without validators): nothing can be new, skip the parse
            self.m.feed_polls.labels(src, "not_modified").inc()
            return PollResult(feed.name, src, "not_modified", delay=self.next_delay(feed, rt))
        fetched_at = utcnow()
        parsed = parse_document(res.body, res.headers, feed, res.url)
        if parsed.ttl:
            rt.ttl = parsed.ttl
        new = await self._emit(feed, parsed, fetched_at, res.url)
        self.seen.put_state(feed.url, FeedState(res.headers.get("etag"), res.headers.get("last-modified")))
        rt.failures = 0
        rt.digest = digest
        outcome = "bozo" if parsed.warning else "ok"
        if parsed.warning:
            log.info("feed %s: recovered %d entries from a malformed document: %s", feed.name,
                     len(parsed.entries), parsed.warning)
        self.m.feed_polls.labels(src, outcome).inc()
        return PollResult(feed.name, src, outcome, entries=len(parsed.entries), new=new,
                          delay=self.next_delay(feed, rt), warning=parsed.warning)

    async def _emit(self, feed: FeedConfig, parsed: ParsedFeed, fetched_at: Any, base_url: str) -> int:
        """Publish the entries never seen before; mark every listed entry as seen (refreshing its expiry)."""
        # ids first (cheap: a hash of the canonical URL), Articles only for the entries never seen
        keyed: dict[str, Any] = {}
        unkeyed: list[Any] = []
        for entry in parsed.entries[: feed.max_items]:
            try:
                key = entry_key(entry, feed, base_url)
            except Exception as e:  # noqa: BLE001 - one bad entry never stops its feed
                log.warning("feed %s: entry skipped: %s", feed.name, e)
                continue
            if key is None:
                unkeyed.append(entry)
            else:
                keyed.setdefault(key, entry)
        articles: dict[str, Article] = {}
        todo = set(self.seen.unseen(list(keyed)))
        for key, entry in list(keyed.items()) + [("", e) for e in unkeyed]:
            if key and key not in todo:
                continue
            try:
                art = entry_to_article(entry, feed, fetched_at=fetched_at, base_url=base_url, feed_meta=parsed.meta)
            except Exception as e:  # noqa: BLE001 - one bad entry never stops its feed
                log.warning("feed %s: entry skipped: %s", feed.name, e)
                continue
            if art is not None and art.id not in articles:
                articles[art.id] = art
        ids = list(dict.fromkeys([*keyed, *articles]))
        # ids being published by another feed's task right now (same story in two feeds) are not fresh here
        fresh = [i for i in self.seen.unseen(list(articles)) if i not in self._inflight]
        self._inflight.update(fresh)
        try:
            return await self._publish_fresh(feed, articles, ids, fresh)
        finally:
            self._inflight.difference_update(fresh)

    async def _publish_fresh(self, feed: FeedConfig, articles: dict[str, Article], ids: list[str],
                             fresh: list[str]) -> int:
        if fresh and self.fulltext is not None and feed.fulltext:
            await self._add_fulltext(feed, [articles[i] for i in fresh], articles)
        published: list[str] = []
        failed: set[str] = set()
        error: TrucewatchError | None = None
        for aid in fresh:
            if error is not None:
                failed.add(aid)
                continue
            try:
                self.publish(articles[aid])
            except TrucewatchError as e:
                error = e
                failed.add(aid)
                continue
            published.append(aid)
        if published and self.flush is not None:
            try:
                await asyncio.to_thread(self.flush)
            except TrucewatchError as e:  # not acknowledged: keep them unseen, publish again next poll
                log.warning("feed %s: %d items not acknowledged by the broker: %s", feed.name, len(published), e)
                failed.update(published)
                published = []
                error = error or e
        if published:
            self.m.feed_items.labels(feed.source).inc(len(published))
            self.m.articles_ingested.labels(feed.source).inc(len(published))
        self.seen.mark([i for i in ids if i not in failed], feed.url)
        if error is not None:
            raise error
        return len(published)

    async def _add_fulltext(self, feed: FeedConfig, fresh: list[Article], articles: dict[str, Article]) -> None:
        assert self.fulltext is not None
        todo = [a for a in fresh if a.url][: self.limits.fulltext_per_poll]
        texts = await asyncio.gather(*(self.fulltext.get(a.url or "", feed.lang) for a in todo))
        for art, text in zip(todo, texts, strict=True):
            if text and len(text) > len(art.body):
                articles[art.id] = art.model_copy(update={"body": text})

    # ------------------------------------------------------------ many feeds

    async def poll_once(self) -> list[PollResult]:
        """Poll every enabled feed once, concurrently (bounded by the global and per-host limits)."""
        return list(await asyncio.gather(*(self.poll_feed(f) for f in self.feeds)))

    async def run(self, stop: asyncio.Event, *, initial_spread: float = 30.0) -> None:
        """Poll each feed on its own schedule until ``stop`` is set; first polls spread over ``initial_spread`` s."""
        tasks = [asyncio.create_task(self._feed_loop(f, stop, initial_spread), name=f"feed:{f.name}")
                 for f in self.feeds]
        tasks.append(asyncio.create_task(self._expire_loop(stop), name="feed:expire"))
        try:
            await stop.wait()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _feed_loop(self, feed: FeedConfig, stop: asyncio.Event, spread: float) -> None:
        delay = self.rng.uniform(0, min(spread, feed.interval))
        while not stop.is_set():
            if await _wait(stop, delay):
                return
            res = await self.poll_feed(feed)
            delay = res.delay

    async def _expire_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                n = self.seen.expire()
                if n:
                    log.info("feed state: forgot %d expired items", n)
            except TrucewatchError as e:
                log.warning("feed state expiry failed: %s", e)
            if await _wait(stop, EXPIRE_EVERY):
                return


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop``; True when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
        return True
    except TimeoutError:
        return False


# ---------------------------------------------------------------- the `trucewatch poll` command


def run_poll(settings: Settings, feeds_file: Path | None, once: bool) -> int:
    """Run the poller against ``settings.kafka_bootstrap`` until Ctrl-C (or one round with ``once``).

    Returns the exit status: 0 ok, 1 every feed failed in a ``--once`` round, 2 configuration problem.
    """
    from producers.publish import Publisher
    from trucewatch.broker import ensure_topics
    from trucewatch.topics import Topics

    if not settings.kafka_bootstrap:
        print("trucewatch poll: no broker configured (set TRUCEWATCH_KAFKA_BOOTSTRAP=host:port). "
              "`trucewatch up --poll` runs the embedded broker together with the poller.", file=sys.stderr)
        return 2
    path = feeds_file or default_feeds_path(settings)
    feeds = [f for f in load_feeds(path) if f.enabled]
    if not feeds:
        print(f"trucewatch poll: no enabled feed in {path}", file=sys.stderr)
        return 2
    metrics = build_metrics()
    serve_metrics(metrics, settings.metrics_host, settings.metrics_port)
    topic = Topics.from_settings(settings).raw
    ensure_topics(settings.kafka_bootstrap, [topic], settings.partitions)
    seen = open_seen_store(settings)
    # archived upstream of the broker (a lost broker's articles are replayable); seen only once acknowledged
    publisher = Publisher.from_settings(settings, settings.kafka_bootstrap, archive=True)
    log.info("polling %d feeds from %s into %s", len(feeds), path, topic)
    try:
        results = asyncio.run(_poll_main(feeds, publisher, seen, metrics, once))
    except KeyboardInterrupt:
        results = []
    finally:
        try:
            publisher.close()
        finally:
            seen.close()
    if once:
        ok = [r for r in results if r.outcome != "error"]
        new = sum(r.new for r in results)
        print(f"polled {len(results)} feeds: {len(ok)} ok, {len(results) - len(ok)} failed, {new} new articles",
              file=sys.stderr)
        return 0 if ok or not results else 1
    return 0


async def _poll_main(feeds: list[FeedConfig], publisher: Any, seen: SeenStore, metrics: Metrics,
                     once: bool) -> list[PollResult]:
    limits = Limits()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # pragma: no cover - non-main thread / Windows
            pass
    async with make_client(limits) as client:
        poller = FeedPoller(feeds, client, publisher.publish, seen, metrics, limits,
                            fulltext=FullText(client, limits) if any(f.fulltext for f in feeds) else None,
                            flush=publisher.flush)
        if once:
            results = await poller.poll_once()
            await asyncio.to_thread(_flush, publisher)
            return results
        flusher = asyncio.create_task(_flush_loop(publisher, stop))
        try:
            await poller.run(stop)
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        log.info("poller stopped")
        return [rt.last for rt in poller.runtime.values() if rt.last is not None]


def _flush(publisher: Any) -> None:
    try:
        publisher.flush()
    except PublishError as e:
        log.error("publish: %s", e)


async def _flush_loop(publisher: Any, stop: asyncio.Event) -> None:
    while not await _wait(stop, 5.0):
        await asyncio.to_thread(_flush, publisher)
