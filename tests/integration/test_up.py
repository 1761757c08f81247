"""`trucewatch up` and the embedded broker as a user meets them: real processes, signals, no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from trucewatch.broker import EmbeddedBroker, ensure_topics, list_topics

REPO = Path(__file__).resolve().parents[2]


def _children(pid: int) -> set[int]:
    """Every live descendant pid of ``pid`` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            continue
        kids.setdefault(int(fields[1]), []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_dead(pids: set[int], timeout: float = 20.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {p for p in pids if _alive(p)}
        if not left:
            return set()
        time.sleep(0.2)
    return {p for p in pids if _alive(p)}


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUCEWATCH_") and k != "KAFKA_BOOTSTRAP_SERVERS"}
    env.update(TRUCEWATCH_DATA_DIR=str(tmp_path / "var"), TRUCEWATCH_SESSION_TIMEOUT="2",
               TRUCEWATCH_HEARTBEAT_INTERVAL="0.5", PYTHONUNBUFFERED="1", **extra)
    return env


def test_embedded_broker_creates_topics_with_partitions_and_stops() -> None:
    with EmbeddedBroker() as b:
        made = ensure_topics(b.bootstrap, ["x.one", "x.two"], 3)
        assert sorted(made) == ["x.one", "x.two"]
        assert ensure_topics(b.bootstrap, ["x.one"], 3) == []
        assert {"x.one", "x.two"} <= set(list_topics(b.bootstrap))
        from kafka import KafkaConsumer

        c = KafkaConsumer(bootstrap_servers=b.bootstrap)
        assert c.partitions_for_topic("x.one") == {0, 1, 2}
        c.close()
        pid = b.proc.pid
    assert not _alive(pid)


def test_broker_dies_with_its_parent_even_on_sigkill(tmp_path: Path) -> None:
    code = ("import sys,time; from trucewatch.broker import EmbeddedBroker; b=EmbeddedBroker().start(); "
            "print(b.proc.pid, flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, cwd=REPO)
    broker_pid = int(parent.stdout.readline())
    assert _alive(broker_pid)
    parent.kill()
    parent.wait()
    assert _wait_dead({broker_pid}) == set(), "the broker outlived its SIGKILLed parent"


def test_up_runs_the_seeds_and_ctrl_c_leaves_no_process(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "trucewatch.cli", "up", str(REPO / "examples" / "seeds.jsonl")],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    kids: set[int] = set()
    try:
        while time.monotonic() < deadline:
            kids |= _children(proc.pid)
            if sum("NEW VISIT" in ln for ln in lines) >= 2:
                break
            time.sleep(0.3)
        out = "\n".join(lines)
        assert "NEW VISIT" in out, out[-3000:]
        assert len(kids) >= 3, f"expected broker, worker and sinks under up, saw {kids}"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _wait_dead(kids) == set(), "processes left behind after Ctrl-C"


def test_up_with_an_external_broker_starts_no_broker(broker: str, prefix: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "trucewatch.cli", "up", "--exit-after", "6"], cwd=tmp_path,
                          env=_env(tmp_path, TRUCEWATCH_KAFKA_BOOTSTRAP=broker, TRUCEWATCH_TOPIC_PREFIX=prefix),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "(external)" in proc.stderr
    assert f"{prefix}articles.raw" in list_topics(broker)


@pytest.mark.parametrize("cmd", [["worker"], ["sink"], ["ingest", "x.txt"]])
def test_commands_needing_a_broker_say_so_clearly(cmd: list[str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "trucewatch.cli", *cmd], cwd=tmp_path, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "TRUCEWATCH_KAFKA_BOOTSTRAP" in proc.stderr and "Traceback" not in proc.stderr
