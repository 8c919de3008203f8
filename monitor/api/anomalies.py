"""``GET /v1/anomalies`` and ``GET /v1/anomalies/{id}``: the anomaly history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel

from monitor.api import Ctx

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


class AnomalyPage(BaseModel):
    items: list[AnomalyPublic]
    total: int
    limit: int
    offset: int


@router.get("/v1/anomalies", response_model=AnomalyPage)
async def list_anomalies(
    ctx: Ctx,
    indicator: str | None = None,
    org: str | None = None,
    product_line: str | None = None,
    channel: str | None = None,
    since: Annotated[AwareDatetime | None, Query(description="bucket start ≥ this")] = None,
    until: Annotated[AwareDatetime | None, Query(description="bucket start < this")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AnomalyPage:
    """Anomalies, newest bucket first, filtered and paginated."""
    rows, total = ctx.store.anomalies(
        indicator=indicator,
        org=org,
        product_line=product_line,
        channel=channel,
        since=_utc(since),
        until=_utc(until),
        limit=limit,
        offset=offset,
    )
    return AnomalyPage(
        items=[AnomalyPublic(**r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/v1/anomalies/{anomaly_id}", response_model=AnomalyPublic)
async def get_anomaly(anomaly_id: str, ctx: Ctx) -> AnomalyPublic:
    """One anomaly by id."""
    row = ctx.store.anomaly(anomaly_id)
    if row is None:
        raise HTTPException(404, f"no anomaly with id {anomaly_id!r}")
    return AnomalyPublic(**row)


def _utc(value: datetime | None) -> str | None:
    # Stored bucket starts are UTC ISO strings, which compare correctly as text.
    return value.astimezone(UTC).isoformat() if value else None
