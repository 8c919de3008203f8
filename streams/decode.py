"""From Kafka record bytes to validated events, and to dead letters for what is not one.

A record holds one event (a JSON object) or several (a JSON array) — the API packs a request's
events per org into arrays because the worker pays its framework cost per record, not per event.
Each invalid item becomes its own dead letter naming the record, the item index and the reason;
the valid items of the same record still count. Given the worker's :class:`ReceivingClock`, an
event dated further ahead of it than the allowed lateness is invalid too.

>>> events, dead = decode_record(b'[{"event_id": 1}]', "qualmon.events", 0, 42)
>>> events, dead[0]["reason"], dead[0]["index"], dead[0]["errors"][0]["field"]
([], 'invalid_event', 0, 'event_type')
>>> decode_record(b'not json', "qualmon.events", 0, 43)[1][0]["reason"]
'not_json'
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from pydantic import ValidationError

from streams.checks import ReceivingClock
from streams.schema import EVENT_TYPES, EventBase, parse_event


def describe_errors(
    errors: ValidationError | Iterable[Mapping[str, Any]], whole: str = "(event)"
) -> list[dict[str, Any]]:
    """Pydantic errors as {field, value, expected}: what the API answers and the DLQ records.
    ``whole`` names what an error without a field is about."""
    if isinstance(errors, ValidationError):
        errors = errors.errors(include_url=False)
    out = []
    for err in errors:
        location = [str(p) for p in err["loc"]]
        # The discriminated union puts the event type into the path; users think in fields.
        # Rules across fields name the field they refuse (schema.py), so "(event)" is a fallback.
        if location and location[0] in EVENT_TYPES:
            location = location[1:]
        value = err.get("input")
        if err["type"] in ("union_tag_not_found", "union_tag_invalid"):
            location = ["event_type"]
            value = value.get("event_type") if isinstance(value, dict) else None
        if isinstance(value, float) and not math.isfinite(value):
            # JSON cannot carry it back (and trying failed with a 500): echoed as text.
            value = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        elif not isinstance(value, str | int | float | bool | None):
            value = None  # the whole object, for a field that is missing
        out.append({"field": ".".join(location) or whole, "value": value, "expected": err["msg"]})
    return out


def decode_record(
    value: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    clock: ReceivingClock | None = None,
) -> tuple[list[EventBase], list[dict[str, Any]]]:
    """Valid events of one record, and a dead letter for each part that is not a valid event."""
    source = {"topic": topic, "partition": partition, "offset": offset}
    try:
        data = orjson.loads(value or b"")
    except orjson.JSONDecodeError as exc:
        return [], [_dead(source, "not_json", None, str(exc), value)]
    items = data if isinstance(data, list) else [data]
    events: list[EventBase] = []
    dead: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            dead.append(_dead(source, "not_an_event", index, "expected a JSON object", item))
            continue
        try:
            events.append(parse_event(item, clock))
        except ValidationError as exc:
            letter = _dead(source, "invalid_event", index, "event failed validation", item)
            letter["errors"] = describe_errors(exc)
            dead.append(letter)
    return events, dead


def _dead(
    source: dict[str, Any], reason: str, index: int | None, detail: str, original: Any
) -> dict[str, Any]:
    if isinstance(original, bytes):
        original = {"base64": base64.b64encode(original[:65536]).decode()}
    return {
        "reason": reason,
        "detail": detail,
        "source": source,
        "index": index,
        "original": original,
    }
