"""SIGKILL the delivery process 20 times while alerts flow: nothing lost, duplicates counted."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from pydantic import SecretStr

from sinks.store import open_store
from tests.integration.webhook import WebhookServer
from trucewatch.schema import Alert, AlertLink, alert_id
from trucewatch.settings import Settings

REPO = Path(__file__).resolve().parents[2]
KILLS = 20
N_ALERTS = 300


def alert(i: int) -> Alert:
    key = f"kill-{i:04d}"
    return Alert(id=alert_id("new_visit", key), kind="new_visit", key=key, title=f"زيارة رقم {i}",
                 links=[AlertLink(source="s", url=f"https://x.example/{i}", article_id=f"a{i}")],
                 article_ids=[f"a{i}"], first_seen=datetime(2025, 1, 1, tzinfo=UTC))


def _wait_catches_sigterm(pid: int, timeout: float = 60.0) -> None:
    """Wait until process ``pid`` has a SIGTERM handler installed (SigCgt in /proc/PID/status)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        caught = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("SigCgt:")), 16)
        if caught & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.05)


def test_sigkill_delivery_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("KILL_SEED", "5")))
    server = WebhookServer(delay=lambda: rng.uniform(0.0, 0.02)).start()
    (tmp_path / "alerts.yaml").write_text("channels:\n  slack: {type: slack}\nroutes:\n  - channels: [slack]\n")
    settings = Settings(data_dir=tmp_path, config_dir=tmp_path, log_level="WARNING",
                        slack_webhook_url=SecretStr(server.url()))
    env = {**os.environ, **settings.to_env()}
    cmd = [sys.executable, "-m", "sinks.delivery", "--poll", "0.05"]
    store = open_store(settings.effective_store_url)

    def feed() -> None:  # alerts keep flowing into the store while the delivery process is killed
        for i in range(N_ALERTS):
            store.record(alert(i), ["slack"])
            time.sleep(0.03)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    proc: subprocess.Popen[bytes] | None = None
    kills = active_kills = 0
    try:
        for _ in range(KILLS):
            before = len(server.hits)
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # wait until this process is delivering (startup is ~0.5-1.5 s of imports), then kill it at a
            # random point while it works
            started = time.monotonic()
            while len(server.hits) == before and time.monotonic() - started < 5:
                time.sleep(0.005)
            active_kills += len(server.hits) > before
            time.sleep(rng.uniform(0.0, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
        feeder.join(60)
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 40
        while store.pending_count("slack") and time.monotonic() < deadline:
            time.sleep(0.2)
        _wait_catches_sigterm(proc.pid)  # a SIGTERM before the handler is installed would just kill it
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        server.stop()
    counts = Counter(h.alert_id for h in server.accepted())
    expected = {alert(i).id for i in range(N_ALERTS)}
    missing = expected - set(counts)
    duplicates = sum(c - 1 for c in counts.values())
    sent_state = sum(1 for item in store.outbox("slack") if item.state == "sent")
    store.close()
    print(f"\nSIGKILL x{kills} ({active_kills} while delivering) as {N_ALERTS} alerts flowed: "
          f"received {len(counts)} distinct alerts, missing {len(missing)}, duplicates {duplicates} "
          f"(outbox sent={sent_state})")
    assert kills == KILLS and active_kills >= KILLS // 2
    assert not missing, f"{len(missing)} alerts never reached the webhook"
    assert set(counts) == expected
    assert sent_state == N_ALERTS
    # a duplicate needs a kill between the HTTP send and the state commit: at most one per kill
    assert duplicates <= kills
