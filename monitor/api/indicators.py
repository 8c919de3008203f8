"""``GET /v1/indicators``: every indicator series over the last closed bucket or a rolling window.

``window=bucket`` (the default) gives the latest closed bucket of each series with its score and
expected band. The rolling windows (``hour``, ``day``, ``7d``, ``30d``, ``mtd``, ``qtd``) are
read off the sums the worker stores when a bucket closes; they carry the value and its evidence,
and a Wilson interval where the indicator has one, but no score: detectors judge buckets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel

from monitor.api import Ctx, invalid
from streams.indicators import FIELD, INDICATORS, new_accumulator, wilson_interval
from streams.rolling import WINDOWS

router = APIRouter(tags=["indicators"])
Window = Literal["bucket", "hour", "day", "7d", "30d", "mtd", "qtd"]
assert set(Window.__args__) == set(WINDOWS)  # type: ignore[attr-defined]


class IndicatorReading(BaseModel):
    indicator: str
    description: str
    window: str = "bucket"
    org: str
    product_line: str
    channel: str
    bucket_start: datetime | None = None
    as_of: datetime | None = None  # end of the window (rolling windows)
    value: float
    k: float
    n: float
    score: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    interval_lower: float | None = None  # 95 % Wilson interval, for proportions
    interval_upper: float | None = None


@router.get("/v1/indicators", response_model=list[IndicatorReading])
async def list_indicators(
    ctx: Ctx,
    indicator: str | None = None,
    org: str | None = None,
    product_line: str | None = None,
    channel: str | None = None,
    window: Window = "bucket",
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[IndicatorReading]:
    """Values with evidence (k of n) per series and window; "*" means all."""
    if indicator is not None and indicator not in INDICATORS:
        raise invalid("indicator", indicator, f"one of {', '.join(INDICATORS)}", "query")
    if window != "bucket":
        return _windowed(ctx, window, indicator, org, product_line, channel, limit)
    rows = ctx.store.latest_readings(
        indicator=indicator, org=org, product_line=product_line, channel=channel, limit=limit
    )
    out = []
    for r in rows:
        definition = INDICATORS.get(r["indicator"])
        if definition is None:  # stored by an older version under another name
            continue
        # A proportion's Wilson interval needs only its k and n.
        proportion = definition.kind == "proportion" and r["n"] > 0
        interval = wilson_interval(r["k"], r["n"]) if proportion else None
        out.append(IndicatorReading(
            **{**r, "bucket_start": datetime.fromtimestamp(r["bucket_start"], UTC)},
            description=definition.description,
            interval_lower=interval[0] if interval else None,
            interval_upper=interval[1] if interval else None,
        ))  # fmt: skip
    return out


def _windowed(
    ctx: Ctx,
    window: str,
    indicator: str | None,
    org: str | None,
    product_line: str | None,
    channel: str | None,
    limit: int,
) -> list[IndicatorReading]:
    rows = ctx.store.windows(
        window, org=org, product_line=product_line, channel=channel, limit=limit
    )
    names = [indicator] if indicator else list(INDICATORS)
    out: list[IndicatorReading] = []
    for row in rows:
        acc = new_accumulator()
        for name, value in orjson.loads(row["sums"]).items():
            if name in FIELD:  # a field a later version dropped is ignored
                acc[FIELD[name]] = value
        for name in names:
            definition = INDICATORS[name]
            reading = definition.read(acc)
            if reading.value is None or (reading.value == reading.k == reading.n == 0):
                continue  # nothing of it in this window
            out.append(IndicatorReading(
                indicator=name, description=definition.description, window=window,
                org=row["org"], product_line=row["product_line"], channel=row["channel"],
                as_of=datetime.fromtimestamp(row["as_of"], UTC), value=reading.value,
                k=reading.k, n=reading.n,
                interval_lower=reading.interval[0] if reading.interval else None,
                interval_upper=reading.interval[1] if reading.interval else None,
            ))  # fmt: skip
            if len(out) >= limit:
                return out
    return out
