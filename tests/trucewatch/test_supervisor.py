"""The supervisor's process layout: which children `up` runs, the stages each worker runs, their dirs and ports."""

from __future__ import annotations

from pathlib import Path

from trucewatch.settings import Settings
from trucewatch.supervisor import Stack, child_env, pipeline_stages


def stack(tmp_path: Path, **overrides: object) -> Stack:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, app_id="tw", **overrides)  # type: ignore[arg-type]
    return Stack(settings, "127.0.0.1:1", log_dir=tmp_path / "logs")


def test_the_story_stage_runs_in_a_process_and_group_of_its_own(tmp_path: Path) -> None:
    s = stack(tmp_path, workers=2, metrics_port=9000)
    by_name = {c.name: c for c in s.children}
    assert [c.name for c in s.children] == ["worker", "worker-2", "stories", "sinks"]
    assert {n: c.env["TRUCEWATCH_WORKER_STAGES"] for n, c in by_name.items() if n != "sinks"} == {
        "worker": "stream", "worker-2": "stream", "stories": "stories"}
    assert by_name["stories"].argv[-1] == "worker"
    # own table state, no web port clash, its own /metrics port
    assert by_name["stories"].env["TRUCEWATCH_DATA_DIR"] == str(tmp_path / "stories")
    assert by_name["stories"].env["TRUCEWATCH_WORKER_WEB_PORT"] == "0"
    ports = [c.env["TRUCEWATCH_METRICS_PORT"] for c in s.children]
    assert len(set(ports)) == len(ports), ports
    assert s.faust_dirs() == {tmp_path / "faust", tmp_path / "worker-2" / "faust", tmp_path / "stories" / "faust"}
    assert {(st.name, st.group) for st in pipeline_stages(s.settings)} == {
        ("worker", "tw"), ("stories", "tw-stories"), ("sinks", "tw-sinks")}


def test_without_story_process_the_workers_run_every_stage(tmp_path: Path) -> None:
    s = stack(tmp_path, story_process=False)
    assert [c.name for c in s.children] == ["worker", "sinks"]
    assert s.children[0].env["TRUCEWATCH_WORKER_STAGES"] == "all"
    assert [st.name for st in pipeline_stages(s.settings)] == ["worker", "sinks"]


def test_an_extra_worker_built_from_child_env_joins_the_stream_group_only(tmp_path: Path) -> None:
    """tests/faults add workers with child_env(..., "worker"): they must not run a second story stage."""
    settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path)
    assert child_env(settings, "127.0.0.1:1", "worker")["TRUCEWATCH_WORKER_STAGES"] == "stream"
    assert child_env(settings.model_copy(update={"story_process": False}), "127.0.0.1:1", "worker")[
        "TRUCEWATCH_WORKER_STAGES"] == "all"
