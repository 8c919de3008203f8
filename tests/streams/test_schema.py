"""The event contract: one valid example per type, and the inputs it must refuse by name."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from streams.checks import ReceivingClock
from streams.schema import EVENT_TYPES, event_json_schema, event_time_epoch, parse_event
from tests.streams.examples import MINIMAL_PAYLOADS, example


def test_every_event_type_has_an_example() -> None:
    assert set(MINIMAL_PAYLOADS) == set(EVENT_TYPES)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_minimal_example_parses(event_type: str) -> None:
    data = example(event_type)
    event = parse_event(data)
    assert event.event_type == event_type  # type: ignore[attr-defined]
    assert event.event_id == "e-1"
    assert event.currency == "CNY"  # the default
    # What the model dumps is accepted again unchanged (the DLQ and late-event store rely on it).
    assert parse_event(event.model_dump(mode="json")) == event


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data[key] = value

    return mutate


def _set_payload(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        data["payload"][key] = value

    return mutate


def _drop_payload(*keys: str) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        for key in keys:
            data["payload"].pop(key)

    return mutate


# (event type, change to a valid example, last part of the error location, error type)
REJECTED = {
    "naive event_time": (
        "policy.issued", _set("event_time", "2026-03-02T10:00:00"), "event_time", "timezone_aware"
    ),
    "unknown field": ("policy.issued", _set("ammount", "1.00"), "ammount", "extra_forbidden"),
    "unknown payload field": (
        "policy.issued", _set_payload("premuim", "1.00"), "premuim", "extra_forbidden"
    ),
    "negative amount": ("policy.issued", _set("amount", "-0.01"), "amount", "greater_than_equal"),
    "negative payload money": (
        "premium.received", _set_payload("premium", -5), "premium", "greater_than_equal"
    ),
    "amount with fractions of a fen": (
        "policy.issued", _set("amount", "1.001"), "amount", "decimal_max_places"
    ),
    "unknown channel": ("call.completed", _set("channel", "FAX"), "channel", "literal_error"),
    "unknown product line": (
        "call.completed", _set("product_line", "pets"), "product_line", "literal_error"
    ),
    "currency other than CNY": (
        "premium.received", _set("currency", "USD"), "currency", "literal_error"
    ),
    "org_path not ending in org_code": (
        "policy.issued", _set("org_path", "00/44/4404"), "org_path", "value_error"
    ),
    "claim closed before it was reported": (
        "claim.closed",
        _set_payload("reported_at", "2026-03-02T10:00:01+08:00"),  # event_time is 10:00:00
        "reported_at",
        "closed_before_opened",
    ),
    "complaint closed before it was received": (
        "complaint.closed",
        _set_payload("received_at", "2026-03-22T09:30:00+08:00"),  # event_time is 2 March
        "received_at",
        "closed_before_opened",
    ),
    # JSON types are not guessed at: a flag is a JSON boolean, a score or count a JSON integer.
    "answered as a word": (
        "call.completed", _set_payload("answered", "yes"), "answered", "bool_type"
    ),
    "answered as a number": (
        "call.completed", _set_payload("answered", 1), "answered", "bool_type"
    ),
    "compliant as a string": (
        "inspection.sample", _set_payload("compliant", "true"), "compliant", "bool_type"
    ),
    "csat as a string": (
        "survey.response", _set_payload("csat_1_5", "4"), "csat_1_5", "int_type"
    ),
    "csat as a boolean": (
        "survey.response", _set_payload("csat_1_5", True), "csat_1_5", "int_type"
    ),
    "wait as a string": (
        "call.completed", _set_payload("wait_seconds", "12"), "wait_seconds", "float_type"
    ),
    "nps as a float": ("survey.response", _set_payload("nps_0_10", 9.0), "nps_0_10", "int_type"),
    "period_no as a string": (
        "premium.received", _set_payload("period_no", "2"), "period_no", "int_type"
    ),
    "event_time as epoch seconds": (
        "call.completed", _set("event_time", 1772416800), "event_time", "iso_datetime"
    ),
    "event_time as a string of epoch seconds": (
        "call.completed", _set("event_time", "1772416800"), "event_time", "iso_datetime"
    ),
    "received_at as epoch seconds": (
        "complaint.closed", _set_payload("received_at", 1772000000), "received_at", "iso_datetime"
    ),
    "blank event_id": ("call.completed", _set("event_id", "   "), "event_id", "blank"),
    "call answered and abandoned": (
        "call.completed", _set_payload("abandoned", True), "abandoned", "value_error"
    ),
    "survey without any score": ("survey.response", _drop_payload("csat_1_5"), None, "value_error"),
    "csat out of range": (
        "survey.response", _set_payload("csat_1_5", 6), "csat_1_5", "less_than_equal"
    ),
    "unknown event type": (
        "policy.issued", _set("event_type", "policy.bogus"), None, "union_tag_invalid"
    ),
}  # fmt: skip


@pytest.mark.parametrize(
    ("event_type", "mutate", "field", "error_type"), REJECTED.values(), ids=REJECTED.keys()
)
def test_rejects(
    event_type: str,
    mutate: Callable[[dict[str, Any]], None],
    field: str | None,
    error_type: str,
) -> None:
    data = example(event_type)
    mutate(data)
    with pytest.raises(ValidationError) as caught:
        parse_event(data)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    assert errors[0]["type"] == error_type
    if field is not None:
        assert errors[0]["loc"][-1] == field


def test_error_messages_explain_the_cross_field_rules() -> None:
    bad_path = example("policy.issued", org_path="00/44/4404")
    bad_path["org_code"] = "4403"
    with pytest.raises(ValidationError, match="must end with org_code '4403'"):
        parse_event(bad_path)
    survey = example("survey.response")
    del survey["payload"]["csat_1_5"]
    with pytest.raises(ValidationError, match="csat_1_5 or nps_0_10"):
        parse_event(survey)


def test_cross_field_errors_name_the_field_and_its_value() -> None:
    closed = example("complaint.closed", when="2026-03-02T10:00:00+08:00")
    closed["payload"]["received_at"] = "2026-03-22T09:30:00+08:00"
    with pytest.raises(ValidationError) as caught:
        parse_event(closed)
    [error] = caught.value.errors()
    assert error["loc"] == ("complaint.closed", "payload", "received_at")
    assert error["input"] == "2026-03-22T09:30:00+08:00"
    assert "at or before event_time (2026-03-02T10:00:00+08:00)" in error["msg"]
    call = example("call.completed", payload={"abandoned": True})
    with pytest.raises(ValidationError) as caught:
        parse_event(call)
    [error] = caught.value.errors()
    assert (error["loc"], error["input"]) == (("call.completed", "payload", "abandoned"), True)


def test_complaint_closed_at_the_instant_it_was_received_is_valid() -> None:
    data = example("complaint.closed", when="2026-03-02T10:00:00+08:00")
    data["payload"]["received_at"] = "2026-03-02T02:00:00Z"
    assert parse_event(data).payload.received_at == parse_event(data).event_time  # type: ignore[attr-defined]


def test_abandoned_unanswered_call_is_valid() -> None:
    data = example("call.completed", payload={"answered": False, "abandoned": True})
    assert parse_event(data).payload.abandoned is True  # type: ignore[attr-defined]


# 2 March 2026 10:00 Shanghai, the examples' event time.
NOW = 1_772_416_800


@pytest.mark.parametrize(
    ("lateness", "when", "valid"),
    [(3600, "2026-03-02T11:00:00+08:00", True), (3600, "2026-03-02T11:00:01+08:00", False),
     (3600, "2099-01-01T00:00:00+08:00", False), (3600, "2020-01-01T00:00:00+08:00", True),
     (0, "2026-03-02T10:01:00+08:00", True), (0, "2026-03-02T10:01:01+08:00", False)],
)  # fmt: skip
def test_event_time_may_be_ahead_of_the_receiving_clock_by_the_allowed_lateness(
    lateness: int, when: str, valid: bool
) -> None:
    # Ahead by more, an event would close buckets still open; 60 s at least, for clock skew.
    data = example("call.completed", when=when)
    clock = ReceivingClock.at(NOW, allowed_lateness_seconds=lateness)
    if valid:
        assert parse_event(data, clock).event_id == "e-1"
        return
    with pytest.raises(ValidationError) as caught:
        parse_event(data, clock)
    [error] = caught.value.errors()
    assert (error["type"], error["loc"][-1], error["input"]) == (
        "event_time_ahead",
        "event_time",
        when,
    )
    ahead = max(lateness, 60)
    assert (
        f"at most {ahead} s after the receiving clock (2026-03-02T02:00:00+00:00)" in error["msg"]
    )


def test_without_a_clock_event_time_has_no_upper_bound() -> None:
    # Replays, the simulator and tests validate events dated anywhere.
    assert parse_event(example("call.completed", when="2099-01-01T00:00:00+08:00"))


def test_survey_with_nps_only_is_valid() -> None:
    data = example("survey.response")
    data["payload"] = {"touchpoint": "hotline", "nps_0_10": 0}
    assert parse_event(data).payload.nps_0_10 == 0  # type: ignore[attr-defined]


def test_claim_closed_at_the_instant_it_was_reported_is_valid() -> None:
    # Same instant written in two offsets: 02:00Z is 10:00 in Shanghai.
    data = example("claim.closed", when="2026-03-02T10:00:00+08:00")
    data["payload"]["reported_at"] = "2026-03-02T02:00:00+00:00"
    assert parse_event(data).payload.reported_at == parse_event(data).event_time  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("as_string", "as_number", "expected"),
    [("1234.50", 1234.5, Decimal("1234.5")), ("1234.56", 1234.56, Decimal("1234.56")),
     ("100", 100, Decimal(100)), ("0.00", 0, Decimal(0))],
)  # fmt: skip
def test_amounts_as_string_or_number_are_the_same_decimal(
    as_string: str, as_number: float, expected: Decimal
) -> None:
    from_string = parse_event(example("policy.issued", amount=as_string))
    from_number = parse_event(example("policy.issued", amount=as_number))
    assert isinstance(from_string.amount, Decimal)
    assert isinstance(from_number.amount, Decimal)
    assert from_string.amount == from_number.amount == expected
    # payload money too
    p_string = parse_event(example("policy.issued", payload={"premium": as_string}))
    p_number = parse_event(example("policy.issued", payload={"premium": as_number}))
    assert p_string.payload.premium == p_number.payload.premium == expected  # type: ignore[attr-defined]


def test_org_ancestors_along_the_path() -> None:
    event = parse_event(example("policy.issued", org_path="00/44/4403"))
    assert event.org_ancestors() == ("00", "00/44", "00/44/4403")


def test_org_ancestors_without_path_is_the_org_alone() -> None:
    data = example("policy.issued")
    del data["org_path"]
    assert parse_event(data).org_ancestors() == ("4403",)


def test_event_time_epoch_respects_the_offset() -> None:
    # 2026-03-02T00:00+08:00 = 2026-03-01T16:00Z. 2026-01-01T00:00Z is 1_767_225_600
    # (2025-01-01 = 1_735_689_600, + 365 days); + 59 days (Jan, Feb) + 16 h = 1_772_380_800.
    shanghai = parse_event(example("call.completed", when="2026-03-02T00:00:00+08:00"))
    utc = parse_event(example("call.completed", when="2026-03-01T16:00:00Z"))
    assert event_time_epoch(shanghai) == event_time_epoch(utc) == 1_772_380_800.0


def test_json_schema_mentions_every_event_type() -> None:
    schema = event_json_schema()
    json.dumps(schema)  # plain JSON, nothing Python-only
    single, batch = schema["anyOf"]
    assert batch["type"] == "array"
    for variant in (single, batch["items"]):
        mapping = variant["discriminator"]["mapping"]
        assert variant["discriminator"]["propertyName"] == "event_type"
        assert set(mapping) == set(EVENT_TYPES)
        for event_type, ref in mapping.items():
            definition = schema["$defs"][ref.removeprefix("#/$defs/")]
            assert definition["properties"]["event_type"]["const"] == event_type
            assert definition["additionalProperties"] is False  # extra="forbid" is published
            assert {"event_id", "event_time", "event_type", "payload"} <= set(
                definition["required"]
            )
