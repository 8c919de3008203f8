"""Create qualmon's topics if they are missing (idempotent; used on every start)."""

from __future__ import annotations

import logging
import time

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from monitor.errors import BrokerUnavailable
from monitor.settings import Settings

log = logging.getLogger(__name__)


def ensure_topics(bootstrap: str, settings: Settings, timeout: float = 30.0) -> None:
    """Create the input (``settings.partitions`` partitions), DLQ and output topics."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin = KafkaAdminClient(
                bootstrap_servers=bootstrap.split(","), client_id="qualmon-admin",
                request_timeout_ms=10_000,
            )  # fmt: skip
            break
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise BrokerUnavailable(f"Kafka at {bootstrap} is unreachable: {exc}") from exc
            time.sleep(0.5)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, settings.partitions if name == settings.events_topic else 1, 1)
            for name in settings.all_topics
            if name not in existing
        ]
        for topic in wanted:
            try:
                admin.create_topics([topic])
                log.info("created topic %s (%d partitions)", topic.name, topic.num_partitions)
            except TopicAlreadyExistsError:
                pass  # another process created it first
    finally:
        admin.close()
