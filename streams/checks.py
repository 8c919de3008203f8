"""The checks the event contract (:mod:`streams.schema`) is built from: field types that refuse
loose input instead of guessing, the receiving clock that bounds ``event_time``, and errors placed
at the field they are about.

Flags are JSON booleans and counts JSON integers: ``"yes"``, ``1`` or ``"4"`` are refused. A
timestamp is an ISO-8601 string with its UTC offset; a number, or a string of digits, is not read
as epoch seconds:

>>> from pydantic import TypeAdapter, ValidationError
>>> TypeAdapter(Timestamp).validate_python("2026-03-02T10:00:00+08:00").isoformat()
'2026-03-02T10:00:00+08:00'
>>> try:
...     TypeAdapter(Timestamp).validate_python("1772416800")
... except ValidationError as exc:
...     print(exc.errors()[0]["type"])
iso_datetime
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

#: However small the allowed lateness, an event this far ahead of the receiving clock is accepted:
#: ordinary clock skew between a producer and qualmon.
MIN_AHEAD_SECONDS = 60


@dataclass(frozen=True)
class ReceivingClock:
    """The clock an event is received by, and how far ahead of it an event may be dated.

    The bound is the allowed lateness (at least :data:`MIN_AHEAD_SECONDS`): an event at most that
    far ahead can only close buckets whose end has already passed on the wall clock. A later one
    would move the watermark into the future, close the current bucket early and make every real
    event after it late. Validation without a clock (replays, tests, the simulator) checks no
    bound.

    >>> clock = ReceivingClock.at(1_772_416_800, allowed_lateness_seconds=3600)
    >>> clock.latest.isoformat()
    '2026-03-02T03:00:00+00:00'
    >>> ReceivingClock.at(1_772_416_800, allowed_lateness_seconds=0).max_ahead_seconds
    60
    """

    now: datetime
    max_ahead_seconds: int
    #: The latest ``event_time`` accepted (computed once: it is read for every event).
    latest: datetime

    @classmethod
    def at(cls, now: float, allowed_lateness_seconds: int) -> ReceivingClock:
        """The clock reading ``now`` (epoch seconds) under ``QUALMON_ALLOWED_LATENESS_SECONDS``."""
        ahead = max(allowed_lateness_seconds, MIN_AHEAD_SECONDS)
        reading = datetime.fromtimestamp(now, UTC)
        return cls(reading, ahead, reading + timedelta(seconds=ahead))

    def context(self) -> dict[str, Any]:
        """The validation context that applies this clock (``validate_python(context=...)``)."""
        return {"clock": self}


def not_ahead_of_the_clock(value: datetime, info: ValidationInfo) -> datetime:
    """Refuse an ``event_time`` later than the context's :class:`ReceivingClock` allows."""
    clock: ReceivingClock | None = (info.context or {}).get("clock")
    if clock is not None and value > clock.latest:
        raise PydanticCustomError(
            "event_time_ahead",
            "Input should be at most {max_ahead} s after the receiving clock ({now}); a later "
            "event_time would close buckets that are still open (QUALMON_ALLOWED_LATENESS_SECONDS)",
            {"max_ahead": clock.max_ahead_seconds, "now": clock.now.isoformat(timespec="seconds")},
        )
    return value


def error_at(loc: tuple[str, ...], value: Any, kind: str, message: str) -> ValidationError:
    """An error at the field ``loc``, to raise from a validator of a whole model.

    Pydantic puts the validator's own location in front of ``loc``, so the error names the field
    and its value rather than the model (``payload.reported_at``, not the event).
    """
    details = [InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)]
    return ValidationError.from_exception_data("event", details)


_ISO_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]")


def _iso_string(value: Any) -> Any:
    # Pydantic on its own reads numbers and digit strings as epoch seconds.
    if isinstance(value, str) and _ISO_DATE_TIME.match(value):
        return value
    raise PydanticCustomError(
        "iso_datetime",
        "Input should be an ISO-8601 date and time string with its UTC offset, "
        "e.g. '2026-03-02T10:00:00+08:00'",
    )


def _not_blank(value: str) -> str:
    # A pattern would do it in pydantic's core, but its error would quote a regex at the user.
    if not value.strip():
        raise PydanticCustomError("blank", "Input should not be blank")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_string)]
EventId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_not_blank)]
#: What an id or code (org, product, agent, policy …) may hold.
CODE_PATTERN = r"^[A-Za-z0-9_.:-]+$"
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=CODE_PATTERN)]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), max_digits=16, decimal_places=2)]
