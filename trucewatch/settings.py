"""The one typed, frozen settings object, read from ``TRUCEWATCH_*`` environment variables.

Nothing else in trucewatch reads ``os.environ``: processes receive a Settings object
(children get theirs through the environment that ``Settings.to_env`` writes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from trucewatch.errors import ConfigError

PACKAGE_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


class Settings(BaseSettings):
    """Every runtime knob. Secrets are SecretStr and masked in ``effective()``."""

    model_config = SettingsConfigDict(env_prefix="TRUCEWATCH_", frozen=True, extra="ignore", populate_by_name=True)

    # Kafka
    kafka_bootstrap: str | None = Field(
        default=None,
        validation_alias=AliasChoices("TRUCEWATCH_KAFKA_BOOTSTRAP", "KAFKA_BOOTSTRAP_SERVERS"),
        description="host:port[,host:port]; unset = start the embedded Tansu broker",
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    broker_port: int = Field(default=0, ge=0, le=65535, description="embedded broker port; 0 = a free one")
    topic_prefix: str = "trucewatch."
    partitions: int = Field(default=4, ge=1, le=256)

    # Faust
    app_id: str = "trucewatch"
    session_timeout: float = Field(default=6.0, ge=2.0, description="consumer-group session timeout, s")
    heartbeat_interval: float = Field(default=1.0, gt=0)
    commit_interval: float = Field(default=1.0, gt=0)
    worker_web_port: int = 0
    faust_store: Literal["memory", "rocksdb"] = Field(
        default="memory", description="novelty table store; rocksdb needs the rocksdict extra")
    workers: int = Field(default=1, ge=1, le=16,
                         description="Faust worker processes `up` runs in one group (they split the partitions)")
    worker_stages: Literal["all", "stream", "stories"] = Field(
        default="all", description="what `trucewatch worker` runs: all = enrich, novelty and the story stage in one "
        "consumer group; stream = enrich + novelty; stories = the story stage alone, in its own group")
    story_process: bool = Field(
        default=True, description="`up` runs the story stage in a process of its own (worker_stages=stories) next "
        "to its stream workers, so it never shares a worker's CPU with enrich; false = inside the worker(s)")

    # Storage and knowledge
    data_dir: Path = Path("var")
    store_url: str | None = Field(
        default=None, description="sqlite:///path or postgresql://...; unset = SQLite in data_dir")
    config_dir: Path | None = Field(
        default=None, description="a directory of YAML files overriding the shipped config/")
    novelty_window_days: float = Field(default=7.0, gt=0)

    # Metrics
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=0, ge=0, le=65535, description="0 = no /metrics endpoint")

    # Notifiers
    slack_webhook_url: SecretStr | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    email_from: str = "trucewatch@localhost"
    email_to: list[str] = Field(default_factory=list)

    log_level: str = "INFO"

    @property
    def embedded(self) -> bool:
        """True when no external broker is configured and trucewatch starts its own."""
        return not self.kafka_bootstrap

    @property
    def effective_store_url(self) -> str:
        """The store URL, defaulting to SQLite under ``data_dir``."""
        return self.store_url or f"sqlite:///{(self.data_dir / 'trucewatch.db').as_posix()}"

    def effective(self) -> dict[str, Any]:
        """Settings as a dict for logging, secrets masked."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            v = getattr(self, name)
            out[name] = "**********" if isinstance(v, SecretStr) else v
        return out

    def to_env(self) -> dict[str, str]:
        """Environment variables that reproduce these settings in a child process."""
        env: dict[str, str] = {}
        for name in type(self).model_fields:
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, SecretStr):
                v = v.get_secret_value()
            elif isinstance(v, list):
                import json

                v = json.dumps(v)
            env[f"TRUCEWATCH_{name.upper()}"] = str(v)
        return env


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment (plus overrides); ConfigError names the bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        first = e.errors()[0]
        name = ".".join(str(x) for x in first.get("loc", ()))
        raise ConfigError(f"{first.get('msg')}", path="environment",
                          entry=f"TRUCEWATCH_{name.upper()}") from None
