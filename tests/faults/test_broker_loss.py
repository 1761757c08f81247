"""Scenario 6: the embedded broker SIGKILLed under `trucewatch up`: loss detected and counted, no crash loop,
the pipeline resumes by itself, and `trucewatch replay` from the archive recovers every lost article."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from sinks.merge import article_ids_of
from tests.faults.conftest import Tally, numbered_articles
from trucewatch.broker import free_port
from trucewatch.schema import Article

REPO = Path(__file__).resolve().parents[2]


def write_jsonl(path: Path, articles: list[Article]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for a in articles:
            f.write(json.dumps({"id": a.id, "title": a.title, "text": a.body, "url": a.url, "source": a.source,
                                "date": a.published_at.isoformat() if a.published_at else None},
                               ensure_ascii=False) + "\n")
    return path


def children_of(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out += [int(x) for x in text]
    return out


def tansu_pid(up_pid: int) -> int:
    for c in children_of(up_pid):
        try:
            if "tansu" in Path(f"/proc/{c}/cmdline").read_bytes().decode(errors="replace"):
                return c
        except OSError:
            continue
    raise AssertionError("no tansu child of trucewatch up")


def stored_ids(db: Path) -> set[str]:
    from sinks.store import open_store

    if not db.exists():
        return set()
    try:
        st = open_store(f"sqlite:///{db}")
    except Exception:  # noqa: BLE001
        return set()
    try:
        return {i for a in st.list_alerts(limit=100000) for i in article_ids_of(a)}
    finally:
        st.close()


def wait_until(pred, timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return bool(pred())


def test_broker_loss_detected_resumed_and_replayed(tmp_path) -> None:
    from producers.publish import Publisher, make_producer
    from sinks.archive import ArchiveWriter

    arts = numbered_articles(500, tag="bl", distinct_visits=True)
    a, b, c = arts[:100], arts[100:400], arts[400:]
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUCEWATCH_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(TRUCEWATCH_DATA_DIR=str(var), TRUCEWATCH_BROKER_PORT=str(port), TRUCEWATCH_SESSION_TIMEOUT="2.0",
               TRUCEWATCH_HEARTBEAT_INTERVAL="0.5", TRUCEWATCH_COMMIT_INTERVAL="0.5", PYTHONUNBUFFERED="1")
    out = (tmp_path / "up.log").open("wb")
    up = subprocess.Popen([sys.executable, "-m", "trucewatch.cli", "up", str(write_jsonl(tmp_path / "a.jsonl", a))],
                          cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    db = var / "trucewatch.db"
    ids = lambda xs: {x.id for x in xs}  # noqa: E731
    try:
        assert wait_until(lambda: ids(a) <= stored_ids(db), 120), (tmp_path / "up.log").read_text()[-3000:]
        # batch B: archived upstream of the broker, acknowledged by it, then the broker dies under the worker
        pub = Publisher(make_producer(bootstrap), "trucewatch.articles.raw", archive=ArchiveWriter(var / "archive"))
        for x in b:
            pub.publish(x)
        pub.flush()
        pub.close()
        broker_pid = tansu_pid(up.pid)
        os.kill(broker_pid, signal.SIGKILL)
        t_kill = time.monotonic()
        losses = var / "broker-losses.jsonl"
        assert wait_until(losses.exists, 60), (tmp_path / "up.log").read_text()[-3000:]
        detected = time.monotonic() - t_kill
        report = json.loads(losses.read_text().splitlines()[0])
        assert up.poll() is None, "trucewatch up must survive the loss"
        assert tansu_pid(up.pid) != broker_pid
        # the pipeline resumes by itself: batch C goes through the new cluster
        pub = Publisher(make_producer(bootstrap), "trucewatch.articles.raw", archive=ArchiveWriter(var / "archive"))
        for x in c:
            pub.publish(x)
        pub.close()
        assert wait_until(lambda: ids(c) <= stored_ids(db), 120), (tmp_path / "up.log").read_text()[-3000:]
        resumed = time.monotonic() - t_kill
        time.sleep(2.0)
        before_replay = stored_ids(db)
        lost = sorted(ids(b) - before_replay)
        # replay the archive into the running pipeline: every lost article comes back, nothing doubles
        r_env = env | {"TRUCEWATCH_KAFKA_BOOTSTRAP": bootstrap}
        replay = subprocess.run([sys.executable, "-m", "trucewatch.cli", "replay", str(var / "archive"), "--max"],
                                cwd=tmp_path, env=r_env, capture_output=True, text=True, timeout=120)
        assert replay.returncode == 0, replay.stderr[-3000:]
        assert wait_until(lambda: ids(arts) <= stored_ids(db), 120), (tmp_path / "up.log").read_text()[-3000:]
        after = stored_ids(db)
        log = (tmp_path / "up.log").read_text(errors="replace")
        Tally.of("s6 batch B at the store before replay (broker killed under it)", sorted(ids(b)),
                 Counter(before_replay), reported_in_flight=report["in_flight"], detected_s=round(detected, 1),
                 recovered_s=report.get("recovered_s"), resumed_s=round(resumed, 1)).show()
        Tally.of("s6 all articles at the store after replay", sorted(ids(arts)), Counter(after),
                 lost_then_replayed=len(lost)).show()
        assert "embedded broker died (loss #1)" in log
        assert log.count("embedded broker died") == 1, "one kill, one loss: no crash loop"
        assert ids(arts) <= after
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(10)
        out.close()
