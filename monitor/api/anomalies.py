"""``GET /v1/anomalies``, ``GET /v1/anomalies/{id}`` and ``POST /v1/anomalies/{id}/feedback``.

Feedback is stored and read by the worker when the next bucket closes; from then on it changes
the decisions for the anomaly's series (see :mod:`streams.feedback`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, Field

from monitor.api import Actor, Body, Ctx, invalid, utc
from streams.indicators import ANOMALY_NAMES
from streams.scoring import CATEGORIES

router = APIRouter(tags=["anomalies"])


class AnomalyPublic(BaseModel):
    anomaly_id: str
    indicator: str
    org: str
    product_line: str
    channel: str
    bucket_start: datetime
    bucket_seconds: int
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    k: float
    n: float
    detector: str
    severity: str
    category: str = "business"
    detail: dict[str, Any] = {}


class FeedbackCreate(Body):
    """A verdict on an anomaly: was it a real problem, a false alarm, or expected?"""

    verdict: Literal["true_positive", "false_positive", "expected"]
    note: Annotated[str, Field(max_length=2000)] = ""


class FeedbackPublic(BaseModel):
    feedback_id: int
    anomaly_id: str
    verdict: str
    note: str
    actor: str = Field(description="Who gave it: the API key's name, or X-Qualmon-User.")
    created_at: datetime = Field(description="When it was given (UTC).")

    @classmethod
    def of(cls, row: dict[str, Any]) -> FeedbackPublic:
        return cls(**(row | {"created_at": utc(row["created_at"])}))


class AnomalyDetail(AnomalyPublic):
    feedback: list[FeedbackPublic] = []


class AnomalyPage(BaseModel):
    items: list[AnomalyPublic]
    total: int
    limit: int
    offset: int


@router.get("/v1/anomalies", response_model=AnomalyPage)
async def list_anomalies(
    ctx: Ctx,
    indicator: Annotated[
        str | None,
        Query(description="An indicator, or an SLA breach, concentration or data-quality check."),
    ] = None,
    org: str | None = None,
    product_line: str | None = None,
    channel: str | None = None,
    since: Annotated[AwareDatetime | None, Query(description="bucket start ≥ this")] = None,
    until: Annotated[AwareDatetime | None, Query(description="bucket start < this")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    category: Annotated[
        Literal["business", "concentration", "data_quality"] | None,
        Query(description=f"one of {', '.join(CATEGORIES)}"),
    ] = None,
) -> AnomalyPage:
    """Anomalies, newest bucket first, filtered and paginated."""
    if indicator is not None and indicator not in ANOMALY_NAMES:
        raise invalid("indicator", indicator, f"one of {', '.join(ANOMALY_NAMES)}", "query")
    rows, total = ctx.store.anomalies(
        category=category,
        indicator=indicator,
        org=org,
        product_line=product_line,
        channel=channel,
        since=_utc(since),
        until=_utc(until),
        limit=limit,
        offset=offset,
    )
    return AnomalyPage(items=[_public(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/v1/anomalies/{anomaly_id}", response_model=AnomalyDetail)
async def get_anomaly(anomaly_id: str, ctx: Ctx) -> AnomalyDetail:
    """One anomaly by id, with the verdicts given on it."""
    row = ctx.store.anomaly(anomaly_id)
    if row is None:
        raise HTTPException(404, f"no anomaly with id {anomaly_id!r}")
    feedback = [FeedbackPublic.of(f) for f in ctx.store.feedback_on(anomaly_id)]
    return AnomalyDetail(**_public(row).model_dump(), feedback=feedback)


@router.post(
    "/v1/anomalies/{anomaly_id}/feedback",
    status_code=201,
    response_model=FeedbackPublic,
    responses={
        404: {"description": "No anomaly with this id."},
        422: {"description": "The body is not a valid verdict; the errors name the field."},
    },
)
async def post_feedback(anomaly_id: str, body: FeedbackCreate, ctx: Ctx, actor: Actor) -> Any:
    """Tell qualmon whether an anomaly was a real problem, a false alarm, or expected."""
    row = ctx.store.add_feedback(anomaly_id, body.verdict, body.note, actor)
    if row is None:
        raise HTTPException(404, f"no anomaly with id {anomaly_id!r}")
    ctx.metrics.feedback.labels(body.verdict).inc()
    return FeedbackPublic.of(row)


def _public(row: dict[str, Any]) -> AnomalyPublic:
    return AnomalyPublic(**{**row, "detail": orjson.loads(row.get("detail") or "{}")})


def _utc(value: datetime | None) -> str | None:
    # Stored bucket starts are UTC ISO strings, which compare correctly as text.
    return value.astimezone(UTC).isoformat() if value else None
