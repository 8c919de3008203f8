"""Every incident the simulator can inject is flagged on the right slice, as the right kind of
anomaly, and a month of normal seasonal traffic raises none.

The simulated events go through the worker's Faust-free core — validation, de-duplication,
aggregation, bucket close (:class:`streams.watch.Watch`) — exactly as the worker runs them, minus
Kafka; a run of 45 simulated days takes a few seconds.
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from typing import Any

import pytest

from monitor.settings import Settings
from monitor.simulator import SimConfig, generate
from streams.aggregate import ClosedBucket
from streams.schema import parse_event
from streams.scoring import Anomaly
from streams.slices import Slicer
from streams.watch import Watch
from streams.windows import SHANGHAI
from tests.streams.stages import Local

START = date(2026, 3, 2)  # a Monday; the runs cross the March month- and quarter-end
SMALL = {"seed": 11, "branches": 6, "product_lines": 5, "channels": 3, "start": START}
#: Smaller still, for runs in hourly buckets (24 times the closes): a few events an hour per branch.
TINY = {**SMALL, "branches": 3, "product_lines": 3, "channels": 2}
INCIDENTS = ("mis-selling", "hotline-outage", "claims-backlog", "surrender-spike", "feed-loss",
             "unit-error", "duplicate-surge")  # fmt: skip
DAYS = 45
# Where each incident plays in a 45-day run (day index from START, see monitor.scenarios).
MIS_SELLING = range(37, 44)  # 4403 / life / BANCA
OUTAGE_DAY = 42  # 3101
BACKLOG = range(5, 14)  # 4401: claims reported on these days stay open 42 days more
SURRENDERS = range(38, 42)  # every org, universal life
FEED_LOSS_DAY = 40  # 3102
UNIT_ERROR = range(33, 35)  # 4402
DUPLICATES_DAY = 35  # 3103


@functools.cache
def run(scenarios: tuple[str, ...], days: int) -> tuple[Anomaly, ...]:
    return run_config(SimConfig(days=days, scenarios=scenarios, **SMALL))  # type: ignore[arg-type]


def run_config(cfg: SimConfig, bucket_seconds: int = 86400) -> tuple[Anomaly, ...]:
    settings = Settings()
    slicer = Slicer(settings.slice_combinations, settings.max_orgs)
    stages = Local(bucket_seconds, min(3600, bucket_seconds), 2 * 86400, slicer)
    watch = Watch(bucket_seconds, settings.calendar())
    found: list[Anomaly] = []
    for hour in generate(cfg):
        for event in hour:
            stages.add(parse_event(event))
        for bucket in stages.close_due():
            found += watch.close(bucket, stages.aggregator).anomalies
    return tuple(found)


def day(a: Anomaly) -> int:
    local = datetime.fromisoformat(a.bucket_start).astimezone(SHANGHAI).date()
    return (local - START).days


def within(a: Anomaly, org: tuple[str, ...], line: str = "*", channel: str = "*") -> bool:
    """The anomaly's slice holds the incident's slice (itself, or a roll-up of it)."""
    return a.org in ("*", *org) and a.product_line in ("*", line) and a.channel in ("*", channel)


def explained(a: Anomaly) -> bool:
    """Is ``a`` one of the incidents of the 45-day run, on its days and slices?"""
    d = day(a)
    if a.indicator.startswith(("complaint", "cooling_off")):
        return d in MIS_SELLING and within(a, ("00", "44", "4403"), "life", "BANCA")
    if a.indicator.startswith("hotline"):
        return d == OUTAGE_DAY and within(a, ("00", "31", "3101"), a.product_line, a.channel)
    if a.indicator == "claim_sla_breach":
        return a.org == "4401"
    if a.indicator.startswith("surrender"):
        return d in range(SURRENDERS.start, SURRENDERS.stop + 7)
    if a.indicator == "feed_silence":
        return d == FEED_LOSS_DAY
    if a.indicator == "amount_unit_jump":
        return d in UNIT_ERROR
    if a.indicator == "duplicate_surge":
        return d == DUPLICATES_DAY
    return False


@pytest.fixture(scope="module")
def incidents() -> tuple[Anomaly, ...]:
    return run(INCIDENTS, DAYS)


def test_a_month_of_normal_seasonal_traffic_raises_no_alarm() -> None:
    # 35 days: weekends, the March month-end and quarter-end push, the start of April.
    assert run((), 35) == ()


def hourly(**config: Any) -> tuple[Anomaly, ...]:
    return run_config(SimConfig(**{**TINY, **config}), bucket_seconds=3600)


def test_a_month_of_hourly_buckets_raises_no_alarm() -> None:
    # Quiet nights (1/144 of a day's business an hour), lunch dips, weekends and the quarter-end
    # push, hour by hour: nights once looked like premium outages (230 false lows in this run).
    assert hourly(days=31) == ()


def test_a_day_of_re_sent_events_is_found_with_hourly_buckets_too() -> None:
    # A small branch re-sends a third of its events for a day: a few an hour, significant in
    # no single hour; the day's share is judged when the day ends.
    found = hourly(days=24, scenarios=("duplicate-surge",))
    assert [(day(a), a.indicator, a.org, a.category) for a in found] == [
        (14, "duplicate_surge", "4401", "data_quality")
    ]
    assert datetime.fromisoformat(found[0].bucket_start).astimezone(SHANGHAI).hour == 23


def test_hourly_buckets_through_a_public_holiday() -> None:
    # National Day: its hours and the day judged whole are shown but neither judged nor learnt.
    holidays = Settings().calendar().holidays
    assert date(2026, 10, 1) in holidays
    assert hourly(days=8, start=date(2026, 9, 28), holidays=holidays) == ()


def test_a_day_is_judged_whole_once_a_day_whatever_the_bucket() -> None:
    # Half-hour buckets: two end in the midnight hour, only one at midnight.
    settings = Settings()
    stages = Local(1800, 1800, 2 * 86400, Slicer(settings.slice_combinations, settings.max_orgs))
    watch = Watch(1800, settings.calendar())
    assert watch.days is not None
    judged: list[int] = []
    score = watch.days.score

    def recorded(bucket: ClosedBucket, *rest: Any) -> Any:
        judged.append(bucket.start)
        return score(bucket, *rest)

    watch.days.score = recorded  # type: ignore[method-assign]
    for hour in generate(SimConfig(**{**TINY, "days": 3})):
        for event in hour:
            stages.add(parse_event(event))
        for bucket in stages.close_due():
            watch.close(bucket, stages.aggregator)
    starts = [datetime.fromtimestamp(s, SHANGHAI).time().isoformat() for s in judged]
    assert starts == ["00:00:00"] * 2  # the two days that ended, each once
    assert len(set(judged)) == 2


def test_a_start_late_in_a_month_does_not_judge_that_months_pace() -> None:
    # Started on 26 February, February's month-to-date premium holds three days of it against a
    # month nearly gone: its pace, learnt, made every March night look behind pace.
    assert hourly(days=19, start=date(2026, 2, 26)) == ()


def test_a_unit_error_with_hourly_buckets_is_data_quality_only() -> None:
    # The day's verdict comes at its end; the pace detectors had learnt its hours of ×100
    # premium, and a week later the month-to-date pace "fell behind" what they had learnt.
    found = hourly(days=24, scenarios=("unit-error",))
    assert found and {(a.indicator, a.category) for a in found} == {
        ("amount_unit_jump", "data_quality")
    }


def test_mis_selling_is_flagged_in_its_slice_and_as_a_concentration(incidents) -> None:
    mine = [a for a in incidents if a.indicator.startswith(("complaint", "cooling_off"))]
    assert {day(a) for a in mine} <= set(MIS_SELLING)
    assert all(within(a, ("00", "44", "4403"), "life", "BANCA") for a in mine)
    business = {a.indicator for a in mine if (a.org, a.product_line, a.channel)
                == ("4403", "life", "BANCA") and a.category == "business"}  # fmt: skip
    assert "complaint_rate_per_10k_policies" in business
    concentrated = [a for a in mine if a.category == "concentration"]
    # Complaints concentrate for sure; cancellations (a few a day) only on some seeds.
    assert "complaints_concentration" in {a.indicator for a in concentrated}
    assert {a.indicator for a in concentrated} <= {
        "complaints_concentration", "cooling_off_cancels_concentration"
    }  # fmt: skip
    assert {(a.org, a.product_line, a.channel) for a in concentrated} == {("4403", "life", "BANCA")}
    detail = json.loads(concentrated[-1].detail)
    assert detail["window"] == "7d"
    assert detail["top_products"][0][0].startswith("P-life-")  # what was sold
    assert concentrated[-1].value > 5 * concentrated[-1].expected  # share vs expected share


def test_hotline_outage_is_flagged_at_its_org_on_its_day(incidents) -> None:
    mine = [a for a in incidents if a.indicator.startswith("hotline")]
    assert {day(a) for a in mine} == {OUTAGE_DAY}
    assert all(within(a, ("00", "31", "3101"), a.product_line, a.channel) for a in mine)
    assert {(a.indicator, a.org) for a in mine} >= {
        ("hotline_answer_rate", "3101"), ("hotline_answer_20s_rate", "3101")
    }  # fmt: skip


def test_claims_backlog_breaches_the_limit_before_the_claims_close(incidents) -> None:
    mine = [a for a in incidents if a.indicator == "claim_sla_breach"]
    assert mine
    assert {a.org for a in mine} == {"4401"}
    # Reported from day 5 on and open past 30 days: the first breach comes 31 days later, while
    # none of these claims has closed (they close 42 days or more after their report).
    assert min(day(a) for a in mine) >= BACKLOG.start + 30
    assert max(day(a) for a in mine) <= BACKLOG.stop + 31
    assert {a.category for a in mine} == {"business"}
    detail = json.loads(mine[0].detail)
    assert detail["limit_days"] == 30 and detail["count"] == len(detail["cases"]) >= 1
    assert detail["cases"][0].startswith("CL4401")


def test_surrender_spike_after_a_rate_cut_is_flagged_on_the_product_line(incidents) -> None:
    mine = [a for a in incidents if a.indicator.startswith("surrender")]
    assert {day(a) for a in mine} <= set(range(SURRENDERS.start, SURRENDERS.stop + 7))
    assert any(
        (a.indicator, a.org, a.product_line, a.channel) == ("surrender_rate", "*", "universal", "*")
        for a in mine
    )
    for a in mine:
        if a.category == "concentration":  # a leaf of the universal line
            assert a.product_line == "universal"


def test_feed_loss_is_a_data_quality_anomaly_not_a_business_one(incidents) -> None:
    silent = [a for a in incidents if a.indicator == "feed_silence"]
    assert [(day(a), a.org, a.category) for a in silent] == [
        (FEED_LOSS_DAY, "3102", "data_quality")
    ]
    assert silent[0].value == 0.0 and silent[0].expected > 10
    that_day = [a for a in incidents if day(a) == FEED_LOSS_DAY and a.category == "business"]
    assert not [a for a in that_day if a.org in ("3102", "31")]


def test_unit_error_is_a_data_quality_anomaly_not_a_business_one(incidents) -> None:
    jumps = [a for a in incidents if a.indicator == "amount_unit_jump"]
    assert jumps and {(a.org, a.category) for a in jumps} == {("4402", "data_quality")}
    assert {day(a) for a in jumps} == set(UNIT_ERROR)
    for a in jumps:
        assert 50 < json.loads(a.detail)["factor"] < 500  # fen sent as yuan: ×100
    assert not [a for a in incidents if day(a) in UNIT_ERROR and a.category != "data_quality"]


def test_a_duplicate_surge_is_a_data_quality_anomaly_of_its_org(incidents) -> None:
    surges = [a for a in incidents if a.indicator == "duplicate_surge"]
    assert [(day(a), a.org, a.category) for a in surges] == [
        (DUPLICATES_DAY, "3103", "data_quality")
    ]
    # Every third event of the day sent twice: a quarter of what arrived was a re-send.
    assert 0.2 < surges[0].value < 0.3


def test_every_anomaly_of_the_incident_run_is_explained_by_an_incident(incidents) -> None:
    assert [a for a in incidents if not explained(a)] == []


def test_with_hourly_buckets_day_long_incidents_are_found_over_their_day() -> None:
    # A branch's few calls an hour, a surrender wave or a complaint wave of a few a day: no
    # single hour is evidence, the whole day is (judged at its end beside the hours).
    found = run_config(SimConfig(days=DAYS, scenarios=INCIDENTS, **SMALL), bucket_seconds=3600)
    assert [a for a in found if not explained(a)] == []
    whole_days = [a for a in found if a.bucket_seconds == 86400]
    on_day = {(day(a), a.indicator, a.org, a.product_line, a.channel) for a in whole_days}
    assert (OUTAGE_DAY, "hotline_answer_rate", "3101", "*", "*") in on_day
    assert {("surrender_rate", "*", "universal", "*"),
            ("complaint_rate_per_10k_policies", "4403", "life", "BANCA")} <= {
        key[1:] for key in on_day
    }  # fmt: skip
    for a in whole_days:  # the day's midnight, not the first hour's anomaly under another name
        assert datetime.fromisoformat(a.bucket_start).astimezone(SHANGHAI).hour == 0
        assert a.category == "business"
    hours = {a.anomaly_id for a in found if a.bucket_seconds == 3600}
    assert hours.isdisjoint(a.anomaly_id for a in whole_days)


def test_spring_festival_does_not_alarm() -> None:
    # 26 January - 11 March 2026: Spring Festival (15-23 February) at a quarter of normal
    # business, with weeks before and after it.
    settings = Settings()
    cfg = SimConfig(
        days=45, holidays=settings.calendar().holidays, **{**SMALL, "start": date(2026, 1, 26)}
    )  # type: ignore[arg-type]
    assert run_config(cfg) == ()


def test_month_ends_whose_weekday_falls_on_another_day_of_the_push_do_not_alarm() -> None:
    # The README tour's default: 60 days before 5 December 2026. Saturday 31 October is the
    # last day of a month (the strongest push), Saturday 28 November the third-to-last: a
    # month-end season per weekday took the second for a collapse (premium, policies issued).
    settings = Settings()
    cfg = SimConfig(start=date(2026, 10, 6), holidays=settings.calendar().holidays)
    assert run_config(cfg) == ()


@pytest.mark.parametrize(
    ("start", "days"),
    [
        # Few claims are reported during a long holiday, so few close in the first working
        # days after it (46 % of a working day's): once taken for a silent claim.closed feed.
        (date(2026, 1, 1), 58),  # Spring Festival, 15-23 February
        (date(2026, 9, 1), 40),  # National Day, 1-7 October
        # 31 July, a month's last day, is a Friday; 31 August a Monday, whose claims closed
        # waited over the weekend: once taken for slow settlement.
        (date(2026, 7, 1), 63),
    ],
)
def test_the_simulators_defaults_around_holidays_and_month_ends_raise_no_alarm(
    start: date, days: int
) -> None:
    settings = Settings()
    cfg = SimConfig(start=start, days=days, holidays=settings.calendar().holidays)
    assert run_config(cfg) == ()


def test_the_same_days_without_incidents_are_calm() -> None:
    assert run((), DAYS) == ()


def test_every_anomaly_of_the_incident_run_has_its_own_id(incidents) -> None:
    # Several findings of one check on one slice and day (two amount fields off by a unit, a
    # day's re-sends beside its last hour's) were once stored as one row under one id.
    ids = [a.anomaly_id for a in incidents]
    assert len(set(ids)) == len(ids)
