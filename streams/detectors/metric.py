"""The metric detector: a raw metric stream with no counts behind it, judged by its own history.

Counts and rates carry their evidence (k of n) and are judged by Poisson and binomial tails. A
raw metric — a latency, a CPU load, a queue length, a value in a CSV given to ``qualmon detect``
— carries none, and its noise is rarely Gaussian: spikes, plateaus, daily waves. So this
detector takes its yardstick from the series itself and reports a calibrated tail probability
all the same (``score = -log10(p) / 8``, alert at p ≤ 1e-4).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from river import base

from streams.detectors.baseline import Expectation
from streams.detectors.evidence import RunningAverageTest, Transitions, centre_and_scale
from streams.detectors.reach import SeasonalReach
from streams.detectors.tails import ALERT_THRESHOLD, score_from_p

_ALARM_P = 10.0 ** (-8.0 * ALERT_THRESHOLD)  # the p the alert threshold stands for: 1e-4
_EPISODE_CAP = 0.98 * ALERT_THRESHOLD  # highest score inside an episode already reported
_TESTS = 3  # point, run and novelty: Bonferroni
_FULL_SCALE_Z = 16.0  # robust z at which a value counts fully in the running average
_Z_MAX = 1e6  # larger deviations count as this (keeps every statistic finite)
_VALUE_MAX = 1e100  # inputs are clipped to ±this for the same reason
_TAIL_START = 3.0  # z above which the point test models the tail
_TAIL_DECAY = 0.001  # forgetting rate of the tail statistics (a memory of ~1,000 values)
_TAIL_PRIOR = (500.0, 0.01, 0.5)  # pseudo-values, their exceedance rate and mean excess
_LOG_EXCESS_PRIOR = 0.1  # the prior's mean log(z / tail start): Gaussian exceedances give 0.09
# Nats per exceedance by which a power-law tail must fit better to be used (0.5 measured alike,
# 0.1 or none lose windows: Gaussian-like series' tails must stay exponential).
_HEAVY_MARGIN = 0.25
_SEASON_ALPHA = 0.3  # how fast a season's profile follows its values


def _robust_z(value: float, centre: float, scale: float, direction: str) -> float:
    """Distance of ``value`` from ``centre`` in robust standard deviations, one-sided or not."""
    deviation = value - centre
    if direction == "high":
        deviation = max(deviation, 0.0)
    elif direction == "low":
        deviation = max(-deviation, 0.0)
    else:
        deviation = abs(deviation)
    if scale <= 0.0:  # a flat window: any move away from it is as surprising as it gets
        return 0.0 if deviation == 0.0 else _FULL_SCALE_Z
    return min(deviation / scale, _Z_MAX)


class MetricDetector(base.AnomalyDetector):
    """Robust, self-calibrated surprise of a raw metric, reported once per episode.

    1. **Residual.** A robust z (median and MAD) of the value against the last ``window``
       values, and of its seasonal residual (value minus a per-season profile) against the last
       ``window`` residuals; the smaller counts, since a value either model explains is normal.
       Only full windows measure a z.
    2. **Three tests, each calibrated by the series' own history**, combined by Bonferroni:
       *point* — an exponential tail above z = 3 whose exceedance rate and mean excess are learnt
       (winsorised at the alarm point), so a series full of spikes needs a bigger one to alarm,
       or a power-law tail where that fits the same (winsorised) exceedances clearly better;
       its z counts only the part of a residual beyond what the season and its neighbours
       reached on earlier visits (:class:`~streams.detectors.reach.SeasonalReach`), so a daily
       burst alarms once; *run* — the mean of the last ``average`` z's (capped at 16) against
       the mean and variance that average has had, like HTM's anomaly likelihood, so a lasting
       shift alarms when no single value would, and silent while that mean is no higher than
       the season and its neighbours reached on earlier visits, so a daily shift alarms once;
       *novelty* — the same running test on how unheard-of each
       step between value bands is, so a new shape alarms when no value is out of range.
       Nothing is scored before ``warmup`` residuals have been learnt.
    3. **Episodes.** After an alarm, scores stay just below the alert threshold until the series
       has calmed (``calm_buckets`` values in a row with p > ``calm_p``): an incident is
       reported at its onset, once, not on every value it lasts. Values of the first
       ``protect`` alarming buckets are kept out of the window and the season's profile (a spike
       must not widen the yardstick that judges the next one); a change that lasts longer becomes
       the new normal.

    It protects itself, so :class:`~streams.detectors.SeriesFilter` lets it learn every value.

    >>> import random
    >>> rng = random.Random(1)
    >>> det = MetricDetector()
    >>> scores = []
    >>> for i in range(400):
    ...     x = {"value": 50 + rng.gauss(0, 2) + (40 if i == 300 else 0), "season": 0}
    ...     scores.append(det.score_one(x))
    ...     det.learn_one(x)
    >>> max(scores[:300]) < ALERT_THRESHOLD <= scores[300]
    True
    >>> max(scores[301:]) < ALERT_THRESHOLD
    True
    """

    protects_itself = True
    _tail_log_excess = 0.0  # checkpoints written before the power-law tail do not have it
    _tail_log_excess_light: float | None = None  # nor this, before the tails shared their data
    _reach: SeasonalReach | None = None  # nor those written before the seasonal reach
    _average_reach: SeasonalReach | None = None  # nor the run average's

    def __init__(
        self,
        direction: str = "both",
        window: int = 100,
        average: int = 10,
        alpha: float = 0.0005,
        warmup: int = 150,
        calm_p: float = 0.05,
        calm_buckets: int = 10,
        protect: int = 7,
    ) -> None:
        self.direction = direction
        self.window = window
        self.average = average
        self.alpha = alpha
        self.warmup = warmup
        self.calm_p = calm_p
        self.calm_buckets = calm_buckets
        self.protect = protect
        self._values: deque[float] = deque(maxlen=window)
        self._residuals: deque[float] = deque(maxlen=window)
        self._profile: dict[int, float] = {}
        self._reach = SeasonalReach()
        self._average_reach = self._new_average_reach()
        self._run_test = RunningAverageTest(average, alpha)
        self._novelty_test = RunningAverageTest(average, alpha)
        self._transitions = Transitions()
        self._seen = 0  # residuals learnt
        self._tail_weight = 0.0  # decayed count of residuals, of exceedances, of excess
        self._tail_count = 0.0
        self._tail_excess = 0.0
        self._tail_log_excess = 0.0  # of log(z / tail start), winsorised at the Pareto's alarm z
        self._tail_log_excess_light = 0.0  # the same at the exponential's, to choose between them
        self._episode = False
        self._calm = 0
        self._run = 0  # alarming buckets in a row

    def _new_average_reach(self) -> SeasonalReach:
        # Sharing the residuals' index of seasons keeps the pickled state under 16 KB.
        seasons = None if self._reach is None else self._reach.seasons
        return SeasonalReach(low=False, seasons=seasons)

    @staticmethod
    def _value(x: dict[Any, Any]) -> float | None:
        value = float(x["value"])
        if math.isnan(value):
            return None
        return max(-_VALUE_MAX, min(_VALUE_MAX, value))

    def _evidence(self, value: float, season: int) -> tuple[float, float, float | None] | None:
        """(robust z, the point test's z, transition novelty) of ``value``, or None while the
        window fills.

        A z measured against a part-filled window is noise about noise: learnt by the tail and
        the running tests, a few such z's in the first rows would widen them for a long time.
        The point test's z is smaller where earlier visits of the season reached as far; the
        running tests keep the plain z, so a lasting change still shows.
        """
        if len(self._values) < self.window:
            return None
        centre, scale = centre_and_scale(self._values)
        z = point_z = _robust_z(value, centre, scale, self.direction)
        profile = self._profile.get(season)
        if profile is not None and len(self._residuals) == self.window:
            r_centre, r_scale = centre_and_scale(self._residuals)
            residual = value - profile
            z = min(z, _robust_z(residual, r_centre, r_scale, self.direction))
            low, high = r_centre, r_centre
            if self._reach is not None:
                low, high = self._reach.bounds(season, r_centre)
            nearest = min(max(residual, low), high)
            point_z = min(z, _robust_z(residual, nearest, r_scale, self.direction))
        return z, point_z, self._transitions.evidence(value, centre, scale)

    def _tail(self) -> tuple[float, float, float]:
        """(rate of z above the tail start, mean excess above it, mean log(z / tail start)),
        shrunk towards the prior."""
        prior_n, prior_rate, prior_excess = _TAIL_PRIOR
        rate = (prior_n * prior_rate + self._tail_count) / (prior_n + self._tail_weight)
        exceedances = prior_n * prior_rate + self._tail_count
        mean_excess = (prior_n * prior_rate * prior_excess + self._tail_excess) / exceedances
        return rate, mean_excess, self._mean_log(self._tail_log_excess)

    def _mean_log(self, log_excess: float) -> float:
        """Mean log(z / tail start) of the exceedances from their decayed sum, shrunk towards
        the prior."""
        prior_n, prior_rate, _ = _TAIL_PRIOR
        exceedances = prior_n * prior_rate + self._tail_count
        return (prior_n * prior_rate * _LOG_EXCESS_PRIOR + log_excess) / exceedances

    def _light_log_excess(self) -> float:
        if self._tail_log_excess_light is None:  # pickled before it existed: the nearest one
            return self._tail_log_excess
        return self._tail_log_excess_light

    def _heavy(self, mean_excess: float) -> bool:
        """Does a power law (Pareto) fit the exceedances clearly better than an exponential?

        Compared by the maximised log-likelihood per exceedance of each. Where the robust scale
        is tiny beside the bursts (a series at rest between spikes), z's span orders of
        magnitude and only a power law learns that the next burst is like the last ones.

        Both are judged on the same data: the exceedances winsorised at the exponential's alarm
        point. Each tail's own statistics are winsorised at its own alarm point, the power law's
        the higher one; compared on those, the power law was judged on larger z's than its rival
        and lost where it fits better (bursts at z ≈ 1e5 like the last ones alarmed).
        """
        mean_log = self._mean_log(self._light_log_excess())
        light = -math.log(mean_excess) - 1.0
        heavy = -math.log(mean_log) - math.log(_TAIL_START) - 1.0 - mean_log
        return heavy > light + _HEAVY_MARGIN

    def _alarm_points(self) -> tuple[float, float]:
        """The z at which the point test alone reaches the alert's p: (exponential, Pareto)."""
        rate, mean_excess, mean_log = self._tail()
        log_odds = math.log(max(rate * _TESTS / _ALARM_P, 1.0))
        heavy = _TAIL_START * math.exp(min(mean_log * log_odds, math.log(_Z_MAX / _TAIL_START)))
        return _TAIL_START + mean_excess * log_odds, heavy

    def _alarm_z(self) -> float:
        """The z at which the point test alone reaches the alert's p."""
        light, heavy = self._alarm_points()
        return heavy if self._heavy(self._tail()[1]) else light

    def _p(self, season: int, z: float, point_z: float, novelty: float | None) -> float:
        rate, mean_excess, mean_log = self._tail()
        if point_z <= _TAIL_START:
            point = 1.0
        elif self._heavy(mean_excess):
            point = rate * math.exp(-math.log(point_z / _TAIL_START) / mean_log)
        else:
            point = rate * math.exp(-(point_z - _TAIL_START) / mean_excess)
        return min(1.0, _TESTS * min(point, self._run_p(season, z), self._novelty_p(novelty)))

    def _run_p(self, season: int, z: float) -> float:
        """The run test, silent while its average is no higher than this season and its
        neighbours reached on earlier visits: a lasting shift that comes back at the same time
        every day (a quantised CPU series stepping up for its daily job) alarmed every day."""
        evidence = min(z, _FULL_SCALE_Z) / _FULL_SCALE_Z
        if self._average_reach is not None:
            _, high = self._average_reach.bounds(season, 0.0)
            if self._run_test.average(evidence) <= high:
                return 1.0
        return self._run_test.p(evidence)

    def _novelty_p(self, novelty: float | None) -> float:
        return 1.0 if novelty is None else self._novelty_test.p(novelty)

    def score_one(self, x: dict[Any, Any]) -> float:
        value = self._value(x)
        if value is None or self._seen < self.warmup:
            return 0.0
        season = int(x.get("season", 0))
        evidence = self._evidence(value, season)
        if evidence is None:
            return 0.0
        score = score_from_p(self._p(season, *evidence))
        return min(score, _EPISODE_CAP) if self._episode else score

    def learn_one(self, x: dict[Any, Any]) -> None:
        value = self._value(x)
        if value is None:
            return
        season = int(x.get("season", 0))
        evidence = self._evidence(value, season)
        keep = True
        profile = self._profile.get(season)
        if profile is not None:  # every value, alarming or not: a spike tomorrow is like today's
            if self._reach is None:  # a detector pickled before the record existed
                self._reach = SeasonalReach()
            self._reach.learn(season, value - profile)
        if evidence is not None:
            p = self._p(season, *evidence)
            alarming = p <= _ALARM_P and self._seen >= self.warmup
            self._follow_episode(p, alarming)
            self._run = self._run + 1 if alarming else 0
            keep = not 0 < self._run < self.protect
            self._learn_evidence(value, season, *evidence)
        if not keep:  # kept out of the season's profile too: tomorrow must not expect it
            return
        self._values.append(value)
        if profile is not None:
            self._residuals.append(value - profile)
        # Written as a weighted sum so that values near the clip cannot overflow.
        self._profile[season] = (
            value if profile is None else (1 - _SEASON_ALPHA) * profile + _SEASON_ALPHA * value
        )

    def _follow_episode(self, p: float, alarming: bool) -> None:
        if self._episode:
            self._calm = self._calm + 1 if p > self.calm_p else 0
            if self._calm >= self.calm_buckets:
                self._episode = False
        elif alarming:
            self._episode, self._calm = True, 0

    def _learn_evidence(
        self, value: float, season: int, z: float, point_z: float, novelty: float | None
    ) -> None:
        # Winsorised at the current alarm point (each tail at its own): one huge spike must not
        # teach the tail that every later spike is ordinary; many spikes still widen it.
        # The tail learns the z it judges: a daily spike the season explains is not a tail event.
        light, heavy = self._alarm_points()
        exceeds = point_z > _TAIL_START
        keep = 1.0 - _TAIL_DECAY
        self._tail_weight = self._tail_weight * keep + 1.0
        self._tail_count = self._tail_count * keep + exceeds
        self._tail_excess = self._tail_excess * keep + max(min(point_z, light) - _TAIL_START, 0.0)
        log_excess = math.log(min(point_z, heavy) / _TAIL_START) if exceeds else 0.0
        self._tail_log_excess = self._tail_log_excess * keep + log_excess
        # The log-excess on the exponential's data too: only for choosing between the two.
        log_excess = math.log(min(point_z, light) / _TAIL_START) if exceeds else 0.0
        self._tail_log_excess_light = self._light_log_excess() * keep + log_excess
        run_evidence = min(z, _FULL_SCALE_Z) / _FULL_SCALE_Z
        if self._average_reach is None:  # a detector pickled before the record existed
            self._average_reach = self._new_average_reach()
        self._average_reach.learn(season, self._run_test.average(run_evidence))
        self._run_test.learn(run_evidence)
        if novelty is not None:
            self._novelty_test.learn(novelty)
        self._transitions.learn(value, *centre_and_scale(self._values))
        self._seen += 1

    def expectation(self, x: dict[Any, Any]) -> Expectation:
        if not self._values:
            return Expectation(0.0, 0.0, math.inf)
        centre, scale = centre_and_scale(self._values)
        band = scale * self._alarm_z()
        expected = max(centre, 0.0)
        return Expectation(expected, max(0.0, expected - band), expected + band)
