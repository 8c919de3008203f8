"""``/v1/silences``: time-boxed silences matching alerts by label."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
from fastapi import APIRouter, HTTPException, Query
from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from alerting.rules import MATCHABLE
from monitor.api import Actor, Body, Ctx

router = APIRouter(tags=["silences"])
MAX_SILENCE = timedelta(days=90)


class SilenceCreate(Body):
    matchers: dict[str, str] = Field(
        description=f"Label -> exact value, all of which an alert must match; labels: "
        f"{', '.join(MATCHABLE)}.",
        examples=[{"org": "4403", "indicator": "complaint_rate_per_10k_policies"}],
    )
    starts_at: AwareDatetime | None = Field(default=None, description="Start; default now.")
    ends_at: AwareDatetime = Field(description="End; at most 90 days after the start.")
    comment: str = Field(min_length=1, max_length=1000, description="Why it is silenced.")

    @field_validator("matchers")
    @classmethod
    def _known_labels(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("matchers is empty; a silence must match at least one label")
        unknown = sorted(set(value) - set(MATCHABLE))
        if unknown:
            raise ValueError(
                f"unknown matcher labels {unknown}; expected some of {list(MATCHABLE)}"
            )
        return value

    @model_validator(mode="after")
    def _window(self) -> SilenceCreate:
        start = self.starts_at or datetime.now(UTC)
        if self.ends_at <= start:
            raise ValueError(f"ends_at {self.ends_at.isoformat()} is not after the start")
        if self.ends_at - start > MAX_SILENCE:
            raise ValueError(f"ends_at is more than {MAX_SILENCE.days} days after the start")
        return self


class SilencePublic(BaseModel):
    silence_id: str = Field(description="Id of the silence.")
    matchers: dict[str, str] = Field(description="Label -> exact value it matches.")
    starts_at: datetime = Field(description="When it starts.")
    ends_at: datetime = Field(description="When it ends (now, once expired early).")
    created_by: str = Field(description="Who created it (X-Qualmon-User).")
    comment: str = Field(description="Why.")
    created_at: datetime = Field(description="When it was created.")

    @classmethod
    def of(cls, row: dict) -> SilencePublic:
        times = {
            k: datetime.fromtimestamp(row[k], UTC) for k in ("starts_at", "ends_at", "created_at")
        }
        return cls(**{**row, **times, "matchers": orjson.loads(row["matchers"])})


@router.get("/v1/silences", response_model=list[SilencePublic])
async def list_silences(
    ctx: Ctx,
    active: Annotated[bool, Query(description="Only silences in force now.")] = False,
) -> list[SilencePublic]:
    """Silences, newest first; ``active=true`` keeps those in force now."""
    rows = ctx.store.silences(active_at=time.time() if active else None)
    return [SilencePublic.of(r) for r in rows]


@router.post("/v1/silences", response_model=SilencePublic, status_code=201)
async def create_silence(body: SilenceCreate, ctx: Ctx, actor: Actor) -> SilencePublic:
    """Silence matching alerts for a while: they are recorded but nobody is notified."""
    now = time.time()
    row = {
        "silence_id": uuid.uuid4().hex[:16],
        "matchers": orjson.dumps(body.matchers).decode(),
        "starts_at": body.starts_at.timestamp() if body.starts_at else now,
        "ends_at": body.ends_at.timestamp(),
        "created_by": actor,
        "comment": body.comment,
        "created_at": now,
    }
    ctx.store.add_silence(row)
    with ctx.store.db.transaction() as tx:
        ctx.store.audit(tx, "silence", str(row["silence_id"]), "create", actor, now, None, row)
    return SilencePublic.of(row)


@router.delete("/v1/silences/{silence_id}", response_model=SilencePublic)
async def expire_silence(silence_id: str, ctx: Ctx, actor: Actor) -> SilencePublic:
    """End a silence now."""
    before = ctx.store.silence(silence_id)
    if before is None:
        raise HTTPException(404, f"no silence with id {silence_id!r}")
    now = time.time()
    ctx.store.expire_silence(silence_id, now)
    after = ctx.store.silence(silence_id)
    with ctx.store.db.transaction() as tx:
        ctx.store.audit(tx, "silence", silence_id, "expire", actor, now, before, after)
    return SilencePublic.of(after or before)
