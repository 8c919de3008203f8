"""Each indicator, fed hand-made events, reads the value, k and n computed by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from streams.detectors import DETECTORS
from streams.indicators import (
    FIELD,
    FIELDS,
    INDICATORS,
    Reading,
    contributions,
    new_accumulator,
)
from streams.schema import EVENT_TYPES, parse_event
from tests.streams.examples import example

DOCS = Path(__file__).resolve().parents[2] / "docs" / "indicators.md"


def accumulate(*events: dict[str, Any]) -> list[float]:
    acc = new_accumulator()
    for i, data in enumerate(events):
        data = {**data, "event_id": f"e-{i}"}
        for field, amount in contributions(parse_event(data)):
            acc[field] += amount
    return acc


def policy(premium: str) -> dict[str, Any]:
    return example("policy.issued", payload={"premium": premium})


def claim_closed(paid: str, reported_at: str, closed_at: str, decision: str = "PAID") -> dict:
    payload = {"paid_amount": paid, "reported_at": reported_at, "decision": decision}
    return example("claim.closed", when=closed_at, payload=payload)


def call(answered: bool, wait: float) -> dict[str, Any]:
    return example("call.completed", payload={"answered": answered, "wait_seconds": wait})


def read(name: str, acc: list[float]) -> tuple[float | None, float, float]:
    r = INDICATORS[name].read(acc)
    return (None if r.value is None else pytest.approx(r.value), r.k, r.n)  # type: ignore[return-value]


def test_premium_income_is_the_sum_of_premium_received() -> None:
    acc = accumulate(
        example("premium.received", payload={"premium": "1000.00"}),
        example("premium.received", payload={"premium": "250.50"}),
        example("premium.received", payload={"premium": 99.5}),
        policy("7777.00"),  # written premium, not income
    )
    # 1000 + 250.50 + 99.50 = 1350.00 over 3 receipts
    assert read("premium_income", acc) == (1350.0, 3.0, 3.0)


def test_loss_ratio_is_paid_over_written() -> None:
    acc = accumulate(
        policy("3000.00"),
        policy("1000.00"),
        claim_closed("1000.00", "2026-03-01T10:00:00+08:00", "2026-03-02T10:00:00+08:00"),
        claim_closed("0.00", "2026-03-01T10:00:00+08:00", "2026-03-02T10:00:00+08:00", "DECLINED"),
        claim_closed("500.00", "2026-03-01T10:00:00+08:00", "2026-03-02T10:00:00+08:00"),
    )
    # paid 1000 + 0 + 500 = 1500; written 3000 + 1000 = 4000; 1500 / 4000 = 0.375.
    # Its evidence is the 3 closed claims, not the yuan.
    assert read("loss_ratio", acc) == (0.375, 3.0, 3.0)


def test_complaint_rate_is_per_ten_thousand_policies() -> None:
    acc = accumulate(
        *[policy("100.00") for _ in range(4)],
        example("complaint.received", payload={"source": "OWN"}),
        example("complaint.received", payload={"source": "REGULATOR"}),
        example("complaint.closed"),  # closing is not a new complaint
    )
    # 2 complaints / 4 policies × 10,000 = 5,000
    assert read("complaint_rate_per_10k_policies", acc) == (5000.0, 2.0, 4.0)
    assert acc[FIELD["complaints_regulator"]] == 1.0
    assert acc[FIELD["complaints_closed"]] == 1.0


def test_cooling_off_cancel_rate() -> None:
    acc = accumulate(*[policy("100.00") for _ in range(4)], example("policy.cooling_off_cancel"))
    # 1 cancellation / 4 policies = 0.25
    assert read("cooling_off_cancel_rate", acc) == (0.25, 1.0, 4.0)


def test_hotline_answer_rate_and_twenty_second_count() -> None:
    acc = accumulate(call(True, 5), call(True, 20), call(True, 25.5), call(False, 60))
    # 3 answered / 4 offered = 0.75; answered within 20 s (inclusive): the 5 s and 20 s calls.
    assert read("hotline_answer_rate", acc) == (0.75, 3.0, 4.0)
    assert acc[FIELD["calls_answered_20s"]] == 2.0


def test_mean_settlement_days_counts_fractions_of_days_across_offsets() -> None:
    acc = accumulate(
        # 1 March 10:00 → 3 March 22:00 (both Shanghai) = 2 days 12 h = 2.5 days
        claim_closed("1.00", "2026-03-01T10:00:00+08:00", "2026-03-03T22:00:00+08:00"),
        # 1 March 02:00Z = 10:00 Shanghai → 2 March 16:00 Shanghai = 1 day 6 h = 1.25 days
        claim_closed("1.00", "2026-03-01T02:00:00+00:00", "2026-03-02T16:00:00+08:00"),
    )
    # (2.5 + 1.25) / 2 = 1.875 days over 2 closed claims
    assert acc[FIELD["settlement_days_sum"]] == pytest.approx(3.75)
    assert read("claim_settlement_days_mean", acc) == (1.875, 2.0, 2.0)
    assert INDICATORS["claim_settlement_days_mean"].metric_scale == 86400.0  # exported in s


@pytest.mark.parametrize(
    ("name", "events", "k"),
    [
        # claims paid but nothing written in the bucket: no ratio
        ("loss_ratio", [claim_closed("9.00", "2026-03-01T10:00:00+08:00",
                                     "2026-03-02T10:00:00+08:00")], 1.0),
        ("complaint_rate_per_10k_policies", [example("complaint.received")], 1.0),
        ("cooling_off_cancel_rate", [example("policy.cooling_off_cancel")], 1.0),
        ("hotline_answer_rate", [example("premium.received")], 0.0),
        ("claim_settlement_days_mean", [example("claim.reported")], 0.0),
    ],
)  # fmt: skip
def test_value_is_none_when_the_denominator_is_zero(
    name: str, events: list[dict[str, Any]], k: float
) -> None:
    reading = INDICATORS[name].read(accumulate(*events))
    assert reading.value is None
    assert reading.k == k


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (example("target.set"), {}),
        (example("survey.response", payload={"csat_1_5": None, "nps_0_10": 9}), {}),
        (example("survey.response", payload={"csat_1_5": 4}),
         {"csat_responses": 1.0, "csat_sum": 4.0}),
        (example("claim.reported"), {"claims_reported": 1.0}),
        (example("policy.surrendered", payload={"surrender_amount": "800.00"}),
         {"surrenders": 1.0, "surrender_yuan": 800.0}),
        (example("inspection.sample", payload={"compliant": False}), {"inspections": 1.0}),
        (example("inspection.sample", payload={"compliant": True}),
         {"inspections": 1.0, "inspections_compliant": 1.0}),
    ],
    ids=["target.set", "survey-nps-only", "survey-csat", "claim.reported", "surrender",
         "inspection-failed", "inspection-passed"],
)  # fmt: skip
def test_contributions_of_other_events(data: dict[str, Any], expected: dict[str, float]) -> None:
    adds = contributions(parse_event(data))
    assert {FIELDS[i]: amount for i, amount in adds} == expected


def test_every_event_type_contributes_without_error() -> None:
    for event_type in EVENT_TYPES:
        for field, amount in contributions(parse_event(example(event_type))):
            assert 0 <= field < len(FIELDS)
            assert amount >= 0


# ---- one contract over every indicator ----------------------------------------------------------


@pytest.mark.parametrize("name", INDICATORS)
def test_indicator_contract(name: str) -> None:
    indicator = INDICATORS[name]
    assert indicator.name == name
    assert indicator.metric.startswith("qualmon_indicator_")
    assert indicator.kind in DETECTORS
    assert indicator.direction in ("high", "low", "both")
    assert indicator.description.strip()
    assert indicator.metric_scale > 0
    assert indicator.min_evidence >= 0
    empty = indicator.read(new_accumulator())
    assert isinstance(empty, Reading)
    assert (empty.k, empty.n) == (0.0, 0.0)
    # A sum has a value of 0 over nothing; a ratio or mean has none.
    assert empty.value in (None, 0.0)
    # Reading does not mutate the accumulator.
    acc = [float(i + 1) for i in range(len(FIELDS))]
    indicator.read(acc)
    assert acc == [float(i + 1) for i in range(len(FIELDS))]


@pytest.mark.parametrize("name", INDICATORS)
def test_indicator_is_documented(name: str) -> None:
    assert f"| `{name}` |" in DOCS.read_text()


def test_min_evidence_of_the_noisy_ratios() -> None:
    assert INDICATORS["loss_ratio"].min_evidence == 30.0
    assert INDICATORS["claim_settlement_days_mean"].min_evidence == 10.0
