"""Starting qualmon's parts: embedded broker (when no cluster is configured), worker, API.

``qualmon run`` puts all of them in one process — the API is served on the Faust worker's event
loop, so it shares the worker's metrics registry and readiness. ``qualmon worker`` and
``qualmon api`` run one part each against a configured cluster. Whatever this module starts it
also stops, the broker included, on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

import faust
import uvicorn
from prometheus_client import CollectorRegistry

from alerting.dispatcher import Dispatcher
from alerting.engine import AlertEngine
from monitor.api import Context, create_api
from monitor.api.worker import create_worker_api
from monitor.broker import EmbeddedBroker
from monitor.metrics import Metrics
from monitor.producer import EventProducer
from monitor.settings import Settings
from monitor.store import open_store
from monitor.topics import ensure_topics
from streams.app import WorkerStatus, build_app
from streams.closer import Closer, Flush
from streams.intake import Intake

log = logging.getLogger(__name__)
#: How far back a starting worker looks for anomalies that never reached the alert engine.
CATCH_UP_SECONDS = 3600.0


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Client libraries log every connection at INFO; keep their warnings only.
    for noisy in ("kafka", "aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextlib.contextmanager
def kafka(settings: Settings) -> Iterator[str]:
    """The bootstrap servers to use: the configured cluster, or an embedded broker for the
    duration of the block. Topics are created either way."""
    broker = None
    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        broker = EmbeddedBroker().start()
        bootstrap = broker.bootstrap
        print(f"qualmon: embedded Kafka broker on {bootstrap}", flush=True)
    try:
        ensure_topics(bootstrap, settings)
        yield bootstrap
    finally:
        if broker is not None:
            broker.stop()


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The Faust worker owns SIGINT/SIGTERM and stops this server with the rest.
        yield


class _Worker(faust.Worker):
    async def on_stop(self) -> None:
        # Runs before the app stops. Faust's shutdown waits until every record read has been
        # acknowledged, and qualmon acknowledges only in checkpoints, whose timer is already
        # stopped by then: without this last one, a stop just after a burst hangs until killed.
        await self.app.qualmon_checkpoint(force=True)  # type: ignore[attr-defined]
        await super().on_stop()


def run_worker(settings: Settings, bootstrap: str, *, with_api: bool) -> None:
    # Faust keeps its own files there, also when the store is elsewhere (PostgreSQL).
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    registry = CollectorRegistry()
    metrics = Metrics(registry, orgs_depth=settings.metric_orgs_depth)
    store = open_store(settings.store_url)
    # The stages write their checkpoints from a thread (streams.app.off_loop), through their
    # own connection: what runs on the event loop — the API, the alert engine, the dispatcher —
    # reads through this one meanwhile instead of waiting for a checkpoint's transaction to end.
    stages = open_store(settings.store_url)
    intake = Intake.create(settings, metrics, stages)
    status = WorkerStatus()
    # Alert state is the store's: only the worker that closes buckets exports it, so that
    # summed over workers it counts once.
    engine = AlertEngine(store, settings, metrics, exports_metrics=False)

    def open_closer(partitions: int) -> Closer:
        closer = Closer.create(settings, metrics, stages, partitions)
        # Anomalies stored just before a crash may not have reached the engine yet.
        engine.catch_up(time.time() - CATCH_UP_SECONDS)
        return closer

    def alert(flush: Flush) -> None:
        closer = status.closer
        paths = closer.aggregator.slicer.paths.values() if closer is not None else ()
        engine.after_checkpoint([a.as_dict() for a in flush.anomalies], flush.readings, paths)

    delivering: list[asyncio.Task[None]] = []  # the dispatcher's run, while closing here

    async def dispatching(active: bool) -> None:
        # One dispatcher in the group, on the closing worker: two would deliver twice.
        engine.exports_metrics = active
        if active and not delivering:
            delivering.append(asyncio.get_running_loop().create_task(dispatcher.run()))
        elif not active and delivering:
            task = delivering.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task  # its client is closed before another run opens one

    app = build_app(
        settings, bootstrap, intake, status, open_closer,
        after_checkpoint=alert, closing_changed=dispatching,
    )  # fmt: skip
    outputs = {
        name: app.topic(name, key_serializer="raw", value_serializer="raw")
        for name in (settings.alerts_topic, settings.inspections_topic)
    }

    async def publish(topic: str, key: bytes, value: bytes) -> None:
        await (await outputs[topic].send(key=key, value=value))

    dispatcher = Dispatcher(engine, publish)

    producer: EventProducer | None = None
    if with_api:
        producer = EventProducer(settings, bootstrap)
        api = create_api(
            Context(settings, producer, store, metrics, registry, worker=status, alerts=engine)
        )
    else:
        # Without the API the worker still serves probes and /metrics for Prometheus.
        api = create_worker_api(registry, status)
    server = _Server(
        uvicorn.Config(
            api, host=settings.http_host, port=settings.http_port,
            log_level="warning", lifespan="off",
        )
    )  # fmt: skip

    @app.task
    async def serve_http() -> None:
        log.info("HTTP on http://%s:%s", settings.http_host, settings.http_port)
        await server.serve()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # async receivers are awaited
    async def stop_http(sender: object, *args: object, **kwargs: object) -> None:
        server.should_exit = True
        await dispatching(False)
        if producer is not None:
            await producer.stop()

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def bound_shutdown(sender: object, *args: object, **kwargs: object) -> None:
        # Faust waits for its Kafka clients to close, which they never do when the broker is
        # already gone. A forced exit loses nothing: whatever no checkpoint covers is
        # redelivered, and an embedded broker dies with us (PR_SET_PDEATHSIG).
        timer = threading.Timer(settings.shutdown_timeout_seconds, _force_exit, (settings,))
        timer.daemon = True
        timer.start()

    worker = _Worker(app, loglevel=settings.log_level, quiet=True)
    try:
        worker.execute_from_commandline()
    finally:
        stages.close()
        store.close()


def _force_exit(settings: Settings) -> None:
    log.critical(
        "worker still stopping after %.0fs (QUALMON_SHUTDOWN_TIMEOUT_SECONDS); exiting now",
        settings.shutdown_timeout_seconds,
    )
    logging.shutdown()
    os._exit(1)


def run_api(settings: Settings, bootstrap: str) -> None:
    registry = CollectorRegistry()
    store = open_store(settings.store_url)
    producer = EventProducer(settings, bootstrap)
    metrics = Metrics(registry, orgs_depth=settings.metric_orgs_depth)
    # Without a worker here, alert changes made through the API wait in the outbox for the
    # worker's dispatcher.
    engine = AlertEngine(store, settings, metrics, exports_metrics=False)  # the closing worker's
    api = create_api(Context(settings, producer, store, metrics, registry, alerts=engine))
    print(f"qualmon: API on http://{settings.http_host}:{settings.http_port}", flush=True)
    try:
        uvicorn.run(api, host=settings.http_host, port=settings.http_port, log_level="warning")
    finally:
        store.close()
