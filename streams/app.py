"""The one module that owns the Faust app: built from settings, agents wired to a Pipeline.

The agent consumes ``<prefix>.events`` as raw bytes with manual acknowledgement: a record is
acknowledged (and so becomes committable) only after the checkpoint that covers it has been
written to the store and its anomalies and dead letters have been delivered. No ``group_by``:
producers already key by ``org_code``; no Faust tables: see :mod:`streams.pipeline`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import orjson

from monitor.settings import Settings
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass
class WorkerStatus:
    """What /readyz needs to know about the worker running in this process."""

    assigned: set[int] = field(default_factory=set)


def broker_urls(bootstrap: str) -> list[str]:
    """``host:port,host:port`` -> Faust's list of ``kafka://`` URLs."""
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def build_app(
    settings: Settings, bootstrap: str, pipeline: Pipeline, status: WorkerStatus
) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=broker_urls(bootstrap),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        datadir=str(settings.data_dir / "faust"),
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        consumer_auto_offset_reset="earliest",
        producer_linger=settings.producer_linger_seconds,
        topic_allow_declare=False,  # topics are created by monitor.topics, with our partitions
        topic_disable_leader=True,
    )
    events = app.topic(settings.events_topic, value_serializer="raw", key_serializer="raw")
    dlq = app.topic(settings.dlq_topic, value_serializer="raw", key_serializer="raw")
    anomalies = app.topic(settings.anomalies_topic, value_serializer="raw", key_serializer="raw")
    lock = asyncio.Lock()
    pending_sends: list[Any] = []

    async def checkpoint(force: bool = False) -> None:
        """Deliver, persist, then acknowledge — in that order, so a crash repeats, never loses."""
        async with lock:
            flush = pipeline.take_flush(force)
            if flush is None:  # the state was saved moments ago; the next one covers these
                return
            sends = pending_sends[:]
            pending_sends.clear()
            for a in flush.anomalies:
                sends.append(
                    await anomalies.send(key=a.org.encode(), value=orjson.dumps(a.as_dict()))
                )
            if sends:
                await asyncio.gather(*sends)
            try:
                pipeline.save(flush)
            except Exception as exc:
                # Without a checkpoint nothing can be acknowledged safely: stop rather than
                # buffer unboundedly. Kafka redelivers everything unacknowledged on restart.
                log.critical("checkpoint failed, stopping the worker: %r", exc)
                await app.crash(exc)
                raise
            for event in flush.acks:
                event.ack()

    @app.agent(events, name=f"{settings.topic_prefix}-aggregate")
    async def aggregate(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + settings.checkpoint_seconds
        manual: Any = cast(Any, stream).noack()  # StreamT does not declare noack(); Stream does
        async for event in manual.events():
            message = event.message
            try:
                dead = pipeline.handle(
                    message.value, message.topic, message.partition, message.offset
                )
            except Exception as exc:
                # Bad input never gets here (it becomes a dead letter); this is a bug or a
                # broken store. Stop the worker: Kafka redelivers the unacknowledged records to
                # the restarted worker, whereas carrying on would skip them until then.
                log.critical(
                    "stopping: record %s/%s@%s could not be processed: %r",
                    message.topic, message.partition, message.offset, exc,
                )  # fmt: skip
                await app.crash(exc)
                raise
            for letter in dead:
                pending_sends.append(await dlq.send(key=message.key, value=orjson.dumps(letter)))
            pipeline.acks.append(event)
            if pipeline.anomalies or loop.time() >= due:
                await checkpoint()
                due = loop.time() + settings.checkpoint_seconds

    @app.timer(interval=settings.checkpoint_seconds)
    async def idle_checkpoint() -> None:
        # Covers the tail of a burst: without it the last records would wait for the next one.
        if pipeline.acks or pipeline.anomalies:
            await checkpoint()

    # mode's signal stubs do not accept async receivers, though it awaits them.
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        assigned = args[0]
        status.assigned = {tp.partition for tp in assigned if tp.topic == settings.events_topic}
        pipeline.metrics.assigned_partitions.set(len(status.assigned))
        log.info("assigned partitions %s of %s", sorted(status.assigned), settings.events_topic)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        revoked = args[0]
        await checkpoint(force=True)
        status.assigned -= {tp.partition for tp in revoked if tp.topic == settings.events_topic}
        pipeline.metrics.assigned_partitions.set(len(status.assigned))

    app.qualmon_checkpoint = checkpoint  # type: ignore[attr-defined]
    return app
