"""create_app: which agents, tables and consumer group each worker role gets (no broker needed to build an app)."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.app import create_app
from sinks.metrics import build_metrics
from trucewatch.settings import Settings


@pytest.mark.parametrize(("stages", "app_id", "agents", "tables"), [
    ("all", "tw", {"enrich", "novelty", "stories"}, {"novelty", "stories"}),
    ("stream", "tw", {"enrich", "novelty"}, {"novelty"}),
    ("stories", "tw-stories", {"stories"}, {"stories"}),
])
def test_each_role_wires_its_own_stages(tmp_path: Path, stages: str, app_id: str, agents: set[str],
                                        tables: set[str]) -> None:
    from prometheus_client import CollectorRegistry

    settings = Settings(kafka_bootstrap="127.0.0.1:1", data_dir=tmp_path, app_id="tw", worker_stages=stages)
    pipe = create_app(settings, "127.0.0.1:1", build_metrics(CollectorRegistry()))
    assert pipe.app.conf.id == app_id
    assert set(pipe.agents) == agents
    assert set(pipe.app.agents) == agents
    assert set(pipe.app.tables) == tables
    # enrich sends story items to the topic the story stage reads, whichever process that runs in
    assert pipe.stories.get_topic_name() == "trucewatch.stories"
