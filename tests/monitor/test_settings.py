"""Settings refuse unusable values by name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.cli import main
from monitor.settings import Settings


def test_defaults_are_embedded_and_local() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.kafka_bootstrap is None
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8000)
    assert settings.max_batch_events >= 1000
    assert settings.events_topic == "qualmon.events" and settings.dlq_topic == "qualmon.events.dlq"
    assert settings.store_url.startswith("sqlite:///")


def test_environment_is_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUALMON_TOPIC_PREFIX", "acme")
    monkeypatch.setenv("QUALMON_SLICE_COMBINATIONS", '[["org", "channel"]]')
    settings = Settings()
    assert settings.anomalies_topic == "acme.anomalies"
    assert settings.slice_combinations == (("org", "channel"),)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"slice_combinations": [["org", "colour"]]}, "QUALMON_SLICE_COMBINATIONS"),
        ({"bucket_seconds": 3600, "allowed_lateness_seconds": 31 * 3600}, "LATENESS"),
        ({"http_port": 70000}, "http_port"),
        ({"topic_prefix": "has space"}, "topic_prefix"),
    ],
)
def test_bad_values_are_refused_by_name(overrides: dict, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(**overrides)


def test_cli_names_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUALMON_BUCKET_SECONDS", "soon")
    with pytest.raises(SystemExit) as stop:
        main(["run"])
    assert "QUALMON_BUCKET_SECONDS" in str(stop.value) and "'soon'" in str(stop.value)
