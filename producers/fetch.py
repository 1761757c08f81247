"""Polite, bounded HTTP GETs for the feed poller: timeouts, byte cap while streaming, redirect cap."""

from __future__ import annotations

import asyncio
import email.utils
import importlib.util
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from trucewatch.errors import FeedError

USER_AGENT = "trucewatch/0.1 (+https://github.com/trucewatch/trucewatch; feed poller)"
ACCEPT = ("application/rss+xml, application/atom+xml, application/rdf+xml, application/xml;q=0.9, text/xml;q=0.9,"
          " */*;q=0.5")


@dataclass(frozen=True)
class Limits:
    """Every limit of one poller: timeouts (s), byte cap, redirect cap, concurrency, backoff."""

    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    total_timeout: float = 60.0  # a slow drip of bytes cannot hold a slot longer than this
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    per_host: int = 2
    max_concurrency: int = 16  # more costs CPU: httpcore scans every pooled connection per request
    jitter: float = 0.1  # +- fraction of the interval
    max_backoff: float = 6 * 3600.0
    max_retry_after: float = 24 * 3600.0
    max_ttl: float = 6 * 3600.0  # a feed's <ttl> hint is honoured up to this
    fulltext_per_poll: int = 10
    fulltext_concurrency: int = 4


@dataclass
class FetchResult:
    """One HTTP exchange: status, headers, body (empty for 304), the final URL and how long it took."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    elapsed: float
    nbytes: int = 0
    extra: dict[str, str] = field(default_factory=dict)


def make_client(limits: Limits, *, transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """The one shared AsyncClient: HTTP/2 when the ``h2`` package is importable, explicit timeouts,
    redirects followed up to ``limits.max_redirects``, a pool sized for ``max_concurrency``."""
    http2 = transport is None and importlib.util.find_spec("h2") is not None
    return httpx.AsyncClient(
        http2=http2,
        transport=transport,
        timeout=httpx.Timeout(connect=limits.connect_timeout, read=limits.read_timeout,
                              write=limits.connect_timeout, pool=limits.total_timeout),
        follow_redirects=True,
        max_redirects=limits.max_redirects,
        limits=httpx.Limits(max_connections=limits.max_concurrency,
                            max_keepalive_connections=limits.max_concurrency),
        headers={"User-Agent": USER_AGENT, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if absent/unreadable."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        dt = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError, IndexError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    base = datetime.fromtimestamp(time.time() if now is None else now, UTC)
    return max(0.0, (dt - base).total_seconds())


async def fetch(client: httpx.AsyncClient, url: str, limits: Limits, *, headers: dict[str, str] | None = None,
                what: str = "feed") -> FetchResult:
    """GET ``url`` and read at most ``limits.max_bytes`` of (decompressed) body.

    Returns the result for 2xx and 304. Raises FeedError(feed_url, kind, status, retry_after) with
    kind one of: timeout, connect, redirect, too_large, http (4xx/5xx; 429/503 carry retry_after), protocol.
    """
    t0 = time.monotonic()
    try:
        async with asyncio.timeout(limits.total_timeout):
            async with client.stream("GET", url, headers=headers) as resp:
                status = resp.status_code
                hdrs = {k.lower(): v for k, v in resp.headers.items()}
                if status == 304:
                    return FetchResult(304, hdrs, b"", str(resp.url), time.monotonic() - t0)
                if status >= 400 or status < 200 or status >= 300:
                    retry = parse_retry_after(hdrs.get("retry-after")) if status in (429, 503) else None
                    raise FeedError(f"{what} {url}: HTTP {status}", feed_url=url, kind="http", status=status,
                                    retry_after=retry)
                declared = hdrs.get("content-length", "")
                if declared.isdigit() and int(declared) > limits.max_bytes and \
                        hdrs.get("content-encoding", "identity") == "identity":
                    raise FeedError(f"{what} {url}: Content-Length {declared} exceeds {limits.max_bytes} bytes",
                                    feed_url=url, kind="too_large", status=status, retry_after=None)
                chunks: list[bytes] = []
                n = 0
                async for chunk in resp.aiter_bytes():
                    n += len(chunk)
                    if n > limits.max_bytes:
                        raise FeedError(f"{what} {url}: body exceeds {limits.max_bytes} bytes", feed_url=url,
                                        kind="too_large", status=status, retry_after=None)
                    chunks.append(chunk)
                raw = resp.num_bytes_downloaded
                return FetchResult(status, hdrs, b"".join(chunks), str(resp.url), time.monotonic() - t0,
                                   nbytes=raw)
    except FeedError:
        raise
    except TimeoutError:
        raise FeedError(f"{what} {url}: no complete response within {limits.total_timeout:.0f}s", feed_url=url,
                        kind="timeout", status=None, retry_after=None) from None
    except httpx.TimeoutException as e:
        raise FeedError(f"{what} {url}: {type(e).__name__}", feed_url=url, kind="timeout", status=None,
                        retry_after=None) from None
    except httpx.TooManyRedirects:
        raise FeedError(f"{what} {url}: more than {limits.max_redirects} redirects", feed_url=url,
                        kind="redirect", status=None, retry_after=None) from None
    except httpx.ConnectError as e:
        raise FeedError(f"{what} {url}: cannot connect: {e}", feed_url=url, kind="connect", status=None,
                        retry_after=None) from None
    except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as e:
        raise FeedError(f"{what} {url}: {type(e).__name__}: {e}", feed_url=url, kind="protocol", status=None,
                        retry_after=None) from None
