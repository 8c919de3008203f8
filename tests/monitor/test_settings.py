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
        ({"bucket_seconds": 7000}, "QUALMON_BUCKET_SECONDS=7000 neither divides a day"),
        ({"http_port": 70000}, "http_port"),
        ({"topic_prefix": "has space"}, "topic_prefix"),
    ],
)
def test_bad_values_are_refused_by_name(overrides: dict, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(**overrides)


@pytest.mark.parametrize("seconds", [300, 1800, 3600, 86400, 7 * 86400])
def test_buckets_that_meet_at_midnight_are_accepted(seconds: int) -> None:
    assert Settings(bucket_seconds=seconds).bucket_seconds == seconds


def test_cli_names_the_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUALMON_BUCKET_SECONDS", "soon")
    with pytest.raises(SystemExit) as stop:
        main(["run"])
    assert "QUALMON_BUCKET_SECONDS" in str(stop.value) and "'soon'" in str(stop.value)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"webhook_urls": {"*": ["http://127.0.0.1:9/h"]}}, "QUALMON_WEBHOOK_SECRET is not"),
        ({"webhook_secret": "short-secret"}, "QUALMON_WEBHOOK_SECRET has 12 characters"),
        ({"alertmanager_url": "ftp://am:9093"}, "QUALMON_ALERTMANAGER_URL has value 'ftp"),
        ({"alertmanager_url": "http://user:pw@am:9093"}, "carries credentials"),
        (
            {"webhook_urls": {"44": ["not a url"]}, "webhook_secret": "x" * 16},
            "QUALMON_WEBHOOK_URLS\\['44'\\]",
        ),
        ({"alert_key_indicators": ["net_promoter"]}, "QUALMON_ALERT_KEY_INDICATORS has unknown"),
        (
            {"inspection_complaint_indicators": ["feed_silence"]},
            "QUALMON_INSPECTION_COMPLAINT_INDICATORS has unknown indicators \\['feed_silence'\\]",
        ),
        ({"alert_resend_seconds": 300}, "alert_resend_seconds"),
        ({"inspection_min_severity": "huge"}, "inspection_min_severity"),
    ],
)
def test_unsafe_alerting_values_are_refused_by_name(overrides: dict, named: str) -> None:
    with pytest.raises(ValidationError, match=named) as caught:
        Settings(**overrides)
    assert "short-secret" not in str(caught.value)  # secrets never echo back


def test_alerting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUALMON_WEBHOOK_URLS", '{"*": ["https://pager.example/hook"]}')
    monkeypatch.setenv("QUALMON_WEBHOOK_SECRET", "0123456789abcdef0123")
    monkeypatch.setenv(
        "QUALMON_PRODUCT_WATCH", '[{"product_line": "health", "launched": "2026-03-01"}]'
    )
    settings = Settings()
    assert settings.webhook_urls == {"*": ("https://pager.example/hook",)}
    assert settings.product_watch[0].org == "*"
    assert "0123456789abcdef" not in repr(settings)


def test_sla_breaches_may_count_as_complaint_concentrations() -> None:
    names = ("complaint_rate_per_10k_policies", "complaint_sla_breach")
    assert Settings(inspection_complaint_indicators=names).inspection_complaint_indicators == names
