"""Scoring closed buckets: readings, deterministic anomaly ids, severities, minimum evidence."""

from __future__ import annotations

import pickle

import orjson
import pytest

from streams.aggregate import ClosedBucket
from streams.indicators import FIELD, INDICATORS, new_accumulator
from streams.scoring import SeriesBank, anomaly_id, severity_of
from streams.slices import SliceKey

DAY = 86400
MONDAY = 1_772_380_800  # 2 March 2026 00:00 Shanghai; 14 days on stay clear of month-end
ORG: SliceKey = ("4403", "*", "*")
TOTAL: SliceKey = ("*", "*", "*")


def acc(**fields: float) -> list[float]:
    out = new_accumulator()
    for name, amount in fields.items():
        out[FIELD[name]] = amount
    return out


def bucket(day: int, **slices: list[float]) -> ClosedBucket:
    keys = {"org": ORG, "total": TOTAL}
    return ClosedBucket(MONDAY + day * DAY, {keys[name]: a for name, a in slices.items()})


FULL = {
    "premium_received_yuan": 50_000.0, "premium_receipts": 20.0,
    "written_premium_yuan": 100_000.0, "policies_issued": 400.0,
    "claims_closed": 40.0, "claims_paid_yuan": 60_000.0, "settlement_days_sum": 120.0,
    "complaints": 4.0, "cooling_off_cancels": 8.0,
    "calls": 1000.0, "calls_answered": 950.0,
}  # fmt: skip


def test_readings_for_every_indicator_with_a_value() -> None:
    bank = SeriesBank(DAY)
    readings, anomalies = bank.score(
        bucket(0, org=acc(**FULL), total=acc(calls=10.0, calls_answered=9.0, premium_receipts=2.0,
                                             premium_received_yuan=300.0))
    )  # fmt: skip
    assert anomalies == []  # nothing judged before the warm-up
    by_key = {(r.indicator, r.slice): r for r in readings}
    # Without targets, histogram, closed complaints, surveys, inspections or open cases these
    # have no value (open-case counts that are shown only are skipped at 0); the others are read.
    no_value = {
        "premium_attainment", "premium_pace", "claim_settlement_days_p90",
        "claims_open_age_days_mean", "complaint_closed_in_15d_rate",
        "complaint_closed_in_30d_rate", "complaint_closed_in_60d_rate",
        "complaint_handling_days_mean", "csat", "nps", "compliance_rate",
        "claims_open", "claims_overdue", "complaints_open", "complaints_overdue_15d",
        "complaints_overdue_30d", "complaints_overdue_60d",
    }  # fmt: skip
    assert {name for name, key in by_key if key == ORG} == set(INDICATORS) - no_value
    # The total has calls and premium only: the ratios over policies and claims have no value;
    # premium-based rates over no surrenders or complaints are 0.
    assert {name for name, key in by_key if key == TOTAL} == {
        "hotline_answer_rate", "hotline_answer_20s_rate", "premium_income", "surrender_rate",
        "complaint_rate_per_100m_premium", "complaint_rate_per_100m_premium_own",
        "complaint_rate_per_100m_premium_regulator",
    }  # fmt: skip
    # Hand-computed values of the full slice:
    expected = {
        "premium_income": (50_000.0, 20.0, 20.0),
        "loss_ratio": (0.6, 40.0, 40.0),  # 60,000 / 100,000
        "complaint_rate_per_10k_policies": (100.0, 4.0, 400.0),  # 4 / 400 × 10,000
        "cooling_off_cancel_rate": (0.02, 8.0, 400.0),  # 8 / 400
        "hotline_answer_rate": (0.95, 950.0, 1000.0),
        "claim_settlement_days_mean": (3.0, 40.0, 40.0),  # 120 days / 40 claims
    }
    for name, (value, k, n) in expected.items():
        r = by_key[(name, ORG)]
        assert (r.value, r.k, r.n) == (pytest.approx(value), k, n), name
        assert r.bucket_start == MONDAY
        assert r.score == 0.0  # before warm-up
    judged = {(r.indicator, r.slice) for r in readings if INDICATORS[r.indicator].judged}
    assert set(bank.series) == judged  # shown-only indicators keep no detector


def history(bank: SeriesBank, days: int = 14, **overrides: float) -> None:
    for day in range(days):
        answered = 950.0 + day % 3  # a little noise
        bank.score(bucket(day, org=acc(**{**FULL, "calls_answered": answered, **overrides})))


OUTAGE = {**FULL, "calls_answered": 500.0}  # half the calls unanswered


def test_outage_is_an_anomaly_with_a_deterministic_id() -> None:
    first, second = SeriesBank(DAY), SeriesBank(DAY)
    history(first)
    history(second)
    _, anomalies_1 = first.score(bucket(14, org=acc(**OUTAGE)))
    _, anomalies_2 = second.score(bucket(14, org=acc(**OUTAGE)))
    assert [a.indicator for a in anomalies_1] == ["hotline_answer_rate"]
    assert anomalies_1 == anomalies_2
    [a] = anomalies_1
    assert a.anomaly_id == anomaly_id("hotline_answer_rate", ORG, MONDAY + 14 * DAY)
    assert len(a.anomaly_id) == 24
    assert (a.org, a.product_line, a.channel) == ORG
    assert a.bucket_start == "2026-03-15T16:00:00+00:00"  # 16 March 00:00 Shanghai
    assert (a.value, a.k, a.n) == (0.5, 500.0, 1000.0)
    assert a.detector == "ProportionDetector"
    assert a.severity == "critical"  # p far below 1e-8
    assert a.value < a.lower <= a.expected <= a.upper  # 0.5 lies below the band


def test_anomaly_ids_differ_by_indicator_slice_and_bucket() -> None:
    ids = {
        anomaly_id("hotline_answer_rate", ORG, MONDAY),
        anomaly_id("hotline_answer_rate", TOTAL, MONDAY),
        anomaly_id("hotline_answer_rate", ORG, MONDAY + DAY),
        anomaly_id("loss_ratio", ORG, MONDAY),
    }
    assert len(ids) == 4
    assert anomaly_id("hotline_answer_rate", ORG, MONDAY) == anomaly_id(
        "hotline_answer_rate", ("4403", "*", "*"), MONDAY
    )
    # A day judged whole beside hourly buckets starts with its first hour: its own id.
    assert anomaly_id("hotline_answer_rate", ORG, MONDAY, "day") not in ids


def test_a_bank_of_some_indicators_judges_only_those_under_its_span() -> None:
    bank = SeriesBank(DAY, only=frozenset({"hotline_answer_rate"}), span="day")
    history(bank)
    readings, anomalies = bank.score(bucket(14, org=acc(**OUTAGE)))
    assert {r.indicator for r in readings} == {"hotline_answer_rate"}
    assert set(bank.series) == {("hotline_answer_rate", ORG)}
    [a] = anomalies
    assert a.anomaly_id == anomaly_id("hotline_answer_rate", ORG, MONDAY + 14 * DAY, "day")


def test_a_bank_pickled_before_it_chose_indicators_reads_them_all() -> None:
    bank = SeriesBank(DAY)
    history(bank, days=3)
    state = pickle.loads(pickle.dumps(bank)).__dict__
    del state["only"], state["span"]
    old = SeriesBank.__new__(SeriesBank)
    old.__setstate__(state)
    assert old.indicators == list(INDICATORS.values())
    history(old, days=14)
    [a] = old.score(bucket(14, org=acc(**OUTAGE)))[1]
    assert a.anomaly_id == anomaly_id("hotline_answer_rate", ORG, MONDAY + 14 * DAY)


@pytest.mark.parametrize(
    ("score", "severity"),
    [(0.5, "minor"), (0.7499, "minor"), (0.75, "major"), (0.9999, "major"), (1.0, "critical")],
)
def test_severity_thresholds(score: float, severity: str) -> None:
    # 0.5 ↔ p = 1e-4, 0.75 ↔ p = 1e-6, 1.0 ↔ p ≤ 1e-8
    assert severity_of(score) == severity


@pytest.mark.parametrize(("claims", "alarms"), [(29.0, False), (30.0, True)])
def test_settlement_days_need_thirty_closed_claims(claims: float, alarms: bool) -> None:
    bank = SeriesBank(DAY)
    for day in range(14):  # a steady 3 days over 40 claims a day
        bank.score(bucket(day, org=acc(claims_closed=40.0, settlement_days_sum=120.0)))
    # Log scale: log1p(9) − log1p(3) = 2.303 − 1.386 = 0.916, sd 0.05 × √(40/30) = 0.058:
    # z ≈ 15.9, far past the threshold — but 29 claims are not enough evidence to judge at all.
    spike = acc(claims_closed=claims, settlement_days_sum=9.0 * claims)
    readings, anomalies = bank.score(bucket(14, org=spike))
    [days] = [r for r in readings if r.indicator == "claim_settlement_days_mean"]
    assert days.value == pytest.approx(9.0)
    assert [a.indicator for a in anomalies] == (["claim_settlement_days_mean"] if alarms else [])
    assert (days.score == 1.0) is alarms
    if not alarms:
        assert days.score == 0.0


def test_too_little_evidence_is_not_learnt_either() -> None:
    bank = SeriesBank(DAY)
    for day in range(30):  # only thin buckets: the detector never warms up
        bank.score(bucket(day, org=acc(claims_closed=3.0, settlement_days_sum=9.0)))
    detector = bank.series[("claim_settlement_days_mean", ORG)].detector
    assert detector._base.seen == 0


def test_zero_complaints_keep_the_expected_rate_in_the_indicators_unit() -> None:
    # Fourteen days of 5 complaints over 1,000 policies: 50 per 10k expected. A day with none
    # must still show that expectation (5 × 10,000 / 1,000 = 50), not a band collapsed to 0.
    bank = SeriesBank(DAY)
    for day in range(14):
        bank.score(bucket(day, org=acc(complaints=5.0, policies_issued=1000.0)))
    readings, _ = bank.score(bucket(14, org=acc(complaints=0.0, policies_issued=1000.0)))
    [rate] = [r for r in readings if r.indicator == "complaint_rate_per_10k_policies"]
    assert rate.value == 0.0
    assert rate.expected == pytest.approx(50.0)
    assert rate.lower <= rate.expected < rate.upper


def test_a_day_without_receipts_shows_the_premium_it_was_expected_to_bring() -> None:
    # Fourteen days of 20 receipts worth 2,500 yuan each, then one of 40,000 yuan in fen
    # (held back as a unit error), then a day with none: 20 × 2,500 = 50,000 yuan expected,
    # not 0 and not the suspect day's mean.
    bank = SeriesBank(DAY)
    for day in range(14):
        bank.score(bucket(day, org=acc(premium_received_yuan=50_000.0, premium_receipts=20.0)))
    fen = {ORG: "amounts"}
    bank.score(bucket(14, org=acc(premium_received_yuan=5e6, premium_receipts=20.0)), fen)
    readings, _ = bank.score(bucket(15, org=acc(premium_received_yuan=0.0, premium_receipts=0.0)))
    [premium] = [r for r in readings if r.indicator == "premium_income"]
    assert premium.value == 0.0
    assert premium.expected == pytest.approx(50_000.0, rel=0.05)
    assert premium.lower < premium.expected < premium.upper


def test_a_month_hold_withholds_month_to_date_indicators_only() -> None:
    assert {n for n, i in INDICATORS.items() if i.month_to_date} == {
        "premium_attainment", "premium_pace",
    }  # fmt: skip
    bank = SeriesBank(DAY)
    premium = {"premium_received_yuan": 50_000.0, "premium_receipts": 20.0}
    for day in range(14):
        bank.score(bucket(day, org=acc(**premium)))
    collapse = acc(premium_received_yuan=0.0, premium_receipts=0.0)
    _, held = bank.score(bucket(14, org=collapse), {ORG: "month"})
    _, amounts = bank.score(bucket(15, org=collapse), {ORG: "amounts"})
    # Receipts are counted, not read off amounts or month-to-date sums: judged under both.
    assert [a.indicator for a in held] == [a.indicator for a in amounts] == ["premium_income"]


def test_one_failing_series_does_not_cost_the_others_their_bucket() -> None:
    class Broken:
        def expectation(self, x: dict) -> None:
            raise ZeroDivisionError("boom")

    bank = SeriesBank(DAY)
    bank.score(bucket(0, org=acc(**FULL)))
    bank.series[("claim_settlement_days_mean", ORG)].detector = Broken()
    readings, _ = bank.score(bucket(1, org=acc(**FULL)))
    assert bank.errors == 1
    full = {name: i.read(acc(**FULL)) for name, i in INDICATORS.items()}
    read = {name for name, r in full.items() if r.value is not None}
    read -= {n for n, r in full.items() if not INDICATORS[n].judged and r.value == r.k == r.n == 0}
    assert {r.indicator for r in readings} == read - {"claim_settlement_days_mean"}


def test_a_count_anomaly_shows_the_count_it_expected() -> None:
    # Premium is shown in yuan but judged on receipts: a day with none where 20 came every day
    # says how many were expected, so that what it rests on can be told (alerting.rules).
    bank = SeriesBank(DAY)
    for day in range(35):  # five visits of each weekday: past the warm-up
        bank.score(bucket(day, org=acc(premium_received_yuan=50_000.0, premium_receipts=20.0)))
    _, anomalies = bank.score(bucket(35, org=acc(premium_received_yuan=0.0, premium_receipts=0.0)))
    [premium] = [a for a in anomalies if a.indicator == "premium_income"]
    assert (premium.value, premium.k) == (0.0, 0.0)
    assert orjson.loads(premium.detail)["expected_count"] == pytest.approx(20.0, rel=0.05)
