"""Indicator definitions: what each event adds to a bucket, and how indicators are read off it.

A bucket of a slice is a flat vector of sums (:data:`FIELDS`); each event adds to a few of them
(:func:`contributions`), so per-event work is a handful of float additions. When the bucket closes
every indicator is computed from the sums, together with the evidence it rests on — the count
``k`` and exposure ``n`` — so that detectors can judge a rate over 12 policies differently from one
over 12,000. The definitions are documented for users in ``docs/indicators.md``.

>>> acc = new_accumulator()
>>> for name, amount in [("calls", 1), ("calls_answered", 1), ("calls", 1)]:
...     acc[FIELD[name]] += amount
>>> reading = INDICATORS["hotline_answer_rate"].read(acc)
>>> (reading.value, reading.k, reading.n)
(0.5, 1.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from streams.schema import EventBase

FIELDS = (
    "premium_received_yuan",
    "premium_receipts",
    "written_premium_yuan",
    "policies_issued",
    "cooling_off_cancels",
    "surrenders",
    "surrender_yuan",
    "claims_reported",
    "claims_closed",
    "claims_paid_yuan",
    "settlement_days_sum",
    "complaints",
    "complaints_regulator",
    "complaints_closed",
    "calls",
    "calls_answered",
    "calls_answered_20s",
    "csat_responses",
    "csat_sum",
    "inspections",
    "inspections_compliant",
)
FIELD = {name: i for i, name in enumerate(FIELDS)}
_F = FIELD


def new_accumulator() -> list[float]:
    return [0.0] * len(FIELDS)


def contributions(event: EventBase) -> list[tuple[int, float]]:
    """(field index, amount) pairs one event adds to its buckets."""
    p = event.payload  # type: ignore[attr-defined]
    kind = event.event_type  # type: ignore[attr-defined]
    if kind == "premium.received":
        return [(_F["premium_received_yuan"], float(p.premium)), (_F["premium_receipts"], 1.0)]
    if kind == "policy.issued":
        return [(_F["written_premium_yuan"], float(p.premium)), (_F["policies_issued"], 1.0)]
    if kind == "policy.cooling_off_cancel":
        return [(_F["cooling_off_cancels"], 1.0)]
    if kind == "policy.surrendered":
        return [(_F["surrenders"], 1.0), (_F["surrender_yuan"], float(p.surrender_amount))]
    if kind == "claim.reported":
        return [(_F["claims_reported"], 1.0)]
    if kind == "claim.closed":
        days = (event.event_time - p.reported_at).total_seconds() / 86400.0
        return [
            (_F["claims_closed"], 1.0),
            (_F["claims_paid_yuan"], float(p.paid_amount)),
            (_F["settlement_days_sum"], days),
        ]
    if kind == "complaint.received":
        out = [(_F["complaints"], 1.0)]
        if p.source == "REGULATOR":
            out.append((_F["complaints_regulator"], 1.0))
        return out
    if kind == "complaint.closed":
        return [(_F["complaints_closed"], 1.0)]
    if kind == "call.completed":
        out = [(_F["calls"], 1.0)]
        if p.answered:
            out.append((_F["calls_answered"], 1.0))
            if p.wait_seconds <= 20:
                out.append((_F["calls_answered_20s"], 1.0))
        return out
    if kind == "survey.response":
        if p.csat_1_5 is None:
            return []
        return [(_F["csat_responses"], 1.0), (_F["csat_sum"], float(p.csat_1_5))]
    if kind == "inspection.sample":
        out = [(_F["inspections"], 1.0)]
        if p.compliant:
            out.append((_F["inspections_compliant"], 1.0))
        return out
    return []  # target.set carries no bucket quantity; attainment arrives with its own issue


Kind = Literal["count", "proportion", "level"]
Direction = Literal["high", "low", "both"]


@dataclass(frozen=True)
class Reading:
    """An indicator's value in one closed bucket, with its evidence.

    ``k`` is the count the value rests on (complaints, answered calls, closed claims) and ``n``
    the exposure or sample size (policies, calls); ``value`` is None when a ratio's denominator
    is zero (a sum, such as premium income, is 0 instead). ``per_k`` is what one unit of ``k``
    is worth in the indicator's unit, so a detector's expected count can be shown as a rate.
    """

    value: float | None
    k: float
    n: float
    per_k: float = 1.0


@dataclass(frozen=True)
class Indicator:
    name: str
    metric: str  # Prometheus gauge name, in base units
    kind: Kind  # which detector judges it
    direction: Direction  # which deviation is a quality problem
    description: str
    read: Callable[[list[float]], Reading]
    metric_scale: float = 1.0  # value × scale = the gauge's base unit (days -> seconds)
    #: Below this much evidence (k) a bucket is shown but not judged, nor learnt from: a loss
    #: ratio over two claims says nothing about the book.
    min_evidence: float = 0.0


def _ratio(num: str, den: str, scale: float = 1.0) -> Callable[[list[float]], Reading]:
    i, j = _F[num], _F[den]

    def read(acc: list[float]) -> Reading:
        n = acc[j]
        if not n:
            return Reading(None, acc[i], n)
        return Reading(acc[i] / n * scale, acc[i], n, scale / n)

    return read


def _mean(total: str, count: str) -> Callable[[list[float]], Reading]:
    i, j = _F[total], _F[count]

    def read(acc: list[float]) -> Reading:
        n = acc[j]
        return Reading(acc[i] / n if n else None, n, n)

    return read


def _sum(total: str, count: str) -> Callable[[list[float]], Reading]:
    i, j = _F[total], _F[count]

    def read(acc: list[float]) -> Reading:
        k = acc[j]
        return Reading(acc[i], k, k, acc[i] / k if k else 0.0)

    return read


def _loss_ratio(acc: list[float]) -> Reading:
    # Its noise comes from how many claims closed, so that is its evidence, not the yuan.
    written, claims = acc[_F["written_premium_yuan"]], acc[_F["claims_closed"]]
    return Reading(acc[_F["claims_paid_yuan"]] / written if written else None, claims, claims)


_DEFINITIONS = (
    Indicator(
        "premium_income",
        "qualmon_indicator_premium_income_yuan",
        "count",  # judged on the number of receipts: a shortfall is first a shortfall of sales
        "low",
        "Premium received in the bucket (sum of premium.received), yuan.",
        _sum("premium_received_yuan", "premium_receipts"),
    ),
    Indicator(
        "loss_ratio",
        "qualmon_indicator_loss_ratio",
        "level",
        "high",
        "Simple loss ratio: claims paid (claim.closed) / premium written (policy.issued).",
        _loss_ratio,
        min_evidence=30.0,
    ),
    Indicator(
        "complaint_rate_per_10k_policies",
        "qualmon_indicator_complaints_per_10k_policies",
        "count",
        "high",
        "Complaints received per 10,000 policies issued in the bucket; judged on the count.",
        _ratio("complaints", "policies_issued", 10_000.0),
    ),
    Indicator(
        "cooling_off_cancel_rate",
        "qualmon_indicator_cooling_off_cancel_ratio",
        "count",
        "high",
        "Cooling-off cancellations / policies issued in the bucket; a mis-selling signal.",
        _ratio("cooling_off_cancels", "policies_issued"),
    ),
    Indicator(
        "hotline_answer_rate",
        "qualmon_indicator_hotline_answer_ratio",
        "proportion",
        "low",
        "Answered calls / calls offered (call.completed).",
        _ratio("calls_answered", "calls"),
    ),
    Indicator(
        "claim_settlement_days_mean",
        "qualmon_indicator_claim_settlement_seconds",
        "level",
        "high",
        "Mean days from claim report to close, over claims closed in the bucket.",
        _mean("settlement_days_sum", "claims_closed"),
        metric_scale=86400.0,
        min_evidence=10.0,
    ),
)
INDICATORS: dict[str, Indicator] = {i.name: i for i in _DEFINITIONS}
