"""The one module that owns the Faust app: built from settings, agents wired to the two stages.

The agent consumes ``<prefix>.events`` as raw bytes with manual acknowledgement, on every worker
of the consumer group: the intake (:mod:`streams.intake`) counts each owned partition's events
into partials, and a record is acknowledged (so becomes committable) only once the checkpoint
that stored its partial is written and its dead letters are delivered. The worker that owns
input partition 0 also runs the closer (:mod:`streams.closer`): it merges every worker's
partials, closes and scores buckets and publishes anomalies. No ``group_by`` — producers already
key by ``org_code`` — and no Faust tables: see :mod:`streams.closer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import faust
import orjson
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from monitor.settings import Settings
from streams.closer import Closer, Flush
from streams.intake import Intake

log = logging.getLogger(__name__)
T = TypeVar("T")
#: The input partition whose owner closes buckets.
CLOSING_PARTITION = 0


@dataclass
class WorkerStatus:
    """What /readyz needs to know about the worker running in this process."""

    assigned: set[int] = field(default_factory=set)
    #: Whether the worker has been through a rebalance of its group: then it is doing its job,
    #: also when it was given no partition — a standby beside as many workers as partitions.
    joined: bool = False
    closer: Closer | None = None  # set while this worker closes buckets
    #: Between a revocation and the next assignment nothing is written: partition 0 may be
    #: given to another worker, and this one only knows once it is assigned again.
    suspended: bool = False


async def off_loop(call: Callable[[], T]) -> T:
    """Run a blocking step of a checkpoint in a thread: writing it, and on the closing worker
    scoring a bucket and pickling its state — each seconds long with tens of thousands of
    series. The API and the intake share this event loop: an event POSTed meanwhile would
    time out into a retry, and be counted as a duplicate.

    A step once started is finished before a cancellation (a worker stopping) is passed on:
    left running on its own, a checkpoint could land after the next one and put an older state
    back."""
    job = asyncio.ensure_future(asyncio.to_thread(call))
    cancelled = False
    while not job.done():
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return job.result()


def broker_urls(bootstrap: str) -> list[str]:
    """``host:port,host:port`` -> Faust's list of ``kafka://`` URLs."""
    return [f"kafka://{h.strip()}" for h in bootstrap.split(",") if h.strip()]


def build_app(
    settings: Settings,
    bootstrap: str,
    intake: Intake,
    status: WorkerStatus,
    open_closer: Callable[[int], Closer],
    after_checkpoint: Callable[[Flush], None] | None = None,
    closing_changed: Callable[[bool], Awaitable[None]] | None = None,
) -> faust.App:
    """``open_closer(partitions)`` resumes the closer when this worker gets partition 0;
    ``after_checkpoint`` sees each of its stored checkpoints (the alert engine) and must not
    block: it may write to the store, never wait on the network. ``closing_changed`` hears
    when this worker starts and stops closing."""
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
    metrics = intake.metrics
    intake_lock, close_lock = asyncio.Lock(), asyncio.Lock()
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

    async def crash(what: str, exc: BaseException) -> None:
        # Without a checkpoint nothing can be acknowledged safely: stop rather than buffer
        # unboundedly. Kafka redelivers everything unacknowledged on restart.
        log.critical("%s failed, stopping the worker: %r", what, exc)
        await app.crash(exc)

    async def checkpoint(force: bool = False) -> None:
        """Deliver, persist, then acknowledge — in that order, so a crash repeats, never loses;
        then let the closer (if it is here) merge what was stored."""
        async with intake_lock:
            if status.suspended:
                return
            flush = intake.take_flush()
            sends = pending_sends[:]
            pending_sends.clear()
            if sends:
                await asyncio.gather(*sends)
            try:
                intake.saved(flush, await off_loop(functools.partial(intake.write, flush)))
            except Exception as exc:
                await crash("intake checkpoint", exc)
                raise
            for event in flush.acks:
                event.ack()
        await close(force)

    async def close(force: bool = False) -> None:
        """Merge stored partials, close what is due, publish, persist (closer only)."""
        async with close_lock:
            closer = status.closer
            if closer is None or status.suspended:
                return
            try:
                steps, done = closer.polling(), object()
                while await off_loop(functools.partial(next, steps, done)) is not done:
                    pass  # one bucket closed
                flush = await off_loop(functools.partial(closer.take_flush, force))  # pickling
                if flush is None:  # the state was saved moments ago; the next one covers these
                    return
                sends = [
                    await anomalies.send(key=a.org.encode(), value=orjson.dumps(a.as_dict()))
                    for a in flush.anomalies
                ]
                if sends:
                    await asyncio.gather(*sends)
                await off_loop(functools.partial(closer.save, flush))
            except Exception as exc:
                await crash("closer checkpoint", exc)
                raise
            intake.heard_of_close(flush.closed_through)
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
                dead = intake.handle(
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
            if dead is None:  # its partition was revoked a moment ago
                continue
            for letter in dead:
                pending_sends.append(await dlq.send(key=message.key, value=orjson.dumps(letter)))
            intake.acks.append(event)
            positions[message.partition] = message.offset + 1
            if loop.time() >= due:
                await checkpoint()
                due = loop.time() + settings.checkpoint_seconds

    @app.timer(interval=settings.checkpoint_seconds)
    async def idle_checkpoint() -> None:
        # Covers the tail of a burst (without it the last records would wait for the next
        # one), tells the closer when a partition turns idle, and merges other workers' partials.
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
                metrics.consumer_lag.labels(str(partition)).set(lag)

    # mode's signal stubs do not accept async receivers, though it awaits them. Rebalances are
    # eager: every partition is revoked, then the new assignment given. So revoking only
    # checkpoints and suspends, and the assignment decides what this worker keeps: a partition
    # (or the closing) that stays here is not reloaded from the store.
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        assigned = {tp.partition for tp in args[0] if tp.topic == settings.events_topic}
        for partition in positions.keys() - assigned:
            # Export only what this worker owns: the new owner reports the partition's lag.
            del positions[partition]
            with contextlib.suppress(KeyError):
                metrics.consumer_lag.remove(str(partition))
        status.assigned, status.joined = assigned, True
        intake.assigned(assigned)
        metrics.assigned_partitions.set(len(assigned))
        log.info("assigned partitions %s of %s", sorted(assigned), settings.events_topic)
        closer = status.closer
        if CLOSING_PARTITION not in assigned and closer is not None:
            status.closer = None  # its last checkpoint is stored: the next owner resumes it
            metrics.stop_closing()
            log.info("no longer closing buckets")
            if closing_changed is not None:
                await closing_changed(False)
        elif CLOSING_PARTITION in assigned:
            known = app.consumer.topic_partitions(settings.events_topic)
            if not known:  # metadata not known yet: the partitions seen are all there is
                known = max(assigned) + 1
                log.warning("partition count of %s unknown; assuming %d",
                            settings.events_topic, known)  # fmt: skip
            if closer is None:
                status.closer = open_closer(known)
                metrics.closing.set(1)
                log.info("closing buckets for all %d partitions", known)
                if closing_changed is not None:
                    await closing_changed(True)
            else:
                closer.aggregator.clock.expect(range(known))  # the topic may have grown
        status.suspended = False

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        await checkpoint(force=True)
        status.suspended = True

    app.qualmon_checkpoint = checkpoint  # type: ignore[attr-defined]
    return app
