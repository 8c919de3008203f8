"""Detectors of counts and proportions: exact Poisson (mixed by the expectation's own
uncertainty) and binomial surprise, count-aware."""

from __future__ import annotations

import math
from typing import Any

from river import base

from streams.detectors.baseline import _WARMUP, Expectation, _Seasonal, seasons, usable_count
from streams.detectors.tails import (
    binomial_tail,
    mixed_poisson_lower_tail,
    mixed_poisson_upper_tail,
    score_from_p,
)


class CountDetector(base.AnomalyDetector):
    """Poisson surprise of a count (complaints, cancellations, premium receipts) against its
    seasonal baseline.

    ``tolerance`` widens the baseline for the over-dispersion real counts have, and ``floor``
    keeps a series whose baseline is nearly zero from alarming on a single event. On a day of
    the month-end push the expected count is itself a rough estimate — the push's factor rests
    on the few such days seen — so the count is judged against a Poisson whose mean carries
    that error (gamma-mixed: the negative binomial). A month's last day seen once, from one
    busy day's 29 receipts, expects 35 ± 6, not 35 ± 0: 9 receipts on the next month's last
    day is a slow day (p ≈ 1e-3), not the collapse a plain Poisson makes of it (p ≈ 4e-5).
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
        # (count, expected, variance of the expectation) of the last window-1 buckets: a wave
        # of rare events (complaints) shows in their sum long before any single bucket is
        # significant. (Checkpoints written before the variance hold pairs.)
        self._recent: list[tuple[float, ...]] = []

    def _lam(self, x: dict[Any, Any]) -> float:
        return max(self._base.expect(*seasons(x)), self.floor)

    def _p(self, k: float, lam: float, error: float) -> float:
        """Tail of ``k`` against ``lam`` known to a squared relative ``error``."""
        shape = 1.0 / error if error > 0 else math.inf
        high = mixed_poisson_upper_tail(k, lam * (1.0 + self.tolerance), shape)
        low = mixed_poisson_lower_tail(k, lam / (1.0 + self.tolerance), shape)
        return {"high": high, "low": low}.get(self.direction, min(1.0, 2 * min(high, low)))

    def learn_one(self, x: dict[Any, Any]) -> None:
        (season, base), k = seasons(x), float(x["k"])
        if not usable_count(k):
            return
        if self.window > 1 and self._base.ready(season):
            lam = self._lam(x)
            entry = (k, lam, lam * lam * self._base.uncertainty(season, base))
            self._recent = [*self._recent, entry][-(self.window - 1) :]
        self._base.learn(k, season, base)

    def score_one(self, x: dict[Any, Any]) -> float:
        season, base = seasons(x)
        if not self._base.ready(season):
            return 0.0
        lam, k = self._lam(x), float(x["k"])
        if not usable_count(k):
            return 0.0
        error = self._base.uncertainty(season, base)
        p = self._p(k, lam, error)
        if self._recent:
            # Two tests instead of one: the stricter of the two, doubled (Bonferroni).
            k_sum = k + sum(r[0] for r in self._recent)
            lam_sum = lam + sum(r[1] for r in self._recent)
            variance = lam * lam * error + sum(r[2] for r in self._recent if len(r) > 2)
            p = min(1.0, 2 * min(p, self._p(k_sum, lam_sum, variance / (lam_sum * lam_sum))))
        return score_from_p(p)

    def expectation(self, x: dict[Any, Any]) -> Expectation:
        lam = self._lam(x)
        # ≈ the p = 1e-4 point of a normal, with the expectation's own error in it
        spread = 3.7 * math.sqrt(lam + lam * lam * self._base.uncertainty(*seasons(x)))
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
        if n <= 0 or not usable_count(k, n):
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
        if self._seen < _WARMUP or n <= 0 or not usable_count(float(x["k"]), n):
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
