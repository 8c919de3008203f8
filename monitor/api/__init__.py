"""qualmon's HTTP API (FastAPI, versioned under ``/v1``; OpenAPI at ``/docs``).

One router per resource. Every route receives what it needs through :class:`Context`, built once
at start from the settings and shared with the worker when both run in one process.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict
from starlette.middleware.body_limit import RequestBodyLimitMiddleware

from monitor.metrics import Metrics
from monitor.producer import EventProducer
from monitor.settings import Settings
from monitor.store import Store
from streams.app import WorkerStatus

if TYPE_CHECKING:
    from alerting.engine import AlertEngine


log = logging.getLogger(__name__)


class Body(BaseModel):
    """Base of every request body: a field it does not declare (a typo, "ownr") and a number that
    is not finite (NaN, ±Infinity, or too large for a double — JSON parsers read all three) are
    errors naming the field, as in the event contract; nothing is stored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


@dataclass
class Context:
    settings: Settings
    producer: EventProducer
    store: Store
    metrics: Metrics
    registry: CollectorRegistry
    #: The worker sharing this process, if any; /readyz then also waits for its partitions.
    worker: WorkerStatus | None = None
    #: The alert engine acknowledgements, silences and inspections go through.
    alerts: AlertEngine | None = None
    #: The receiving clock (epoch seconds): events dated too far ahead of it are refused.
    clock: Callable[[], float] = time.time

    @property
    def engine(self) -> AlertEngine:
        if self.alerts is None:
            from alerting.engine import AlertEngine

            self.alerts = AlertEngine(self.store, self.settings, self.metrics)
        return self.alerts


def _actor(
    request: Request,
    x_qualmon_user: Annotated[
        str | None,
        Header(
            description="Who is acting, for the audit log; with API keys on, the key's name "
            "is recorded instead.",
            max_length=200,
        ),
    ] = None,
) -> str:
    principal = getattr(request.state, "principal", None)
    if principal:
        # Authenticated: the verified key name, with the person it says it acts for.
        return f"{principal} ({x_qualmon_user})" if x_qualmon_user else str(principal)
    return x_qualmon_user or "anonymous"


def _context(request: Request) -> Context:
    ctx: Context = request.app.state.qualmon
    return ctx


Ctx = Annotated[Context, Depends(_context)]
#: Who made a change: the API key's name when keys are on, else the ``X-Qualmon-User`` header.
Actor = Annotated[str, Depends(_actor)]


def install_error_handlers(api: FastAPI) -> None:
    """Domain errors become HTTP answers naming what was wrong."""
    from monitor.errors import Conflict, InsufficientData, NotFound

    api.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]

    statuses = {NotFound: 404, Conflict: 409, InsufficientData: 422}
    for error, status in statuses.items():

        async def handler(_: Request, exc: Exception, status: int = status) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)

        api.add_exception_handler(error, handler)


async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own answer, but a non-finite number is echoed as text: JSON cannot carry it,
    # and the default answer failed with a 500 on a body holding NaN or 1e400.
    return JSONResponse({"detail": _as_json(jsonable_encoder(exc.errors()))}, status_code=422)


def _as_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_json(v) for v in value]
    return value


def create_api(ctx: Context) -> FastAPI:
    from monitor.api import alerts, anomalies, events, health, indicators, inspections, silences
    from monitor.api.auth import authorize

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await ctx.producer.stop()

    api = FastAPI(
        title="qualmon",
        version="0.1.0",
        description="Real-time quality-indicator monitor for insurers.",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],
    )
    api.state.qualmon = ctx
    if not ctx.settings.api_keys and ctx.settings.http_host not in (
        "127.0.0.1",
        "localhost",
        "::1",
    ):
        log.warning("API on %s without QUALMON_API_KEYS: anyone who reaches it may post events "
                    "and change alerts and inspections", ctx.settings.http_host)  # fmt: skip
    api.add_middleware(RequestBodyLimitMiddleware, max_body_size=ctx.settings.max_body_bytes)
    for module in (events, indicators, anomalies, health):
        api.include_router(module.router)
    for module in (alerts, silences, inspections):
        api.include_router(module.router)
    install_error_handlers(api)
    return api
