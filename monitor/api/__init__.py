"""qualmon's HTTP API (FastAPI, versioned under ``/v1``; OpenAPI at ``/docs``).

One router per resource. Every route receives what it needs through :class:`Context`, built once
at start from the settings and shared with the worker when both run in one process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import Headers
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor.metrics import Metrics
from monitor.producer import EventProducer
from monitor.settings import Settings
from monitor.store import Store
from streams.app import WorkerStatus
from streams.decode import describe_errors

if TYPE_CHECKING:
    from alerting.engine import AlertEngine


log = logging.getLogger(__name__)


def utc(epoch: float | None) -> datetime | None:
    """A stored time (epoch seconds) as the API shows every time: a UTC datetime."""
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


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


def problem(status: int, detail: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    """The API's one answer to a request it refuses: what was wrong, and field by field where
    there are fields to name."""
    return JSONResponse({"detail": detail, "errors": errors or []}, status_code=status)


def invalid(field: str, value: Any, expected: str, source: str = "body") -> RequestValidationError:
    """A refusal of one field found by a route's own check, answered like any invalid request."""
    return RequestValidationError(
        [{"type": "invalid", "loc": (source, field), "msg": expected, "input": value}]
    )


#: Where FastAPI says an invalid part was; users think in fields, so the answer names the field.
_SOURCES = ("body", "query", "path", "header")


async def _invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
    """The answer every 422 of the API gives, an invalid event's too: what was wrong, field by
    field, and that nothing changed."""
    return problem(422, "invalid request; nothing was changed", _described(exc.errors()))


def _described(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    located = []
    for error in errors:
        loc = tuple(error.get("loc", ()))
        if loc and loc[0] in _SOURCES:
            loc = loc[1:]
        if error.get("type") == "json_invalid":
            loc = ()  # a position in the text, not a field
        located.append({**error, "loc": loc})
    return describe_errors(located, whole="(body)")


class _BodyLimit:
    """413 naming the limit when the declared length is over it. Starlette's own limit, inside,
    still stops a body sent without a length, with its plain answer."""

    def __init__(self, app: ASGIApp, max_body_size: int) -> None:
        self.app, self.limit = app, max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = Headers(scope=scope).get("content-length") if scope["type"] == "http" else None
        if length is not None and length.isdigit() and int(length) > self.limit:
            detail = f"body has {length} bytes; at most {self.limit} (QUALMON_MAX_BODY_BYTES)"
            await problem(413, detail)(scope, receive, send)
            return
        await self.app(scope, receive, send)


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
    api.add_middleware(_BodyLimit, max_body_size=ctx.settings.max_body_bytes)  # outermost
    for module in (events, indicators, anomalies, health):
        api.include_router(module.router)
    for module in (alerts, silences, inspections):
        api.include_router(module.router)
    install_error_handlers(api)
    return api
