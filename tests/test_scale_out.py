"""Scale-out on the real broker: two ``qualmon worker`` processes in one consumer group share the
input partitions — one of them killed mid-stream and restarted — and end with the same indicator
values and anomalies as one worker over the same input; their metrics add up without double
counting."""

from __future__ import annotations

import os
import signal
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path

import orjson
import pytest
from kafka import KafkaAdminClient, KafkaProducer

from monitor.broker import free_port
from monitor.settings import Settings
from monitor.topics import ensure_topics
from tests.conftest import Service, wait_until
from tests.deploy.live import prometheus, query
from tests.factories import at, call, premium
from tests.streams.stages import dump

pytestmark = pytest.mark.broker

PARTITIONS = 4
#: Eight selling orgs under two provinces: the topic is keyed by org, so they spread over the
#: partitions, and the province and head-office slices need every partition's sums.
ORGS = [f"00/{p}/{p}{b:02d}" for p in ("44", "45") for b in range(1, 5)]
HOURS = 24
OUTAGE = ("00/45/4502", 20)  # this org answers 4 calls of 30 in this hour
LAST_BUCKET = int(datetime.fromisoformat(at(HOURS - 1)).timestamp())


def org_hour(path: str, hour: int) -> list[dict]:
    """One org's hour: 30 calls (28 answered, or 4 in the outage) and two premium receipts."""
    answered = 4 if (path, hour) == OUTAGE else 28
    tag = f"{path.rsplit('/', 1)[-1]}-h{hour}"
    events = [
        call(f"{tag}-c{i}", at(hour + i / 31), i < answered, org_path=path) for i in range(30)
    ]
    return events + [premium(f"{tag}-m{i}", at(hour + 0.4 + i / 5), org_path=path) for i in (0, 1)]


def input_records() -> list[tuple[bytes, bytes, int]]:
    """(key, value, events) per org and hour, in hour order; a last record per org at 25:30
    moves the watermark past hour 23 plus the lateness."""
    out = []
    for hour in range(HOURS):
        for path in ORGS:
            events = org_hour(path, hour)
            out.append((path.rsplit("/", 1)[-1].encode(), orjson.dumps(events), len(events)))
    for path in ORGS:
        last = [call(f"{path}-last", at(25.5), True, org_path=path)]
        out.append((path.rsplit("/", 1)[-1].encode(), orjson.dumps(last), 1))
    return out


def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes, int]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    try:
        for key, value, _ in records:
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=30)
    finally:
        producer.close()


def finished(db: Path) -> bool:
    """Hour 23 is closed and stored, and no partial waits to be merged."""
    if not db.exists():
        return False
    with sqlite3.connect(db) as conn:
        try:
            (latest,) = conn.execute("SELECT MAX(bucket_start) FROM indicator_values").fetchone()
            (waiting,) = conn.execute("SELECT COUNT(*) FROM partials").fetchone()
        except sqlite3.OperationalError:  # not migrated yet
            return False
    return latest is not None and latest >= LAST_BUCKET and waiting == 0


def committed(bootstrap: str, group: str, topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="qualmon-test")
    try:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
    finally:
        admin.close()
    return sum(m.offset for tp, m in offsets.items() if tp.topic == topic and m.offset > 0)


def new_topics(bootstrap: str) -> Settings:
    """A fresh set of topics on the session broker (their prefix doubles as group name)."""
    settings = Settings(
        kafka_bootstrap=bootstrap, topic_prefix=f"t{uuid.uuid4().hex[:10]}",
        partitions=PARTITIONS, request_timeout_seconds=5,
    )  # fmt: skip
    ensure_topics(bootstrap, settings)
    return settings


@pytest.fixture
def topics(broker) -> Settings:
    return new_topics(broker.bootstrap)


def start_worker(topics: Settings, group: str, db: Path, workdir: Path, name: str) -> Service:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QUALMON_")},
        "QUALMON_KAFKA_BOOTSTRAP": topics.kafka_bootstrap or "",
        "QUALMON_TOPIC_PREFIX": topics.topic_prefix,
        "QUALMON_PARTITIONS": str(PARTITIONS),
        "QUALMON_APP_ID": group,
        "QUALMON_DATABASE_URL": f"sqlite:///{db}",
        "QUALMON_DATA_DIR": str(workdir / name),
        "QUALMON_HTTP_PORT": str(port),
        "QUALMON_BUCKET_SECONDS": "3600",
        "QUALMON_ALLOWED_LATENESS_SECONDS": "600",
        "QUALMON_CHECKPOINT_SECONDS": "0.5",
        "QUALMON_SESSION_TIMEOUT_SECONDS": "6",
    }
    return Service(env, workdir / f"{name}.log", port, command="worker").start(ready_timeout=90)


def stop(worker: Service) -> None:
    worker.stop()
    worker.client.close()


def test_two_workers_with_one_killed_and_restarted_give_what_one_gives(
    topics: Settings, tmp_path: Path
) -> None:
    bootstrap, topic = topics.kafka_bootstrap or "", topics.events_topic
    group = topics.topic_prefix  # unique per test, like the topics
    records = input_records()

    # One worker over all the input: the reference.
    produce(bootstrap, topic, records)
    reference_db = tmp_path / "alone.db"
    alone = start_worker(topics, f"{group}-alone", reference_db, tmp_path, "alone")
    try:
        wait_until(lambda: finished(reference_db), 120, "the lone worker to finish")
    finally:
        stop(alone)
    reference = dump(reference_db)
    assert len(reference[0]) > 1000 and reference[1]  # readings, and the outage's anomalies

    # Two workers in another group over the same topic: they split the partitions.
    pair = f"{group}-pair"
    db = tmp_path / "shared.db"
    a = start_worker(topics, pair, db, tmp_path, "a")
    b = start_worker(topics, pair, db, tmp_path, "b")
    workers = [a, b]
    try:
        owned = [w.metric("qualmon_worker_assigned_partitions") for w in workers]
        assert min(owned) > 0 and sum(owned) == PARTITIONS
        wait_until(lambda: finished(db), 120, "the pair to finish")
        wait_until(lambda: committed(bootstrap, pair, topic) == len(records), 60,
                   "the pair to commit every record")  # fmt: skip
        # Each event is counted once, by the worker that owned its partition at the time.
        accepted = sum(w.metric("qualmon_events_total", outcome="accepted") for w in workers)
        assert accepted == sum(n for _, _, n in records)
        # One of them closes buckets, and only that one exports the indicators.
        [closing] = [w for w in workers if w.metric("qualmon_worker_closing") == 1]
        other = b if closing is a else a
        total = {"org": "*", "product_line": "*", "channel": "*"}
        assert closing.metric("qualmon_indicator_hotline_answer_ratio", **total) > 0
        assert other.metric("qualmon_indicator_hotline_answer_ratio", **total) == 0
        assert dump(db) == reference
        # And in PromQL, as a dashboard or an alert rule sums over the workers.
        with prometheus([a.port, b.port]) as prom:

            def scraped() -> bool:
                return len(query(prom, 'up{job="qualmon-worker"} == 1')) == 2

            wait_until(scraped, 30, "Prometheus to scrape both workers")
            [row] = query(prom, 'sum(qualmon_events_total{outcome="accepted"})')
            assert float(row["value"][1]) == accepted
            [row] = query(prom, "sum(qualmon_worker_closing)")
            assert float(row["value"][1]) == 1
            ratio = 'qualmon_indicator_hotline_answer_ratio{org="*",product_line="*",channel="*"}'
            assert len(query(prom, ratio)) == 1  # one series, from the closing worker
    finally:
        for w in workers:
            stop(w)

    # Again, with the closing worker killed mid-stream and restarted: half the input is read,
    # the closer dies without a last checkpoint, the rest arrives while it is down.
    topics = new_topics(bootstrap)
    topic, again = topics.events_topic, topics.topic_prefix
    db = tmp_path / "again.db"
    produce(bootstrap, topic, records[: len(records) // 2])
    workers = [start_worker(topics, again, db, tmp_path, name) for name in ("a2", "b2")]
    try:
        # Offsets are committed a few seconds behind the checkpoints: killed now, the closer
        # leaves records that it counted and stored but that Kafka will hand out again.
        wait_until(lambda: committed(bootstrap, again, topic) >= len(records) // 4, 120,
                   "the pair to get under way")  # fmt: skip
        [closing] = [w for w in workers if w.metric("qualmon_worker_closing") == 1]
        closing.stop(signal.SIGKILL)
        produce(bootstrap, topic, records[len(records) // 2 :])
        closing.start(ready_timeout=90)  # and back: the group shares the partitions again
        wait_until(lambda: finished(db), 180, "the pair to finish after the kill")
        assert dump(db) == reference
    finally:
        for w in workers:
            stop(w)
