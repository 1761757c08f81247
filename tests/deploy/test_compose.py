"""docker-compose.yml and Dockerfile: YAML structure checks, plus `compose config` when a compose CLI exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from trucewatch.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
APP_SERVICES = {"topics", "poller", "worker", "sink"}
METRICS_PORTS = {"worker": "9101", "sink": "9102", "poller": "9103"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_every_required_service_is_there(compose: dict) -> None:
    services = compose["services"]
    assert set(services) >= APP_SERVICES | {"kafka", "postgres", "prometheus", "grafana", "mailpit"}
    for name in APP_SERVICES:
        assert services[name]["build"] == ".", name
        assert services[name]["image"] == "trucewatch:latest", name


def test_kafka_is_one_kraft_node_with_a_healthcheck(compose: dict) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    assert "zookeeper" not in COMPOSE.read_text().lower()
    assert kafka["healthcheck"]["test"]
    assert int(env["KAFKA_NUM_PARTITIONS"]) > 1


def test_topics_is_a_one_shot_initialiser_others_wait_for(compose: dict) -> None:
    s = compose["services"]
    assert s["topics"]["command"] == ["topics", "--create"]
    assert s["topics"]["restart"] == "no"
    assert s["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("poller", "worker", "sink"):
        assert s[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully", name
    assert s["poller"]["command"] == ["poll"]
    assert s["worker"]["command"] == ["worker"]
    assert s["sink"]["command"] == ["sink"]


def test_worker_can_be_scaled(compose: dict) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker and "hostname" not in worker
    assert int(worker["environment"]["TRUCEWATCH_PARTITIONS"]) >= 3


def test_app_environment_names_real_settings(compose: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    fields = {f"TRUCEWATCH_{n.upper()}" for n in Settings.model_fields}
    for name in APP_SERVICES:
        env = compose["services"][name]["environment"]
        unknown = {k for k in env if k.startswith("TRUCEWATCH_")} - fields
        assert not unknown, (name, unknown)
        assert env["TRUCEWATCH_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert env["TRUCEWATCH_STORE_URL"].startswith("postgresql://")
        assert env["TRUCEWATCH_METRICS_HOST"] == "0.0.0.0"
    # the environment must load as Settings (types, enums, JSON lists)
    env = {k: str(v) for k, v in compose["services"]["sink"]["environment"].items()}
    env["TRUCEWATCH_STORE_URL"] = env["TRUCEWATCH_STORE_URL"].replace("${POSTGRES_PASSWORD:-trucewatch}", "pw")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s = load_settings()
    assert s.email_to == ["analysts@example.org"] and s.smtp_host == "mailpit" and s.metrics_port == 9102


def test_metrics_ports_match_prometheus_scrape_config(compose: dict) -> None:
    prom = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {j["job_name"]: j for j in prom["scrape_configs"]}
    for service, port in METRICS_PORTS.items():
        assert compose["services"][service]["environment"]["TRUCEWATCH_METRICS_PORT"] == port
    assert str(targets["trucewatch-worker"]["dns_sd_configs"][0]["port"]) == METRICS_PORTS["worker"]
    assert targets["trucewatch-sink"]["static_configs"][0]["targets"] == [f"sink:{METRICS_PORTS['sink']}"]
    assert targets["trucewatch-poller"]["static_configs"][0]["targets"] == [f"poller:{METRICS_PORTS['poller']}"]


def test_bind_mounts_and_named_volumes_exist(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name, svc in compose["services"].items():
        for v in svc.get("volumes", []):
            src = v.split(":")[0]
            if src.startswith("."):
                assert (REPO / src).exists(), (name, src)
            else:
                assert src in declared, (name, src)
        for dep, cond in (svc.get("depends_on") or {}).items() if isinstance(svc.get("depends_on"), dict) else []:
            assert dep in compose["services"], (name, dep)
            if cond.get("condition") == "service_healthy":
                assert "healthcheck" in compose["services"][dep], (name, dep)
    grafana = compose["services"]["grafana"]
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert "./deploy/prometheus:/etc/prometheus:ro" in compose["services"]["prometheus"]["volumes"]


def test_dockerfile_builds_the_app_image() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install" in text and 'ENTRYPOINT ["trucewatch"]' in text
    ignored = (REPO / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "var" in ignored


def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_cli_validates_the_file() -> None:
    cli = compose_cli()
    if cli is None:
        pytest.skip("no compose CLI (docker compose plugin or docker-compose): structure checked by the tests above")
    out = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, timeout=60,
                         cwd=REPO, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
