"""The event contract: one pydantic model per ``event_type``, discriminated on that field.

Amounts are decimal yuan given as a string or a number; ``event_time`` and the payload's
timestamps are ISO-8601 strings with their UTC offset; flags are JSON booleans and counts and
scores JSON integers (``"yes"``, ``1``, ``"4"`` or an epoch number are refused, not guessed).
Given a :class:`~streams.checks.ReceivingClock`, an event dated further ahead of it than the
allowed lateness is refused too: its event time would close buckets that are still open.
Complaints, surrenders and claims carry the *selling* org/product/channel; the office that handled
them is ``payload.handling_org_code``.

>>> event = parse_event({
...     "event_id": "e-1", "event_type": "complaint.received",
...     "event_time": "2026-03-02T10:00:00+08:00", "org_code": "4403", "org_path": "00/44/4403",
...     "product_code": "P01", "product_line": "life", "channel": "AGENCY",
...     "payload": {"complaint_id": "c-1", "source": "REGULATOR", "category": "SALES"}})
>>> event.payload.source
'REGULATOR'
>>> event.org_ancestors()
('00', '00/44', '00/44/4403')
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

from streams.checks import (
    Code,
    EventId,
    Money,
    ReceivingClock,
    Timestamp,
    error_at,
    not_ahead_of_the_clock,
)
from streams.slices import org_code

Channel = Literal["AGENCY", "BANCA", "TELE", "ONLINE", "GROUP", "BROKER"]
ProductLine = Literal[
    "life", "health", "accident", "annuity", "universal", "motor", "property", "liability", "other"
]
CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]
PRODUCT_LINES: tuple[str, ...] = ProductLine.__args__  # type: ignore[attr-defined]


class _Strict(BaseModel):
    # Unknown fields are refused so that a typo ("ammount") is an error, not silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventBase(_Strict):
    event_id: EventId
    event_time: Timestamp
    org_code: Code
    org_path: Annotated[
        str | None, Field(max_length=512, pattern=r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
    ] = None
    product_code: Code | None = None
    product_line: ProductLine
    channel: Channel
    agent_id: Code | None = None
    policy_no: Code | None = None
    customer_id: Code | None = None
    amount: Money | None = None
    currency: Literal["CNY"] = "CNY"

    _not_ahead = field_validator("event_time")(not_ahead_of_the_clock)

    @field_validator("org_path")
    @classmethod
    def _path_ends_at_org(cls, value: str | None, info: ValidationInfo) -> str | None:
        code = info.data.get("org_code")  # absent when org_code itself is invalid
        if value is not None and code is not None and org_code(value) != code:
            raise ValueError(f"org_path {value!r} must end with org_code {code!r}")
        return value

    def org_ancestors(self) -> tuple[str, ...]:
        """The org and every org above it along ``org_path``, as path prefixes (root first)."""
        path = self.org_path or self.org_code
        parts = path.split("/")
        return tuple("/".join(parts[: i + 1]) for i in range(len(parts)))


# ---- payloads ---------------------------------------------------------------------------------


class PolicyIssuedPayload(_Strict):
    premium: Money
    pay_mode: Literal["SINGLE", "REGULAR"]
    sum_assured: Money | None = None


class PremiumReceivedPayload(_Strict):
    premium: Money
    premium_type: Literal["FIRST", "RENEWAL"]
    period_no: Annotated[StrictInt, Field(ge=1, le=200)] = 1


class CoolingOffCancelPayload(_Strict):
    refund: Money
    days_since_effective: Annotated[StrictInt, Field(ge=0, le=60)]


class SurrenderedPayload(_Strict):
    surrender_amount: Money
    policy_year: Annotated[StrictInt, Field(ge=1, le=120)]


class ClaimReportedPayload(_Strict):
    claim_id: Code
    claimed_amount: Money
    handling_org_code: Code | None = None


class ClaimClosedPayload(_Strict):
    claim_id: Code
    decision: Literal["PAID", "PARTIAL", "DECLINED"]
    paid_amount: Money
    reported_at: Timestamp
    handling_org_code: Code | None = None


class ComplaintReceivedPayload(_Strict):
    complaint_id: Code
    source: Literal["OWN", "REGULATOR"]
    category: Literal["SALES", "CLAIM", "SURRENDER", "SERVICE", "OTHER"]
    handling_org_code: Code | None = None


class ComplaintClosedPayload(_Strict):
    complaint_id: Code
    received_at: Timestamp
    outcome: Literal["UPHELD", "PARTLY_UPHELD", "REJECTED", "WITHDRAWN", "OTHER"]
    handling_org_code: Code | None = None


class CallCompletedPayload(_Strict):
    queue: Code
    answered: StrictBool
    wait_seconds: Annotated[StrictFloat, Field(ge=0, le=86400)]
    abandoned: StrictBool = False

    @field_validator("abandoned")
    @classmethod
    def _not_answered_and_abandoned(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("answered"):
            raise ValueError("a call is answered or abandoned, not both; answered is true")
        return value


class SurveyResponsePayload(_Strict):
    touchpoint: Code
    csat_1_5: Annotated[StrictInt, Field(ge=1, le=5)] | None = None
    nps_0_10: Annotated[StrictInt, Field(ge=0, le=10)] | None = None

    @model_validator(mode="after")
    def _some_score(self) -> SurveyResponsePayload:
        if self.csat_1_5 is None and self.nps_0_10 is None:
            raise ValueError("a survey response needs csat_1_5 or nps_0_10")
        return self


class Finding(_Strict):
    code: Code
    severity: Literal["LOW", "MEDIUM", "HIGH"]


class InspectionSamplePayload(_Strict):
    object_type: Code
    compliant: StrictBool
    findings: Annotated[list[Finding], Field(max_length=100)] = []


class TargetSetPayload(_Strict):
    period: Annotated[str, Field(pattern=r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$")]
    target_premium: Money


# ---- events -----------------------------------------------------------------------------------


class PolicyIssued(EventBase):
    event_type: Literal["policy.issued"]
    payload: PolicyIssuedPayload


class PremiumReceived(EventBase):
    event_type: Literal["premium.received"]
    payload: PremiumReceivedPayload


class CoolingOffCancel(EventBase):
    event_type: Literal["policy.cooling_off_cancel"]
    payload: CoolingOffCancelPayload


class Surrendered(EventBase):
    event_type: Literal["policy.surrendered"]
    payload: SurrenderedPayload


class ClaimReported(EventBase):
    event_type: Literal["claim.reported"]
    payload: ClaimReportedPayload


def _opened_before_closed(
    event: EventBase, field: str, opened: datetime, what: str, verb: str
) -> None:
    # A close dated before its opening would count negative handling or settlement days.
    if opened > event.event_time:
        raise error_at(
            ("payload", field),
            opened.isoformat(),
            "closed_before_opened",
            f"Input should be at or before event_time ({event.event_time.isoformat()}): a {what} "
            f"closes after it is {verb}",
        )


class ClaimClosed(EventBase):
    event_type: Literal["claim.closed"]
    payload: ClaimClosedPayload

    @model_validator(mode="after")
    def _closed_after_reported(self) -> ClaimClosed:
        _opened_before_closed(self, "reported_at", self.payload.reported_at, "claim", "reported")
        return self


class ComplaintReceived(EventBase):
    event_type: Literal["complaint.received"]
    payload: ComplaintReceivedPayload


class ComplaintClosed(EventBase):
    event_type: Literal["complaint.closed"]
    payload: ComplaintClosedPayload

    @model_validator(mode="after")
    def _closed_after_received(self) -> ComplaintClosed:
        _opened_before_closed(
            self, "received_at", self.payload.received_at, "complaint", "received"
        )
        return self


class CallCompleted(EventBase):
    event_type: Literal["call.completed"]
    payload: CallCompletedPayload


class SurveyResponse(EventBase):
    event_type: Literal["survey.response"]
    payload: SurveyResponsePayload


class InspectionSample(EventBase):
    event_type: Literal["inspection.sample"]
    payload: InspectionSamplePayload


class TargetSet(EventBase):
    event_type: Literal["target.set"]
    payload: TargetSetPayload


Event = Annotated[
    PolicyIssued
    | PremiumReceived
    | CoolingOffCancel
    | Surrendered
    | ClaimReported
    | ClaimClosed
    | ComplaintReceived
    | ComplaintClosed
    | CallCompleted
    | SurveyResponse
    | InspectionSample
    | TargetSet,
    Field(discriminator="event_type"),
]
EVENT_TYPES: tuple[str, ...] = (
    "policy.issued",
    "premium.received",
    "policy.cooling_off_cancel",
    "policy.surrendered",
    "claim.reported",
    "claim.closed",
    "complaint.received",
    "complaint.closed",
    "call.completed",
    "survey.response",
    "inspection.sample",
    "target.set",
)

EVENT_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event)
BATCH_ADAPTER: TypeAdapter[Any] = TypeAdapter(Event | list[Event])


def parse_event(data: Any, clock: ReceivingClock | None = None) -> EventBase:
    """Validate one decoded event; raises :class:`pydantic.ValidationError`.

    With a ``clock``, an event dated too far ahead of it is refused (see :class:`ReceivingClock`).
    """
    context = clock.context() if clock is not None else None
    event: EventBase = EVENT_ADAPTER.validate_python(data, context=context)
    return event


def event_json_schema() -> dict[str, Any]:
    """JSON Schema of what ``POST /v1/events`` and the input topic accept: one event or a list."""
    return BATCH_ADAPTER.json_schema()


def event_time_epoch(event: EventBase) -> float:
    """Event time as epoch seconds (the windows' clock)."""
    ts: datetime = event.event_time
    return ts.timestamp()
