"""Online detectors, one per (indicator, slice) series, on River's anomaly-detector contract.

Contract (River's ``AnomalyDetector``): ``score_one(x) -> float`` in [0, 1], higher is more
anomalous, and it is always called *before* ``learn_one(x)`` for the same bucket. ``x`` is a dict
with ``value`` (the indicator), ``k`` (the count it rests on), ``n`` (exposure / sample size) and
``season`` (from :func:`streams.windows.season_of`). Deciding is separate from scoring:
:class:`SeriesFilter` classifies a score against the one service threshold and keeps the detector
from learning anomalies.

Scores are calibrated: ``score = -log10(p) / 8`` clipped to [0, 1], where ``p`` is the tail
probability of the observation under the learned baseline. So :data:`ALERT_THRESHOLD` = 0.5 means
"p ≤ 1e-4" for every detector and series, and small counts cannot reach it: three complaints where
one was expected is not evidence, thirty where ten were expected is.

>>> det = CountDetector()
>>> for _ in range(20):
...     det.learn_one({"k": 10.0, "season": 0})
>>> det.score_one({"k": 12.0, "season": 0}) < 0.1   # within noise
True
>>> det.score_one({"k": 40.0, "season": 0}) > ALERT_THRESHOLD
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from river import base

#: Score at or above which a bucket is an anomaly (p ≤ 1e-4); the same in the service and offline.
ALERT_THRESHOLD = 0.5
_LOG10_P_FULL_SCALE = 8.0
_WARMUP = 7  # buckets a series must have seen before it is scored at all


def score_from_p(p: float) -> float:
    """Map a tail probability to a [0, 1] score; 1e-4 ↦ 0.5, 1e-8 or smaller ↦ 1.

    >>> score_from_p(1.0), score_from_p(1e-4), score_from_p(1e-12)
    (0.0, 0.5, 1.0)
    """
    if p >= 1.0:
        return 0.0
    return min(1.0, -math.log10(max(p, 1e-300)) / _LOG10_P_FULL_SCALE)


def poisson_upper_tail(k: float, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(lam).

    >>> round(poisson_upper_tail(3, 1.0), 4)
    0.0803
    >>> poisson_upper_tail(0, 5.0)
    1.0
    """
    k = math.ceil(k)
    if k <= 0:
        return 1.0
    if lam <= 0:
        return 0.0
    if lam > 500:  # normal approximation with continuity correction
        return normal_upper_tail((k - 0.5 - lam) / math.sqrt(lam))
    log_term = -lam + k * math.log(lam) - math.lgamma(k + 1)
    term, total, i = math.exp(log_term), 0.0, k
    while term > 1e-17 * max(total, 1e-300) and i < k + 10_000:
        total += term
        i += 1
        term *= lam / i
    return min(1.0, total)


def normal_upper_tail(z: float) -> float:
    """P(Z ≥ z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _tail(z: float, direction: str) -> float:
    if direction == "high":
        return normal_upper_tail(z)
    if direction == "low":
        return normal_upper_tail(-z)
    return min(1.0, 2.0 * normal_upper_tail(abs(z)))


@dataclass(frozen=True)
class Expectation:
    """What the detector expected: a centre and the band outside which it would alert."""

    expected: float
    lower: float
    upper: float


class _Seasonal:
    """A level with a multiplicative factor per season, learnt by exponential weighting.

    Plain floats, not River objects: a series keeps at most a few hundred of them (see the bench
    for bytes per series)."""

    __slots__ = ("alpha", "factors", "level", "seen")

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.level: float | None = None
        self.factors: dict[int, float] = {}
        self.seen = 0

    def expect(self, season: int) -> float:
        return (self.level or 0.0) * self.factors.get(season, 1.0)

    def learn(self, value: float, season: int) -> None:
        a = self.alpha
        factor = self.factors.get(season, 1.0)
        if self.level is None:
            self.level = value / factor
        else:
            self.level += a * (value / factor - self.level)
        if self.level > 0:
            # Seasons come round rarely, so their factors learn faster than the level.
            self.factors[season] = factor + min(1.0, 3 * a) * (value / self.level - factor)
        self.seen += 1


class CountDetector(base.AnomalyDetector):
    """Poisson surprise of a count (complaints, cancellations) against its seasonal baseline.

    ``tolerance`` widens the baseline for the over-dispersion real counts have, and ``floor``
    keeps a series whose baseline is nearly zero from alarming on a single event.
    """

    def __init__(
        self, direction: str = "high", alpha: float = 0.1, tolerance: float = 0.25, floor: float = 1.0
    ) -> None:
        self.direction = direction
        self.alpha = alpha
        self.tolerance = tolerance
        self.floor = floor
        self._base = _Seasonal(alpha)

    def _lam(self, season: int) -> float:
        return max(self._base.expect(season), self.floor) * (1.0 + self.tolerance)

    def learn_one(self, x: dict[str, Any]) -> None:
        self._base.learn(float(x["k"]), int(x.get("season", 0)))

    def score_one(self, x: dict[str, Any]) -> float:
        if self._base.seen < _WARMUP:
            return 0.0
        return score_from_p(poisson_upper_tail(float(x["k"]), self._lam(int(x.get("season", 0)))))

    def expectation(self, x: dict[str, Any]) -> Expectation:
        lam = self._lam(int(x.get("season", 0)))
        spread = 3.7 * math.sqrt(lam)  # ≈ the p = 1e-4 point of a normal
        centre = lam / (1.0 + self.tolerance)
        return Expectation(centre, max(0.0, lam - spread), lam + spread)


class ProportionDetector(base.AnomalyDetector):
    """Binomial surprise of a proportion (answer rate) with learnt extra-binomial spread.

    The band narrows as the sample grows: 60 % answered out of 10 calls is noise, out of 10,000
    it is an outage.
    """

    def __init__(self, direction: str = "low", alpha: float = 0.1, min_spread: float = 0.02) -> None:
        self.direction = direction
        self.alpha = alpha
        self.min_spread = min_spread
        self._k = 0.0
        self._n = 0.0
        self._extra = 0.0  # EW variance beyond the binomial part
        self._seen = 0

    def _baseline(self) -> float:
        return self._k / self._n if self._n else 0.0

    def _sd(self, n: float) -> float:
        pi = self._baseline()
        binomial = pi * (1.0 - pi) / max(n, 1.0)
        return math.sqrt(binomial + max(self._extra, self.min_spread**2))

    def learn_one(self, x: dict[str, Any]) -> None:
        k, n = float(x["k"]), float(x["n"])
        if n <= 0:
            return
        if self._seen:
            pi = self._baseline()
            excess = (k / n - pi) ** 2 - pi * (1.0 - pi) / n
            self._extra += self.alpha * (max(excess, 0.0) - self._extra)
        a = self.alpha
        self._k, self._n = (1 - a) * self._k + a * k, (1 - a) * self._n + a * n
        if not self._seen:
            self._k, self._n = k, n
        self._seen += 1

    def score_one(self, x: dict[str, Any]) -> float:
        n = float(x["n"])
        if self._seen < _WARMUP or n <= 0:
            return 0.0
        z = (float(x["k"]) / n - self._baseline()) / self._sd(n)
        return score_from_p(_tail(z, self.direction))

    def expectation(self, x: dict[str, Any]) -> Expectation:
        pi, sd = self._baseline(), self._sd(float(x["n"]))
        return Expectation(pi, max(0.0, pi - 3.7 * sd), min(1.0, pi + 3.7 * sd))


class LevelDetector(base.AnomalyDetector):
    """Gaussian surprise of a positive amount (premium, days, ratios) on a log scale.

    Seasonal (weekday, month-end) baseline; residual variance learnt online and widened when the
    bucket rests on fewer samples than the series usually has, so small slices need a larger
    deviation to alarm.

    >>> det = LevelDetector(direction="both")
    >>> for i in range(30):
    ...     det.learn_one({"value": 100.0 + (i % 3), "n": 50.0, "season": 0})
    >>> det.score_one({"value": 101.0, "n": 50.0, "season": 0}) < 0.1
    True
    >>> det.score_one({"value": 300.0, "n": 50.0, "season": 0}) > ALERT_THRESHOLD
    True
    >>> small = det.score_one({"value": 110.0, "n": 2.0, "season": 0})   # same jump, 2 samples
    >>> large = det.score_one({"value": 110.0, "n": 50.0, "season": 0})
    >>> small < ALERT_THRESHOLD < large
    True
    """

    def __init__(self, direction: str = "both", alpha: float = 0.1, min_sd: float = 0.02) -> None:
        self.direction = direction
        self.alpha = alpha
        self.min_sd = min_sd
        self._base = _Seasonal(alpha)
        self._var = 0.0
        self._n = 0.0

    @staticmethod
    def _y(value: float) -> float:
        return math.log1p(max(value, 0.0))

    def _sd(self, n: float) -> float:
        sd = math.sqrt(max(self._var, self.min_sd**2))
        return sd * math.sqrt(max(1.0, self._n / max(n, 1e-9)))

    def _z(self, x: dict[str, Any]) -> float:
        expected = self._base.expect(int(x.get("season", 0)))
        return (self._y(float(x["value"])) - expected) / self._sd(float(x.get("n", 1.0)))

    def learn_one(self, x: dict[str, Any]) -> None:
        y, season = self._y(float(x["value"])), int(x.get("season", 0))
        if self._base.seen:
            residual = y - self._base.expect(season)
            self._var += self.alpha * (residual * residual - self._var)
            self._n += self.alpha * (float(x.get("n", 1.0)) - self._n)
        else:
            self._n = float(x.get("n", 1.0))
        self._base.learn(y, season)

    def score_one(self, x: dict[str, Any]) -> float:
        if self._base.seen < _WARMUP:
            return 0.0
        return score_from_p(_tail(self._z(x), self.direction))

    def expectation(self, x: dict[str, Any]) -> Expectation:
        centre = self._base.expect(int(x.get("season", 0)))
        band = 3.7 * self._sd(float(x.get("n", 1.0)))
        return Expectation(math.expm1(centre), math.expm1(centre - band), math.expm1(centre + band))


DETECTORS: dict[str, type[base.AnomalyDetector]] = {
    "count": CountDetector,
    "proportion": ProportionDetector,
    "level": LevelDetector,
}


class SeriesFilter:
    """Decides on a score and protects the detector from learning anomalies.

    A run of ``adapt_after`` anomalous buckets is taken as a new normal and learnt, so a lasting
    shift alarms for a while and then stops, instead of alarming for ever.
    """

    __slots__ = ("adapt_after", "detector", "run", "threshold")

    def __init__(self, detector: Any, threshold: float = ALERT_THRESHOLD, adapt_after: int = 7):
        self.detector = detector
        self.threshold = threshold
        self.adapt_after = adapt_after
        self.run = 0

    def step(self, x: dict[str, Any]) -> tuple[float, bool]:
        """Score ``x``, then learn it unless it is an anomaly; returns (score, is_anomaly)."""
        score = self.detector.score_one(x)
        anomalous = score >= self.threshold
        self.run = self.run + 1 if anomalous else 0
        if not anomalous or self.run >= self.adapt_after:
            self.detector.learn_one(x)
        return score, anomalous
