"""Fault harness: numbered articles, a live tail of output topics, extra workers, the once/twice/never tally."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (  # noqa: F401 - fixtures re-exported
    Pipeline,
    pipeline,
    read_topic,
    read_visit_reports,
    wait_for,
)
from trucewatch.schema import Article
from trucewatch.supervisor import Child, child_env

BASE_DATE = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)


def numbered_articles(n: int, tag: str = "f", distinct_visits: bool = False) -> list[Article]:
    """``n`` small articles ``{tag}-00000``… reporting visits (one day apart; with ``distinct_visits``,
    one month apart and with a neutral text: exactly one visit, with its own visit key, per article)."""
    out = []
    for i in range(n):
        if distinct_visits:
            out.append(Article(
                id=f"{tag}-{i:05d}", source=f"outlet{i % 7}", url=f"https://example.org/{tag}/{i}",
                title=f"زيارة رسمية ({i})",
                body=f"وصل رئيس المخابرات المصرية اللواء حسن رشاد إلى تل أبيب اليوم في زيارة رسمية. رقم الخبر {i}.",
                published_at=datetime(1990 + i // 12, i % 12 + 1, 3, 9, 0, tzinfo=UTC),
            ))
            continue
        out.append(Article(
            id=f"{tag}-{i:05d}", source=f"outlet{i % 7}", url=f"https://example.org/{tag}/{i}",
            title=f"رئيس المخابرات المصرية يصل إلى تل أبيب ({i})",
            body=("وصل رئيس المخابرات المصرية اللواء حسن رشاد إلى تل أبيب اليوم في زيارة لبحث وقف إطلاق النار "
                  f"في غزة وتبادل الأسرى. رقم الخبر {i}."),
            published_at=BASE_DATE + timedelta(days=i),
        ))
    return out


@dataclass
class Tally:
    """What arrived once, twice (or more) and never, out of ``sent``."""

    name: str
    sent: int
    once: int
    dup: int
    never: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, sent_ids: Iterable[str], seen: Counter[str], **extra: Any) -> Tally:
        ids = list(sent_ids)
        return cls(name, len(ids), sum(1 for i in ids if seen[i] == 1), sum(1 for i in ids if seen[i] > 1),
                   sorted(i for i in ids if seen[i] == 0), extra)

    def line(self) -> str:
        more = "".join(f" {k}={v}" for k, v in self.extra.items())
        return (f"FAULTS {self.name}: sent={self.sent} once={self.once} twice+={self.dup} "
                f"never={len(self.never)}{more}")

    def show(self) -> Tally:
        print(self.line(), flush=True)
        report_path = Path(__file__).resolve().parents[2] / "var" / "faults-figures.txt"
        report_path.parent.mkdir(parents=True, exist_ok=True)
        with report_path.open("a", encoding="utf-8") as f:
            f.write(f"{datetime.now(UTC).isoformat(timespec='seconds')} {self.line()}\n")
        return self


class Tail:
    """Follows topics from the beginning (assign(), never end_offsets) and counts records per key."""

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        from kafka import KafkaConsumer, TopicPartition

        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                      auto_offset_reset="earliest", consumer_timeout_ms=200,
                                      max_partition_fetch_bytes=8 * 1024 * 1024, fetch_max_bytes=16 * 1024 * 1024)
        tps = []
        for t in topics:
            parts = wait_for(lambda t=t: self.consumer.partitions_for_topic(t), timeout=20, interval=0.2)
            tps += [TopicPartition(t, p) for p in sorted(parts)]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self.counts: dict[str, Counter[str]] = {t: Counter() for t in topics}
        self.records: list[Any] = []

    def poll(self, timeout_ms: int = 200) -> int:
        batch = self.consumer.poll(timeout_ms=timeout_ms)
        n = 0
        for tp, recs in batch.items():
            for r in recs:
                self.counts[tp.topic][(r.key or b"").decode("utf-8", "replace")] += 1
                self.records.append(r)
                n += 1
        return n

    def total(self, keys: Iterable[str] | None = None) -> Counter[str]:
        out: Counter[str] = Counter()
        for c in self.counts.values():
            out.update(c)
        return out

    def distinct(self, ids: set[str]) -> int:
        tot = self.total()
        return sum(1 for i in ids if tot[i])

    def until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if predicate():
                return True
        return False

    def until_progress(self, predicate: Callable[[], bool], progress: Callable[[], Any], idle: float,
                       cap: float = 900.0) -> bool:
        """Poll until ``predicate()``; give up only when ``progress()`` stayed the same for ``idle`` seconds
        (a loaded machine is slow, a stuck pipeline makes no progress) or after ``cap`` seconds in all."""
        start = last = time.monotonic()
        seen = progress()
        while time.monotonic() - last < idle and time.monotonic() - start < cap:
            self.poll()
            if predicate():
                return True
            now = progress()
            if now != seen:
                seen, last = now, time.monotonic()
        return predicate()

    def settle(self, idle: float = 2.0, timeout: float = 30.0) -> None:
        """Keep reading until nothing new arrived for ``idle`` seconds."""
        deadline = time.monotonic() + timeout
        last = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - last < idle:
            if self.poll():
                last = time.monotonic()

    def close(self) -> None:
        self.consumer.close()


class PacedPublisher(threading.Thread):
    """Publishes articles at ``rate`` per second in the background through the real Publisher."""

    def __init__(self, p: Pipeline, articles: list[Article], rate: float) -> None:
        super().__init__(daemon=True)
        self.p, self.articles, self.rate = p, articles, rate
        self.error: BaseException | None = None
        self.published = 0

    def run(self) -> None:
        from producers.publish import Publisher

        try:
            with Publisher.from_settings(self.p.settings, self.p.bootstrap) as pub:
                t0 = time.monotonic()
                for i, a in enumerate(self.articles):
                    pub.publish(a)
                    self.published += 1
                    delay = t0 + (i + 1) / self.rate - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                pub.flush()
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def add_worker(p: Pipeline, name: str, root: Path) -> Child:
    """A second Faust worker in the pipeline's group (own data dir, own log); stopped with the stack."""
    env = child_env(p.settings, p.bootstrap, "worker")
    env["TRUCEWATCH_DATA_DIR"] = str(root / name)
    c = Child(name, list(p.child("worker").argv), env, root / "logs" / f"{name}.log")
    p.stack.children.insert(0, c)
    return c


def sigkill(c: Child) -> None:
    """SIGKILL a child (no shutdown, no commit), then release its handles."""
    assert c.proc is not None and c.alive(), f"{c.name} is not running"
    c.proc.kill()
    c.proc.wait(10)
    c.stop()


class SlackReceiver:
    """A local HTTP server standing in for the Slack webhook; ``down()`` closes the port, ``up()`` reopens it."""

    def __init__(self) -> None:
        from trucewatch.broker import free_port

        self.port = free_port()
        self.payloads: list[str] = []
        self.server: Any = None
        self.thread: threading.Thread | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/T0/B0/secret"

    def up(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        payloads = self.payloads

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payloads.append(body.decode("utf-8", "replace"))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def down(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def texts(self) -> list[str]:
        return list(self.payloads)


class SmtpReceiver:
    """A real aiosmtpd server on 127.0.0.1 collecting messages; ``down()``/``up()`` stop and restart it."""

    def __init__(self) -> None:
        from trucewatch.broker import free_port

        self.port = free_port()
        self.messages: list[str] = []
        self.controller: Any = None
        self.up()

    def up(self) -> None:
        from aiosmtpd.controller import Controller

        messages = self.messages

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                import email
                from email import policy

                msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=policy.default)
                parts = [part.get_content() for part in msg.walk() if part.get_content_type().startswith("text/")]
                messages.append(str(msg["Subject"]) + "\n" + "\n".join(parts))
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def texts(self) -> list[str]:
        return list(self.messages)


def per_article(texts: list[str], tag: str) -> Counter[str]:
    """How many notifications name each numbered article (by its link https://example.org/{tag}/{i})."""
    import re

    seen: Counter[str] = Counter()
    for text in texts:
        for num in set(re.findall(rf"example\.org/{re.escape(tag)}/(\d+)", text)):
            seen[f"{tag}-{int(num):05d}"] += 1
    return seen


ALERTS_YAML = """
channels:
  slack: {type: slack, rate_per_minute: 6000, rollup_seconds: 0}
  email: {type: email, rate_per_minute: 6000, rollup_seconds: 0}
routes:
  - name: visits
    kinds: [new_visit, visit_update]
    channels: [slack, email]
"""


@pytest.fixture()
def receivers(tmp_path: Path) -> Iterator[tuple[SlackReceiver, SmtpReceiver, dict[str, Any]]]:
    """A Slack stand-in and an SMTP server, plus the settings overrides that route every visit alert to both."""
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "alerts.yaml").write_text(ALERTS_YAML, encoding="utf-8")
    slack, smtp = SlackReceiver(), SmtpReceiver()
    overrides = dict(config_dir=conf_dir, slack_webhook_url=slack.url, smtp_host="127.0.0.1", smtp_port=smtp.port,
                     smtp_security="none", email_to=["desk@example.org"])
    try:
        yield slack, smtp, overrides
    finally:
        slack.down()
        smtp.down()


@pytest.fixture()
def tail_factory() -> Iterator[Callable[..., Tail]]:
    made: list[Tail] = []

    def make(bootstrap: str, topics: list[str]) -> Tail:
        t = Tail(bootstrap, topics)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


class TcpProxy:
    """A TCP forwarder on a fixed local port; ``down()`` refuses and cuts every connection, ``up()`` reopens."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        from trucewatch.broker import free_port

        self.target = (target_host, target_port)
        self.port = free_port()
        self.conns: list[Any] = []
        self.listener: Any = None
        self.lock = threading.Lock()
        self.up()

    def up(self) -> None:
        import socket

        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self.listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: Any) -> None:
        import socket

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: Any, dst: Any) -> None:
        import socket

        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def down(self) -> None:
        import socket

        if self.listener is not None:
            self.listener.close()
            self.listener = None
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


def group_positions(bootstrap: str, group: str, topics: list[str]) -> dict[str, tuple[int | None, int | None]]:
    """``"topic/partition" -> (committed offset of group, high watermark)``, read with assign()+poll (never
    end_offsets: it under-reports on Tansu); a diagnostic for a stage that stopped."""
    from kafka import KafkaConsumer, TopicPartition

    reader = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                           auto_offset_reset="latest", consumer_timeout_ms=200)
    member = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=group)
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(reader.partitions_for_topic(t) or ())]
        reader.assign(tps)
        for tp in tps:
            reader.seek(tp, 0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(reader.highwater(tp) is None for tp in tps):
            reader.poll(timeout_ms=300, max_records=1)
            for tp in tps:  # stay near the start: one record per poll is enough to learn the high watermark
                reader.seek(tp, 0)
        return {f"{tp.topic}/{tp.partition}": (member.committed(tp), reader.highwater(tp)) for tp in tps}
    finally:
        reader.close()
        member.close()


def stack_dumps(children: Iterable[Child]) -> str:
    """py-spy dumps of the live children (what a stuck worker is waiting on), when py-spy is installed."""
    import shutil
    import subprocess
    import sys

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return "(py-spy not installed)"
    out = []
    for c in children:
        if c.proc is not None and c.alive():
            r = subprocess.run([spy, "dump", "--pid", str(c.proc.pid)], capture_output=True, text=True,  # noqa: S603
                               timeout=60, check=False)
            out.append(f"--- {c.name} (pid {c.proc.pid})\n{r.stdout[-6000:]}{r.stderr[-500:]}")
    return "\n".join(out)


PROGRESS_IDLE = 120.0  # a wait fails only after this long without progress (a loaded CI box is slow, not silent)


def wait_progress(predicate: Callable[[], bool], progress: Callable[[], Any], idle: float = PROGRESS_IDLE,
                  cap: float = 900.0, interval: float = 0.3, tick: Callable[[], Any] | None = None) -> bool:
    """Poll until ``predicate()``; False once ``progress()`` stayed the same for ``idle`` seconds, or after
    ``cap`` seconds in all. ``tick`` (e.g. a Tail's poll) runs every round instead of sleeping ``interval``."""
    start = last = time.monotonic()
    seen = progress()
    while time.monotonic() - last < idle and time.monotonic() - start < cap:
        if tick is not None:
            tick()
        if predicate():
            return True
        if tick is None:
            time.sleep(interval)
        now = progress()
        if now != seen:
            seen, last = now, time.monotonic()
    return bool(predicate())
