"""Tail probabilities and the one score scale every detector reports on.

``score = -log10(p) / 8`` clipped to [0, 1]: the alert threshold 0.5 is p ≤ 1e-4 for every
detector, and p ≤ 1e-8 is full scale.
"""

from __future__ import annotations

import math

from scipy.special import bdtr, bdtrc, betainc, pdtr, pdtrc, stdtr, stdtrit

#: Score at or above which a bucket is an anomaly (p ≤ 1e-4); the same in the service and offline.
ALERT_THRESHOLD = 0.5
_LOG10_P_FULL_SCALE = 8.0


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


#: Degrees of freedom beyond which Student's t is taken for the normal.
_NORMAL_DF = 1e6


def student_upper_tail(t: float, df: float) -> float:
    """P(T ≥ t) for Student's t with ``df`` degrees of freedom: a z whose spread is itself
    estimated from ``df`` + 1 values.

    >>> round(student_upper_tail(4.0, 14.0), 5), round(normal_upper_tail(4.0), 6)
    (0.00066, 3.2e-05)
    """
    return normal_upper_tail(t) if df >= _NORMAL_DF else float(stdtr(df, -t))


def student_upper_quantile(p: float, df: float) -> float:
    """The t with P(T ≥ t) = ``p``.

    >>> round(student_upper_quantile(1e-4, 14.0), 2), round(student_upper_quantile(1e-4, 1e9), 2)
    (4.99, 3.72)
    """
    return -float(stdtrit(min(df, _NORMAL_DF), p))


def _tail(z: float, direction: str, df: float = math.inf) -> float:
    if direction == "high":
        return student_upper_tail(z, df)
    if direction == "low":
        return student_upper_tail(-z, df)
    return min(1.0, 2.0 * student_upper_tail(abs(z), df))


def poisson_lower_tail(k: float, lam: float) -> float:
    """P(X ≤ k) for X ~ Poisson(lam).

    >>> round(poisson_lower_tail(0, 2.0), 4)
    0.1353
    """
    if k < 0:
        return 0.0
    return 1.0 if lam <= 0 else float(pdtr(math.floor(k), lam))


#: Beyond this shape the gamma-Poisson mixture is the Poisson itself, to machine precision.
_POISSON_SHAPE = 1e9


def mixed_poisson_upper_tail(k: float, mean: float, shape: float) -> float:
    """P(X ≥ k) for a Poisson count whose mean is itself uncertain: gamma-distributed with this
    mean and ``shape`` (squared relative error 1 / shape) — the negative binomial.

    >>> round(mixed_poisson_upper_tail(3, 1.0, 1.0), 4)     # geometric: (1/2)^3
    0.125
    >>> mixed_poisson_upper_tail(40, 10.0, 1e12) == poisson_upper_tail(40, 10.0)
    True
    """
    k = math.ceil(k)
    if k <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    if shape >= _POISSON_SHAPE:
        return poisson_upper_tail(k, mean)
    return float(betainc(k, shape, mean / (mean + shape)))


def mixed_poisson_lower_tail(k: float, mean: float, shape: float) -> float:
    """P(X ≤ k) for the same mixture.

    >>> round(mixed_poisson_lower_tail(0, 1.0, 1.0), 4)    # geometric: 1/2
    0.5
    >>> round(mixed_poisson_lower_tail(9, 27.7, 32.0), 4), round(poisson_lower_tail(9, 27.7), 6)
    (0.0011, 3.6e-05)
    """
    if k < 0:
        return 0.0
    if mean <= 0:
        return 1.0
    if shape >= _POISSON_SHAPE:
        return poisson_lower_tail(k, mean)
    return float(betainc(shape, math.floor(k) + 1, shape / (mean + shape)))


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
