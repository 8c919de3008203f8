"""qualmon as a user meets it: a running service on the real broker, driven over HTTP and Kafka."""

from __future__ import annotations

import signal

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from monitor.settings import Settings
from tests.conftest import wait_until
from tests.factories import at, call, hotline_hours, policy, premium

pytestmark = pytest.mark.broker


def post(service, events):
    """Post in batches of 1,000; returns how many the API accepted."""
    accepted = 0
    for i in range(0, len(events), 1000):
        response = service.client.post("/v1/events", json=events[i : i + 1000])
        assert response.status_code == 202, response.text
        accepted += response.json()["accepted"]
    return accepted


def records(settings: Settings, topic: str, timeout_ms: int = 3000) -> list:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", consumer_timeout_ms=timeout_ms,
    )  # fmt: skip
    partitions = consumer.partitions_for_topic(topic) or {0}
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    out = list(consumer)
    consumer.close()
    return out


def test_posted_events_become_indicators_and_an_outage_an_anomaly(service_factory):
    service = service_factory().start()
    normal = hotline_hours(range(0, 14), calls=100, answered=95, prefix="n")
    outage = hotline_hours(range(14, 15), calls=100, answered=40, prefix="o")
    closer = [call("closer", at(16.5), True)]  # moves the watermark past hour 14 + lateness
    assert post(service, normal + outage + closer) == len(normal + outage + closer)

    wait_until(lambda: service.client.get("/v1/anomalies").json()["total"], 60, "an anomaly")
    # Branch 4403 is at depth 3 of the org tree: its gauges are left out at the default
    # QUALMON_METRIC_ORGS_DEPTH of 2, and its province 44 (all of these calls) is exported.
    ratio = service.metric("qualmon_indicator_hotline_answer_ratio",
                           org="44", product_line="*", channel="*")  # fmt: skip
    assert ratio == pytest.approx(0.40)
    assert service.metric("qualmon_indicator_hotline_answer_ratio",
                          org="4403", product_line="*", channel="*") == 0  # absent  # fmt: skip
    assert service.metric("qualmon_events_total", event_type="call.completed",
                          outcome="accepted") == len(normal + outage + closer)  # fmt: skip

    page = service.client.get("/v1/anomalies", params={"indicator": "hotline_answer_rate",
                                                       "org": "4403"}).json()  # fmt: skip
    assert page["total"] >= 1
    anomaly = page["items"][0]
    assert anomaly["value"] == pytest.approx(0.40)
    assert anomaly["bucket_start"].startswith(at(14)[:13].replace("T", "T"))
    assert anomaly["expected"] == pytest.approx(0.95, abs=0.01)
    assert anomaly["score"] >= 0.5 and anomaly["k"] == 40 and anomaly["n"] == 100
    assert service.metric("qualmon_anomalies_total", indicator="hotline_answer_rate") >= 1

    latest = service.client.get("/v1/indicators", params={
        "indicator": "hotline_answer_rate", "org": "4403", "product_line": "*", "channel": "*"
    }).json()  # fmt: skip
    assert [r["value"] for r in latest] == [pytest.approx(0.40)]

    settings = Settings(kafka_bootstrap=service.env["QUALMON_KAFKA_BOOTSTRAP"],
                        topic_prefix=service.env["QUALMON_TOPIC_PREFIX"])  # fmt: skip
    published = [orjson.loads(r.value) for r in records(settings, settings.anomalies_topic)]
    assert anomaly["anomaly_id"] in {a["anomaly_id"] for a in published}
    assert anomaly["category"] == "business"

    # Feedback is stored; the day's window is served from the sums the worker checkpointed:
    # hours 0-14, 14 × 95 + 40 answered of 1,500 calls.
    url = f"/v1/anomalies/{anomaly['anomaly_id']}/feedback"
    assert service.client.post(url, json={"verdict": "true_positive"}).status_code == 201
    params = {"window": "day", "indicator": "hotline_answer_rate", "org": "4403",
              "product_line": "*", "channel": "*"}  # fmt: skip
    day = wait_until(lambda: service.client.get("/v1/indicators", params=params).json(), 30,
                     "the day's window")  # fmt: skip
    assert [(r["value"], r["k"], r["n"]) for r in day] == [(pytest.approx(1370 / 1500), 1370, 1500)]


def test_invalid_batch_is_rejected_whole_and_nothing_reaches_kafka(service_factory, kafka_settings):
    service = service_factory().start()
    good = policy("p-1", at(1))
    bad = policy("p-2", at(1), premium="-5")
    response = service.client.post("/v1/events", json=[good, bad, {"event_type": "nope"}])
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "2 of 3 events are invalid; none accepted"
    named = {(e["index"], e["field"]): e for e in body["errors"]}
    assert named[(1, "payload.premium")]["value"] == "-5"
    assert "greater than or equal to 0" in named[(1, "payload.premium")]["expected"]
    assert named[(2, "event_type")]["value"] == "nope"
    assert records(kafka_settings, kafka_settings.events_topic) == []

    assert service.client.post("/v1/events", json=good).status_code == 202
    assert len(records(kafka_settings, kafka_settings.events_topic)) == 1


def test_poison_records_go_to_the_dlq_and_the_worker_goes_on(service_factory, kafka_settings):
    service = service_factory().start()
    producer = KafkaProducer(bootstrap_servers=kafka_settings.kafka_bootstrap)
    topic = kafka_settings.events_topic
    producer.send(topic, key=b"4403", value=b"\xff\x00 not json", partition=0).get(10)
    half_bad = [policy("ok-1", at(1)), {**policy("bad-1", at(1)), "channel": "PIGEON"}]
    producer.send(topic, key=b"4403", value=orjson.dumps(half_bad), partition=0).get(10)
    producer.close()
    post(service, [policy("ok-2", at(1))])

    wait_until(lambda: service.metric("qualmon_events_total", outcome="accepted") == 2, 30,
               "the two valid events counted")  # fmt: skip
    assert service.metric("qualmon_dlq_messages_total", reason="not_json") == 1
    assert service.metric("qualmon_dlq_messages_total", reason="invalid_event") == 1
    letters = wait_until(lambda: records(kafka_settings, kafka_settings.dlq_topic), 20, "DLQ")
    by_reason = {orjson.loads(r.value)["reason"]: orjson.loads(r.value) for r in letters}
    assert by_reason["not_json"]["source"] == {"topic": topic, "partition": 0, "offset": 0}
    assert by_reason["invalid_event"]["source"]["offset"] == 1
    assert by_reason["invalid_event"]["index"] == 1
    assert by_reason["invalid_event"]["errors"][0]["field"] == "channel"


def test_resent_events_count_once_even_across_a_restart(service_factory):
    first = service_factory().start()
    batch = [premium(f"r-{i}", at(1 + i / 100), amount="100.00") for i in range(50)]
    assert post(first, batch) == 50
    post(first, batch[:20])  # a producer retrying part of its batch
    wait_until(lambda: first.metric("qualmon_events_total", outcome="duplicate") == 20, 30,
               "20 duplicates")  # fmt: skip
    assert first.metric("qualmon_events_total", outcome="accepted") == 50
    assert first.stop(signal.SIGKILL) != 0  # a crash, not a clean stop

    second = service_factory().start()
    post(second, batch[10:30])  # re-sent again after the restart
    post(second, [premium("closer", at(3.5), amount="1.00")])  # closes hour 1
    query = {"indicator": "premium_income", "org": "4403", "product_line": "*", "channel": "*"}
    rows = wait_until(lambda: second.client.get("/v1/indicators", params=query).json(), 60,
                      "the closed hour in the store")  # fmt: skip
    assert [(r["value"], r["k"]) for r in rows] == [(5000.0, 50.0)]


def test_late_events_are_counted_as_late(service_factory):
    service = service_factory().start()
    post(service, [policy("a", at(1)), policy("b", at(3))])  # closes hour 1 (lateness 10 min)
    wait_until(lambda: service.metric("qualmon_buckets_closed_total") >= 1, 30, "bucket close")
    post(service, [policy("late-1", at(1.5))])
    wait_until(lambda: service.metric("qualmon_events_total", event_type="policy.issued",
                                      outcome="late") == 1, 30, "the late event")  # fmt: skip
    assert service.metric("qualmon_events_total", outcome="accepted") == 2
