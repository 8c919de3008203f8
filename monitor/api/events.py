"""``POST /v1/events`` and the event JSON Schema."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from monitor.api import Ctx, problem
from monitor.errors import BrokerUnavailable
from streams.checks import ReceivingClock
from streams.decode import describe_errors
from streams.schema import event_json_schema, parse_event

router = APIRouter(tags=["events"])


class Accepted(BaseModel):
    accepted: int
    event_ids: list[str]


@router.post(
    "/v1/events",
    status_code=202,
    response_model=Accepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "/v1/schema/events"}}},
        }
    },
    responses={
        413: {"description": "Body or batch larger than the configured maximum."},
        422: {"description": "At least one event is invalid; nothing was accepted."},
        503: {"description": "Kafka is unreachable; retry after Retry-After seconds."},
    },
)
async def post_events(request: Request, ctx: Ctx) -> Any:
    """Accept one event or a batch; all of it is produced to Kafka, or none of it."""
    body = await request.body()
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        ctx.metrics.http_events.labels("rejected").inc()
        return problem(422, f"body is not JSON: {exc}")
    items = data if isinstance(data, list) else [data]
    limit = ctx.settings.max_batch_events
    if len(items) > limit:
        ctx.metrics.http_events.labels("rejected").inc(len(items))
        return problem(
            413, f"batch has {len(items)} events; at most {limit} (QUALMON_MAX_BATCH_EVENTS)"
        )
    if not items:
        return problem(422, "empty batch; send one event object or a non-empty array")
    # One reading for the whole batch: an event too far ahead of it would close open buckets.
    clock = ReceivingClock.at(ctx.clock(), ctx.settings.allowed_lateness_seconds)
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append({"index": index, "field": "(event)", "value": None,
                           "expected": "a JSON object"})  # fmt: skip
            continue
        try:
            parse_event(item, clock)
        except ValidationError as exc:
            errors += [{"index": index, **e} for e in describe_errors(exc)]
    if errors:
        ctx.metrics.http_events.labels("rejected").inc(len(items))
        bad = len({e["index"] for e in errors})
        return problem(422, f"{bad} of {len(items)} events are invalid; none accepted", errors)
    try:
        await ctx.producer.send(items)
    except BrokerUnavailable as exc:
        ctx.metrics.http_events.labels("unavailable").inc(len(items))
        response = problem(503, f"{exc}; nothing was accepted, retry later")
        response.headers["Retry-After"] = "5"
        return response
    ctx.metrics.http_events.labels("accepted").inc(len(items))
    return Accepted(accepted=len(items), event_ids=[item["event_id"] for item in items])


@router.get("/v1/schema/events")
async def events_schema() -> dict[str, Any]:
    """JSON Schema of the body of ``POST /v1/events``: one event or an array of them."""
    return event_json_schema()
