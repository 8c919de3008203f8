"""The checks the event contract (:mod:`streams.schema`) is built from: field types that refuse
loose input instead of guessing, and errors placed at the field they are about.

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
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    ValidationError,
)
from pydantic_core import InitErrorDetails, PydanticCustomError


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
    if not value.strip():
        raise PydanticCustomError("blank", "Input should not be blank")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_string)]
EventId = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_not_blank)]
Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), max_digits=16, decimal_places=2)]
