"""The alert, silence and inspection API in-process, on a real SQLite store, with a real
webhook receiver on loopback behind the dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from alerting.dispatcher import Dispatcher
from alerting.engine import AlertEngine
from monitor.api import Context, create_api
from monitor.broker import free_port
from monitor.metrics import Metrics
from monitor.producer import EventProducer
from monitor.settings import Settings
from monitor.store import Store, open_store
from tests.alerting.helpers import COMPLAINTS, Clock, anomaly, universal
from tests.receivers import Receiver

USER = {"X-Qualmon-User": "li.wei"}


@dataclass
class Api:
    client: TestClient
    store: Store
    engine: AlertEngine
    hook: Receiver

    def deliver(self) -> None:
        dispatcher = Dispatcher(self.engine)

        async def once() -> None:
            await dispatcher.deliver_due()
            await dispatcher.close()

        asyncio.run(once())


@pytest.fixture
def api(tmp_path: Path, receiver: Receiver) -> Iterator[Api]:
    settings = Settings(
        data_dir=tmp_path, webhook_urls={"*": (receiver.url,)}, webhook_secret="api-test-secret-123"
    )
    registry = CollectorRegistry()
    store = open_store(settings.store_url)
    metrics = Metrics(registry)
    engine = AlertEngine(store, settings, metrics, Clock())
    engine.orgs.learn(["00", "00/44", "00/44/4403", "00/31", "00/31/3101"])
    producer = EventProducer(settings, f"127.0.0.1:{free_port()}")
    ctx = Context(settings, producer, store, metrics, registry, alerts=engine)
    with TestClient(create_api(ctx)) as client:
        yield Api(client, store, engine, receiver)
    store.close()


def test_an_acknowledged_alert_is_not_sent_again(api: Api) -> None:
    api.engine.ingest([anomaly(10, score=0.55, severity="minor")])
    api.deliver()
    assert [b["event"] for b in api.hook.bodies()] == ["opened"]
    page = api.client.get("/v1/alerts", params={"state": "firing"}).json()
    assert page["total"] == 1
    alert = page["items"][0]
    assert (alert["org"], alert["severity"], alert["acknowledged_by"]) == ("4403", "major", None)

    acked = api.client.post(f"/v1/alerts/{alert['alert_id']}/ack", headers=USER)
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "li.wei"
    api.engine.ingest([anomaly(11, score=1.0, severity="critical")])  # escalates
    api.deliver()
    assert [b["event"] for b in api.hook.bodies()] == ["opened"]
    assert api.client.get(f"/v1/alerts/{alert['alert_id']}").json()["severity"] == "critical"
    log = api.client.get(f"/v1/alerts/{alert['alert_id']}/notifications").json()
    assert [
        (n["receiver"][:7], n["event"], n["state"])
        for n in log
        if n["receiver"] != "topic" and n["receiver"] != "topic:inspections"
    ] == [("webhook", "opened", "sent")]
    missing = api.client.post("/v1/alerts/nope/ack", headers=USER)
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_an_alert_lists_the_slices_it_fires_on(api: Api) -> None:
    # Surrenders of the universal line eight to ten times their usual in both provinces.
    api.engine.ingest(*universal(10, {"4403": (30, 3), "3101": (40, 4)}))
    (alert,) = api.client.get("/v1/alerts").json()["items"]
    assert (alert["org"], alert["product_line"]) == ("*", "universal")
    found = api.client.get(f"/v1/alerts/{alert['alert_id']}/slices").json()
    assert [
        (s["org"], s["problem"], s["broad"], s["anomalies"], s["value"], s["expected"])
        for s in found
    ] == [
        ("*", True, True, 1, 70.0, 7.0),  # the company-wide incident is where the problem sits
        ("3101", False, False, 1, 40.0, 4.0),
        ("4403", False, False, 1, 30.0, 3.0),
    ]
    assert found[0]["anomaly_id"] == alert["anomaly_id"]
    assert found[0]["bucket_start"].startswith("2026-03-1")
    assert api.client.get("/v1/alerts/nope/slices").status_code == 404


def test_a_silence_keeps_matching_alerts_quiet_until_it_is_expired(api: Api) -> None:
    bad = api.client.post(
        "/v1/silences",
        headers=USER,
        json={"matchers": {"branch": "4403"}, "ends_at": "2099-01-01T00:00:00Z", "comment": "x"},
    )
    assert bad.status_code == 422 and "unknown matcher labels ['branch']" in bad.text
    backwards = api.client.post(
        "/v1/silences",
        headers=USER,
        json={
            "matchers": {"org": "4403"},
            "starts_at": "2027-01-02T00:00:00Z",
            "ends_at": "2027-01-01T00:00:00Z",
            "comment": "x",
        },
    )
    assert backwards.status_code == 422 and "is not after the start" in backwards.text
    assert api.store.count("silences") == 0

    start = api.engine.clock()
    created = api.client.post(
        "/v1/silences",
        headers=USER,
        json={
            "matchers": {"org": "4403", "indicator": COMPLAINTS},
            "starts_at": _iso(start - 60),
            "ends_at": _iso(start + 3600),
            "comment": "known wave",
        },
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["created_by"] == "li.wei"
    api.engine.ingest([anomaly(10)])
    api.deliver()
    assert api.hook.bodies() == []
    assert api.client.get("/v1/alerts").json()["total"] == 1  # recorded all the same

    assert (
        api.client.delete(f"/v1/silences/{silence['silence_id']}", headers=USER).status_code == 200
    )
    api.engine.ingest([anomaly(10, "3101", "health", "AGENCY")])
    api.deliver()
    assert [b["alert"]["org"] for b in api.hook.bodies()] == ["3101"]


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()


def test_an_inspection_through_the_api_with_its_audit_trail(api: Api) -> None:
    created = api.client.post(
        "/v1/inspections",
        headers=USER,
        json={
            "title": "New health product launch",
            "indicator": COMPLAINTS,
            "org": "4403",
            "product_line": "health",
        },
    )
    assert created.status_code == 201, created.text
    inspection = created.json()
    assert (inspection["state"], inspection["rule"], inspection["org_path"]) == (
        "opened",
        "manual",
        "00/44/4403",
    )
    iid = inspection["inspection_id"]

    skip = api.client.patch(f"/v1/inspections/{iid}", headers=USER, json={"state": "closed2"})
    assert skip.status_code == 422
    wrong = api.client.patch(f"/v1/inspections/{iid}", headers=USER, json={"state": "evaluating"})
    assert wrong.status_code == 409 and "not 'evaluating'" in wrong.json()["detail"]

    cause = api.client.post(
        f"/v1/inspections/{iid}/root-causes",
        headers=USER,
        json={
            "category": "people",
            "what": "sellers skip the suitability check",
            "why": "sales contest rewards volume",
            "how_much": "12 of 40 files sampled",
        },
    )
    assert cause.status_code == 201, cause.text
    fishy = api.client.post(
        f"/v1/inspections/{iid}/root-causes",
        headers=USER,
        json={"category": "luck", "what": "x", "why": "y"},
    )
    assert fishy.status_code == 422 and "category" in fishy.text

    measure = api.client.post(
        f"/v1/inspections/{iid}/measures",
        headers=USER,
        json={**MEASURE, "product_line": "health"},
    )
    assert measure.status_code == 201, measure.text
    mid = measure.json()["measure_id"]
    patched = api.client.patch(
        f"/v1/inspections/{iid}/measures/{mid}",
        headers=USER,
        json={"effective_from": "2027-02-01T00:00:00+08:00"},
    )
    assert patched.json()["effective_from"] == "2027-01-31T16:00:00Z"

    early = api.client.post(f"/v1/inspections/{iid}/measures/{mid}/evaluation", headers=USER)
    assert early.status_code == 422
    # No reading of that slice at all: saying so, not "wait", and times are ISO-8601.
    assert "has no reading at all for org 4403, product line health" in early.json()["detail"]
    assert "wait" not in early.json()["detail"]

    detail = api.client.get(f"/v1/inspections/{iid}").json()
    assert detail["state"] == "measures_set"
    assert [c["category"] for c in detail["root_causes"]] == ["people"]
    assert detail["root_causes"][0]["how_much"] == "12 of 40 files sampled"
    assert [m["owner"] for m in detail["measures"]] == ["wang.fang"]
    trail = api.client.get(f"/v1/inspections/{iid}/audit").json()
    assert {e["actor"] for e in trail} == {"li.wei"}
    assert [e["action"] for e in trail] == [
        "open",
        "add",
        "transition",
        "add",
        "transition",
        "edit",
    ]
    listed = api.client.get("/v1/inspections", params={"state": "measures_set"}).json()
    assert [i["inspection_id"] for i in listed["items"]] == [iid]
    assert api.client.get("/v1/inspections/nope").status_code == 404


def test_openapi_describes_every_field_of_the_new_schemas(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    names = [
        "AlertPublic",
        "SilenceCreate",
        "SilencePublic",
        "InspectionCreate",
        "InspectionDetail",
        "InspectionPatch",
        "RootCauseCreate",
        "MeasureCreate",
        "MeasurePatch",
        "MeasurePublic",
        "EvaluationPublic",
        "AuditEntry",
        "NotificationPublic",
    ]
    undocumented = [
        f"{name}.{field}"
        for name in names
        for field, spec in schemas[name]["properties"].items()
        if not spec.get("description")
    ]
    assert undocumented == []
    paths = api.client.get("/openapi.json").json()["paths"]
    params = [
        f"{path} {p['name']}"
        for path in ("/v1/alerts", "/v1/silences", "/v1/inspections")
        for p in paths[path]["get"]["parameters"]
        if not p.get("description")
    ]
    assert params == []


def test_an_inspection_opened_without_an_indicator_covers_its_whole_scope(api: Api) -> None:
    created = api.client.post(
        "/v1/inspections", headers=USER, json={"title": "Branch review", "org": "4403"}
    )
    assert created.status_code == 201, created.text
    inspection = created.json()
    assert inspection["indicator"] == "*"
    api.engine.ingest([anomaly(10), anomaly(10, indicator="hotline_answer_rate")])
    api.engine.ingest([anomaly(10, "4403", "*", "*", indicator="amount_unit_jump", score=1.0)])
    detail = api.client.get(f"/v1/inspections/{inspection['inspection_id']}").json()
    indicators = {api.store.alert(a)["indicator"] for a in detail["alert_ids"]}
    assert indicators == {COMPLAINTS, "hotline_answer_rate"}  # not the data-quality alert
    bad = api.client.post(
        "/v1/inspections", headers=USER, json={"title": "t", "org": "44", "indicator": "nope"}
    )
    assert bad.status_code == 422 and "indicator" in bad.text


def test_inspections_opened_by_hand_are_counted(api: Api) -> None:
    scope = {"title": "Launch check", "indicator": COMPLAINTS, "org": "4403"}
    for _ in range(3):
        assert api.client.post("/v1/inspections", headers=USER, json=scope).status_code == 201
    text = api.client.get("/metrics").text
    assert 'qualmon_inspections_opened_total{rule="manual"} 3.0' in text


def _inspection(api: Api) -> str:
    scope = {"title": "Launch check", "indicator": COMPLAINTS, "org": "4403"}
    created = api.client.post("/v1/inspections", headers=USER, json=scope)
    assert created.status_code == 201, created.text
    return str(created.json()["inspection_id"])


MEASURE = {
    "title": "Suitability re-training",
    "department": "Health line",
    "owner": "wang.fang",
    "deadline": "2027-03-01T00:00:00+08:00",
    "indicator": COMPLAINTS,
    "org": "4403",
    "target": 6.0,
}


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("target", '"NaN"'),
        ("target", "NaN"),
        ("target", '"Infinity"'),
        ("target", "1e400"),
        ("target", "-1e400"),
        ("deadline", "1e400"),
    ],
)
def test_a_non_finite_number_is_refused_naming_the_field(api: Api, field: str, raw: str) -> None:
    iid = _inspection(api)
    body = orjson.dumps({**MEASURE, field: "@"}).decode().replace('"@"', raw)
    response = api.client.post(
        f"/v1/inspections/{iid}/measures",
        headers={**USER, "content-type": "application/json"},
        content=body,
    )
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["field"] == field
    assert str(error["value"]).strip('"') in raw.strip('"').replace("1e400", "Infinity")
    assert api.store.measures(iid) == []
    assert api.client.get(f"/v1/inspections/{iid}").json()["state"] == "opened"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("product_line", "spaceships"),
        ("channel", "PIGEON"),
        ("org", "NOPE-999"),
        ("org", "44 03"),
        ("owner", "li.wei"),
    ],
)
def test_an_inspection_on_a_scope_that_does_not_exist_is_refused(
    api: Api, field: str, value: str
) -> None:
    scope = {"title": "Launch check", "indicator": COMPLAINTS, "org": "4403", field: value}
    response = api.client.post("/v1/inspections", headers=USER, json=scope)
    assert response.status_code == 422, response.text
    assert field in response.text and value in response.text
    assert api.store.inspections()[1] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("channel", "PIGEON"), ("product_line", "spaceships"), ("org", "NOPE-999"), ("x", 1)],
)
def test_a_measure_on_a_scope_that_does_not_exist_is_refused(
    api: Api, field: str, value: object
) -> None:
    iid = _inspection(api)
    response = api.client.post(
        f"/v1/inspections/{iid}/measures", headers=USER, json={**MEASURE, field: value}
    )
    assert response.status_code == 422, response.text
    assert field in response.text and str(value) in response.text
    assert api.store.measures(iid) == []


def test_every_existing_scope_is_accepted(api: Api) -> None:
    for scope in (
        {"org": "*"},
        {"org": "44", "product_line": "health", "channel": "BANCA"},
        {"org": "3101", "product_line": "*", "channel": "ONLINE"},
    ):
        body = {"title": "Launch check", "indicator": COMPLAINTS, **scope}
        response = api.client.post("/v1/inspections", headers=USER, json=body)
        assert response.status_code == 201, response.text


def test_unknown_fields_are_refused_in_every_body(api: Api) -> None:
    iid = _inspection(api)
    silence = {"matchers": {"org": "4403"}, "ends_at": "2099-01-01T00:00:00Z", "comment": "x"}
    for method, path, body in (
        ("PATCH", f"/v1/inspections/{iid}", {"titel": "typo"}),
        ("POST", f"/v1/inspections/{iid}/root-causes",
         {"category": "people", "what": "x", "why": "y", "whom": "z"}),
        ("POST", "/v1/silences", {**silence, "duration": 3600}),
    ):  # fmt: skip
        response = api.client.request(method, path, headers=USER, json=body)
        assert response.status_code == 422, (path, response.text)
        [error] = response.json()["errors"]
        assert error["expected"] == "Extra inputs are not permitted", (path, error)
    assert api.store.count("silences") == 0
    assert api.client.get(f"/v1/inspections/{iid}").json()["title"] == "Launch check"
