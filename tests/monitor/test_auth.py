"""API keys and roles: producers post events, readers read, managers change things and are named
in the audit log; without keys the API is open (development on loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from monitor.settings import Settings
from tests.factories import at, policy
from tests.monitor.test_api import _client

KEYS = {
    "core-admin": {"role": "producer", "key": "p" * 24},
    "quality-dept": {"role": "reader", "key": "r" * 24},
    "li.wei": {"role": "manager", "key": "m" * 24},
}


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]['key']}"}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, api_keys=KEYS, request_timeout_seconds=1)
    with _client(settings, "127.0.0.1:1") as client:
        yield client


def test_no_key_is_401_naming_the_role_needed(api: TestClient) -> None:
    response = api.post("/v1/events", json=policy("p-1", at(1)))
    assert response.status_code == 401
    assert "needs a producer API key" in response.json()["detail"]
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert api.get("/v1/anomalies", headers={"X-API-Key": "x" * 24}).status_code == 401


def test_each_role_does_what_it_may_and_no_more(api: TestClient) -> None:
    # A producer's event passes authorisation and reaches the (absent) broker: 503, not 401/403.
    assert (
        api.post("/v1/events", json=policy("p-1", at(1)), headers=bearer("core-admin")).status_code
        == 503
    )
    assert api.get("/v1/anomalies", headers=bearer("core-admin")).status_code == 403
    assert api.get("/v1/anomalies", headers=bearer("quality-dept")).status_code == 200
    refused = api.post("/v1/silences", json={}, headers=bearer("quality-dept"))
    assert refused.status_code == 403
    assert refused.json()["detail"] == (
        "API key 'quality-dept' has role 'reader'; POST /v1/silences needs manager"
    )
    assert api.get("/v1/alerts", headers={"X-API-Key": KEYS["li.wei"]["key"]}).status_code == 200


def test_the_audit_log_names_the_key_not_a_claimed_user(api: TestClient) -> None:
    store = api.app.state.qualmon.store  # type: ignore[attr-defined]
    store.add_orgs(["00", "00/44"])  # as the worker learns them from events
    body = {"title": "Launch check", "indicator": "complaint_rate_per_10k_policies", "org": "44"}
    created = api.post("/v1/inspections", json=body,
                       headers={**bearer("li.wei"), "X-Qualmon-User": "someone.else"})  # fmt: skip
    assert created.status_code == 201, created.text
    audit = api.get(f"/v1/inspections/{created.json()['inspection_id']}/audit",
                    headers=bearer("li.wei")).json()  # fmt: skip
    assert audit[0]["actor"] == "li.wei (someone.else)"


def test_probes_metrics_and_the_event_schema_stay_open(api: TestClient) -> None:
    for path in ("/healthz", "/metrics", "/v1/schema/events", "/openapi.json"):
        assert api.get(path).status_code == 200, path


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"a": {"role": "admin", "key": "k" * 24}}, "role"),
        ({"a": {"role": "reader", "key": "short"}}, "at least 24"),
        ({"a": {"role": "reader", "key": "k" * 24}, "b": {"role": "manager", "key": "k" * 24}},
         "same key"),
    ],
)  # fmt: skip
def test_unsafe_keys_are_refused_and_never_echoed(keys: dict, message: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(api_keys=keys)
    assert message in str(refused.value)
    assert "k" * 24 not in str(refused.value)
