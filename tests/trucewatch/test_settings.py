"""Unit tests for the settings object."""

from __future__ import annotations

import pytest

from trucewatch.errors import ConfigError
from trucewatch.settings import Settings, load_settings


def test_environment_is_read_with_prefix_and_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUCEWATCH_PARTITIONS", "8")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    s = load_settings()
    assert s.partitions == 8
    assert s.kafka_bootstrap == "broker:9092"
    assert not s.embedded


def test_no_bootstrap_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUCEWATCH_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert load_settings().embedded


def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUCEWATCH_PARTITIONS", "many")
    with pytest.raises(ConfigError, match="TRUCEWATCH_PARTITIONS"):
        load_settings()


def test_secrets_are_masked_and_settings_frozen() -> None:
    s = Settings(slack_webhook_url="https://hooks.example/T000/secret")
    eff = s.effective()
    assert "secret" not in repr(eff) and "secret" not in str(s)
    with pytest.raises(ValueError):
        s.partitions = 3  # type: ignore[misc]


def test_to_env_round_trips_through_a_child(monkeypatch: pytest.MonkeyPatch) -> None:
    s = Settings(partitions=6, topic_prefix="p.", email_to=["a@x", "b@y"], slack_webhook_url="https://h/x")
    for k, v in s.to_env().items():
        monkeypatch.setenv(k, v)
    child = load_settings()
    assert (child.partitions, child.topic_prefix, child.email_to) == (6, "p.", ["a@x", "b@y"])
    assert child.slack_webhook_url is not None
    assert child.slack_webhook_url.get_secret_value() == "https://h/x"
