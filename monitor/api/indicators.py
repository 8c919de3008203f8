"""``GET /v1/indicators``: the latest closed bucket of every indicator series."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from monitor.api import Ctx
from streams.indicators import INDICATORS

router = APIRouter(tags=["indicators"])


class IndicatorReading(BaseModel):
    indicator: str
    description: str
    org: str
    product_line: str
    channel: str
    bucket_start: datetime
    value: float
    k: float
    n: float
    score: float
    expected: float
    lower: float
    upper: float


@router.get("/v1/indicators", response_model=list[IndicatorReading])
async def list_indicators(
    ctx: Ctx,
    indicator: str | None = None,
    org: str | None = None,
    product_line: str | None = None,
    channel: str | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[IndicatorReading]:
    """Latest value, evidence (k of n), expected band and score per series; "*" means all."""
    if indicator is not None and indicator not in INDICATORS:
        raise HTTPException(
            422, f"indicator {indicator!r} is unknown; known: {', '.join(INDICATORS)}"
        )
    rows = ctx.store.latest_readings(
        indicator=indicator, org=org, product_line=product_line, channel=channel, limit=limit
    )
    return [
        IndicatorReading(
            **{**r, "bucket_start": datetime.fromtimestamp(r["bucket_start"], UTC)},
            description=INDICATORS[r["indicator"]].description,
        )
        for r in rows
    ]
