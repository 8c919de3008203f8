"""qualmon's HTTP API (FastAPI, versioned under ``/v1``; OpenAPI at ``/docs``).

One router per resource. Every route receives what it needs through :class:`Context`, built once
at start from the settings and shared with the worker when both run in one process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from prometheus_client import CollectorRegistry
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from monitor.metrics import Metrics
from monitor.producer import EventProducer
from monitor.settings import Settings
from monitor.store import Store
from streams.app import WorkerStatus


@dataclass
class Context:
    settings: Settings
    producer: EventProducer
    store: Store
    metrics: Metrics
    registry: CollectorRegistry
    #: The worker sharing this process, if any; /readyz then also waits for its partitions.
    worker: WorkerStatus | None = None


def _context(request: Request) -> Context:
    ctx: Context = request.app.state.qualmon
    return ctx


Ctx = Annotated[Context, Depends(_context)]


def create_api(ctx: Context) -> FastAPI:
    from monitor.api import anomalies, events, health, indicators

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await ctx.producer.stop()

    api = FastAPI(
        title="qualmon",
        version="0.1.0",
        description="Real-time quality-indicator monitor for insurers.",
        lifespan=lifespan,
    )
    api.state.qualmon = ctx
    api.add_middleware(RequestBodyLimitMiddleware, max_body_size=ctx.settings.max_body_bytes)
    for module in (events, indicators, anomalies, health):
        api.include_router(module.router)
    return api
