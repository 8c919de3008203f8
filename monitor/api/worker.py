"""The HTTP face of a worker running without the API (``qualmon worker``): probes and metrics.

Prometheus scrapes every worker here, and Kubernetes probes it: ``/healthz`` answers while the
process serves HTTP, ``/readyz`` once the worker has joined its consumer group — owning
partitions, or standing by when there are more workers than partitions. It listens on
``QUALMON_HTTP_HOST``/``QUALMON_HTTP_PORT`` like the API does in its own process.
"""

from __future__ import annotations

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.api.health import readiness
from streams.app import WorkerStatus


def create_worker_api(registry: CollectorRegistry, status: WorkerStatus) -> FastAPI:
    api = FastAPI(title="qualmon worker", version="0.1.0", docs_url=None, redoc_url=None)

    @api.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves HTTP."""
        return {"status": "ok"}

    @api.get("/readyz", tags=["operations"])
    async def readyz() -> JSONResponse:
        """Ready once the worker has joined its consumer group, owning partitions or not."""
        return readiness({}, status)

    @api.get("/metrics", tags=["operations"])
    async def metrics() -> Response:
        """Prometheus exposition of this worker's metrics."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return api
