"""Indicator definitions: what each indicator means, which detector judges it, which gauge shows it.

Every indicator is read off a slice's vector of sums (:mod:`streams.fields`) — of one closed
bucket or of a longer window (:mod:`streams.rolling`) — by a reader (:mod:`streams.readers`),
together with the evidence it rests on: the count ``k`` and the exposure ``n``, so that detectors
judge a rate over 12 policies differently from one over 12,000. ``kind`` says which detector
judges it; an indicator whose ``min_evidence`` is :data:`NEVER` is shown but not judged
(cumulative or composite values such as attainment or NPS). ``family`` says what matter it is
about (complaints, claims, mis-selling, ...): a special inspection takes alerts of its own family.
:data:`SIGNALS` does the same for the anomalies that are not one indicator's reading (SLA
breaches, concentrations, data-quality checks). Users read the same definitions in
``docs/indicators.md``.

>>> acc = new_accumulator()
>>> for name, amount in [("calls", 1), ("calls_answered", 1), ("calls", 1)]:
...     acc[FIELD[name]] += amount
>>> reading = INDICATORS["hotline_answer_rate"].read(acc)
>>> (reading.value, reading.k, reading.n)
(0.5, 1.0, 2.0)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from streams import readers as r
from streams.fields import FIELD, FIELDS, SNAPSHOT, contributions, new_accumulator
from streams.readers import Reading, wilson_interval

__all__ = [
    "ANOMALY_NAMES", "FAMILIES", "FIELD", "FIELDS", "INDICATORS", "NEVER", "SIGNALS", "SNAPSHOT",
    "Indicator",
    "Reading", "Signal", "contributions", "family_of", "new_accumulator", "wilson_interval",
]  # fmt: skip

NEVER = math.inf  # min_evidence of an indicator that is shown but not judged
Kind = Literal["count", "proportion", "level"]
Direction = Literal["high", "low", "both"]
#: What an indicator or signal is about — the matter a special inspection investigates. An
#: inspection takes alerts of its own family only (docs/alerting.md#special-inspections).
Family = Literal[
    "premium", "claims", "mis_selling", "complaints", "hotline", "satisfaction", "compliance",
    "data_quality",
]  # fmt: skip
FAMILIES: tuple[Family, ...] = get_args(Family)


@dataclass(frozen=True)
class Indicator:
    name: str
    metric: str  # Prometheus gauge name, in base units
    kind: Kind  # which detector judges it
    direction: Direction  # which deviation is a quality problem
    description: str
    read: Callable[[list[float]], Reading]
    family: Family  # what matter it belongs to (complaints, claims, ...)
    metric_scale: float = 1.0  # value × scale = the gauge's base unit (days -> seconds)
    #: Below this much evidence (k) a bucket is shown but not judged, nor learnt from: a loss
    #: ratio over two claims says nothing about the book.
    min_evidence: float = 0.0
    #: Read off yuan amounts: a unit error in a feed (fen sent as yuan) moves it, so its
    #: anomalies are withheld while the data-quality watch reports the unit error instead.
    amounts: bool = False
    #: Read off month-to-date sums: a unit error taints it until the month ends.
    month_to_date: bool = False

    @property
    def judged(self) -> bool:
        return self.min_evidence < NEVER


_DAY = 86400.0
_I = Indicator
DEFINITIONS = (
    # ---- premium ------------------------------------------------------------------------------
    _I("premium_income", "qualmon_indicator_premium_income_yuan", "count", "low",
      "Premium received (sum of premium.received), yuan; judged on the number of receipts.",
      r.total("premium_received_yuan", "premium_receipts"), family="premium"),
    _I("premium_attainment", "qualmon_indicator_premium_attainment_ratio", "level", "low",
      "Month-to-date premium received / the month's target (target.set).",
      r.attainment, min_evidence=NEVER, amounts=True, month_to_date=True, family="premium"),
    _I("premium_pace", "qualmon_indicator_premium_pace_ratio", "level", "low",
      "Attainment / share of the month's business expected by now (month-end push weighted "
      "in); below 1 is behind pace.",
      r.pace, min_evidence=300.0, amounts=True, month_to_date=True, family="premium"),
    # ---- claims and loss ----------------------------------------------------------------------
    _I("loss_ratio", "qualmon_indicator_loss_ratio", "level", "high",
      "Simple loss ratio: claims paid (claim.closed) / premium written (policy.issued).",
      r.loss_ratio, min_evidence=NEVER, amounts=True, family="claims"),
    _I("claim_settlement_days_mean", "qualmon_indicator_claim_settlement_seconds", "level", "high",
      "Mean days from claim report to close, over claims closed in the bucket.",
      r.mean("settlement_days_sum", "claims_closed"), metric_scale=_DAY, min_evidence=30.0,
      family="claims"),
    _I("claim_settlement_days_p90", "qualmon_indicator_claim_settlement_p90_seconds", "level",
      "high", "90th percentile of days from report to close (fixed histogram, interpolated).",
      r.p90, metric_scale=_DAY, min_evidence=30.0, family="claims"),
    _I("claim_payout_rate", "qualmon_indicator_claim_payout_ratio", "proportion", "low",
      "Closed claims paid in full or in part / closed claims.",
      r.proportion("claims_paid", "claims_closed"), family="claims"),
    _I("claims_open", "qualmon_indicator_claims_open", "count", "high",
      "Claims reported and not yet closed at the bucket's end (the backlog).",
      r.count("claims_open"), min_evidence=NEVER, family="claims"),
    _I("claims_open_age_days_mean", "qualmon_indicator_claims_open_age_seconds", "level", "high",
      "Mean age of the open claims at the bucket's end.",
      r.open_age, metric_scale=_DAY, min_evidence=NEVER, family="claims"),
    _I("claims_overdue", "qualmon_indicator_claims_overdue", "count", "high",
      "Open claims older than the settlement limit at the bucket's end.",
      r.overdue("claims_overdue", "claims_open"), min_evidence=NEVER, family="claims"),
    # ---- surrenders and mis-selling -----------------------------------------------------------
    _I("surrender_rate", "qualmon_indicator_surrender_ratio", "count", "high",
      "Surrender amounts paid / premium received; judged on the number of surrenders.",
      r.surrender_rate, amounts=True, family="mis_selling"),
    _I("cooling_off_cancel_rate", "qualmon_indicator_cooling_off_cancel_ratio", "count", "high",
      "Cooling-off cancellations / policies issued in the bucket; a mis-selling signal.",
      r.ratio("cooling_off_cancels", "policies_issued"), family="mis_selling"),
    # ---- complaints ---------------------------------------------------------------------------
    _I("complaint_rate_per_10k_policies", "qualmon_indicator_complaints_per_10k_policies",
      "count", "high",
      "Complaints received per 10,000 policies issued in the bucket; judged on the count.",
      r.ratio("complaints", "policies_issued", 10_000.0), family="complaints"),
    _I("complaint_rate_per_10k_policies_own", "qualmon_indicator_own_complaints_per_10k_policies",
      "count", "high", "Complaints made to the company itself per 10,000 policies issued.",
      r.own_complaints("policies_issued", 10_000.0), family="complaints"),
    _I("complaint_rate_per_10k_policies_regulator",
      "qualmon_indicator_regulator_complaints_per_10k_policies", "count", "high",
      "Complaints transferred by the regulator per 10,000 policies issued.",
      r.ratio("complaints_regulator", "policies_issued", 10_000.0), family="complaints"),
    _I("complaint_rate_per_100m_premium", "qualmon_indicator_complaints_per_100m_yuan", "count",
      "high", "Complaints received per 100 million yuan of premium received (亿元保费投诉量).",
      r.ratio("complaints", "premium_received_yuan", 1e8), min_evidence=NEVER, amounts=True,
      family="complaints"),
    _I("complaint_rate_per_100m_premium_own", "qualmon_indicator_own_complaints_per_100m_yuan",
      "count", "high", "Complaints made to the company per 100 million yuan of premium.",
      r.own_complaints("premium_received_yuan", 1e8), min_evidence=NEVER, amounts=True,
      family="complaints"),
    _I("complaint_rate_per_100m_premium_regulator",
      "qualmon_indicator_regulator_complaints_per_100m_yuan", "count", "high",
      "Regulator-transferred complaints per 100 million yuan of premium.",
      r.ratio("complaints_regulator", "premium_received_yuan", 1e8), min_evidence=NEVER,
      amounts=True, family="complaints"),
    _I("complaint_closed_in_15d_rate", "qualmon_indicator_complaint_closed_in_15d_ratio",
      "proportion", "low", "Complaints closed within 15 days of receipt / complaints closed.",
      r.proportion("complaints_closed_15d", "complaints_closed"), family="complaints"),
    _I("complaint_closed_in_30d_rate", "qualmon_indicator_complaint_closed_in_30d_ratio",
      "proportion", "low", "Complaints closed within 30 days of receipt / complaints closed.",
      r.proportion("complaints_closed_30d", "complaints_closed"), min_evidence=NEVER,
      family="complaints"),
    _I("complaint_closed_in_60d_rate", "qualmon_indicator_complaint_closed_in_60d_ratio",
      "proportion", "low", "Complaints closed within 60 days of receipt / complaints closed.",
      r.proportion("complaints_closed_60d", "complaints_closed"), min_evidence=NEVER,
      family="complaints"),
    _I("complaint_handling_days_mean", "qualmon_indicator_complaint_handling_seconds", "level",
      "high", "Mean days from receipt to close, over complaints closed in the bucket.",
      r.mean("complaint_days_sum", "complaints_closed"), metric_scale=_DAY, min_evidence=10.0,
      family="complaints"),
    _I("complaints_open", "qualmon_indicator_complaints_open", "count", "high",
      "Complaints received and not yet closed at the bucket's end.",
      r.count("complaints_open"), min_evidence=NEVER, family="complaints"),
    _I("complaints_overdue_15d", "qualmon_indicator_complaints_overdue_15d", "count", "high",
      "Open complaints older than 15 days at the bucket's end.",
      r.overdue("complaints_overdue_15d", "complaints_open"), min_evidence=NEVER,
      family="complaints"),
    _I("complaints_overdue_30d", "qualmon_indicator_complaints_overdue_30d", "count", "high",
      "Open complaints older than 30 days at the bucket's end.",
      r.overdue("complaints_overdue_30d", "complaints_open"), min_evidence=NEVER,
      family="complaints"),
    _I("complaints_overdue_60d", "qualmon_indicator_complaints_overdue_60d", "count", "high",
      "Open complaints older than 60 days at the bucket's end (each raises an SLA breach).",
      r.overdue("complaints_overdue_60d", "complaints_open"), min_evidence=NEVER,
      family="complaints"),
    # ---- service ------------------------------------------------------------------------------
    _I("hotline_answer_rate", "qualmon_indicator_hotline_answer_ratio", "proportion", "low",
      "Answered calls / calls offered (call.completed).",
      r.ratio("calls_answered", "calls"), family="hotline"),
    _I("hotline_answer_20s_rate", "qualmon_indicator_hotline_answer_20s_ratio", "proportion",
      "low", "Calls answered within 20 seconds / calls offered.",
      r.ratio("calls_answered_20s", "calls"), family="hotline"),
    _I("csat", "qualmon_indicator_csat_ratio", "proportion", "low",
      "Customer satisfaction: responses rating 4 or 5 of 5 / responses with a CSAT score.",
      r.proportion("csat_satisfied", "csat_responses"), family="satisfaction"),
    _I("nps", "qualmon_indicator_nps", "level", "low",
      "Net promoter score: % promoters (9-10) - % detractors (0-6), from -100 to 100.",
      r.nps, min_evidence=NEVER, family="satisfaction"),
    # ---- compliance ---------------------------------------------------------------------------
    _I("compliance_rate", "qualmon_indicator_compliance_ratio", "proportion", "low",
      "Business compliance: compliant samples / inspected samples, with a Wilson interval.",
      r.proportion("inspections_compliant", "inspections"), family="compliance"),
)  # fmt: skip
INDICATORS: dict[str, Indicator] = {i.name: i for i in DEFINITIONS}

#: What an anomaly is: about the business, a concentration in one slice (the regulation's trigger
#: for a special inspection), or about the data feeding the monitor.
Category = Literal["business", "concentration", "data_quality"]


@dataclass(frozen=True)
class Signal:
    """An anomaly that is not one indicator's reading: an open-case timer, a concentration, a
    data-quality check."""

    name: str
    family: Family
    category: Category
    #: A hard limit passed (an SLA breach), not a probability: its count says how many cases
    #: broke the limit, so a count of one is no thinner evidence than a count of fifty.
    fact: bool = False


SIGNALS: dict[str, Signal] = {
    s.name: s
    for s in (
        Signal("complaint_sla_breach", "complaints", "business", fact=True),
        Signal("claim_sla_breach", "claims", "business", fact=True),
        Signal("complaints_concentration", "complaints", "concentration"),
        Signal("surrenders_concentration", "mis_selling", "concentration"),
        Signal("cooling_off_cancels_concentration", "mis_selling", "concentration"),
        Signal("feed_silence", "data_quality", "data_quality"),
        Signal("duplicate_surge", "data_quality", "data_quality"),
        Signal("amount_unit_jump", "data_quality", "data_quality"),
    )
}
#: Every name an anomaly's ``indicator`` can hold — a fixed set, so metrics may label by it.
ANOMALY_NAMES: tuple[str, ...] = (*INDICATORS, *SIGNALS)


def family_of(name: str) -> Family | None:
    """The family of an indicator or signal; None for a name qualmon does not know.

    >>> family_of("complaints_concentration"), family_of("complaint_sla_breach")
    ('complaints', 'complaints')
    >>> family_of("cooling_off_cancel_rate"), family_of("feed_silence")
    ('mis_selling', 'data_quality')
    """
    if name in INDICATORS:
        return INDICATORS[name].family
    signal = SIGNALS.get(name)
    return signal.family if signal else None
