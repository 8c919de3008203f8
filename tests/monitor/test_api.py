"""The HTTP API in-process, with a real producer and a real SQLite store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from monitor.api import Context, create_api
from monitor.broker import free_port
from monitor.metrics import Metrics
from monitor.producer import EventProducer
from monitor.settings import Settings
from monitor.store import open_store
from tests.factories import at, call, policy
from tests.streams.examples import example

#: The receiving clock of the API under test: 2 March 2026 10:00 Shanghai (02:00 UTC).
NOW = 1_772_416_800


def _client(settings: Settings, bootstrap: str, now: float | None = None) -> TestClient:
    registry = CollectorRegistry()
    store = open_store(settings.store_url)
    ctx = Context(settings, EventProducer(settings, bootstrap), store, Metrics(registry), registry)
    if now is not None:
        ctx.clock = lambda: now
    return TestClient(create_api(ctx))


@pytest.fixture
def no_broker(tmp_path: Path) -> Iterator[TestClient]:
    """An API whose Kafka address has nobody listening (so a 503 shows an event got through)."""
    settings = Settings(data_dir=tmp_path, request_timeout_seconds=1, max_batch_events=3,
                        max_body_bytes=4096)  # fmt: skip
    with _client(settings, f"127.0.0.1:{free_port()}", now=NOW) as client:
        yield client


def test_broker_unreachable_is_503_with_retry_after(no_broker: TestClient) -> None:
    response = no_broker.post("/v1/events", json=policy("p-1", at(1)))
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "nothing was accepted" in response.json()["detail"]
    assert no_broker.get("/readyz").status_code == 503
    assert no_broker.get("/healthz").json() == {"status": "ok"}


def test_too_many_events_is_413_naming_the_limit(no_broker: TestClient) -> None:
    response = no_broker.post("/v1/events", json=[policy(f"p-{i}", at(1)) for i in range(4)])
    assert response.status_code == 413
    assert "at most 3 (QUALMON_MAX_BATCH_EVENTS)" in response.json()["detail"]


def test_too_large_body_is_413_naming_the_limit(no_broker: TestClient) -> None:
    response = no_broker.post("/v1/events", content=b"[" + b" " * 5000 + b"]")
    assert response.status_code == 413
    assert response.json()["detail"] == "body has 5002 bytes; at most 4096 (QUALMON_MAX_BODY_BYTES)"


def test_field_limits_are_named(no_broker: TestClient) -> None:
    response = no_broker.post("/v1/events", json=policy("p-1", at(1), agent_id="A" * 65))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "agent_id"


def test_not_json_and_empty_batches_are_422(no_broker: TestClient) -> None:
    response = no_broker.post("/v1/events", content=b"{nope")
    assert response.status_code == 422 and "not JSON" in response.json()["detail"]
    assert no_broker.post("/v1/events", json=[]).status_code == 422
    response = no_broker.post("/v1/events", json=[1])
    assert response.json()["errors"] == [
        {"index": 0, "field": "(event)", "value": None, "expected": "a JSON object"}
    ]


def test_an_event_from_the_future_is_refused_naming_event_time(no_broker: TestClient) -> None:
    # Accepted, an event dated 2099 moved the watermark there: the current bucket closed early
    # and every real event after it was late. More than the allowed lateness (3600 s) ahead of
    # the receiving clock, it is refused, and the batch with it.
    future = call("c-2099", "2099-01-01T00:00:00+08:00", True)
    response = no_broker.post("/v1/events", json=[call("c-1", at(9), True), future])
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "index": 1,
            "field": "event_time",
            "value": "2099-01-01T00:00:00+08:00",
            "expected": "Input should be at most 3600 s after the receiving clock "
            "(2026-03-02T02:00:00+00:00); a later event_time would close buckets that are still "
            "open (QUALMON_ALLOWED_LATENESS_SECONDS)",
        }
    ]
    # Up to the allowed lateness ahead is clock skew, not the future: it gets through (to the
    # missing broker).
    assert no_broker.post("/v1/events", json=call("c-2", at(11), True)).status_code == 503
    assert no_broker.post("/v1/events", json=call("c-3", at(11.001), True)).status_code == 422


LOOSE = {
    "answered as a word": (["payload", "answered"], "yes"),
    "answered as a number": (["payload", "answered"], 1),
    "csat as a string": (["payload", "csat_1_5"], "4"),
    "event_time as epoch seconds": (["event_time"], 1772416800),
    "blank event_id": (["event_id"], "   "),
    "answered and abandoned": (["payload", "abandoned"], True),
    "complaint closed before received": (["payload", "received_at"], "2026-03-22T09:00:00+08:00"),
}


@pytest.mark.parametrize(("path", "value"), LOOSE.values(), ids=LOOSE.keys())
def test_loose_or_contradictory_input_is_refused_naming_field_and_value(
    no_broker: TestClient, path: list[str], value: object
) -> None:
    kind = {"csat_1_5": "survey.response", "received_at": "complaint.closed"}.get(path[-1])
    data = example(kind or "call.completed")
    target = data["payload"] if path[0] == "payload" else data
    target[path[-1]] = value
    response = no_broker.post("/v1/events", json=data)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert (error["field"], error["value"]) == (".".join(path), value)
    assert error["expected"]


def test_event_schema_and_openapi_are_published(no_broker: TestClient) -> None:
    schema = no_broker.get("/v1/schema/events").json()
    text = str(schema)
    for event_type in ("policy.issued", "complaint.received", "target.set"):
        assert event_type in text
    paths = no_broker.get("/openapi.json").json()["paths"]
    assert {"/v1/events", "/v1/anomalies", "/v1/indicators", "/metrics"} <= set(paths)


def test_metrics_count_rejected_events(no_broker: TestClient) -> None:
    no_broker.post("/v1/events", json=[policy("p-1", at(1)), {"event_type": "x"}])
    metrics = no_broker.get("/metrics").text
    assert 'qualmon_http_events_total{outcome="rejected"} 2.0' in metrics


def test_anomalies_are_filtered_and_paginated(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = open_store(settings.store_url)
    rows = [
        {"anomaly_id": f"a{i}", "indicator": "hotline_answer_rate" if i % 2 else "loss_ratio",
         "org": "4403", "product_line": "*", "channel": "*",
         "bucket_start": f"2026-03-0{i + 1}T16:00:00+00:00", "bucket_seconds": 86400,
         "value": 0.5, "expected": 0.9, "lower": 0.8, "upper": 1.0, "score": 0.6, "k": 5.0,
         "n": 10.0, "detector": "ProportionDetector", "severity": "minor"}
        for i in range(5)
    ]  # fmt: skip
    store.save_checkpoint("w", b"state", anomalies=rows)
    store.save_checkpoint("w", b"state", anomalies=rows)  # redelivered: stored once
    store.close()
    with _client(settings, f"127.0.0.1:{free_port()}") as client:
        page = client.get("/v1/anomalies", params={"limit": 2}).json()
        assert page["total"] == 5 and [a["anomaly_id"] for a in page["items"]] == ["a4", "a3"]
        page = client.get("/v1/anomalies", params={"limit": 2, "offset": 4}).json()
        assert [a["anomaly_id"] for a in page["items"]] == ["a0"]
        odd = client.get("/v1/anomalies", params={"indicator": "hotline_answer_rate"}).json()
        assert [a["anomaly_id"] for a in odd["items"]] == ["a3", "a1"]
        window = client.get(
            "/v1/anomalies",
            params={"since": "2026-03-02T00:00:00+08:00", "until": "2026-03-04T00:00:00+08:00"},
        ).json()
        assert [a["anomaly_id"] for a in window["items"]] == ["a1", "a0"]  # Shanghai days 2, 3
        assert client.get("/v1/anomalies/a2").json()["indicator"] == "loss_ratio"
        missing = client.get("/v1/anomalies/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        bad = client.get("/v1/anomalies", params={"since": "yesterday"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "since"


@pytest.mark.parametrize(
    ("path", "name", "listed"),
    [
        ("/v1/indicators", "happiness", "loss_ratio"),
        ("/v1/anomalies", "nonexistent", "complaints_concentration"),
    ],
)
def test_an_unknown_indicator_filter_is_refused_by_name(
    no_broker: TestClient, path: str, name: str, listed: str
) -> None:
    response = no_broker.get(path, params={"indicator": name})
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert (error["field"], error["value"]) == ("indicator", name)
    assert listed in error["expected"]


def _anomaly(anomaly_id: str, **overrides: object) -> dict:
    row = {"anomaly_id": anomaly_id, "indicator": "hotline_answer_rate", "org": "4403",
           "product_line": "*", "channel": "*", "bucket_start": "2026-03-02T16:00:00+00:00",
           "bucket_seconds": 86400, "value": 0.5, "expected": 0.9, "lower": 0.8, "upper": 1.0,
           "score": 0.6, "k": 5.0, "n": 10.0, "detector": "ProportionDetector",
           "severity": "minor"}  # fmt: skip
    return {**row, **overrides}


def test_feedback_is_validated_stored_and_404_for_unknown_ids(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = open_store(settings.store_url)
    store.save_checkpoint("w", b"state", anomalies=[_anomaly("a1")])
    store.close()
    with _client(settings, f"127.0.0.1:{free_port()}") as client:
        url = "/v1/anomalies/a1/feedback"
        bad = client.post(url, json={"verdict": "meh"})
        assert bad.status_code == 422
        assert [(e["field"], e["value"]) for e in bad.json()["errors"]] == [("verdict", "meh")]
        extra = client.post(url, json={"verdict": "expected", "notes": "typo"})
        assert extra.status_code == 422 and extra.json()["errors"][0]["field"] == "notes"
        assert client.post(url, content=b"{nope").status_code == 422
        long = client.post(url, json={"verdict": "expected", "note": "x" * 2001})
        assert long.status_code == 422 and long.json()["errors"][0]["field"] == "note"
        missing = client.post("/v1/anomalies/nope/feedback", json={"verdict": "expected"})
        assert missing.status_code == 404 and "nope" in missing.json()["detail"]
        ok = client.post(
            url,
            json={"verdict": "expected", "note": "bank campaign"},
            headers={"X-Qualmon-User": "li.na"},
        )
        assert ok.status_code == 201
        body = ok.json()
        assert (body["anomaly_id"], body["verdict"], body["note"], body["actor"]) == (
            "a1", "expected", "bank campaign", "li.na"
        )  # fmt: skip
        given = datetime.fromisoformat(body["created_at"])
        assert given.utcoffset() == timedelta(0)
        assert abs(given.timestamp() - time.time()) < 60
        metrics = client.get("/metrics").text
        assert 'qualmon_anomaly_feedback_total{verdict="expected"} 1.0' in metrics
        shown = client.get("/v1/anomalies/a1").json()["feedback"]
        assert [(f["verdict"], f["note"]) for f in shown] == [("expected", "bank campaign")]
    store = open_store(settings.store_url)
    # Only the valid verdict was stored; the worker reads it with its anomaly's fields.
    [row] = store.feedback_after(0)
    assert (row["verdict"], row["indicator"], row["org"], row["value"]) == (
        "expected", "hotline_answer_rate", "4403", 0.5
    )  # fmt: skip
    assert store.feedback_after(row["feedback_id"]) == []
    store.close()


def test_anomalies_have_a_category_and_detail_and_filter_by_category(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = open_store(settings.store_url)
    store.save_checkpoint("w", b"s", anomalies=[
        _anomaly("b1"),
        _anomaly("d1", indicator="feed_silence", category="data_quality",
                 detail='{"scope": "org", "org": "4403"}'),
    ])  # fmt: skip
    store.close()
    with _client(settings, f"127.0.0.1:{free_port()}") as client:
        both = client.get("/v1/anomalies").json()["items"]
        assert {(a["anomaly_id"], a["category"]) for a in both} == {
            ("b1", "business"), ("d1", "data_quality")
        }  # fmt: skip
        quality = client.get("/v1/anomalies", params={"category": "data_quality"}).json()
        assert [a["anomaly_id"] for a in quality["items"]] == ["d1"]
        assert quality["items"][0]["detail"] == {"scope": "org", "org": "4403"}
        bad = client.get("/v1/anomalies", params={"category": "gossip"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "category"


def test_indicators_over_rolling_windows(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    store = open_store(settings.store_url)
    as_of = 1_772_467_200  # 3 March 2026 00:00 Shanghai
    sums = orjson.dumps({"inspections": 50.0, "inspections_compliant": 45.0, "calls": 10.0,
                         "calls_answered": 8.0, "legacy_field": 3.0})  # fmt: skip
    store.save_windows(
        [
            ("4403", "*", "*", "30d", as_of, sums),
            ("4403", "*", "*", "7d", as_of, orjson.dumps({"calls": 1.0})),
        ]
    )
    store.close()
    with _client(settings, f"127.0.0.1:{free_port()}") as client:
        rows = client.get("/v1/indicators", params={"window": "30d", "org": "4403"}).json()
        got = {r["indicator"]: r for r in rows}
        assert set(got) == {"compliance_rate", "hotline_answer_rate", "hotline_answer_20s_rate"}
        compliance = got["compliance_rate"]
        assert (compliance["value"], compliance["k"], compliance["n"]) == (0.9, 45.0, 50.0)
        assert round(compliance["interval_lower"], 4) == 0.7864
        assert compliance["window"] == "30d" and compliance["as_of"].startswith("2026-03-02T16")
        assert compliance["score"] is None  # windows are shown, buckets are judged
        one = client.get(
            "/v1/indicators", params={"window": "7d", "indicator": "hotline_answer_rate"}
        )
        assert [(r["value"], r["n"]) for r in one.json()] == [(0.0, 1.0)]
        bad = client.get("/v1/indicators", params={"window": "fortnight"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "window"


@pytest.mark.parametrize(
    "name",
    ["loss_ratio", "complaints_concentration", "surrenders_concentration",
     "cooling_off_cancels_concentration", "claim_sla_breach", "complaint_sla_breach",
     "feed_silence", "duplicate_surge", "amount_unit_jump"],
)  # fmt: skip
def test_anomalies_filter_on_every_name_an_anomaly_can_have(
    no_broker: TestClient, name: str
) -> None:
    response = no_broker.get("/v1/anomalies", params={"indicator": name})
    assert response.status_code == 200 and response.json()["total"] == 0
