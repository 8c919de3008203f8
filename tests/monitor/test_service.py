"""Stopping a worker: SIGTERM right after a burst ends cleanly, with a last checkpoint."""

from __future__ import annotations

import sqlite3

import pytest
from kafka import KafkaProducer

from tests.conftest import wait_until
from tests.factories import at, call

pytestmark = pytest.mark.broker


def test_sigterm_right_after_a_burst_checkpoints_and_exits_cleanly(
    service_factory, kafka_settings
) -> None:
    # A long checkpoint interval, so the records below are surely not yet acknowledged when
    # SIGTERM arrives; Faust's shutdown waits for their acknowledgement, which only a
    # checkpoint gives. Without the last checkpoint on stop the process hangs until killed.
    service = service_factory(QUALMON_CHECKPOINT_SECONDS="600").start()
    assert (
        service.client.post(
            "/v1/events", json=[call(f"s-{i}", at(1 + i / 100), True) for i in range(50)]
        ).status_code
        == 202
    )
    producer = KafkaProducer(bootstrap_servers=kafka_settings.kafka_bootstrap)
    producer.send(kafka_settings.events_topic, key=b"4401", value=b"not json")
    producer.flush()
    producer.close()
    wait_until(lambda: service.metric("qualmon_dlq_messages_total") == 1, 30, "the dead letter")

    assert service.stop() == 0  # a hang would end in SIGKILL after 30 s: -9

    with sqlite3.connect(kafka_settings.data_dir / "qualmon.db") as db:
        (remembered,) = db.execute("SELECT count(*) FROM seen_events").fetchone()
    assert remembered == 50  # the last checkpoint covered every event read
