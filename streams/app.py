"""The one module that owns the Faust app: built from settings, agents wired to a Pipeline.

The agent consumes ``<prefix>.events`` as raw bytes with manual acknowledgement: a record is
acknowledged (and so becomes committable) only after the checkpoint that covers it has been
written to the store and its anomalies and dead letters have been delivered. No ``group_by``:
producers already key by ``org_code``; no Faust tables: see :mod:`streams.pipeline`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import faust
import orjson
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from monitor.settings import Settings
from streams.pipeline import Flush, Pipeline

log = logging.getLogger(__name__)


@dataclass
class WorkerStatus:
    """What /readyz needs to know about the worker running in this process."""

    assigned: set[int] = field(default_factory=set)


def broker_urls(bootstrap: str) -> list[str]:
    """``host:port,host:port`` -> Faust's list of ``kafka://`` URLs."""
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def build_app(
    settings: Settings,
    bootstrap: str,
    pipeline: Pipeline,
    status: WorkerStatus,
    after_checkpoint: Callable[[Flush], None] | None = None,
) -> faust.App:
    """``after_checkpoint`` sees each stored and acknowledged checkpoint (the alert engine);
    it must not block: it may write to the store, never wait on the network."""
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
    #: Next offset to process per owned input partition, for the consumer-lag gauge.
    positions: dict[int, int] = {}

    def highwater(tp: TP) -> int | None:
        """The end offset the consumer saw on its last fetch of ``tp``; None when unknown."""
        try:
            return app.consumer.highwater(tp)
        except (ConsumerNotStarted, AssertionError):
            # aiokafka asserts the partition is assigned: it was revoked a moment ago. Not
            # worth stopping the worker for; the partition's gauge goes with the revocation.
            return None

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
            if after_checkpoint is not None:
                after_checkpoint(flush)

    @app.agent(events, name=f"{settings.topic_prefix}-aggregate")
    async def aggregate(stream: faust.StreamT) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + settings.checkpoint_seconds
        manual: Any = cast(Any, stream).noack()  # StreamT does not declare noack(); Stream does
        async for event in manual.events():
            message = event.message
            # The last fetched end offset: records after this one mean a backlog, not silence.
            end = highwater(message.tp)
            try:
                dead = pipeline.handle(
                    message.value, message.topic, message.partition, message.offset,
                    behind=end is not None and message.offset + 1 < end,
                )  # fmt: skip
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
            positions[message.partition] = message.offset + 1
            if pipeline.anomalies or loop.time() >= due:
                await checkpoint()
                due = loop.time() + settings.checkpoint_seconds

    @app.timer(interval=settings.checkpoint_seconds)
    async def idle_checkpoint() -> None:
        # Covers the tail of a burst: without it the last records would wait for the next one.
        # Wall time alone can close buckets too, once a partition that held them turns idle.
        pipeline.close_due(time.time())
        if pipeline.acks or pipeline.anomalies:
            await checkpoint()

    @app.timer(interval=settings.checkpoint_seconds)
    async def measure_lag() -> None:
        # The high watermark is the one the consumer saw on its last fetch (the broker's Fetch
        # answer, which is right even where its ListOffsets is not). A partition is measured
        # from its first processed record on; before that its position is unknown here.
        for partition in sorted(status.assigned & positions.keys()):
            end = highwater(TP(settings.events_topic, partition))
            if end is not None:
                lag = max(0, end - positions[partition])
                pipeline.metrics.consumer_lag.labels(str(partition)).set(lag)

    # mode's signal stubs do not accept async receivers, though it awaits them.
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        assigned = args[0]
        status.assigned = {tp.partition for tp in assigned if tp.topic == settings.events_topic}
        pipeline.assigned(status.assigned)
        pipeline.metrics.assigned_partitions.set(len(status.assigned))
        log.info("assigned partitions %s of %s", sorted(status.assigned), settings.events_topic)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        revoked = args[0]
        await checkpoint(force=True)
        gone = {tp.partition for tp in revoked if tp.topic == settings.events_topic}
        pipeline.revoked(gone)
        status.assigned -= gone
        for partition in gone & positions.keys():
            # Export only what this worker owns: the new owner reports the partition's lag.
            del positions[partition]
            with contextlib.suppress(KeyError):
                pipeline.metrics.consumer_lag.remove(str(partition))
        pipeline.metrics.assigned_partitions.set(len(status.assigned))

    app.qualmon_checkpoint = checkpoint  # type: ignore[attr-defined]
    return app
