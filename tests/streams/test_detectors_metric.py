"""The metric detector: what it promises for raw metric streams (``qualmon detect``)."""

from __future__ import annotations

import math
import pickle
import random
from typing import Any

from streams.detectors import ALERT_THRESHOLD, MetricDetector, SeriesFilter


def scores(xs: list[dict[str, Any]], **params: Any) -> list[float]:
    series = SeriesFilter(MetricDetector(**params))
    return [series.step(x)[0] for x in xs]


def alarms(xs: list[dict[str, Any]], **params: Any) -> list[int]:
    return [i for i, s in enumerate(scores(xs, **params)) if s >= ALERT_THRESHOLD]


def noise(seed: int, n: int, level: float = 10.0, sd: float = 1.0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"value": level + rng.gauss(0, sd), "season": 0} for _ in range(n)]


def test_nothing_is_scored_during_warm_up() -> None:
    xs = noise(1, 400)
    xs[100] = {"value": 1000.0, "season": 0}
    s = scores(xs)
    # A full window (100 values) before residuals exist, then 150 learnt before the first score.
    assert s[:250] == [0.0] * 250 and any(v > 0 for v in s[250:])


def test_a_level_shift_alarms_once_then_becomes_the_new_normal() -> None:
    xs = noise(4, 300) + noise(5, 300, level=20.0)
    s = scores(xs)
    assert [i for i, v in enumerate(s) if v >= ALERT_THRESHOLD] == [300]
    # Inside the episode the evidence is still shown, just below the threshold (0.98 × 0.5).
    assert s[301:306] == [0.49] * 5
    assert max(s[400:]) < 0.1  # learnt: 20 is normal now


def test_spikes_that_keep_coming_stop_alarming() -> None:
    rng = random.Random(9)
    xs = [{"value": 10 + rng.gauss(0, 1) + (12 if i % 40 == 0 and i >= 400 else 0),
           "season": 0} for i in range(3000)]  # fmt: skip
    found = alarms(xs)
    # The first spikes of a 12σ kind alarm; once the tail has learnt them, they are ordinary.
    # While the run test still remembers the quiet months before them, a spike can also lift
    # the mean of the next ten values: an alarm on the bucket after it, never elsewhere.
    assert found[:3] == [400, 440, 480] and len(found) <= 5
    assert all(i % 40 in (0, 1) for i in found)


def test_gaussian_noise_rarely_alarms() -> None:
    # Nominally p ≤ 1e-4 per value: 0.5 alarms in 5,000. The running tests' normal tail is light
    # for skewed averages, so the measured rate is higher (docs/detection.md): 4 here, and no
    # more than one in a thousand values is the promise kept.
    assert len(alarms(noise(6, 5000, level=100.0, sd=5.0))) <= 5


def test_a_daily_wave_is_learnt_by_its_half_hours() -> None:
    rng = random.Random(5)
    xs = [{"value": 50 + 30 * math.sin(2 * math.pi * (i % 288) / 288) + rng.gauss(0, 2),
           "season": (i % 288) // 6} for i in range(288 * 6)]  # fmt: skip
    assert alarms(xs) == []


def test_direction_high_ignores_drops() -> None:
    xs = noise(7, 400)
    xs[300] = {"value": -50.0, "season": 0}
    xs[350] = {"value": 70.0, "season": 0}
    assert alarms(xs, direction="high") == [350]
    assert alarms(xs, direction="low") == [300]
    assert alarms(xs, direction="both") == [300, 350]


def test_a_spike_is_kept_out_of_the_window() -> None:
    detector = MetricDetector()
    for x in noise(8, 300):
        detector.learn_one(x)
    detector.learn_one({"value": 500.0, "season": 0})
    assert 500.0 not in detector._values and detector._episode


def test_nan_is_neither_judged_nor_learnt() -> None:
    detector = MetricDetector()
    for x in noise(9, 300):
        detector.learn_one(x)
    state = pickle.dumps(detector)
    assert detector.score_one({"value": math.nan, "season": 0}) == 0.0
    detector.learn_one({"value": math.nan, "season": 0})
    assert pickle.dumps(detector) == state


def test_the_filter_lets_it_see_every_bucket() -> None:
    # Other detectors are not shown an anomaly; this one must see it to follow the episode.
    series = SeriesFilter(MetricDetector())
    for x in noise(10, 300):
        series.step(x)
    _, anomalous = series.step({"value": 500.0, "season": 0})
    assert anomalous and series.detector._episode


def test_expectation_band_is_the_alarm_point() -> None:
    detector = MetricDetector()
    for x in noise(11, 300, level=100.0, sd=5.0):
        detector.learn_one(x)
    band = detector.expectation({"value": 100.0, "season": 0})
    assert band.lower < 100.0 < band.upper
    assert band.lower > 70 and band.upper < 130  # about 5 robust sd (5 × 5) either side
    half_width = band.upper - band.expected
    for offset, alarm in ((0.9, False), (1.1, True)):
        x = {"value": band.expected + offset * half_width, "season": 0}
        assert (detector.score_one(x) >= ALERT_THRESHOLD) is alarm


def test_a_checkpoint_from_before_the_run_reach_keeps_working() -> None:
    detector = MetricDetector()
    for x in noise(12, 400):
        detector.learn_one(x)
    old = pickle.loads(pickle.dumps(detector))
    del old._average_reach, old._tail_log_excess_light  # as a checkpoint written before them
    x = {"value": 10.0, "season": 0}
    assert old.score_one(x) == detector.score_one(x)  # the old choice of tail, no reach yet
    for x in noise(13, 300):
        old.learn_one(x)
    assert old._average_reach is not None and old._tail_log_excess_light is not None
    assert old.score_one({"value": 100.0, "season": 0}) >= ALERT_THRESHOLD
