"""Scenario 4: the feed poller (`trucewatch poll`) SIGKILLed and restarted while its feeds keep changing."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.faults.conftest import Tally, sigkill, wait_progress
from trucewatch.broker import free_port
from trucewatch.supervisor import Child, child_env

FEEDS = 20
EVERY = 0.25  # a new item somewhere every 0.25 s: each feed changes every 5 s
RUN = 50.0  # seconds of changing feeds
KILLS = (10.0, 24.0, 38.0)  # poller SIGKILLed at these times, restarted 2 s later
WINDOW = 40  # items a feed lists (older ones scroll off)


class ChangingFeeds:
    """FEEDS RSS documents on a local server; a thread keeps adding numbered items."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.items: list[list[tuple[int, str]]] = [[] for _ in range(FEEDS)]
        self.n = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.port = free_port()
        self.utc, self.dt = UTC, datetime
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                k = int(self.path.rsplit("/", 1)[-1].split(".")[0])
                body = feeds.document(k).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self) -> None:
        with self.lock:
            i = self.n
            self.n += 1
            when = self.dt(1990 + i // 12, i % 12 + 1, 3, 9, 0, tzinfo=self.utc)
            self.items[i % FEEDS].append((i, format_datetime(when)))

    def run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stop.is_set():
            self.add()
            time.sleep(EVERY)

    def document(self, k: int) -> str:
        with self.lock:
            items = self.items[k][-WINDOW:]
        body = "".join(
            f"<item><title>زيارة رسمية ({i})</title><link>https://example.org/feed/{i}?utm_source=rss</link>"
            f"<description>وصل رئيس المخابرات المصرية اللواء حسن رشاد إلى تل أبيب اليوم في زيارة رسمية. رقم {i}."
            f"</description><pubDate>{d}</pubDate><guid>item-{i}</guid></item>" for i, d in reversed(items))
        return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>feed {k}</title>'
                f"<link>https://example.org/</link><description>test</description>{body}</channel></rss>")

    def close(self) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def test_poller_killed_and_restarted_while_feeds_change(pipeline, tail_factory, tmp_path: Path) -> None:
    feeds = ChangingFeeds()
    try:
        conf = tmp_path / "feeds.yaml"
        conf.write_text("feeds:\n" + "".join(
            f"  - {{name: 'feed {k}', url: 'http://127.0.0.1:{feeds.port}/feed/{k}.xml', source: 'src{k}', "
            f"interval: 30, lang: ar}}\n" for k in range(FEEDS)), encoding="utf-8")
        p = pipeline()
        poller = Child("poller", [*p.child("worker").argv[:-1], "poll", "--feeds", str(conf)],
                       child_env(p.settings, p.bootstrap, "poller"), tmp_path / "logs" / "poller.log")
        p.stack.children.append(poller)
        tail = tail_factory(p.bootstrap, [p.topics.raw])
        for _ in range(3):
            feeds.add()
        poller.start()
        changer = threading.Thread(target=feeds.run, args=(RUN,), daemon=True)
        t0 = time.monotonic()
        changer.start()
        kills = 0
        for at in KILLS:
            while time.monotonic() - t0 < at:
                tail.poll()
            sigkill(poller)
            kills += 1
            time.sleep(2.0)
            poller.start()
        changer.join(RUN + 10)
        total = feeds.n
        expected = {f"https://example.org/feed/{i}" for i in range(total)}

        def urls() -> dict[str, int]:
            out: dict[str, int] = {}
            for r in tail.records:
                u = json.loads(r.value).get("url") or ""
                out[u] = out.get(u, 0) + 1
            return out

        complete = wait_progress(lambda: expected <= set(urls()), lambda: len(tail.records), tick=tail.poll)
        tail.settle(idle=2.0)
        t = Tally.of("s4 feed items on articles.raw (poller SIGKILLed x3)", sorted(expected), urls(),  # type: ignore[arg-type]
                     kills=kills, feeds=FEEDS).show()
        assert complete and not t.never, p.logs() + "\n" + poller.log_path.read_text()[-3000:]
        assert t.dup == 0, "a restarted poller re-emitted items it had already published"

        def stored() -> set[str]:
            return {link.url for a in p.alerts() for link in a.links if link.url}

        wait_progress(lambda: expected <= stored(), lambda: len(stored()), interval=0.5)
        at_store = Tally.of("s4 feed items in stored alerts", sorted(expected), Counter(stored())).show()
        assert not at_store.never
    finally:
        feeds.close()
