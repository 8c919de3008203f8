"""The ``qualmon`` command refuses invalid settings by name, and never echoes a secret."""

from __future__ import annotations

import pytest

from monitor import cli


def _refusal(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        cli.main(["run"])
    return str(stopped.value.code)


def test_an_invalid_setting_is_named_with_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, QUALMON_HTTP_PORT="99999")
    assert "QUALMON_HTTP_PORT" in message and "'99999'" in message


def test_a_refused_secret_is_named_but_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    message = _refusal(monkeypatch, QUALMON_WEBHOOK_SECRET="hunter2-short")
    assert "QUALMON_WEBHOOK_SECRET has 13 characters" in message
    assert "hunter2" not in message


def test_a_short_api_key_is_refused_by_its_place_in_the_setting_and_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = _refusal(
        monkeypatch, QUALMON_API_KEYS='{"ingest": {"role": "producer", "key": "s3cr3t"}}'
    )
    assert (
        "QUALMON_API_KEYS at ingest.key: the key has 6 characters; expected at least 24" in message
    )
    assert "s3cr3t" not in message


def test_a_rule_over_several_settings_names_them_in_its_own_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = _refusal(monkeypatch, QUALMON_WEBHOOK_URLS='{"*": ["http://127.0.0.1:9/hook"]}')
    assert message.splitlines()[1] == (
        "  QUALMON_WEBHOOK_URLS is set but QUALMON_WEBHOOK_SECRET is not; webhooks are always "
        "signed: set a random secret of at least 16 characters"
    )


def test_a_setting_named_after_keys_of_another_kind_shows_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = _refusal(monkeypatch, QUALMON_ALERT_KEY_INDICATORS='["nope"]')
    assert message.endswith("(value ['nope'])")
