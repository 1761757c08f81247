"""Benchmark replay: 100,000 articles from the dev set, archived, replayed with --max on the embedded broker.

    .venv/bin/python bench/replay.py                    # full pipeline: replay → worker → sinks → store
    .venv/bin/python bench/replay.py --publisher-only   # the replay command into the broker alone
    .venv/bin/python bench/replay.py -n 20000 --keep    # fewer articles; keep the work directory

Prints: archive write rate, replay publish rate, end-to-end articles/s (replay start → last article
enriched and the alert store settled), and the peak RSS (VmHWM / ru_maxrss) of every process.
Figures, never assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from producers.files import iter_paths  # noqa: E402
from sinks.archive import ArchiveWriter  # noqa: E402
from trucewatch.broker import EmbeddedBroker, ensure_topics, free_port_run  # noqa: E402
from trucewatch.schema import Article  # noqa: E402
from trucewatch.settings import Settings  # noqa: E402
from trucewatch.topics import Topics  # noqa: E402

SHARED = Path(os.environ.get("TRUCEWATCH_SHARED_DIR", REPO.parent / "shared"))
SOURCES = ["bbc.com", "aljazeera.net", "alarabiya.net", "skynewsarabia.com", "aawsat.com", "ahram.org.eg",
           "france24.com", "dw.com", "independentarabia.com", "rt.com", "alquds.co.uk", "youm7.com"]


def vm_hwm_kb(pid: int) -> int | None:
    """Peak resident set size of a running process, in KiB (VmHWM), or None if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_s(pid: int) -> float | None:
    """User + system CPU seconds a running process has used so far (/proc/PID/stat), or None if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def base_articles() -> list[Article]:
    paths = [REPO / "examples" / "seeds.jsonl"]
    dev = SHARED / "data" / "devset.jsonl"
    if dev.exists():
        paths.append(dev)
    return [a for a in iter_paths(paths) if isinstance(a, Article)]


def generate(n: int, archive: Path, seed: int = 7, days: int = 1000) -> float:
    """Write ``n`` varied articles (ids, dates over ``days`` days, sources) to an archive; return seconds taken.

    100,000 articles over 1,000 days is ~100 a day: each dev story recurs every ~16 hours, so visit keys
    collect a handful of corroborations (not hundreds, which would only measure ever-growing alerts).
    """
    rnd = random.Random(seed)
    base = base_articles()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    span = days * 86400
    t0 = time.perf_counter()
    with ArchiveWriter(archive, fsync=True) as w:
        for i in range(n):
            b = base[i % len(base)]
            when = start + timedelta(seconds=span * i / n + rnd.uniform(-3600, 3600))
            src = SOURCES[rnd.randrange(len(SOURCES))]
            a = b.model_copy(update={
                "id": f"{b.id}-{i:06d}", "source": src, "url": f"https://{src}/a/{i}",
                "published_at": when, "fetched_at": when + timedelta(minutes=rnd.randint(1, 30)),
            })
            w.write(a)
    return time.perf_counter() - t0


class TopicCounter(threading.Thread):
    """Counts records on topics from the beginning (assign + getmany), noting when the last one arrived.

    aiokafka in a thread of its own: its C record parser reads the ~4 KB enriched articles at a fraction of the CPU
    kafka-python's pure-Python one took (the reader's CPU is part of the figures this bench prints).
    """

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        super().__init__(daemon=True)
        self.bootstrap = bootstrap
        self.topics = topics
        self.counts = {t: 0 for t in topics}
        self.bytes = {t: 0 for t in topics}
        self.kinds: dict[str, int] = {}  # alert kind -> messages on the alerts topic
        self.kind_last: dict[str, float] = {}  # alert kind -> when its last message arrived (monotonic)
        self.last = {t: 0.0 for t in topics}
        self.stop_flag = threading.Event()

    def run(self) -> None:
        import asyncio

        asyncio.run(self._read())

    async def _read(self) -> None:
        import asyncio

        from aiokafka import AIOKafkaConsumer, TopicPartition

        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None,
                                    auto_offset_reset="earliest", fetch_max_bytes=64 * 1024 * 1024,
                                    max_partition_fetch_bytes=16 * 1024 * 1024)
        await consumer.start()
        try:
            await consumer.topics()  # metadata of every topic
            tps = []
            while not tps:
                tps = [TopicPartition(t, p) for t in self.topics
                       for p in sorted(consumer.partitions_for_topic(t) or [])]
                if not tps:
                    await asyncio.sleep(0.2)
                    await consumer.topics()
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while not self.stop_flag.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=100000)
                for tp, recs in batch.items():
                    if recs:
                        self.counts[tp.topic] += len(recs)
                        self.bytes[tp.topic] += sum(len(r.value or b"") for r in recs)
                        self.last[tp.topic] = time.monotonic()
                        for r in recs if tp.topic.endswith("alerts") else ():
                            value = r.value or b""
                            i = value.find(b'"kind":"')
                            if i >= 0:
                                kind = value[i + 8:value.find(b'"', i + 8)].decode("ascii", "replace")
                                self.kinds[kind] = self.kinds.get(kind, 0) + 1
                                self.kind_last[kind] = self.last[tp.topic]
        finally:
            await consumer.stop()


def run_replay_child(settings: Settings, archive: Path, log: Path) -> tuple[float, int, str, float]:
    """Run ``trucewatch replay ARCHIVE --max`` as its own process; return (wall s, peak RSS KiB, its stdout,
    its CPU seconds)."""
    env = dict(os.environ)
    env.update(settings.to_env())
    t0 = time.monotonic()
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "trucewatch.cli", "replay", str(archive), "--max"],  # noqa: S603
                                env=env, stdout=subprocess.PIPE, stderr=err, cwd=REPO)
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        print(out, log.read_text()[-3000:], file=sys.stderr)
        raise SystemExit(f"replay exited with {proc.returncode}")
    return wall, int(usage.ru_maxrss), out, usage.ru_utime + usage.ru_stime


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=100_000, help="articles to generate (default 100,000)")
    ap.add_argument("--publisher-only", action="store_true", help="no worker/sinks: replay into the broker only")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--timeout", type=float, default=1800.0, help="give up waiting for the pipeline after this")
    ap.add_argument("--workers", type=int, default=1, help="Faust worker processes (Settings.workers)")
    ap.add_argument("--metrics", action="store_true",
                    help="serve /metrics from every process (Settings.metrics_port; adds Faust's Prometheus sensor)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tw-bench-replay-"))
    archive = work / "archive"
    results: dict[str, Any] = {"n": args.n, "mode": "publisher-only" if args.publisher_only else "full pipeline",
                               "cpus": os.cpu_count()}
    gen_s = generate(args.n, archive)
    size = sum(f.stat().st_size for f in archive.iterdir())
    results["archive"] = {"write_s": round(gen_s, 2), "articles_per_s": round(args.n / gen_s),
                          "files": len(list(archive.iterdir())), "bytes": size}
    print(f"archive: {args.n} articles in {gen_s:.1f} s ({args.n / gen_s:,.0f}/s), "
          f"{len(list(archive.iterdir()))} files, {size / 1e6:.1f} MB", flush=True)

    broker = EmbeddedBroker(log_path=work / "broker.log").start()
    stack = None
    rss: dict[str, int | None] = {}
    cpu: dict[str, float | None] = {}  # CPU seconds each process used between the replay start and the end
    try:
        settings = Settings(kafka_bootstrap=broker.bootstrap, data_dir=work / "var", topic_prefix="bench.",
                            app_id="bench-replay", log_level="WARNING", workers=args.workers,
                            metrics_port=free_port_run(8) if args.metrics else 0)
        topics = Topics.from_settings(settings)
        ensure_topics(broker.bootstrap, topics.all(), settings.partitions)
        # the raw topic is read only when it is what is measured: the reader competes for the same 2 cores
        read = [topics.raw] if args.publisher_only else [topics.enriched, topics.alerts]
        counter = TopicCounter(broker.bootstrap, read)
        if not args.publisher_only:
            from trucewatch.supervisor import Stack

            stack = Stack(settings, broker.bootstrap, log_dir=work / "logs")
            for c in stack.children:
                c.stdout_to_console = False  # the console sink's alert lines go to its log
            stack.start()
            # Warm-up: wait until the worker has joined and processes an article (not counted).
            from producers.publish import Publisher, make_producer

            pub = Publisher(make_producer(broker.bootstrap), topics.raw)
            pub.publish(Article(id="warmup", title="warm-up", body="",
                                published_at=datetime(2000, 1, 1, tzinfo=UTC)))
            pub.close()
        counter.start()
        if not args.publisher_only:
            deadline = time.monotonic() + 120
            while counter.counts[topics.enriched] < 1:
                if time.monotonic() > deadline:
                    raise SystemExit("the worker did not process the warm-up article in 120 s; see " + str(work))
                time.sleep(0.2)
            warm = 1
            if args.workers > 1:  # let every worker join the group before the clock starts (no rebalance in the run)
                time.sleep(2 * settings.session_timeout)
                pub = Publisher(make_producer(broker.bootstrap), topics.raw)
                pub.publish(Article(id="warmup-2", title="warm-up", body="",
                                    published_at=datetime(2000, 1, 1, tzinfo=UTC)))
                pub.close()
                while counter.counts[topics.enriched] < 2:
                    if time.monotonic() > deadline:
                        raise SystemExit("the workers did not settle in 120 s; see " + str(work))
                    time.sleep(0.2)
                warm = 2
            print("pipeline warm (warm-up article enriched)", flush=True)
        else:
            warm = 0

        pids = {c.name: c.proc.pid for c in (stack.children if stack else []) if c.proc}
        assert broker.proc is not None
        pids["broker"] = broker.proc.pid
        cpu0 = {name: cpu_s(pid) for name, pid in pids.items()}
        load0 = os.getloadavg()
        bench_cpu0 = time.process_time()
        t0 = time.monotonic()
        wall, replay_rss, out, replay_cpu = run_replay_child(settings, archive, work / "replay.log")
        cpu["replay"] = replay_cpu
        print(out.strip(), flush=True)
        results["replay_command"] = {"wall_s": round(wall, 2), "articles_per_s": round(args.n / wall)}
        rss["replay"] = replay_rss
        print(f"replay command: {wall:.1f} s wall ({args.n / wall:,.0f} articles/s incl. start-up, read, sort)",
              flush=True)

        if not args.publisher_only:
            assert stack is not None
            deadline = time.monotonic() + args.timeout
            shown = time.monotonic()
            while counter.counts[topics.enriched] < args.n + warm and time.monotonic() < deadline:
                time.sleep(0.5)
                if time.monotonic() - shown >= 15:
                    shown = time.monotonic()
                    done = counter.counts[topics.enriched] - warm
                    print(f"  {shown - t0:6.0f} s: {done} enriched ({done / (shown - t0):,.0f}/s), "
                          f"{counter.counts[topics.alerts]} alert messages", flush=True)
            t_enriched = counter.last[topics.enriched]
            # the alerts keep flowing a little after the last enrich; wait for quiet, then for the store
            quiet = time.monotonic()
            seen = counter.counts[topics.alerts]
            while time.monotonic() - quiet < 5 and time.monotonic() < deadline:
                time.sleep(0.5)
                if counter.counts[topics.alerts] != seen:
                    seen, quiet = counter.counts[topics.alerts], time.monotonic()
            t_alerts = counter.last[topics.alerts] or t_enriched
            t_store = store_settled(settings, deadline)
            t_end = max(t_enriched, t_alerts, t_store)
            e2e = t_end - t0
            enriched = counter.counts[topics.enriched] - warm
            results["end_to_end"] = {
                "seconds": round(e2e, 1), "articles_per_s": round(enriched / e2e) if e2e > 0 else None,
                "enriched": enriched, "alert_messages": counter.counts[topics.alerts],
                "enriched_done_s": round(t_enriched - t0, 1), "alerts_done_s": round(t_alerts - t0, 1),
                "store_done_s": round(t_store - t0, 1),
                "alert_kinds": dict(sorted(counter.kinds.items())),
                "alert_kinds_done_s": {k: round(v - t0, 1) for k, v in sorted(counter.kind_last.items())},
                "topic_mb": {t: round(b / 1e6, 1) for t, b in counter.bytes.items()},
            }
            print(f"end to end: {enriched} articles enriched, {counter.counts[topics.alerts]} alert messages; "
                  f"done in {e2e:.1f} s → {enriched / e2e:,.0f} articles/s "
                  f"(enrich done at {t_enriched - t0:.1f} s, alerts at {t_alerts - t0:.1f} s, "
                  f"store at {t_store - t0:.1f} s)", flush=True)
            print("alert messages by kind: " + ", ".join(f"{k} {v} (last at {counter.kind_last[k] - t0:.1f} s)"
                                                       for k, v in sorted(counter.kinds.items()))
                  + "; topic MB: " + ", ".join(f"{t} {b / 1e6:.1f}" for t, b in counter.bytes.items()), flush=True)
            for c in stack.children:
                rss[c.name] = vm_hwm_kb(c.proc.pid) if c.proc else None
            results["load_average"] = {"at_start": [round(x, 2) for x in load0],
                                       "at_end": [round(x, 2) for x in os.getloadavg()]}
        else:
            deadline = time.monotonic() + 60
            while counter.counts[topics.raw] < args.n and time.monotonic() < deadline:
                time.sleep(0.2)
            results["raw_on_broker"] = counter.counts[topics.raw]
        for name, pid in pids.items():
            now_cpu, before = cpu_s(pid), cpu0.get(name)
            cpu[name] = round(now_cpu - before, 1) if now_cpu is not None and before is not None else None
        cpu["bench (topic counter)"] = round(time.process_time() - bench_cpu0, 1)
        counter.stop_flag.set()
        rss["broker"] = vm_hwm_kb(broker.proc.pid)
    finally:
        if stack is not None:
            stack.stop()
        broker.stop()
    rss["bench (generator + counter)"] = vm_hwm_kb(os.getpid())
    results["peak_rss_mib"] = {k: round(v / 1024) if v else None for k, v in rss.items()}
    print("peak RSS (MiB): " + ", ".join(f"{k} {v / 1024:.0f}" if v else f"{k} ?" for k, v in rss.items()))
    results["cpu_s"] = cpu
    total = sum(v for v in cpu.values() if v)
    print("CPU s from the replay start to the end: " + ", ".join(f"{k} {v:.1f}" if v is not None else f"{k} ?"
                                                                for k, v in cpu.items())
          + f"; total {total:.1f} ({1000 * total / args.n:.2f} CPU ms per article)")
    if "load_average" in results:
        print(f"load average (1/5/15 min) at the replay start {results['load_average']['at_start']}, "
              f"at the end {results['load_average']['at_end']}")
    print(json.dumps(results))
    if args.keep:
        print(f"work directory kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def store_settled(settings: Settings, deadline: float, quiet: float = 3.0) -> float:
    """When the sinks last wrote the alert store (max ``updated_at``/``recorded_at``), as a monotonic time.

    Polls until that stops moving for ``quiet`` seconds.
    """
    import sqlite3

    from sinks.store import parse_ts

    db = settings.data_dir / "trucewatch.db"
    last: datetime | None = None
    changed = time.monotonic()
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                a = con.execute("SELECT max(updated_at) FROM alerts").fetchone()[0]
                v = con.execute("SELECT max(recorded_at) FROM visits").fetchone()[0]
            newest = max((parse_ts(x) for x in (a, v) if x), default=None)
        except sqlite3.Error:
            newest = None
        if newest != last:
            last, changed = newest, time.monotonic()
        elif time.monotonic() - changed >= quiet:
            break
        time.sleep(0.5)
    if last is None:
        return changed
    return time.monotonic() - (datetime.now(UTC) - last).total_seconds()


if __name__ == "__main__":
    main()
