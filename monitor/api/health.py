"""``/healthz`` (the process answers), ``/readyz`` (it can do its job) and ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from monitor.api import Ctx
from streams.app import WorkerStatus

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process serves HTTP."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(ctx: Ctx) -> JSONResponse:
    """Ready when Kafka answers and, with a worker in this process, it has joined its group."""
    return readiness({"broker": await ctx.producer.ready()}, ctx.worker)


def readiness(checks: dict[str, bool], worker: WorkerStatus | None) -> JSONResponse:
    """The ``/readyz`` answer: ready when every check passes. A worker is ready once it has
    joined its consumer group, owning partitions or standing by; ``partitions`` lists its own."""
    body: dict[str, object] = {"checks": checks}
    if worker is not None:
        checks["worker_joined"] = worker.joined
        body["partitions"] = sorted(worker.assigned)
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", **body},
        status_code=200 if ready else 503,
    )


@router.get("/metrics")
async def metrics(ctx: Ctx) -> Response:
    """Prometheus exposition of this process's metrics."""
    return Response(generate_latest(ctx.registry), media_type=CONTENT_TYPE_LATEST)
