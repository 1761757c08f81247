"""Optional full text of an article page (trafilatura), fetched with the poller's limits."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import httpx

from producers.encoding import decode_feed
from producers.fetch import Limits, fetch
from trucewatch.errors import FeedError

log = logging.getLogger(__name__)

Extractor = Callable[[str, str], "str | None"]


def extract_main_text(html: str, url: str) -> str | None:
    """Main text of an HTML page via trafilatura (no comments, no tables); None when nothing is found."""
    import trafilatura

    text = trafilatura.extract(html, url=url, include_comments=False, include_tables=False, favor_precision=True)
    return text.strip() if text else None


class FullText:
    """Fetches and extracts article pages, bounded by a semaphore; extraction runs in a worker thread
    so a slow page never blocks the event loop (and therefore never blocks other feeds)."""

    def __init__(self, client: httpx.AsyncClient, limits: Limits, extractor: Extractor = extract_main_text) -> None:
        self.client = client
        self.limits = limits
        self.extractor = extractor
        self.sem = asyncio.Semaphore(limits.fulltext_concurrency)

    async def get(self, url: str, lang: str | None = "ar") -> str | None:
        """The main text of ``url``, or None (logged) on any fetch or extraction failure."""
        async with self.sem:
            try:
                res = await fetch(self.client, url, self.limits, what="article")
            except FeedError as e:
                log.warning("full text of %s: %s", url, e)
                return None
            if res.status != 200 or not res.body:
                return None
            ctype = res.headers.get("content-type", "")
            if ctype and "html" not in ctype and "xml" not in ctype:
                log.warning("full text of %s: not HTML (%s)", url, ctype)
                return None
            html, _enc = decode_feed(res.body, res.headers, lang=lang)
            try:
                return await asyncio.to_thread(self.extractor, html, res.url)
            except Exception as e:  # noqa: BLE001 - an extractor crash costs this one article only
                log.warning("full text of %s: extraction failed: %s", url, e)
                return None
