"""Each indicator, fed hand-made events, reads the value, k and n computed by hand."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from streams.cases import KINDS as CASE_KINDS
from streams.combine import CONCENTRATING
from streams.detectors import DETECTORS
from streams.fields import settlement_quantile
from streams.indicators import (
    FAMILIES,
    FIELD,
    FIELDS,
    INDICATORS,
    SIGNALS,
    Reading,
    contributions,
    family_of,
    new_accumulator,
)
from streams.schema import EVENT_TYPES, parse_event
from streams.windows import SHANGHAI as SH
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
        (example("target.set"), {"targets_set": 1.0}),
        (example("survey.response", payload={"csat_1_5": None, "nps_0_10": 9}),
         {"survey_responses": 1.0, "nps_responses": 1.0, "nps_promoters": 1.0}),
        (example("survey.response", payload={"csat_1_5": 3, "nps_0_10": 6}),
         {"survey_responses": 1.0, "csat_responses": 1.0, "csat_sum": 3.0,
          "nps_responses": 1.0, "nps_detractors": 1.0}),
        (example("survey.response", payload={"csat_1_5": 4, "nps_0_10": 7}),
         {"survey_responses": 1.0, "csat_responses": 1.0, "csat_sum": 4.0,
          "csat_satisfied": 1.0, "nps_responses": 1.0}),  # 7-8: passive
        (example("claim.reported"), {"claims_reported": 1.0}),
        (example("policy.surrendered", payload={"surrender_amount": "800.00"}),
         {"surrenders": 1.0, "surrender_yuan": 800.0}),
        (example("inspection.sample", payload={"compliant": False}),
         {"inspections": 1.0}),
        (example("inspection.sample", payload={"compliant": True}),
         {"inspections": 1.0, "inspections_compliant": 1.0}),
        # received 25 Feb 09:00, closed 2 Mar 10:00 (+08:00): 5 days 1 hour, within 15 days
        (example("complaint.closed"),
         {"complaints_closed": 1.0, "complaint_days_sum": 5 + 1 / 24,
          "complaints_closed_15d": 1.0, "complaints_closed_30d": 1.0,
          "complaints_closed_60d": 1.0}),
        # 20 Feb 09:00 → 2 Mar 10:00 = 10 days 1 hour: bin [10, 15) is the 7th (index 06)
        (example("claim.closed", payload={"decision": "DECLINED", "paid_amount": "0.00"}),
         {"claims_closed": 1.0, "settlement_days_sum": 10 + 1 / 24,
          "settle_bin_06": 1.0}),
    ],
    ids=["target.set", "survey-nps-promoter", "survey-detractor", "survey-satisfied-passive",
         "claim.reported", "surrender", "inspection-failed", "inspection-passed",
         "complaint-closed-in-time", "claim-declined"],
)  # fmt: skip
def test_contributions_of_other_events(data: dict[str, Any], expected: dict[str, float]) -> None:
    adds = contributions(parse_event(data))
    got = {FIELDS[i]: amount for i, amount in adds if amount}
    assert got == pytest.approx(expected)


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


@pytest.mark.parametrize("family", FAMILIES)
def test_families_are_documented_as_defined(family: str) -> None:
    (row,) = [line for line in DOCS.read_text().splitlines() if line.startswith(f"| `{family}` |")]
    documented = {name.strip(" `") for name in row.split("|")[2].split(",")}
    assert documented == {n for n in (*INDICATORS, *SIGNALS) if family_of(n) == family}


def test_every_anomaly_qualmon_raises_has_a_family_and_a_category() -> None:
    concentrations = {f"{kind}_concentration" for kind in CONCENTRATING.values()}
    assert concentrations <= set(SIGNALS)
    assert {f"{kind}_sla_breach" for kind in CASE_KINDS} <= set(SIGNALS)
    assert all(family_of(name) in FAMILIES for name in (*INDICATORS, *SIGNALS))
    assert not set(INDICATORS) & set(SIGNALS)
    # Only open-case timers are facts; data-quality checks are their own family and category.
    assert {s.name for s in SIGNALS.values() if s.fact} == {
        "complaint_sla_breach",
        "claim_sla_breach",
    }
    assert all(
        (s.family == "data_quality") == (s.category == "data_quality") for s in SIGNALS.values()
    )


def test_min_evidence_of_the_noisy_ratios() -> None:
    # A day's loss ratio swings with single large claims: shown, read over windows, not judged.
    assert not INDICATORS["loss_ratio"].judged
    assert INDICATORS["claim_settlement_days_mean"].min_evidence == 30.0
    assert INDICATORS["premium_pace"].min_evidence == 300.0  # receipts this month


# ---- the indicators added for the full regulation, each with hand-checked values --------------


def sums(**fields: float) -> list[float]:
    acc = new_accumulator()
    for name, value in fields.items():
        acc[FIELD[name]] = value
    return acc


def test_complaint_rates_by_source_per_policies_and_per_premium() -> None:
    acc = accumulate(
        *[policy("100.00") for _ in range(8)],
        *[example("premium.received", payload={"premium": "500000.00"}) for _ in range(4)],
        example("complaint.received", payload={"source": "OWN"}),
        example("complaint.received", payload={"source": "OWN"}),
        example("complaint.received", payload={"source": "REGULATOR"}),
    )
    # 3 complaints (2 own, 1 regulator) over 8 policies and 2,000,000 yuan received.
    assert read("complaint_rate_per_10k_policies", acc) == (3750.0, 3.0, 8.0)  # 3/8 × 10,000
    assert read("complaint_rate_per_10k_policies_own", acc) == (2500.0, 2.0, 8.0)
    assert read("complaint_rate_per_10k_policies_regulator", acc) == (1250.0, 1.0, 8.0)
    # per 100 million yuan: 3 / 2,000,000 × 100,000,000 = 150; own 100, regulator 50
    assert read("complaint_rate_per_100m_premium", acc) == (150.0, 3.0, 2_000_000.0)
    assert read("complaint_rate_per_100m_premium_own", acc) == (100.0, 2.0, 2_000_000.0)
    assert read("complaint_rate_per_100m_premium_regulator", acc) == (50.0, 1.0, 2_000_000.0)


def test_surrender_rate_is_surrender_amounts_over_premium_judged_on_the_count() -> None:
    acc = accumulate(
        example("premium.received", payload={"premium": "40000.00"}),
        example("policy.surrendered", payload={"surrender_amount": "3000.00"}),
        example("policy.surrendered", payload={"surrender_amount": "1000.00"}),
    )
    # (3,000 + 1,000) / 40,000 = 0.1, resting on 2 surrenders; one surrender is worth 0.05.
    reading = INDICATORS["surrender_rate"].read(acc)
    assert (reading.value, reading.k, reading.n, reading.per_k) == (0.1, 2.0, 40000.0, 0.05)


def test_claims_payout_rate_and_p90_settlement_days() -> None:
    closes = [(d, "PAID") for d in (0.5, 1.5, 2.5, 4.0, 6.0, 8.0, 12.0, 12.0, 25.0)]
    closes.append((100.0, "DECLINED"))
    acc = accumulate(*[
        claim_closed("0.00" if decision == "DECLINED" else "10.00", "2026-01-01T00:00:00+08:00",
                     (datetime(2026, 1, 1, tzinfo=SH) + timedelta(days=d)).isoformat(), decision)
        for d, decision in closes
    ])  # fmt: skip
    # 9 of 10 closed claims were paid.
    assert read("claim_payout_rate", acc) == (0.9, 9.0, 10.0)
    # Rank 0.9 × 10 = 9: the 9th claim (25 days) is the only one in bin [20, 30): 20 + 10 × 1/1.
    assert read("claim_settlement_days_p90", acc) == (30.0, 10.0, 10.0)
    # The median (rank 5): four claims lie below 5 days, bin [5, 7) holds the 5th (6 days)
    # alone, so 5 + 2 × (5 - 4) / 1 = 7.
    assert settlement_quantile(acc, 0.5) == 7.0


def test_complaint_handling_timeliness_against_the_15_30_60_day_limits() -> None:
    received = "2026-01-01T09:00:00+08:00"

    def closed(days: float) -> dict[str, Any]:
        when = (datetime(2026, 1, 1, 9, tzinfo=SH) + timedelta(days=days)).isoformat()
        return example("complaint.closed", when=when, payload={"received_at": received})

    acc = accumulate(closed(3), closed(15), closed(20), closed(45), closed(70))
    # Within 15 days: 3 and 15 (the limit itself is in time) → 2 of 5; within 30: 3 of 5;
    # within 60: 4 of 5. Mean handling: (3 + 15 + 20 + 45 + 70) / 5 = 30.6 days.
    assert read("complaint_closed_in_15d_rate", acc) == (0.4, 2.0, 5.0)
    assert read("complaint_closed_in_30d_rate", acc) == (0.6, 3.0, 5.0)
    assert read("complaint_closed_in_60d_rate", acc) == (0.8, 4.0, 5.0)
    assert read("complaint_handling_days_mean", acc) == (30.6, 5.0, 5.0)


def test_hotline_twenty_second_rate_is_over_calls_offered() -> None:
    acc = accumulate(call(True, 5), call(True, 20), call(True, 25.5), call(False, 60))
    # answered within 20 s (inclusive): 2 of 4 offered
    assert read("hotline_answer_20s_rate", acc) == (0.5, 2.0, 4.0)


def test_csat_and_nps_with_their_sample_sizes() -> None:
    scores = [(5, 10), (4, 9), (4, 8), (3, 7), (2, 3), (None, 0)]
    acc = accumulate(*[
        example("survey.response", payload={"csat_1_5": c, "nps_0_10": n}) for c, n in scores
    ])  # fmt: skip
    # CSAT: 3 of 5 CSAT answers rate 4 or 5. NPS over 6 answers: promoters 10, 9 (2);
    # detractors 3, 0 (2); passives 8, 7: (2 - 2) / 6 × 100 = 0.
    assert read("csat", acc) == (0.6, 3.0, 5.0)
    assert read("nps", acc) == (0.0, 6.0, 6.0)
    acc = accumulate(*[example("survey.response", payload={"csat_1_5": None, "nps_0_10": n})
                       for n in (10, 10, 9, 5)])  # fmt: skip
    assert read("nps", acc) == (50.0, 4.0, 4.0)  # (3 - 1) / 4 × 100


def test_compliance_rate_carries_a_wilson_interval() -> None:
    acc = accumulate(*[
        example("inspection.sample", payload={"compliant": i < 45}) for i in range(50)
    ])  # fmt: skip
    reading = INDICATORS["compliance_rate"].read(acc)
    assert (reading.value, reading.k, reading.n) == (0.9, 45.0, 50.0)
    # Wilson, z = 1.96: centre (0.9 + 1.9208/50) / (1 + 3.8416/50) = 0.8715, half-width 0.0850
    assert reading.interval == (pytest.approx(0.7864, abs=1e-4), pytest.approx(0.9565, abs=1e-4))


def test_attainment_and_pace_against_the_months_target() -> None:
    acc = sums(mtd_premium_yuan=400_000.0, mtd_receipts=350.0, month_target_yuan=1_000_000.0,
               month_progress=0.5)  # fmt: skip
    # 400,000 / 1,000,000 = 40 % attained when 50 % of the month's business was due: pace 0.8.
    assert read("premium_attainment", acc) == (0.4, 0.0, 1_000_000.0)
    assert read("premium_pace", acc) == (0.8, 350.0, 350.0)
    early = sums(mtd_premium_yuan=50_000.0, mtd_receipts=90.0, month_target_yuan=1_000_000.0,
                 month_progress=0.1)  # fmt: skip
    assert read("premium_pace", early) == (0.5, 0.0, 0.0)  # too early in the month to judge


def test_open_case_snapshots() -> None:
    acc = sums(
        claims_open=4.0,
        claims_open_age_days_sum=50.0,
        claims_overdue=1.0,
        complaints_open=3.0,
        complaints_overdue_15d=2.0,
        complaints_overdue_30d=1.0,
    )
    assert read("claims_open", acc) == (4.0, 4.0, 4.0)
    assert read("claims_open_age_days_mean", acc) == (12.5, 4.0, 4.0)  # 50 days / 4 claims
    # Overdue counts rest on the open cases: 1 of 4 claims, 2 and 1 of 3 complaints; none
    # overdue is still a reading while cases are open.
    assert read("claims_overdue", acc) == (1.0, 1.0, 4.0)
    assert read("complaints_overdue_15d", acc) == (2.0, 2.0, 3.0)
    assert read("complaints_overdue_30d", acc) == (1.0, 1.0, 3.0)
    assert read("complaints_overdue_60d", acc) == (0.0, 0.0, 3.0)
