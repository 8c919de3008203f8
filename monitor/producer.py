"""Producing accepted events to ``<prefix>.events``, keyed by ``org_code``.

A request's events are grouped by org and packed into JSON-array records of at most
``events_per_record`` events: the key keeps an org's events in one partition and in order, and
fewer, larger records spare the worker its per-record cost. The producer lingers a few
milliseconds so concurrent requests share produce calls. If the broker does not answer within
``request_timeout_seconds`` the caller gets :class:`BrokerUnavailable` (the API answers 503);
a retry of the same events is safe because the worker de-duplicates by ``event_id``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from monitor.errors import BrokerUnavailable
from monitor.settings import Settings

log = logging.getLogger(__name__)


def pack(events: Sequence[dict[str, Any]], per_record: int) -> list[tuple[bytes, bytes]]:
    """(key, value) records: events grouped by org, at most ``per_record`` to a record.

    >>> pack([{"org_code": "a", "n": 1}, {"org_code": "b"}, {"org_code": "a", "n": 2}], 10)
    [(b'a', b'[{"org_code":"a","n":1},{"org_code":"a","n":2}]'), (b'b', b'[{"org_code":"b"}]')]
    """
    by_org: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_org[event["org_code"]].append(event)
    return [
        (org.encode(), orjson.dumps(group[i : i + per_record]))
        for org, group in by_org.items()
        for i in range(0, len(group), per_record)
    ]


class EventProducer:
    def __init__(self, settings: Settings, bootstrap: str) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                timeout_ms = int(self.settings.request_timeout_seconds * 1000)
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap.split(","),
                    client_id="qualmon-api",
                    acks="all",
                    # Idempotent producing fails against the embedded broker (no InitProducerId);
                    # duplicates are harmless anyway because the worker de-duplicates.
                    enable_idempotence=False,
                    linger_ms=int(self.settings.producer_linger_seconds * 1000),
                    request_timeout_ms=timeout_ms,
                    max_request_size=max(1_048_576, self.settings.max_body_bytes * 2),
                )
                try:
                    await asyncio.wait_for(producer.start(), self.settings.request_timeout_seconds)
                except (KafkaError, OSError, TimeoutError) as exc:
                    await _quiet_stop(producer)
                    raise BrokerUnavailable(f"Kafka at {self.bootstrap} is unreachable") from exc
                self._producer = producer
            return self._producer

    async def ready(self) -> bool:
        try:
            producer = await self._ensure()
            await asyncio.wait_for(
                producer.client.force_metadata_update(), self.settings.request_timeout_seconds
            )
        except (BrokerUnavailable, KafkaError, OSError, TimeoutError):
            return False
        return True

    async def send(self, events: Sequence[dict[str, Any]]) -> None:
        """Produce every event or raise :class:`BrokerUnavailable`; no partial success is hidden."""
        producer = await self._ensure()
        records = pack(events, self.settings.events_per_record)

        async def produce_all() -> None:
            futures = [
                await producer.send(self.settings.events_topic, value=value, key=key)
                for key, value in records
            ]
            await asyncio.gather(*futures)

        try:
            # One deadline for the whole request: send() itself waits while metadata is missing.
            await asyncio.wait_for(produce_all(), self.settings.request_timeout_seconds)
        except (KafkaError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"Kafka did not take the events: {exc!r}") from exc

    async def stop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quiet_stop(producer)


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 5)
    except (KafkaError, OSError, TimeoutError) as exc:
        log.warning("producer did not stop cleanly: %r", exc)
