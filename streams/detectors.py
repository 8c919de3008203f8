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
from scipy.special import bdtr, bdtrc, pdtr, pdtrc

#: Score at or above which a bucket is an anomaly (p ≤ 1e-4); the same in the service and offline.
ALERT_THRESHOLD = 0.5
_LOG10_P_FULL_SCALE = 8.0
_PSEUDO_COUNT = 3.0
_WARMUP = 14  # buckets a series must have seen before it is scored at all (two weeks of days)


def score_from_p(p: float) -> float:
    """Map a tail probability to a [0, 1] score; 1e-4 ↦ 0.5, 1e-8 or smaller ↦ 1.

    >>> score_from_p(1.0), score_from_p(1e-4), score_from_p(1e-12)
    (0.0, 0.5, 1.0)
    """
    if p >= 1.0:
        return 0.0
    return min(1.0, -math.log10(max(p, 1e-300)) / _LOG10_P_FULL_SCALE)


def poisson_upper_tail(k: float, lam: float) -> float:
    """P(X ≥ k) for X ~ Poisson(lam), exact (regularised incomplete gamma).

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
    return float(pdtrc(k - 1, lam))


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
    """A level plus a per-season adjustment, learnt by exponential weighting.

    ``multiplicative`` suits counts (a weekend has 40 % of a weekday's policies); additive suits
    values already on a log scale. The first :data:`_WARMUP` observations are kept and fitted at
    once — the median as level, each season's mean relative to it — so a series that starts on a
    weekend or at a month-end does not take that for its normal. Plain floats, not River
    objects: a series keeps at most a few hundred of them (the bench reports bytes per series).
    """

    __slots__ = ("adjust", "alpha", "level", "multiplicative", "seen", "warm")

    def __init__(self, alpha: float, multiplicative: bool) -> None:
        self.alpha = alpha
        self.multiplicative = multiplicative
        self.level = 0.0
        self.adjust: dict[int, float] = {}
        self.seen = 0
        self.warm: list[tuple[float, int]] | None = []

    def ready(self, season: int) -> bool:
        """Warm, and this season seen before: only then is an expectation worth judging by."""
        return self.warm is None and season in self.adjust

    def expect(self, season: int) -> float:
        if self.multiplicative:
            return self.level * self.adjust.get(season, 1.0)
        return self.level + self.adjust.get(season, 0.0)

    def learn(self, value: float, season: int) -> None:
        self.seen += 1
        if self.warm is not None:
            self.warm.append((value, season))
            if len(self.warm) >= _WARMUP:
                self._fit(self.warm)
                self.warm = None
            return
        a = self.alpha
        # Seasons come round rarely, so their adjustments learn faster than the level; one seen
        # for the first time takes its adjustment from this observation alone.
        fast = min(1.0, 3 * a) if season in self.adjust else 1.0
        if self.multiplicative:
            # Floored so that a season first seen empty can still be divided by and recover.
            factor = max(self.adjust.get(season, 1.0), 0.05)
            self.level += a * (value / factor - self.level)
            if self.level > 0:
                self.adjust[season] = factor + fast * (self._ratio(value, self.level) - factor)
        else:
            offset = self.adjust.get(season, 0.0)
            self.level += a * (value - offset - self.level)
            self.adjust[season] = offset + fast * (value - self.level - offset)

    @staticmethod
    def _ratio(value: float, level: float) -> float:
        # Pseudo-counts shrink factors of small counts towards 1: 6 against a level of 1 is
        # mostly noise, 6,000 against 1,000 is a season.
        return (value + _PSEUDO_COUNT) / (level + _PSEUDO_COUNT)

    def _fit(self, points: list[tuple[float, int]]) -> None:
        values = sorted(v for v, _ in points)
        middle = len(values) // 2
        self.level = (
            values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
        )
        by_season: dict[int, list[float]] = {}
        for v, season in points:
            by_season.setdefault(season, []).append(v)
        for season, vs in by_season.items():
            mean = sum(vs) / len(vs)
            if self.multiplicative:
                self.adjust[season] = max(self._ratio(mean, self.level), 0.05)
            else:
                self.adjust[season] = mean - self.level


def poisson_lower_tail(k: float, lam: float) -> float:
    """P(X ≤ k) for X ~ Poisson(lam).

    >>> round(poisson_lower_tail(0, 2.0), 4)
    0.1353
    """
    if k < 0:
        return 0.0
    return 1.0 if lam <= 0 else float(pdtr(math.floor(k), lam))


def binomial_tail(k: float, n: float, p: float, direction: str) -> float:
    """P(X ≤ k) ('low') or P(X ≥ k) ('high') for X ~ Binomial(n, p), exact.

    >>> round(binomial_tail(1, 2, 0.99, "low"), 4)    # one of two calls missed: no evidence
    0.0199
    >>> binomial_tail(40, 100, 0.95, "low") < 1e-20   # sixty of a hundred missed: an outage
    True
    """
    if direction == "both":
        return min(1.0, 2 * min(binomial_tail(k, n, p, "low"), binomial_tail(k, n, p, "high")))
    n_int, k_int = round(n), round(k)
    if direction == "low":
        return 1.0 if k_int >= n_int else float(bdtr(k_int, n_int, p))
    return 1.0 if k_int <= 0 else float(bdtrc(k_int - 1, n_int, p))


class CountDetector(base.AnomalyDetector):
    """Poisson surprise of a count (complaints, cancellations, premium receipts) against its
    seasonal baseline.

    ``tolerance`` widens the baseline for the over-dispersion real counts have, and ``floor``
    keeps a series whose baseline is nearly zero from alarming on a single event.
    """

    def __init__(
        self,
        direction: str = "high",
        alpha: float = 0.1,
        tolerance: float = 0.25,
        floor: float = 1.0,
        window: int = 7,
    ) -> None:
        self.direction = direction
        self.alpha = alpha
        self.tolerance = tolerance
        self.floor = floor
        self.window = window
        self._base = _Seasonal(alpha, multiplicative=True)
        # (count, expected) of the last window-1 buckets: a wave of rare events (complaints)
        # shows in their sum long before any single bucket is significant.
        self._recent: list[tuple[float, float]] = []

    def _lam(self, season: int) -> float:
        return max(self._base.expect(season), self.floor)

    def _p(self, k: float, lam: float) -> float:
        high = poisson_upper_tail(k, lam * (1.0 + self.tolerance))
        low = poisson_lower_tail(k, lam / (1.0 + self.tolerance))
        return {"high": high, "low": low}.get(self.direction, min(1.0, 2 * min(high, low)))

    def learn_one(self, x: dict[Any, Any]) -> None:
        season, k = int(x.get("season", 0)), float(x["k"])
        if self.window > 1 and self._base.ready(season):
            self._recent = [*self._recent, (k, self._lam(season))][-(self.window - 1) :]
        self._base.learn(k, season)

    def score_one(self, x: dict[Any, Any]) -> float:
        if not self._base.ready(int(x.get("season", 0))):
            return 0.0
        lam, k = self._lam(int(x.get("season", 0))), float(x["k"])
        p = self._p(k, lam)
        if self._recent:
            # Two tests instead of one: the stricter of the two, doubled (Bonferroni).
            k_sum = k + sum(c for c, _ in self._recent)
            lam_sum = lam + sum(e for _, e in self._recent)
            p = min(1.0, 2 * min(p, self._p(k_sum, lam_sum)))
        return score_from_p(p)

    def expectation(self, x: dict[Any, Any]) -> Expectation:
        lam = self._lam(int(x.get("season", 0)))
        spread = 3.7 * math.sqrt(lam)  # ≈ the p = 1e-4 point of a normal
        upper = lam * (1.0 + self.tolerance) + spread
        lower = max(0.0, lam / (1.0 + self.tolerance) - spread)
        return Expectation(lam, lower, upper)


class ProportionDetector(base.AnomalyDetector):
    """Binomial surprise of a proportion (answer rate) with learnt extra-binomial spread.

    The band narrows as the sample grows: one call missed out of two is noise, sixty out of a
    hundred is an outage. The test is exact for small samples, and is taken against the baseline
    moved by the spread seen between buckets, so day-to-day variation is not evidence.
    """

    def __init__(
        self, direction: str = "low", alpha: float = 0.1, min_spread: float = 0.02
    ) -> None:
        self.direction = direction
        self.alpha = alpha
        self.min_spread = min_spread
        self._k = 0.0
        self._n = 0.0
        self._extra = 0.0  # EW variance beyond the binomial part
        self._seen = 0

    def _baseline(self) -> float:
        # Laplace smoothing: a series that has always answered every call is not certain to.
        return (self._k + 0.5) / (self._n + 1.0)

    def _margin(self) -> float:
        return max(self.min_spread, 2.0 * math.sqrt(self._extra))

    def learn_one(self, x: dict[Any, Any]) -> None:
        k, n = float(x["k"]), float(x["n"])
        if n <= 0:
            return
        if self._seen:
            pi = self._baseline()
            excess = (k / n - pi) ** 2 - pi * (1.0 - pi) / n
            self._extra += self.alpha * (max(excess, 0.0) - self._extra)
            a = self.alpha
            self._k, self._n = (1 - a) * self._k + a * k, (1 - a) * self._n + a * n
        else:
            self._k, self._n = k, n
        self._seen += 1

    def score_one(self, x: dict[Any, Any]) -> float:
        n = float(x["n"])
        if self._seen < _WARMUP or n <= 0:
            return 0.0
        pi, margin, k = self._baseline(), self._margin(), float(x["k"])
        low = binomial_tail(k, n, max(1e-9, pi - margin), "low")
        high = binomial_tail(k, n, min(1 - 1e-9, pi + margin), "high")
        p = {"high": high, "low": low}.get(self.direction, min(1.0, 2 * min(high, low)))
        return score_from_p(p)

    def expectation(self, x: dict[Any, Any]) -> Expectation:
        pi, n = self._baseline(), max(float(x["n"]), 1.0)
        spread = self._margin() + 3.7 * math.sqrt(pi * (1.0 - pi) / n)
        return Expectation(pi, max(0.0, pi - spread), min(1.0, pi + spread))


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
        expected = self._base.expect(int(x.get("season", 0)))
        return (self._y(float(x["value"])) - expected) / self._sd(float(x.get("n", 1.0)))

    def learn_one(self, x: dict[Any, Any]) -> None:
        y, season, n = self._y(float(x["value"])), int(x.get("season", 0)), float(x.get("n", 1.0))
        warmup = self._base.warm
        if warmup is None:
            residual = y - self._base.expect(season)
            self._var += self.alpha * (residual * residual - self._var)
            self._n += self.alpha * (n - self._n)
            self._base.learn(y, season)
            return
        self._n += (n - self._n) / (len(warmup) + 1)  # plain mean while warming up
        self._base.learn(y, season)
        if self._base.warm is None:  # just fitted: start the variance from the warm-up residuals
            residuals = [(v - self._base.expect(s)) ** 2 for v, s in warmup]
            self._var = sum(residuals) / max(1, len(residuals) - 1)

    def score_one(self, x: dict[Any, Any]) -> float:
        if not self._base.ready(int(x.get("season", 0))):
            return 0.0
        return score_from_p(_tail(self._z(x), self.direction))

    def expectation(self, x: dict[Any, Any]) -> Expectation:
        centre = self._base.expect(int(x.get("season", 0)))
        band = 3.7 * self._sd(float(x.get("n", 1.0)))
        # The band lives on the log scale; keep its upper end representable.
        top = min(centre + band, 700.0)
        expected = max(0.0, math.expm1(centre))
        return Expectation(expected, max(0.0, math.expm1(centre - band)), math.expm1(top))


DETECTORS: dict[str, type[CountDetector] | type[ProportionDetector] | type[LevelDetector]] = {
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

    def step(self, x: dict[Any, Any]) -> tuple[float, bool]:
        """Score ``x``, then learn it unless it is an anomaly; returns (score, is_anomaly)."""
        score = self.detector.score_one(x)
        anomalous = score >= self.threshold
        self.run = self.run + 1 if anomalous else 0
        if not anomalous or self.run >= self.adapt_after:
            self.detector.learn_one(x)
        return score, anomalous
