"""``/v1/alerts``: alerts, their acknowledgement, and the delivery record of each."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from alerting.grouping import Members
from alerting.payloads import public
from monitor.api import Actor, Ctx, utc

router = APIRouter(tags=["alerts"])


class AlertPublic(BaseModel):
    alert_id: str = Field(description="Stable id, derived from the anomaly that opened it.")
    kind: Literal["anomaly", "measure_overdue"] = Field(
        description="anomaly: an indicator out of its band; measure_overdue: a measure past "
        "its deadline."
    )
    indicator: str = Field(description="Indicator name (see GET /v1/indicators).")
    org: str = Field(description="Org code of the narrowest anomalous slice; * = all orgs.")
    org_path: str = Field(description="The org's path in the org tree, e.g. 00/44/4403.")
    product_line: str = Field(description="Product line of the slice; * = all.")
    channel: str = Field(description="Channel of the slice; * = all.")
    severity: Literal["minor", "major", "critical"] = Field(
        description="From the score, the indicator's importance and the slice's breadth."
    )
    score: float = Field(description="Highest anomaly score seen, in [0, 1].")
    value: float = Field(description="Indicator value of the latest anomalous bucket.")
    expected: float = Field(description="What the detector expected for that bucket.")
    state: Literal["firing", "resolved"] = Field(description="firing until back to normal.")
    anomaly_id: str = Field(description="Latest anomaly of the alert (GET /v1/anomalies/{id}).")
    anomalies: int = Field(description="Anomalous buckets and slices grouped into this alert.")
    flaps: int = Field(description="Times it fired again within the cooldown after resolving.")
    flapping: bool = Field(description="True once flaps reach the limit: people are not told.")
    summary: str = Field(description="One line for people.")
    acknowledged_by: str | None = Field(description="Who acknowledged it (X-Qualmon-User).")
    acknowledged_at: datetime | None = Field(description="When it was acknowledged.")
    inspection_id: str | None = Field(description="The special inspection it belongs to.")
    opened_at: datetime = Field(description="When qualmon opened it (wall clock).")
    updated_at: datetime = Field(description="Last change.")
    resolved_at: datetime | None = Field(description="When it resolved, if it did.")

    @classmethod
    def of(cls, row: dict) -> AlertPublic:
        out = public(row)
        for name in ("acknowledged_at", "opened_at", "updated_at", "resolved_at"):
            out[name] = utc(out[name])
        return cls(**out)


class AlertPage(BaseModel):
    items: list[AlertPublic] = Field(description="Alerts, most recently changed first.")
    total: int = Field(description="Alerts matching the filters.")
    limit: int = Field(description="Page size asked for.")
    offset: int = Field(description="Alerts skipped.")


class NotificationPublic(BaseModel):
    notification_id: str = Field(description="Sent as X-Qualmon-Delivery; same on retries.")
    receiver: str = Field(description="alertmanager, webhook:<url>, topic or topic:inspections.")
    event: str = Field(description="opened, updated, escalated, refired, acknowledged, resolved.")
    state: Literal["pending", "sent", "dead"] = Field(
        description="dead: a dead letter, the receiver stayed down or refused it."
    )
    attempts: int = Field(description="Delivery attempts so far.")
    last_error: str | None = Field(description="Why the last attempt failed.")
    created_at: datetime = Field(description="When it was queued.")
    sent_at: datetime | None = Field(description="When the receiver accepted it.")


class AlertSlice(BaseModel):
    org: str = Field(description="Org code of the slice; * = all orgs.")
    product_line: str = Field(description="Product line of the slice; * = all.")
    channel: str = Field(description="Channel of the slice; * = all.")
    problem: bool = Field(
        description=(
            "True where the problem sits (the alert is named after these); false for a "
            "roll-up or cross-cut of them."
        )
    )
    broad: bool = Field(
        description=(
            "True for a company slice anomalous beyond any one region: a company-wide "
            "incident, not a roll-up."
        )
    )
    anomalies: int = Field(description="Anomalous buckets of the slice grouped into the alert.")
    anomaly_id: str = Field(description="The slice's latest anomaly (GET /v1/anomalies/{id}).")
    bucket_start: datetime = Field(description="Start of that anomaly's bucket.")
    value: float | None = Field(description="Its value; null for anomalies of older versions.")
    expected: float | None = Field(description="What was expected; null likewise.")


@router.get("/v1/alerts", response_model=AlertPage)
async def list_alerts(
    ctx: Ctx,
    state: Annotated[
        Literal["firing", "resolved"] | None, Query(description="Only alerts in this state.")
    ] = None,
    indicator: Annotated[str | None, Query(description="Only this indicator.")] = None,
    org: Annotated[str | None, Query(description="Only this org code (* = company).")] = None,
    severity: Annotated[
        Literal["minor", "major", "critical"] | None, Query(description="Only this severity.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, description="Alerts to skip.")] = 0,
) -> AlertPage:
    """Alerts, most recently changed first, filtered and paginated."""
    rows, total = ctx.store.alerts(
        state=state, indicator=indicator, org=org, severity=severity, limit=limit, offset=offset
    )
    return AlertPage(
        items=[AlertPublic.of(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.get("/v1/alerts/{alert_id}", response_model=AlertPublic)
async def get_alert(alert_id: str, ctx: Ctx) -> AlertPublic:
    """One alert by id."""
    row = ctx.store.alert(alert_id)
    if row is None:
        raise HTTPException(404, f"no alert with id {alert_id!r}")
    return AlertPublic.of(row)


@router.get("/v1/alerts/{alert_id}/slices", response_model=list[AlertSlice])
async def slices(alert_id: str, ctx: Ctx) -> list[AlertSlice]:
    """Where an alert fires: every slice anomalous since it (last) fired, with its latest
    reading — the branches of a company-wide incident, the lines of a branch's — the slices
    its problem sits in first."""
    row = ctx.store.alert(alert_id)
    if row is None:
        raise HTTPException(404, f"no alert with id {alert_id!r}")
    found = ctx.store.alert_slices(row)
    path = ctx.engine.orgs.path
    scopes = [(path(s["org"]), s["product_line"], s["channel"]) for s in found]
    members = Members(
        (scope, s["broad"], s["bucket_start"], s["bucket_start"])
        for scope, s in zip(scopes, found, strict=True)
    )
    problems = set(members.problems)
    out = [
        AlertSlice(**{**s, "problem": scope in problems, "bucket_start": utc(s["bucket_start"])})
        for s, scope in zip(found, scopes, strict=True)
    ]
    return sorted(out, key=lambda s: (not s.problem, s.org, s.product_line, s.channel))


@router.post("/v1/alerts/{alert_id}/ack", response_model=AlertPublic)
async def acknowledge(alert_id: str, ctx: Ctx, actor: Actor) -> AlertPublic:
    """Acknowledge an alert: people are not notified about it again until it resolves."""
    row = ctx.engine.acknowledge(alert_id, actor)
    if row is None:
        raise HTTPException(404, f"no alert with id {alert_id!r}")
    return AlertPublic.of(row)


@router.get("/v1/alerts/{alert_id}/notifications", response_model=list[NotificationPublic])
async def notifications(alert_id: str, ctx: Ctx) -> list[NotificationPublic]:
    """Every notification of an alert and how its delivery went, dead letters included."""
    if ctx.store.alert(alert_id) is None:
        raise HTTPException(404, f"no alert with id {alert_id!r}")
    return [
        NotificationPublic(
            **{**n, "created_at": utc(n["created_at"]), "sent_at": utc(n["sent_at"])}
        )
        for n in ctx.store.notifications(alert_id=alert_id)
    ]
