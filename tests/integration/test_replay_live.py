"""Replay gives the live results: live ingest with an archive, a fresh store and stream state, replay → same alerts."""

from __future__ import annotations

import io
import json
import time
import uuid
from pathlib import Path
from typing import Any

from producers.ingest import ingest
from producers.publish import Publisher
from producers.replay import run_replay
from tests.integration.conftest import Pipeline, read_topic, wait_for

REPO = Path(__file__).resolve().parents[2]


def snapshot(p: Pipeline) -> dict[str, Any]:
    """What the store holds: alerts (id → kind, key, corroborations, articles) and visit keys (visits table and
    the visits of the alerts)."""
    st = p.store()
    try:
        alerts = st.list_alerts(limit=100000)
        visits = st.list_visits(limit=100000)
    finally:
        st.close()
    return {
        "alerts": {a.id: (a.kind, a.key, a.corroborations, tuple(sorted(a.article_ids))) for a in alerts},
        "visit_keys": {v.key for v in visits} | {a.visit.key for a in alerts if a.visit},
        "replay_flags": {a.id: a.replay for a in alerts},
    }


def settle(p: Pipeline, n_enriched: int, timeout: float = 150.0) -> dict[str, Any]:
    """Wait until ``n_enriched`` articles went through enrich and the store stopped changing; return its snapshot."""
    wait_for(lambda: len(read_topic(p.bootstrap, p.topics.enriched, expect=n_enriched, timeout=10)) >= n_enriched,
             timeout=timeout)
    last: dict[str, Any] = {}
    stable_since = time.monotonic()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        snap = snapshot(p)
        if snap != last:
            last, stable_since = snap, time.monotonic()
        elif snap["alerts"] and time.monotonic() - stable_since >= 6.0:  # > two sink commit rounds unchanged
            return snap
        time.sleep(1.0)
    return last


def test_replay_of_the_archive_reproduces_the_live_alerts_and_is_idempotent(
        broker: str, tmp_path: Path, devset_path: Path, seeds_jsonl: Path) -> None:
    live = Pipeline(broker, f"t{uuid.uuid4().hex[:10]}.", tmp_path / "live").start()
    rebuilt: Pipeline | None = None
    try:
        # Live: the articles go through the live publish path, archived upstream of the broker.
        with Publisher.from_settings(live.settings, broker, archive=True) as pub:
            n, bad = ingest([seeds_jsonl, devset_path], pub, err=io.StringIO())
        assert bad == 0 and n > 0
        archive = live.settings.data_dir / "archive"
        files = sorted(archive.iterdir())
        assert files and all(f.name.endswith(".jsonl.gz") for f in files), files  # completed, no .part left
        try:
            live_snap = settle(live, n)
        except BaseException:
            print(live.logs())
            raise
        assert live_snap["alerts"], "the live run raised alerts"

        # Rebuild: a new deployment (empty store, fresh stream state) fed only from the archive.
        rebuilt = Pipeline(broker, f"t{uuid.uuid4().hex[:10]}.", tmp_path / "rebuilt").start()
        out, err = io.StringIO(), io.StringIO()
        assert run_replay(rebuilt.settings, [archive], max_speed=True, out=out, err=err) == 0, err.getvalue()
        assert f"published {n} in" in out.getvalue(), out.getvalue()
        try:
            replay_snap = settle(rebuilt, n)
        except BaseException:
            print(rebuilt.logs())
            raise
        print(f"live: {len(live_snap['alerts'])} alerts, {len(live_snap['visit_keys'])} visit keys; "
              f"replay: {len(replay_snap['alerts'])} alerts, {len(replay_snap['visit_keys'])} visit keys")
        only_live = {k: v for k, v in live_snap["alerts"].items() if k not in replay_snap["alerts"]}
        only_replay = {k: v for k, v in replay_snap["alerts"].items() if k not in live_snap["alerts"]}
        assert not only_live and not only_replay, f"only live: {only_live}\nonly replay: {only_replay}"
        assert replay_snap["visit_keys"] == live_snap["visit_keys"]
        assert replay_snap["alerts"] == live_snap["alerts"]  # same kinds, keys, corroborations and articles
        assert all(replay_snap["replay_flags"].values()), "replayed alerts are marked replay"
        assert not any(live_snap["replay_flags"].values())

        # Replay the same archive again: the store does not change.
        assert run_replay(rebuilt.settings, [archive], max_speed=True, out=io.StringIO(), err=io.StringIO()) == 0
        again = settle(rebuilt, 2 * n)
        assert again == replay_snap, json.dumps({"before": sorted(replay_snap["alerts"]),
                                                 "after": sorted(again["alerts"])})
    finally:
        live.stop()
        if rebuilt is not None:
            rebuilt.stop()
