"""Starting qualmon's parts: embedded broker (when no cluster is configured), worker, API.

``qualmon run`` puts all of them in one process — the API is served on the Faust worker's event
loop, so it shares the worker's metrics registry and readiness. ``qualmon worker`` and
``qualmon api`` run one part each against a configured cluster. Whatever this module starts it
also stops, the broker included, on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import faust
import uvicorn
from prometheus_client import CollectorRegistry

from monitor.api import Context, create_api
from monitor.api.worker import create_worker_api
from monitor.broker import EmbeddedBroker
from monitor.metrics import Metrics
from monitor.producer import EventProducer
from monitor.settings import Settings
from monitor.store import open_store
from monitor.topics import ensure_topics
from streams.app import WorkerStatus, build_app
from streams.pipeline import Pipeline

log = logging.getLogger(__name__)


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
        await self.app.qualmon_checkpoint()  # type: ignore[attr-defined]
        await super().on_stop()


def run_worker(settings: Settings, bootstrap: str, *, with_api: bool) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    store = open_store(settings.store_url)
    pipeline = Pipeline.create(settings, metrics, store)
    status = WorkerStatus()
    app = build_app(settings, bootstrap, pipeline, status)
    producer: EventProducer | None = None
    if with_api:
        producer = EventProducer(settings, bootstrap)
        api = create_api(Context(settings, producer, store, metrics, registry, worker=status))
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
        if producer is not None:
            await producer.stop()

    worker = _Worker(app, loglevel=settings.log_level, quiet=True)
    try:
        worker.execute_from_commandline()
    finally:
        store.close()


def run_api(settings: Settings, bootstrap: str) -> None:
    registry = CollectorRegistry()
    store = open_store(settings.store_url)
    producer = EventProducer(settings, bootstrap)
    api = create_api(Context(settings, producer, store, Metrics(registry), registry))
    print(f"qualmon: API on http://{settings.http_host}:{settings.http_port}", flush=True)
    try:
        uvicorn.run(api, host=settings.http_host, port=settings.http_port, log_level="warning")
    finally:
        store.close()
