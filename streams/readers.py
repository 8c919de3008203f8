"""Readers: how one indicator's value and evidence are computed from a vector of sums.

Each reader takes a slice's sums (:mod:`streams.fields`) — of one bucket or of a whole window —
and returns a :class:`Reading`. They are pure and never change the sums.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from streams.fields import FIELD, settlement_quantile

_F = FIELD


def wilson_interval(k: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n`` (95 % by default).

    Unlike ``p ± z·sqrt(p(1-p)/n)`` it stays inside [0, 1] and is honest for small samples:
    20 compliant of 20 sampled does not mean "certainly 100 %".

    >>> [round(x, 4) for x in wilson_interval(20, 20)]
    [0.8389, 1.0]
    >>> [round(x, 4) for x in wilson_interval(45, 50)]
    [0.7864, 0.9565]
    """
    if n <= 0:
        return (0.0, 1.0)
    p = min(1.0, max(0.0, k / n))
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Reading:
    """An indicator's value over one bucket or window, with its evidence.

    ``k`` is the count the value rests on (complaints, answered calls, closed claims) and ``n``
    the exposure or sample size (policies, calls); ``value`` is None when a ratio's denominator
    is zero (a sum, such as premium income, is 0 instead). ``per_k`` is what one unit of ``k``
    is worth in the indicator's unit, so a detector's expected count can be shown as a rate.
    ``interval`` is a 95 % interval of the value where one is part of the definition (Wilson).
    """

    value: float | None
    k: float
    n: float
    per_k: float = 1.0
    interval: tuple[float, float] | None = None


def ratio(num: str, den: str, scale: float = 1.0) -> Callable[[list[float]], Reading]:
    i, j = _F[num], _F[den]

    def read(acc: list[float]) -> Reading:
        n = acc[j]
        if not n:
            return Reading(None, acc[i], n)
        return Reading(acc[i] / n * scale, acc[i], n, scale / n)

    return read


def proportion(num: str, den: str) -> Callable[[list[float]], Reading]:
    i, j = _F[num], _F[den]

    def read(acc: list[float]) -> Reading:
        k, n = acc[i], acc[j]
        return Reading(k / n if n else None, k, n, 1.0 / n if n else 1.0, wilson_interval(k, n))

    return read


def own_complaints(den: str, scale: float) -> Callable[[list[float]], Reading]:
    all_, regulator, j = _F["complaints"], _F["complaints_regulator"], _F[den]

    def read(acc: list[float]) -> Reading:
        k, n = acc[all_] - acc[regulator], acc[j]
        return Reading(k / n * scale if n else None, k, n, scale / n if n else 1.0)

    return read


def mean(amount: str, count: str) -> Callable[[list[float]], Reading]:
    i, j = _F[amount], _F[count]

    def read(acc: list[float]) -> Reading:
        n = acc[j]
        return Reading(acc[i] / n if n else None, n, n)

    return read


def total(amount: str, count: str) -> Callable[[list[float]], Reading]:
    i, j = _F[amount], _F[count]

    def read(acc: list[float]) -> Reading:
        k = acc[j]
        return Reading(acc[i], k, k, acc[i] / k if k else 0.0)

    return read


def count(field: str) -> Callable[[list[float]], Reading]:
    i = _F[field]

    def read(acc: list[float]) -> Reading:
        return Reading(acc[i], acc[i], acc[i])

    return read


def overdue(field: str, open_field: str) -> Callable[[list[float]], Reading]:
    """Open cases past a limit, out of the open cases: zero overdue is a reading wherever
    cases are open, and no series where none are."""
    i, j = _F[field], _F[open_field]

    def read(acc: list[float]) -> Reading:
        return Reading(acc[i], acc[i], acc[j])

    return read


def loss_ratio(acc: list[float]) -> Reading:
    # Its noise comes from how many claims closed, so that is its evidence, not the yuan.
    written, claims = acc[_F["written_premium_yuan"]], acc[_F["claims_closed"]]
    return Reading(acc[_F["claims_paid_yuan"]] / written if written else None, claims, claims)


def surrender_rate(acc: list[float]) -> Reading:
    # Judged on the number of surrenders; the yuan ratio is what the department reports.
    premium, k = acc[_F["premium_received_yuan"]], acc[_F["surrenders"]]
    if not premium:
        return Reading(None, k, premium)
    value = acc[_F["surrender_yuan"]] / premium
    return Reading(value, k, premium, value / k if k else 0.0)


def p90(acc: list[float]) -> Reading:
    n = acc[_F["claims_closed"]]
    return Reading(settlement_quantile(acc, 0.9), n, n)


def attainment(acc: list[float]) -> Reading:
    target = acc[_F["month_target_yuan"]]
    mtd = acc[_F["mtd_premium_yuan"]]
    return Reading(mtd / target if target else None, 0.0, target)


#: Pace is not judged before this share of the month's business is expected: on the first days
#: a single large receipt makes or breaks it.
PACE_FROM_PROGRESS = 0.25


def pace(acc: list[float]) -> Reading:
    # Attainment over the share of the month's business expected by now (weekends, holidays
    # and the month-end push weighted in): 1 is on pace, 0.8 is a fifth behind. Its evidence is
    # the month's receipts so far, counted only from a quarter of the month on.
    target, progress = acc[_F["month_target_yuan"]], acc[_F["month_progress"]]
    if not target or not progress:
        return Reading(None, 0.0, 0.0)
    attained = acc[_F["mtd_premium_yuan"]] / target
    receipts = acc[_F["mtd_receipts"]] if progress >= PACE_FROM_PROGRESS else 0.0
    return Reading(attained / progress, receipts, receipts)


def nps(acc: list[float]) -> Reading:
    n = acc[_F["nps_responses"]]
    if not n:
        return Reading(None, 0.0, 0.0)
    return Reading(100.0 * (acc[_F["nps_promoters"]] - acc[_F["nps_detractors"]]) / n, n, n)


def open_age(acc: list[float]) -> Reading:
    n = acc[_F["claims_open"]]
    return Reading(acc[_F["claims_open_age_days_sum"]] / n if n else None, n, n)
