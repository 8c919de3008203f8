"""The level detector: Gaussian surprise of a positive amount on a log scale."""

from __future__ import annotations

import math
from typing import Any

from river import base

from streams.detectors.baseline import Expectation, _Seasonal, seasons, usable_value
from streams.detectors.tails import _tail, score_from_p, student_upper_quantile


class LevelDetector(base.AnomalyDetector):
    """Gaussian surprise of a positive amount (premium, days, ratios) on a log scale.

    Seasonal (weekday, month-end) baseline; residual variance learnt online and widened when the
    bucket rests on fewer samples than the series usually has, so small slices need a larger
    deviation to alarm. The variance is itself an estimate, from the buckets seen so far: a z
    is judged by Student's t with that many degrees of freedom, so in a series' first weeks a
    deviation must be larger to alarm (p ≤ 1e-4 is 5.1 spreads after 14 buckets, 4.3 after a
    month, 3.8 after a year, 3.7 for the normal).

    >>> from streams.detectors import ALERT_THRESHOLD
    >>> det = LevelDetector(direction="both")
    >>> for i in range(30):
    ...     det.learn_one({"value": 100.0 + (i % 3), "n": 50.0, "season": 0})
    >>> det.score_one({"value": 101.0, "n": 50.0, "season": 0}) < 0.1
    True
    >>> det.score_one({"value": 300.0, "n": 50.0, "season": 0}) > ALERT_THRESHOLD
    True
    >>> small = det.score_one({"value": 150.0, "n": 2.0, "season": 0})   # same jump, 2 samples
    >>> large = det.score_one({"value": 150.0, "n": 50.0, "season": 0})
    >>> small < ALERT_THRESHOLD < large
    True
    """

    def __init__(self, direction: str = "both", alpha: float = 0.1, min_sd: float = 0.05) -> None:
        self.direction = direction
        self.alpha = alpha
        self.min_sd = min_sd
        self._base = _Seasonal(alpha, multiplicative=False)
        self._var = 0.0
        self._n = 0.0

    @staticmethod
    def _y(value: float) -> float:
        return math.log1p(max(value, 0.0))

    def _sd(self, n: float) -> float:
        sd = math.sqrt(max(self._var, self.min_sd**2))
        # Widen for buckets resting on fewer samples than usual, up to tenfold.
        return sd * min(10.0, math.sqrt(max(1.0, self._n / max(n, 1.0))))

    def _z(self, x: dict[Any, Any]) -> float:
        expected = self._base.expect(*seasons(x))
        return (self._y(float(x["value"])) - expected) / self._sd(float(x.get("n", 1.0)))

    def learn_one(self, x: dict[Any, Any]) -> None:
        if not usable_value(float(x["value"]), float(x.get("n", 1.0))):
            return
        y, (season, base), n = self._y(float(x["value"])), seasons(x), float(x.get("n", 1.0))
        warmup = self._base.warm
        if warmup is None:
            residual = y - self._base.expect(season, base)
            self._var += self.alpha * (residual * residual - self._var)
            self._n += self.alpha * (n - self._n)
            self._base.learn(y, season, base)
            return
        self._n += (n - self._n) / (len(warmup) + 1)  # plain mean while warming up
        self._base.learn(y, season, base)
        if self._base.warm is None:  # just fitted: start the variance from the warm-up residuals
            residuals = [(v - self._base.expect(s, *b)) ** 2 for v, s, *b in warmup]
            self._var = sum(residuals) / max(1, len(residuals) - 1)

    def score_one(self, x: dict[Any, Any]) -> float:
        if not self._base.ready(seasons(x)[0]):
            return 0.0
        if not usable_value(float(x["value"]), float(x.get("n", 1.0))):
            return 0.0
        return score_from_p(_tail(self._z(x), self.direction, self._df()))

    def _df(self) -> float:
        return float(max(self._base.seen - 1, 1))

    def expectation(self, x: dict[Any, Any]) -> Expectation:
        centre = self._base.expect(*seasons(x))
        band = student_upper_quantile(1e-4, self._df()) * self._sd(float(x.get("n", 1.0)))
        # The band lives on the log scale; keep its upper end representable.
        top = min(centre + band, 700.0)
        expected = max(0.0, math.expm1(centre))
        return Expectation(expected, max(0.0, math.expm1(centre - band)), math.expm1(top))
