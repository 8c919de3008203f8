"""``/v1/inspections``: special inspections, root causes, measures, effect evaluations, audit.

Every change is recorded in the audit log under who made it: with API keys on
(:mod:`monitor.api.auth`), the manager key's name, with the person named in ``X-Qualmon-User``
after it; without keys, that header as given — a record, not a proof.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from alerting.inspections import FISHBONE, STATES
from monitor.api import Actor, Body, Ctx, invalid, utc
from streams.checks import CODE_PATTERN
from streams.indicators import INDICATORS
from streams.schema import CHANNELS, PRODUCT_LINES

router = APIRouter(tags=["inspections"])
State = Literal["opened", "investigating", "measures_set", "evaluating", "closed", "reopened"]
Category = Literal["people", "system", "product_material", "process", "environment", "measurement"]
IndicatorName = Literal[tuple(INDICATORS)]  # type: ignore[valid-type]
# A scope is a slice: the event contract's values, or * for all of them.
ProductLineOrAll = Literal[(*PRODUCT_LINES, "*")]  # type: ignore[valid-type]
ChannelOrAll = Literal[(*CHANNELS, "*")]  # type: ignore[valid-type]
OrgOrAll = Annotated[str, Field(min_length=1, max_length=64, pattern=rf"^\*$|{CODE_PATTERN}")]
assert set(STATES) == set(State.__args__) and set(FISHBONE) == set(Category.__args__)  # type: ignore[attr-defined]


class InspectionCreate(Body):
    indicator: IndicatorName | Literal["*"] = Field(  # type: ignore[valid-type]
        default="*",
        description="The indicator the inspection is about: it takes the alerts of that "
        "indicator's family (complaints, claims, mis-selling, ...) in its scope. * (the default) "
        "= the whole scope: it takes every business alert there.",
    )
    org: OrgOrAll = Field(description="Org code of the org tree; * = every org.")
    product_line: ProductLineOrAll = Field(default="*", description="Product line or *.")
    channel: ChannelOrAll = Field(default="*", description="Channel or *.")
    title: str = Field(min_length=1, max_length=500, description="What is inspected and why.")


class InspectionPatch(Body):
    title: str | None = Field(default=None, min_length=1, max_length=500, description="New title.")
    state: State | None = Field(
        default=None,
        description="Move along opened → investigating → measures_set → evaluating → closed, "
        "or closed → reopened.",
    )


class InspectionPublic(BaseModel):
    inspection_id: str = Field(description="Id of the inspection.")
    rule: str = Field(
        description="What opened it: complaint_concentration, severity, new_product or manual."
    )
    title: str = Field(description="What is inspected and why.")
    indicator: str = Field(
        description="The indicator that started it (its family is the inspection's matter); "
        "* = every business indicator in the scope."
    )
    org: str = Field(description="Org code of the scope; * = every org.")
    org_path: str = Field(description="Path of the org in the org tree.")
    product_line: str = Field(description="Product line of the scope, or *.")
    channel: str = Field(description="Channel of the scope, or *.")
    state: State = Field(description="Where it is in its lifecycle.")
    reopened: int = Field(description="Times it was reopened.")
    opened_at: datetime = Field(description="When it opened.")
    updated_at: datetime = Field(description="Last change.")
    closed_at: datetime | None = Field(description="When it closed, if it is closed.")

    @classmethod
    def of(cls, row: dict[str, Any]) -> InspectionPublic:
        times = {k: utc(row[k]) for k in ("opened_at", "updated_at", "closed_at")}
        return cls(**{**row, **times})


class RootCauseCreate(Body):
    category: Category = Field(description="Fishbone category.")
    what: str = Field(min_length=1, max_length=2000, description="5W2H: what happened.")
    why: str = Field(min_length=1, max_length=2000, description="5W2H: why it happened.")
    where: str = Field(default="", max_length=2000, description="5W2H: where (org, process).")
    when: str = Field(default="", max_length=2000, description="5W2H: when.")
    who: str = Field(default="", max_length=2000, description="5W2H: who was involved (roles).")
    how: str = Field(default="", max_length=2000, description="5W2H: how it came about.")
    how_much: str = Field(default="", max_length=2000, description="5W2H: how much, how many.")


class RootCausePublic(RootCauseCreate):
    model_config = ConfigDict(extra="ignore")  # built from stored rows, which hold more

    cause_id: str = Field(description="Id of the root cause.")
    created_by: str = Field(description="Who recorded it.")
    created_at: datetime = Field(description="When.")


class MeasureCreate(Body):
    title: str = Field(min_length=1, max_length=500, description="The improvement measure.")
    department: str = Field(min_length=1, max_length=200, description="Responsible department.")
    owner: str = Field(min_length=1, max_length=200, description="Responsible person.")
    deadline: AwareDatetime = Field(description="When it must be in place.")
    indicator: IndicatorName = Field(  # type: ignore[valid-type]
        description="Expected effect: the indicator to move."
    )
    org: OrgOrAll = Field(description="Expected effect: in this org.")
    product_line: ProductLineOrAll = Field(default="*", description="... this product line.")
    channel: ChannelOrAll = Field(default="*", description="... this channel.")
    target: float = Field(
        description="Expected effect: the value the indicator should reach "
        "(at most, for indicators where high is bad; at least otherwise)."
    )


class MeasurePatch(Body):
    state: Literal["planned", "done"] | None = Field(
        default=None, description="done when in place."
    )
    effective_from: AwareDatetime | None = Field(
        default=None, description="When it took effect; the evaluation compares around it."
    )
    deadline: AwareDatetime | None = Field(default=None, description="A new deadline.")


class MeasurePublic(BaseModel):
    measure_id: str = Field(description="Id of the measure.")
    inspection_id: str = Field(description="Its inspection.")
    title: str = Field(description="The improvement measure.")
    department: str = Field(description="Responsible department.")
    owner: str = Field(description="Responsible person.")
    deadline: datetime = Field(description="When it must be in place.")
    effective_from: datetime | None = Field(description="When it took effect.")
    indicator: str = Field(description="Expected effect: indicator.")
    org: str = Field(description="Expected effect: org.")
    product_line: str = Field(description="Expected effect: product line.")
    channel: str = Field(description="Expected effect: channel.")
    target: float = Field(description="Expected effect: target value.")
    state: Literal["planned", "done"] = Field(description="planned or done.")
    overdue_alert_id: str | None = Field(description="The alert raised when it became overdue.")

    @classmethod
    def of(cls, row: dict[str, Any]) -> MeasurePublic:
        return cls(
            **{
                **row,
                "deadline": utc(row["deadline"]),
                "effective_from": utc(row["effective_from"]),
            }
        )


class EvaluationPublic(BaseModel):
    evaluation_id: str = Field(description="Id of the evaluation.")
    measure_id: str = Field(description="The measure evaluated.")
    verdict: Literal["effective", "not_effective"] = Field(
        description="not_effective reopens the inspection; effective closes it."
    )
    result: dict[str, Any] = Field(
        description="Windows, controls, effect, p-value, target, statement: see docs/alerting.md."
    )
    created_by: str = Field(description="Who asked for it.")
    created_at: datetime = Field(description="When it was computed.")

    @classmethod
    def of(cls, row: dict[str, Any]) -> EvaluationPublic:
        return cls(**{**row, "result": row["body"], "created_at": utc(row["created_at"])})


class AuditEntry(BaseModel):
    entity: str = Field(description="inspection, root_cause, measure, evaluation.")
    entity_id: str = Field(description="Its id.")
    action: str = Field(description="What was done.")
    actor: str = Field(description="Who did it (X-Qualmon-User; qualmon for automatic steps).")
    at: datetime = Field(description="When.")
    before: Any = Field(description="The row before the change, if any.")
    after: Any = Field(description="The row after it.")


class InspectionDetail(InspectionPublic):
    alert_ids: list[str] = Field(description="Alerts that opened it or were absorbed into it.")
    root_causes: list[RootCausePublic] = Field(description="Root causes recorded.")
    measures: list[MeasurePublic] = Field(description="Improvement measures.")
    evaluations: list[EvaluationPublic] = Field(description="Effect evaluations, oldest first.")


class InspectionPage(BaseModel):
    items: list[InspectionPublic] = Field(description="Inspections, newest first.")
    total: int = Field(description="Inspections matching the filters.")
    limit: int = Field(description="Page size asked for.")
    offset: int = Field(description="Inspections skipped.")


def _detail(ctx: Ctx, row: dict[str, Any]) -> InspectionDetail:
    inspection_id = row["inspection_id"]
    causes = [
        RootCausePublic(**{**c["analysis"], **c, "created_at": utc(c["created_at"])})
        for c in ctx.store.causes(inspection_id)
    ]
    return InspectionDetail(
        **InspectionPublic.of(row).model_dump(),
        alert_ids=ctx.store.inspection_alert_ids(inspection_id),
        root_causes=causes,
        measures=[MeasurePublic.of(m) for m in ctx.store.measures(inspection_id)],
        evaluations=[EvaluationPublic.of(e) for e in ctx.store.evaluations(inspection_id)],
    )


def _known_org(ctx: Ctx, org: str) -> None:
    """Refuse, as a validation error of the body's ``org``, an org no event has named."""
    if not ctx.engine.orgs.knows(org):
        message = (
            f"org {org!r} is not in the org tree: no event has named it in org_code or org_path "
            "yet; give the code of an org that reports events, or * for every org"
        )
        raise invalid("org", org, message)


def _found(ctx: Ctx, inspection_id: str) -> dict[str, Any]:
    row = ctx.store.inspection(inspection_id)
    if row is None:
        raise HTTPException(404, f"no inspection with id {inspection_id!r}")
    return row


@router.get("/v1/inspections", response_model=InspectionPage)
async def list_inspections(
    ctx: Ctx,
    state: Annotated[State | None, Query(description="Only inspections in this state.")] = None,
    org: Annotated[str | None, Query(description="Only inspections scoped to this org.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Page size.")] = 100,
    offset: Annotated[int, Query(ge=0, description="Inspections to skip.")] = 0,
) -> InspectionPage:
    """Special inspections, newest first."""
    rows, total = ctx.store.inspections(state=state, org=org, limit=limit, offset=offset)
    return InspectionPage(
        items=[InspectionPublic.of(r) for r in rows], total=total, limit=limit, offset=offset
    )


@router.post("/v1/inspections", response_model=InspectionDetail, status_code=201)
async def create_inspection(body: InspectionCreate, ctx: Ctx, actor: Actor) -> InspectionDetail:
    """Open a special inspection by hand (rules open most of them from alerts)."""
    _known_org(ctx, body.org)
    row = ctx.engine.inspections.open_manually(body.model_dump(), actor)
    return _detail(ctx, row)


@router.get("/v1/inspections/{inspection_id}", response_model=InspectionDetail)
async def get_inspection(inspection_id: str, ctx: Ctx) -> InspectionDetail:
    """One inspection with its alerts, root causes, measures and evaluations."""
    return _detail(ctx, _found(ctx, inspection_id))


@router.patch("/v1/inspections/{inspection_id}", response_model=InspectionDetail)
async def patch_inspection(
    inspection_id: str, body: InspectionPatch, ctx: Ctx, actor: Actor
) -> InspectionDetail:
    """Change the title or move the inspection along its lifecycle."""
    row = ctx.engine.inspections.patch(inspection_id, body.model_dump(exclude_none=True), actor)
    return _detail(ctx, row)


@router.post(
    "/v1/inspections/{inspection_id}/root-causes", response_model=RootCausePublic, status_code=201
)
async def add_root_cause(
    inspection_id: str, body: RootCauseCreate, ctx: Ctx, actor: Actor
) -> RootCausePublic:
    """Record a root cause (fishbone category and 5W2H)."""
    analysis = body.model_dump(exclude={"category"})
    cause = ctx.engine.inspections.add_cause(inspection_id, body.category, analysis, actor)
    return RootCausePublic(**analysis, **cause | {"created_at": utc(cause["created_at"])})


@router.get("/v1/inspections/{inspection_id}/measures", response_model=list[MeasurePublic])
async def list_measures(inspection_id: str, ctx: Ctx) -> list[MeasurePublic]:
    """The inspection's improvement measures."""
    _found(ctx, inspection_id)
    return [MeasurePublic.of(m) for m in ctx.store.measures(inspection_id)]


@router.post(
    "/v1/inspections/{inspection_id}/measures", response_model=MeasurePublic, status_code=201
)
async def add_measure(
    inspection_id: str, body: MeasureCreate, ctx: Ctx, actor: Actor
) -> MeasurePublic:
    """Add an improvement measure with its owner, deadline and expected effect."""
    _known_org(ctx, body.org)
    data = body.model_dump()
    data["deadline"] = body.deadline.timestamp()
    return MeasurePublic.of(ctx.engine.measures.add(inspection_id, data, actor))


@router.patch("/v1/inspections/{inspection_id}/measures/{measure_id}", response_model=MeasurePublic)
async def patch_measure(
    inspection_id: str, measure_id: str, body: MeasurePatch, ctx: Ctx, actor: Actor
) -> MeasurePublic:
    """Mark a measure done, say when it took effect, or move its deadline."""
    changes: dict[str, Any] = body.model_dump(exclude_none=True)
    for name in ("effective_from", "deadline"):
        if name in changes:
            changes[name] = changes[name].timestamp()
    row = ctx.engine.measures.update(inspection_id, measure_id, changes, actor)
    return MeasurePublic.of(row)


@router.post(
    "/v1/inspections/{inspection_id}/measures/{measure_id}/evaluation",
    response_model=EvaluationPublic,
    status_code=201,
)
async def evaluate_measure(
    inspection_id: str, measure_id: str, ctx: Ctx, actor: Actor
) -> EvaluationPublic:
    """Compute the measure's effect from the indicator history; closes or reopens."""
    row = ctx.engine.measures.evaluate(inspection_id, measure_id, actor)
    return EvaluationPublic.of(row)


@router.get("/v1/inspections/{inspection_id}/evaluations", response_model=list[EvaluationPublic])
async def list_evaluations(inspection_id: str, ctx: Ctx) -> list[EvaluationPublic]:
    """The inspection's effect evaluations, oldest first."""
    _found(ctx, inspection_id)
    return [EvaluationPublic.of(e) for e in ctx.store.evaluations(inspection_id)]


@router.get("/v1/inspections/{inspection_id}/audit", response_model=list[AuditEntry])
async def audit(inspection_id: str, ctx: Ctx) -> list[AuditEntry]:
    """Every change to the inspection and its parts: who, when, what, before and after."""
    _found(ctx, inspection_id)
    return [
        AuditEntry(**{**e, "at": utc(e["at"])})
        for e in ctx.store.audit_for_inspection(inspection_id)
    ]
