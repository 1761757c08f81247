"""Benchmark: poll N feeds served by a local HTTP server (a mix of 200 and 304); print CPU and wall time per cycle.

    .venv/bin/python bench/poll.py [--feeds 1000] [--cycles 4] [--items 20] [--concurrency 16]

The server (aiohttp) runs in its own process on 127.0.0.1 so its CPU is not counted. Even-numbered feeds
answer If-None-Match with 304 after their first fetch; odd-numbered feeds always answer 200 without
validators, and their 20-item window gains one new item per request (so each warm cycle parses 500
documents, publishes 500 new articles and skips 9,500 seen ones). The poller is the production FeedPoller
with a real SQLite seen store; ``publish`` serialises each Article to bytes (no broker). All feeds share
one host, so the per-host limit is raised to the concurrency for this run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _titles() -> list[str]:
    with (REPO / "examples" / "seeds.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["title"] for line in f]


def _feed_xml(i: int, start: int, items: int, titles: list[str]) -> bytes:
    out = ['<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
           f"<title>موجز {i}</title><link>https://bench{i % 50}.example.com/</link><language>ar</language>"]
    for k in range(start + items - 1, start - 1, -1):
        t = titles[k % len(titles)]
        out.append(f"<item><title>{t} ({i}/{k})</title>"
                   f"<link>https://bench{i % 50}.example.com/news/{i}/{k}?utm_source=rss</link>"
                   f"<guid isPermaLink=\"false\">{i}-{k}</guid>"
                   f"<pubDate>Sun, 30 May 2021 {k % 24:02d}:00:00 +0300</pubDate>"
                   f"<description><![CDATA[<p dir=\"rtl\">{t} — تفاصيل الخبر رقم {k}</p>]]></description></item>")
    out.append("</channel></rss>")
    return "".join(out).encode("utf-8")


def serve(port_q: Any, items: int) -> None:
    """The benchmark HTTP server (child process)."""
    from aiohttp import web

    titles = _titles()
    hits: dict[int, int] = {}

    async def handle(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        n = hits.get(i, 0)
        hits[i] = n + 1
        if i % 2 == 0:
            etag = f'"f{i}"'
            if request.headers.get("If-None-Match") == etag:
                return web.Response(status=304, headers={"ETag": etag})
            return web.Response(body=_feed_xml(i, 0, items, titles), content_type="application/rss+xml",
                                headers={"ETag": etag})
        return web.Response(body=_feed_xml(i, n, items, titles), content_type="application/rss+xml")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{i}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_q.put(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


async def bench(port: int, n: int, cycles: int, concurrency: int, db: Path) -> list[dict[str, float]]:
    from prometheus_client import CollectorRegistry

    from producers.feedconfig import FeedConfig
    from producers.feeds import FeedPoller
    from producers.fetch import Limits, make_client
    from producers.seen import SqliteSeenStore
    from sinks.metrics import build_metrics

    limits = Limits(per_host=concurrency, max_concurrency=concurrency, total_timeout=60)
    feeds = [FeedConfig(name=f"f{i}", url=f"http://127.0.0.1:{port}/feed/{i}", source=f"s{i % 20}")
             for i in range(n)]
    sent = {"n": 0, "bytes": 0}

    def publish(article: Any) -> None:
        sent["n"] += 1
        sent["bytes"] += len(article.to_bytes())

    seen = SqliteSeenStore(db)
    rows = []
    async with make_client(limits) as client:
        poller = FeedPoller(feeds, client, publish, seen, build_metrics(CollectorRegistry()), limits)
        for c in range(cycles):
            before = sent["n"]
            w0, c0 = time.perf_counter(), time.process_time()
            results = await poller.poll_once()
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
            outcomes: dict[str, int] = {}
            for r in results:
                outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
            rows.append({"cycle": c + 1, "wall_s": wall, "cpu_s": cpu, "ok": outcomes.get("ok", 0),
                         "not_modified": outcomes.get("not_modified", 0), "error": outcomes.get("error", 0),
                         "new": sent["n"] - before})
    seen.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--feeds", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=4)
    ap.add_argument("--items", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()

    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    proc = ctx.Process(target=serve, args=(q, args.items), daemon=True)
    proc.start()
    try:
        port = q.get(timeout=30)
        with tempfile.TemporaryDirectory() as tmp:
            rows = asyncio.run(bench(port, args.feeds, args.cycles, args.concurrency, Path(tmp) / "seen.db"))
    finally:
        proc.terminate()
        proc.join(10)
    import h2  # noqa: F401 - only to report whether HTTP/2 would be negotiated on TLS

    print(f"feed polling: {args.feeds} feeds x {args.items} items, concurrency {args.concurrency}, "
          f"python {sys.version.split()[0]}")
    print(f"{'cycle':>5} {'wall s':>8} {'cpu s':>8} {'200':>6} {'304':>6} {'err':>5} {'new':>7} {'ms cpu/feed':>12}")
    for r in rows:
        print(f"{r['cycle']:>5} {r['wall_s']:>8.2f} {r['cpu_s']:>8.2f} {r['ok']:>6} {r['not_modified']:>6} "
              f"{r['error']:>5} {r['new']:>7} {1000 * r['cpu_s'] / args.feeds:>12.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the poller process: {peak:.0f} MiB")
    return 0 if all(r["error"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
