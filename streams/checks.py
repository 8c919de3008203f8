"""The checks the event contract (:mod:`streams.schema`) is built from: field types, and errors
placed at the field they are about.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError


def error_at(loc: tuple[str, ...], value: Any, kind: str, message: str) -> ValidationError:
    """An error at the field ``loc``, to raise from a validator of a whole model.

    Pydantic puts the validator's own location in front of ``loc``, so the error names the field
    and its value rather than the model (``payload.reported_at``, not the event).
    """
    details = [InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)]
    return ValidationError.from_exception_data("event", details)


Code = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Money = Annotated[Decimal, Field(ge=0, le=Decimal("1e12"), max_digits=16, decimal_places=2)]
