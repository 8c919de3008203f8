"""Record bytes to events and dead letters: every bad part is named, the good parts still count."""

from __future__ import annotations

import base64

import orjson
import pytest

from streams.checks import ReceivingClock
from streams.decode import decode_record
from tests.streams.examples import example

TOPIC = "qualmon.events"
SOURCE = {"topic": TOPIC, "partition": 3, "offset": 17}


def decode(value: bytes | None) -> tuple[list, list[dict]]:
    return decode_record(value, TOPIC, 3, 17)


def test_single_object() -> None:
    events, dead = decode(orjson.dumps(example("call.completed", "e-1")))
    assert dead == []
    assert [e.event_id for e in events] == ["e-1"]
    assert events[0].event_type == "call.completed"


def test_array_keeps_valid_items_and_letters_each_bad_one() -> None:
    bad_amount = example("policy.issued", "e-1", amount="-5.00")
    bad_channel = example("call.completed", "e-3", channel="FAX")
    items = [
        example("premium.received", "e-0"),
        bad_amount,
        example("complaint.received", "e-2"),
        bad_channel,
        example("survey.response", "e-4"),
    ]
    events, dead = decode(orjson.dumps(items))

    assert [e.event_id for e in events] == ["e-0", "e-2", "e-4"]
    assert [d["index"] for d in dead] == [1, 3]
    for letter, original in zip(dead, (bad_amount, bad_channel), strict=True):
        assert letter["reason"] == "invalid_event"
        assert letter["source"] == SOURCE
        assert letter["original"] == original
    [amount_error] = dead[0]["errors"]
    assert amount_error["field"] == "amount"
    assert amount_error["value"] == "-5.00"
    assert "greater than or equal to 0" in amount_error["expected"]
    [channel_error] = dead[1]["errors"]
    assert channel_error["field"] == "channel"
    assert channel_error["value"] == "FAX"
    assert "'AGENCY'" in channel_error["expected"] and "'BROKER'" in channel_error["expected"]


def test_nested_payload_field_is_named_without_the_event_type() -> None:
    data = example("policy.issued")
    del data["payload"]["premium"]
    _, [letter] = decode(orjson.dumps(data))
    assert letter["errors"] == [
        {"field": "payload.premium", "value": None, "expected": "Field required"}
    ]


def test_every_error_of_one_item_is_listed() -> None:
    data = example("call.completed", channel="FAX", amount=-1)
    _, [letter] = decode(orjson.dumps(data))
    assert sorted(e["field"] for e in letter["errors"]) == ["amount", "channel"]


def test_not_json_keeps_the_original_bytes_as_base64() -> None:
    raw = b"\xff\xfe not json {"
    events, [letter] = decode(raw)
    assert events == []
    assert letter["reason"] == "not_json"
    assert letter["index"] is None
    assert letter["source"] == SOURCE
    assert letter["detail"]  # the parser's message, for the operator
    assert base64.b64decode(letter["original"]["base64"]) == raw


def test_huge_garbage_is_kept_only_up_to_64_kib() -> None:
    raw = b"x" * 100_000
    _, [letter] = decode(raw)
    assert base64.b64decode(letter["original"]["base64"]) == raw[:65536]


def test_empty_record_is_a_dead_letter_too() -> None:
    _, [letter] = decode(None)
    assert letter["reason"] == "not_json"


@pytest.mark.parametrize(
    ("record", "originals"),
    [(b"42", [42]), (b'"policy.issued"', ["policy.issued"]), (b"null", [None]),
     (b'[1, "x", [2]]', [1, "x", [2]])],
)  # fmt: skip
def test_json_that_is_not_an_object_is_not_an_event(record: bytes, originals: list) -> None:
    events, dead = decode(record)
    assert events == []
    assert [d["reason"] for d in dead] == ["not_an_event"] * len(originals)
    assert [d["index"] for d in dead] == list(range(len(originals)))
    assert [d["original"] for d in dead] == originals
    assert all(d["source"] == SOURCE for d in dead)


def test_scalar_items_beside_valid_events() -> None:
    record = orjson.dumps([7, example("call.completed", "e-1"), "x"])
    events, dead = decode(record)
    assert [e.event_id for e in events] == ["e-1"]
    assert [(d["reason"], d["index"]) for d in dead] == [("not_an_event", 0), ("not_an_event", 2)]


def test_missing_event_type_names_event_type() -> None:
    data = example("call.completed")
    del data["event_type"]
    _, [letter] = decode(orjson.dumps(data))
    assert letter["reason"] == "invalid_event"
    [error] = letter["errors"]
    assert error["field"] == "event_type"
    assert error["value"] is None


def test_unknown_event_type_names_event_type_and_its_value() -> None:
    data = example("call.completed")
    data["event_type"] = "call.dropped"
    _, [letter] = decode(orjson.dumps(data))
    [error] = letter["errors"]
    assert (error["field"], error["value"]) == ("event_type", "call.dropped")
    assert "call.completed" in error["expected"]  # the valid tags are listed


@pytest.mark.parametrize(
    ("data", "field", "value"),
    [
        (example("policy.issued", org_path="00/44/4404") | {"org_code": "4403"},
         "org_path", "00/44/4404"),
        (example("claim.closed", when="2026-02-19T09:00:00+08:00"),  # reported 20 Feb
         "payload.reported_at", "2026-02-20T09:00:00+08:00"),
        (example("complaint.closed", when="2026-02-05T09:00:00+08:00"),  # received 25 Feb
         "payload.received_at", "2026-02-25T09:00:00+08:00"),
        (example("call.completed", payload={"answered": True, "abandoned": True}),
         "payload.abandoned", True),
    ],
    ids=["org_path-vs-org_code", "reported_at-after-event_time", "received_at-after-event_time",
         "answered-and-abandoned"],
)  # fmt: skip
def test_rules_across_fields_name_the_field_and_its_value(
    data: dict, field: str, value: object
) -> None:
    # Not the discriminator tag ("policy.issued"), nor the whole event ("(event)", value null).
    _, [letter] = decode(orjson.dumps(data))
    [error] = letter["errors"]
    assert (error["field"], error["value"]) == (field, value), error


def test_an_event_too_far_ahead_of_the_receiving_clock_is_a_dead_letter() -> None:
    clock = ReceivingClock.at(1_772_416_800, allowed_lateness_seconds=3600)  # 2 March 10:00
    items = [example("call.completed", "e-1"),
             example("call.completed", "e-2", when="2099-01-01T00:00:00+08:00")]  # fmt: skip
    events, [letter] = decode_record(orjson.dumps(items), TOPIC, 3, 17, clock)
    assert [e.event_id for e in events] == ["e-1"]
    assert (letter["reason"], letter["index"]) == ("invalid_event", 1)
    assert letter["errors"] == [
        {
            "field": "event_time",
            "value": "2099-01-01T00:00:00+08:00",
            "expected": "Input should be at most 3600 s after the receiving clock "
            "(2026-03-02T02:00:00+00:00); a later event_time would close buckets that are still "
            "open (QUALMON_ALLOWED_LATENESS_SECONDS)",
        }
    ]
    # Without a clock (replays, harnesses) there is no bound.
    assert len(decode(orjson.dumps(items))[0]) == 2
