"""In-flight accounting for a lost broker, as pure functions."""

from __future__ import annotations

import json

from trucewatch.inflight import Sample, append_report, loss_report


def test_in_flight_is_written_minus_committed_per_stage() -> None:
    s = Sample(at=100.0, ends={"worker": 300, "sinks": 40}, committed={"worker": 120})
    assert s.in_flight() == {"worker": 180, "sinks": 40}


def test_loss_report_without_a_sample_says_unknown() -> None:
    r = loss_report(None, now=0.0)
    assert r["sampled"] is False and r["in_flight"] == {}


def test_loss_report_carries_sample_age_and_counts(tmp_path) -> None:
    r = loss_report(Sample(at=90.0, ends={"worker": 5}, committed={"worker": 5}), now=100.0)
    assert r["sample_age_s"] == 10.0 and r["in_flight"] == {"worker": 0}
    append_report(tmp_path / "losses.jsonl", r)
    append_report(tmp_path / "losses.jsonl", r)
    lines = (tmp_path / "losses.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["in_flight"] == {"worker": 0}
