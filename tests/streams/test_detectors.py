"""Detectors: the behaviour each promises — count-awareness, seasonality, the filter — and the
tail functions. The contract every detector shares is in ``test_detectors_contract``."""

from __future__ import annotations

import math
import pickle
import random
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from monitor.scenarios import HOUR_SHARE, poisson
from streams.calendar import Calendar, epoch
from streams.detectors import (
    ALERT_THRESHOLD,
    DETECTORS,
    CountDetector,
    LevelDetector,
    ProportionDetector,
    SeriesFilter,
    binomial_tail,
    poisson_lower_tail,
    poisson_upper_tail,
    score_from_p,
)
from streams.windows import season_of

MONDAY = 1_772_380_800  # 2 March 2026 00:00 Shanghai
DAY = 86400


def stream(seed: int, length: int = 120) -> Iterator[dict[str, Any]]:
    """Realistic buckets with weekly seasons, mixed with empty buckets and huge values."""
    rng = random.Random(seed)
    for i in range(length):
        season = season_of(MONDAY + i * DAY, DAY)
        r = rng.random()
        if r < 0.08:
            yield {"value": 0.0, "k": 0.0, "n": 0.0, "season": season}
        elif r < 0.12:
            yield {"value": 0.0, "k": 0.0, "n": 200.0, "season": season}
        elif r < 0.16:
            yield {"value": 1e12, "k": 9e8, "n": 1e9, "season": season}
        else:
            n = float(rng.randint(150, 250) if season % 7 < 5 else rng.randint(50, 100))
            k = float(sum(rng.random() < 0.9 for _ in range(int(n))))
            yield {"value": k / n * 100, "k": k, "n": n, "season": season}


def run(detector: Any, xs: Any) -> list[float]:
    """Score, then learn, every bucket (the service's order)."""
    scores = []
    for x in xs:
        scores.append(detector.score_one(x))
        detector.learn_one(x)
    return scores


# ---- count-awareness ---------------------------------------------------------------------------


def count_baseline(k: float, **params: Any) -> CountDetector:
    detector = CountDetector(**params)
    for _ in range(20):  # 14 warm-up buckets, then 6 more fill the window of recent buckets
        detector.learn_one({"k": k, "season": 0})
    return detector


def test_count_three_where_one_expected_is_not_an_anomaly() -> None:
    # λ = 1, widened by tolerance 0.25 to 1.25:
    # P(X ≥ 3) = 1 − e^−1.25 (1 + 1.25 + 1.25²/2) = 1 − 0.286505 × 3.03125 = 0.131532.
    # Alone: score = −log10(0.131532) / 8 = 0.880963 / 8 = 0.110120.
    alone = count_baseline(1.0, window=1).score_one({"k": 3.0, "season": 0})
    assert alone == pytest.approx(0.110120, abs=1e-6)
    # With the 7-bucket window: sum 3 + 6 = 9 against 7 × 1.25 = 8.75, P(X ≥ 9) ≈ 0.511; the
    # stricter p doubled: 2 × 0.131532 = 0.263065, score = 0.579936 / 8 = 0.072492.
    windowed = count_baseline(1.0).score_one({"k": 3.0, "season": 0})
    assert windowed == pytest.approx(0.072492, abs=1e-6)
    assert windowed < ALERT_THRESHOLD


def test_count_forty_where_ten_expected_is_an_anomaly() -> None:
    # λ = 10 × 1.25 = 12.5; P(X = 40) = e^−12.5 12.5^40 / 40! = e^(−12.5 + 101.029 − 110.321)
    # ≈ 3.4e−10, and the tail ≈ 4.9e−10; doubled ≈ 9.8e−10, −log10 ≈ 9.0 ≥ 8: full scale.
    assert count_baseline(10.0).score_one({"k": 40.0, "season": 0}) == 1.0
    assert count_baseline(10.0, window=1).score_one({"k": 40.0, "season": 0}) == 1.0


def proportion_baseline() -> ProportionDetector:
    detector = ProportionDetector()
    for _ in range(20):
        detector.learn_one({"k": 95.0, "n": 100.0})
    return detector


def test_proportion_one_of_two_is_not_an_anomaly() -> None:
    # Baseline (95 + 0.5) / (100 + 1) = 0.945545; no spread beyond binomial, so the margin is
    # min_spread 0.02 and the test runs against 0.925545:
    # P(X ≤ 1 | n = 2) = 1 − 0.925545² = 0.143367, score = 0.843549 / 8 = 0.105444.
    score = proportion_baseline().score_one({"k": 1.0, "n": 2.0})
    assert score == pytest.approx(0.105444, abs=1e-6)
    assert score < ALERT_THRESHOLD


def test_proportion_forty_of_a_hundred_is_an_anomaly() -> None:
    # P(X ≤ 40 | n = 100, p = 0.925545) is far below 1e-8: full scale.
    assert proportion_baseline().score_one({"k": 40.0, "n": 100.0}) == 1.0


def test_level_same_jump_alarms_on_fifty_samples_not_on_two() -> None:
    detector = LevelDetector()
    for i in range(30):
        detector.learn_one({"value": 100.0 + i % 3, "n": 50.0, "season": 0})
    # Log scale: expected ≈ log1p(101) = 4.628, residual sd below min_sd 0.05, so sd = 0.05 at the
    # usual n = 50 and 0.05 × √(50 / 2) = 0.25 at n = 2. log1p(150) = 5.017. The spread was
    # estimated from 30 buckets: Student's t with 29 degrees of freedom, two-sided.
    # z(n=50) ≈ 0.389 / 0.05 = 7.79 → p = 2 × 6.9e−9 = 1.37e−8 (the normal's: 6.8e−15)
    # → score = 7.863 / 8 = 0.983; z(n=2) ≈ 0.389 / 0.25 = 1.56 → p = 2 × 0.0651 = 0.130
    # (the normal's: 0.119) → score = 0.886 / 8 = 0.111.
    large = detector.score_one({"value": 150.0, "n": 50.0, "season": 0})
    small = detector.score_one({"value": 150.0, "n": 2.0, "season": 0})
    assert large == pytest.approx(0.983, abs=0.001)
    assert small == pytest.approx(0.111, abs=0.001)


# ---- seasonality -------------------------------------------------------------------------------


def weekly(weekday: float, seasonal: bool = True) -> Iterator[dict[str, Any]]:
    """Six weeks of daily buckets from Monday 2 March 2026; weekends at 40 % of weekdays."""
    for d in range(42):
        start = MONDAY + d * DAY
        value = weekday if d % 7 < 5 else 0.4 * weekday
        season = season_of(start, DAY) if seasonal else 0
        yield {"value": value, "k": value, "n": 1000.0, "season": season}


@pytest.mark.parametrize("cls", [CountDetector, LevelDetector])
@pytest.mark.parametrize("direction", ["high", "low", "both"])
@pytest.mark.parametrize("weekday", [100.0, 1000.0])
def test_weekly_pattern_raises_no_anomaly(cls: type, direction: str, weekday: float) -> None:
    # The six weeks include 29–31 March, month-end seasons first seen in week 4.
    series = SeriesFilter(cls(direction=direction))
    flagged = [x for x in weekly(weekday) if series.step(x)[1]]
    assert flagged == []


def test_without_seasons_the_weekend_dip_would_alarm() -> None:
    # The control for the test above: the same counts all in one season do alarm.
    series = SeriesFilter(CountDetector(direction="low"))
    flagged = [x for x in weekly(1000.0, seasonal=False) if series.step(x)[1]]
    assert flagged and all(x["k"] == 400.0 for x in flagged)


@pytest.mark.parametrize("direction", ["high", "low"])
@pytest.mark.parametrize("weekend", [0.0, 0.5, 2.0])
def test_busy_weekdays_and_near_silent_weekends_raise_no_anomaly(
    direction: str, weekend: float
) -> None:
    # A claims back office closed at weekends: 900 closures a weekday, next to none on
    # Saturday and Sunday. Each quiet day once dragged the level towards nothing, and the
    # Monday after alarmed (and, not learnt, every weekday after it); a weekend factor floored
    # at 5 % expected 45 closures and every weekend alarmed low.
    rng = random.Random(3)
    series = SeriesFilter(CountDetector(direction=direction))
    flagged = []
    for day in range(30 * 7):
        k = float(poisson(rng, weekend if day % 7 >= 5 else 900.0))
        x = {"value": k, "k": k, "n": k, "season": day % 7}
        if series.step(x)[1]:
            flagged.append((day, k))
    assert flagged == []


HOUR = 3600


def hourly_receipts(per_day: float, seed: int, days: int = 35) -> Iterator[dict[str, Any]]:
    """Hourly premium receipts with the simulator's day (busy mornings, a lunch dip, nights at
    1/144 of the day) and 40 % weekends, from Monday 2 March 2026 across the quarter-end, in
    the service's calendar seasons."""
    calendar, rng = Calendar(), random.Random(seed)
    for h in range(days * 24):
        start = MONDAY + h * HOUR
        season = calendar.season(start, HOUR)
        weekend = (h // 24) % 7 >= 5
        lam = per_day * HOUR_SHARE[h % 24] * (0.4 if weekend else 1.0)
        k = float(poisson(rng, lam))
        yield {"value": k, "k": k, "n": 1.0, "season": season, "base": calendar.base(start, HOUR)}


@pytest.mark.parametrize("per_day", [100.0, 1000.0, 10000.0])
@pytest.mark.parametrize("seed", [1, 2])
def test_hourly_receipts_with_quiet_nights_raise_no_false_low(per_day: float, seed: int) -> None:
    # Nights of a few receipts once settled at half an average hour's factor (prior counts
    # that never faded), and quiet nights looked like outages: up to 51 false lows here.
    series = SeriesFilter(CountDetector(direction="low"))
    flagged = [x for x in hourly_receipts(per_day, seed) if series.step(x)[1]]
    assert flagged == []


def test_hourly_receipts_stopping_in_working_hours_alarm() -> None:
    # The control: the same series with receipts stopped for three working hours of day 22.
    series = SeriesFilter(CountDetector(direction="low"))
    outage = range(21 * 24 + 9, 21 * 24 + 12)  # Tuesday 24 March, 09:00 - 12:00
    flagged = []
    for h, x in enumerate(hourly_receipts(1000.0, seed=1)):
        if h in outage:
            x = {**x, "value": 0.0, "k": 0.0}
        if series.step(x)[1]:
            flagged.append(h)
    assert flagged and set(flagged) <= set(outage)


def test_a_month_end_night_starts_from_an_ordinary_night() -> None:
    detector = CountDetector(direction="low")
    for x in hourly_receipts(1000.0, seed=3, days=26):  # to Friday 27 March, before month-end
        detector.learn_one(x)
    calendar = Calendar()
    night = MONDAY + (28 * 24 + 3) * HOUR  # Monday 30 March 03:00: quarter-end, first visit
    season, base = calendar.season(night, HOUR), calendar.base(night, HOUR)
    assert base == 3  # 03:00 of a working day
    ordinary = detector.expectation({"season": base}).expected
    detector.learn_one({"k": 7.0, "season": season, "base": base})
    after_one_visit = detector.expectation({"season": season, "base": base}).expected
    # One night of 7 receipts where an ordinary night expects about 7: the new season expects
    # about as much (a factor of its own, not relative to the night's, expected three times as
    # many).
    assert ordinary == pytest.approx(7.0, rel=0.35)
    assert after_one_visit == pytest.approx(ordinary, rel=0.35)


@pytest.mark.parametrize("cls", [CountDetector, LevelDetector])
def test_a_season_seen_for_the_first_time_does_not_move_the_level(cls: type) -> None:
    # Its own factor or offset is what one visit tells; read as an ordinary season it dragged
    # the level, and every season after was judged against a level that was not there.
    detector = cls(direction="low")
    for _ in range(20):
        detector.learn_one({"value": 100.0, "k": 100.0, "n": 10.0, "season": 0})
    level = detector._base.level
    detector.learn_one({"value": 400.0, "k": 400.0, "n": 10.0, "season": 1})
    assert detector._base.level == level
    assert detector.expectation({"n": 10.0, "season": 1}).expected == pytest.approx(400, rel=0.05)
    assert detector.expectation({"n": 10.0, "season": 0}).expected == pytest.approx(100.0)


def test_a_count_baseline_pickled_before_the_season_sums_goes_on_learning() -> None:
    detector = CountDetector(direction="low")
    for x in hourly_receipts(1000.0, seed=4, days=14):
        detector.learn_one(x)
    old = pickle.loads(pickle.dumps(detector))
    del old._base.sums  # what a checkpoint of the earlier layout unpickles to
    night = {"k": 7.0, "season": 3}
    before = old.expectation(night).expected
    old.learn_one(night)
    detector.learn_one(night)
    assert old.expectation(night).expected == pytest.approx(before, rel=0.2)
    assert old.expectation(night).expected == pytest.approx(
        detector.expectation(night).expected, rel=0.2
    )


# ---- SeriesFilter ------------------------------------------------------------------------------


def test_filter_does_not_learn_an_anomaly() -> None:
    series = SeriesFilter(count_baseline(10.0), adapt_after=3)
    state = pickle.dumps(series.detector)
    assert series.step({"k": 40.0, "season": 0}) == (1.0, True)
    assert pickle.dumps(series.detector) == state  # not learnt
    score, anomalous = series.step({"k": 10.0, "season": 0})
    assert not anomalous and score < ALERT_THRESHOLD
    assert series.run == 0
    assert pickle.dumps(series.detector) != state  # normal buckets are learnt


def test_filter_adapts_after_a_run_of_anomalies() -> None:
    series = SeriesFilter(count_baseline(10.0), adapt_after=3)
    states = [pickle.dumps(series.detector)]
    for _ in range(3):
        assert series.step({"k": 40.0, "season": 0})[1]
        states.append(pickle.dumps(series.detector))
    # Buckets 1 and 2 of the run are not learnt; the third (run = adapt_after) is.
    assert states[0] == states[1] == states[2] != states[3]
    assert series.run == 3
    # A lasting shift becomes the new normal: the alarms stop.
    scores = [series.step({"k": 40.0, "season": 0})[0] for _ in range(40)]
    assert scores[-1] < ALERT_THRESHOLD
    quiet_from = next(i for i, s in enumerate(scores) if s < ALERT_THRESHOLD)
    assert all(s < ALERT_THRESHOLD for s in scores[quiet_from:])


def test_filter_threshold_is_the_service_threshold() -> None:
    assert SeriesFilter(CountDetector()).threshold == ALERT_THRESHOLD == 0.5


# ---- tail probabilities and the score scale ----------------------------------------------------


@pytest.mark.parametrize(
    ("p", "score"),
    [(1.0, 0.0), (2.0, 0.0), (0.1, 0.125), (1e-2, 0.25), (1e-4, 0.5), (1e-6, 0.75),
     (1e-8, 1.0), (1e-12, 1.0), (0.0, 1.0)],
)  # fmt: skip
def test_score_from_p(p: float, score: float) -> None:
    # score = −log10(p) / 8, clipped to [0, 1]
    assert score_from_p(p) == pytest.approx(score)


def direct_poisson_upper(k: int, lam: float) -> float:
    """Σ_{i=k}^{k+1000} e^−λ λ^i / i! term by term (in log space, so large λ cannot overflow)."""
    return math.fsum(
        math.exp(-lam + i * math.log(lam) - math.lgamma(i + 1)) for i in range(k, k + 1001)
    )


@pytest.mark.parametrize(
    ("k", "lam", "expected"),
    [
        (0, 5.0, 1.0),
        (1, 2.0, 1 - math.exp(-2)),  # 0.864665
        (3, 1.0, 1 - 2.5 / math.e),  # 1 − e^−1 (1 + 1 + 1/2) = 0.080301
        (2.3, 1.0, 1 - 2.5 / math.e),  # counts are rounded up: P(X ≥ 2.3) = P(X ≥ 3)
        (1, 0.0, 0.0),
    ],
)
def test_poisson_upper_tail_by_hand(k: float, lam: float, expected: float) -> None:
    assert poisson_upper_tail(k, lam) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("lam", [0.3, 1.0, 2.5, 7.0, 20.0, 60.0])
def test_poisson_upper_tail_matches_a_direct_sum(lam: float) -> None:
    for k in range(0, int(3 * lam) + 20):  # from certain to far in the tail
        assert poisson_upper_tail(k, lam) == pytest.approx(direct_poisson_upper(k, lam), rel=1e-9)


def test_poisson_tails_far_out_stay_positive_and_ordered() -> None:
    assert 0.0 < poisson_upper_tail(60, 5.0) < poisson_upper_tail(40, 5.0) < 1e-20
    assert poisson_lower_tail(0, 2.0) == pytest.approx(math.exp(-2))  # 0.135335
    # P(X ≤ 2 | λ = 1) = e^−1 (1 + 1 + 1/2) = 0.919699
    assert poisson_lower_tail(2.7, 1.0) == pytest.approx(2.5 / math.e)


@pytest.mark.parametrize(
    ("k", "n", "p", "direction", "expected"),
    [
        (0, 2, 0.5, "low", 0.25),  # P(X = 0) = 0.5²
        (1, 2, 0.5, "low", 0.75),  # 0.25 + 2 × 0.25
        (1, 2, 0.5, "high", 0.75),
        (2, 2, 0.5, "high", 0.25),
        (0, 3, 0.2, "low", 0.512),  # 0.8³
        (2, 3, 0.2, "high", 0.104),  # 3 × 0.2² × 0.8 + 0.2³ = 0.096 + 0.008
        (3, 3, 0.2, "both", 0.016),  # 2 × min(P(X ≤ 3) = 1, P(X ≥ 3) = 0.008)
        (0, 3, 0.2, "both", 1.0),  # 2 × 0.512 clipped
        (1, 2, 0.99, "low", 0.0199),  # 1 − 0.99² (one of two calls missed)
        (0, 5, 0.0, "high", 1.0),  # p = 0: zero successes are certain
        (1, 5, 0.0, "high", 0.0),  # and one is impossible
        (4, 5, 1.0, "low", 0.0),  # p = 1: a miss is impossible
        (5, 5, 1.0, "low", 1.0),
    ],
)
def test_binomial_tail_exact_small_cases(
    k: float, n: float, p: float, direction: str, expected: float
) -> None:
    assert binomial_tail(k, n, p, direction) == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_binomial_tail_for_large_n() -> None:
    # n = 10,000, p = 0.5: mean 5,000, sd 50; P(X ≤ 5,000) = ½ + P(X = 5,000)/2 ≈ 0.5 + 0.00798/2
    # = 0.50399 (by symmetry).
    assert binomial_tail(5000, 10_000, 0.5, "low") == pytest.approx(0.50399, abs=1e-4)
    # Both tails together cover everything once: P(X ≤ k) + P(X ≥ k + 1) = 1.
    low = binomial_tail(1880, 2001, 0.95, "low")
    assert low + binomial_tail(1881, 2001, 0.95, "high") == pytest.approx(1.0, abs=1e-12)


# ---- the band -----------------------------------------------------------------------------------


def weekly_with_empty_sundays() -> Iterator[dict[str, Any]]:
    """Nine weeks of a small level (3 days of mean settlement time) that is 0 on Sundays."""
    for d in range(63):
        value = 0.0 if d % 7 == 6 else 3.0 - 0.01 * d
        yield {"value": value, "k": 50.0, "n": 50.0, "season": season_of(MONDAY + d * DAY, DAY)}


@pytest.mark.parametrize("cls", DETECTORS.values())
def test_expectation_band_is_ordered_and_non_negative(cls: type) -> None:
    # Every indicator is non-negative; the expected value shown between lower and upper (stored
    # with each reading and anomaly) must be too.
    for xs in (weekly_with_empty_sundays(), stream(6)):
        series = SeriesFilter(cls())
        for x in xs:
            band = series.detector.expectation(x)
            assert 0.0 <= band.lower <= band.expected <= band.upper, (x, band)
            series.step(x)


def daily(calendar: Calendar, day: date, **values: float) -> dict[str, Any]:
    """A day's bucket as a detector sees it: its values, season and base."""
    start = epoch(day)
    return {**values, "season": calendar.season(start, DAY), "base": calendar.base(start, DAY)}


def test_a_push_day_expects_its_weekday_and_the_push_together() -> None:
    # Claims close on working days only, Mondays with the weekend's backlog, and have no
    # month-end push. The third-to-last day of September's quarter-end is a Monday, of
    # December's a Tuesday: the Tuesday is not a silence because the Monday was busy.
    calendar, rng = Calendar(), random.Random(4)
    detector, flagged = SeriesFilter(CountDetector(direction="low")), []
    day, end = date(2026, 8, 3), date(2026, 12, 31)
    while day <= end:
        lam = (560.0 if day.weekday() == 0 else 140.0) if day.weekday() < 5 else 0.0
        k = float(poisson(rng, lam))
        if detector.step(daily(calendar, day, k=k, value=k, n=1.0))[1]:
            flagged.append(day)
        day += timedelta(days=1)
    assert calendar.season(epoch(date(2026, 9, 28)), 86400) == calendar.season(
        epoch(date(2026, 12, 29)), 86400
    )
    assert flagged == []


def test_a_push_day_expects_its_weekday_and_the_push_together_on_levels_too() -> None:
    # Claims settled on a Monday waited over the weekend: 5.5 days on average, 3.6 on other
    # working days, and no month-end push. 31 July 2026, a month's last day, is a Friday;
    # 31 August, the next such day, a Monday: not slow settlement, an ordinary Monday.
    calendar, rng = Calendar(), random.Random(4)
    detector, flagged = SeriesFilter(LevelDetector(direction="high")), []
    day = date(2026, 6, 1)
    while day <= date(2026, 9, 11):
        if day.weekday() < 5:
            value = (5.5 if day.weekday() == 0 else 3.6) * math.exp(rng.gauss(0.0, 0.05))
            if detector.step(daily(calendar, day, value=value, n=100.0))[1]:
                flagged.append(day)
        day += timedelta(days=1)
    assert calendar.season(epoch(date(2026, 7, 31)), 86400) == calendar.season(
        epoch(date(2026, 8, 31)), 86400
    )
    assert flagged == []


def month_end_receipts(last_of_november: float) -> bool:
    """Receipts of a branch from August to November 2026 (8 a working day, 3 a weekend day,
    the push doubling to tripling them); 31 August's push is a busy one, 45. Is
    ``last_of_november`` on Monday 30 November, the next last day on a working day, flagged?"""
    calendar, push = Calendar(), (3.0, 2.5, 2.0)
    detector = SeriesFilter(CountDetector(direction="low"))
    day = date(2026, 8, 1)
    while day <= date(2026, 11, 30):
        left = ((day.replace(day=28) + timedelta(days=4)).replace(day=1) - day).days - 1
        k = (8.0 if day.weekday() < 5 else 3.0) * (push[left] if left < 3 else 1.0)
        k = {date(2026, 8, 31): 45.0, date(2026, 11, 30): last_of_november}.get(day, round(k))
        anomalous = detector.step(daily(calendar, day, k=k, value=k, n=1.0))[1]
        day += timedelta(days=1)
    return anomalous


def test_a_push_day_seen_once_is_a_rough_expectation() -> None:
    # The season of a working month's last day has been seen once, on a busy 31 August (45
    # against a Monday's 8): 9 on Monday 30 November is a slow push, not the collapse a
    # plain Poisson against the 37 it expects makes of it. Next to nothing still is one.
    assert month_end_receipts(9.0) is False
    assert month_end_receipts(1.0) is True


def test_a_level_is_judged_more_cautiously_while_its_spread_rests_on_few_buckets() -> None:
    # The same deviation, 4.5 learnt spreads above the level: in a series' third week its
    # spread rests on 20 buckets (Student's t, 19 degrees of freedom: p ≈ 1.2e-4), after a
    # year on 365 (p ≈ 4.6e-6, near the normal's 3.4e-6).
    rng = random.Random(3)

    def detector_after(buckets: int) -> LevelDetector:
        detector = LevelDetector(direction="high", min_sd=0.0)
        for _ in range(buckets):
            detector.learn_one({"value": math.expm1(5.0 + rng.gauss(0.0, 0.1)), "season": 0})
        return detector

    for buckets, alarms in ((20, False), (365, True)):
        detector = detector_after(buckets)
        sd = math.sqrt(detector._var)
        value = math.expm1(detector._base.expect(0) + 4.5 * sd)
        score = detector.score_one({"value": value, "season": 0})
        assert (score >= ALERT_THRESHOLD) is alarms, (buckets, score)
