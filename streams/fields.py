"""What one event adds to a bucket: the flat vector of sums every slice keeps per bucket.

A bucket of a slice is a list of floats (:data:`FIELDS`); each event adds to a few of them
(:func:`contributions`), so per-event work is a handful of float additions. Most fields are sums
and roll up into longer windows by addition. The :data:`SNAPSHOT_FIELDS` are different: they are
set when the bucket closes (open cases, month-to-date premium, the month's target) and describe the
state at the bucket's end, so a longer window takes the latest one instead of adding them up.

Claim settlement days go into a small fixed histogram (:data:`SETTLEMENT_EDGES`), which is enough
for a p90 without keeping a list of values per bucket:

>>> acc = new_accumulator()
>>> for days in (0.5, 1.5, 1.5, 4.0, 12.0):
...     acc[FIELD["settle_bin_00"] + settlement_bin(days)] += 1
>>> settlement_quantile(acc, 0.5)   # the 3rd of 5 falls in [1, 2): interpolated
1.75
"""

from __future__ import annotations

from bisect import bisect_right

from streams.schema import EventBase

#: Upper edges (days) of the settlement-time histogram bins; the last bin is open-ended.
SETTLEMENT_EDGES = (1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0)
_BINS = tuple(f"settle_bin_{i:02d}" for i in range(len(SETTLEMENT_EDGES) + 1))
#: Complaint handling limits (days): accepted and answered, extended, longest allowed.
COMPLAINT_LIMITS = (15, 30, 60)

SUM_FIELDS = (
    "premium_received_yuan",
    "premium_receipts",
    "written_premium_yuan",
    "policies_issued",
    "cooling_off_cancels",
    "surrenders",
    "surrender_yuan",
    "claims_reported",
    "claims_closed",
    "claims_paid",  # closed with decision PAID or PARTIAL
    "claims_paid_yuan",
    "settlement_days_sum",
    *_BINS,
    "complaints",
    "complaints_regulator",
    "complaints_closed",
    "complaint_days_sum",
    "complaints_closed_15d",  # closed within 15 days of receipt
    "complaints_closed_30d",
    "complaints_closed_60d",
    "calls",
    "calls_answered",
    "calls_answered_20s",
    "survey_responses",
    "csat_responses",
    "csat_sum",
    "csat_satisfied",  # rated 4 or 5
    "nps_responses",
    "nps_promoters",  # 9-10
    "nps_detractors",  # 0-6
    "inspections",
    "inspections_compliant",
    "targets_set",
    "claim_breaches",  # claims that passed their settlement limit while still open, this bucket
    "complaint_breaches",  # complaints that passed the last handling limit while still open
)
SNAPSHOT_FIELDS = (
    "claims_open",
    "claims_open_age_days_sum",
    "claims_overdue",
    "complaints_open",
    "complaints_overdue_15d",
    "complaints_overdue_30d",
    "complaints_overdue_60d",
    "mtd_premium_yuan",
    "mtd_receipts",
    "month_target_yuan",
    "month_progress",  # expected share of the month's premium by the bucket's end
)
FIELDS = SUM_FIELDS + SNAPSHOT_FIELDS
FIELD = {name: i for i, name in enumerate(FIELDS)}
SNAPSHOT = frozenset(FIELD[name] for name in SNAPSHOT_FIELDS)
_F = FIELD
_BIN0 = _F["settle_bin_00"]


def new_accumulator() -> list[float]:
    return [0.0] * len(FIELDS)


def settlement_bin(days: float) -> int:
    return bisect_right(SETTLEMENT_EDGES, days)


def settlement_quantile(acc: list[float], q: float) -> float | None:
    """The ``q`` quantile of settlement days from the histogram, interpolated inside its bin;
    in the open last bin, its lower edge (a floor, stated as such in the docs)."""
    counts = acc[_BIN0 : _BIN0 + len(_BINS)]
    total = sum(counts)
    if not total:
        return None
    rank, below = q * total, 0.0
    for i, c in enumerate(counts):
        if c and below + c >= rank:
            lo = SETTLEMENT_EDGES[i - 1] if i else 0.0
            if i == len(SETTLEMENT_EDGES):
                return lo
            return lo + (SETTLEMENT_EDGES[i] - lo) * (rank - below) / c
        below += c
    return SETTLEMENT_EDGES[-1]


def contributions(event: EventBase) -> list[tuple[int, float]]:
    """(field index, amount) pairs one event adds to its buckets."""
    p = event.payload  # type: ignore[attr-defined]
    kind = event.event_type  # type: ignore[attr-defined]
    if kind == "premium.received":
        return [
            (_F["premium_received_yuan"], float(p.premium)),
            (_F["premium_receipts"], 1.0),
        ]
    if kind == "policy.issued":
        return [
            (_F["written_premium_yuan"], float(p.premium)),
            (_F["policies_issued"], 1.0),
        ]
    if kind == "call.completed":
        out = [(_F["calls"], 1.0)]
        if p.answered:
            out.append((_F["calls_answered"], 1.0))
            if p.wait_seconds <= 20:
                out.append((_F["calls_answered_20s"], 1.0))
        return out
    if kind == "policy.cooling_off_cancel":
        return [(_F["cooling_off_cancels"], 1.0)]
    if kind == "policy.surrendered":
        return [
            (_F["surrenders"], 1.0),
            (_F["surrender_yuan"], float(p.surrender_amount)),
        ]
    if kind == "claim.reported":
        return [(_F["claims_reported"], 1.0)]
    if kind == "claim.closed":
        days = (event.event_time - p.reported_at).total_seconds() / 86400.0
        return [
            (_F["claims_closed"], 1.0),
            (_F["claims_paid"], 0.0 if p.decision == "DECLINED" else 1.0),
            (_F["claims_paid_yuan"], float(p.paid_amount)),
            (_F["settlement_days_sum"], days),
            (_BIN0 + bisect_right(SETTLEMENT_EDGES, days), 1.0),
        ]
    if kind == "complaint.received":
        out = [(_F["complaints"], 1.0)]
        if p.source == "REGULATOR":
            out.append((_F["complaints_regulator"], 1.0))
        return out
    if kind == "complaint.closed":
        days = (event.event_time - p.received_at).total_seconds() / 86400.0
        out = [(_F["complaints_closed"], 1.0), (_F["complaint_days_sum"], days)]
        for limit, name in zip(COMPLAINT_LIMITS, _WITHIN, strict=True):
            if days <= limit:
                out.append((_F[name], 1.0))
        return out
    if kind == "survey.response":
        out = [(_F["survey_responses"], 1.0)]
        if p.csat_1_5 is not None:
            out += [(_F["csat_responses"], 1.0), (_F["csat_sum"], float(p.csat_1_5))]
            if p.csat_1_5 >= 4:
                out.append((_F["csat_satisfied"], 1.0))
        if p.nps_0_10 is not None:
            out.append((_F["nps_responses"], 1.0))
            if p.nps_0_10 >= 9:
                out.append((_F["nps_promoters"], 1.0))
            elif p.nps_0_10 <= 6:
                out.append((_F["nps_detractors"], 1.0))
        return out
    if kind == "inspection.sample":
        out = [(_F["inspections"], 1.0)]
        if p.compliant:
            out.append((_F["inspections_compliant"], 1.0))
        return out
    if kind == "target.set":  # the target itself is kept by streams.targets, per period
        return [(_F["targets_set"], 1.0)]
    return []


_WITHIN = tuple(f"complaints_closed_{limit}d" for limit in COMPLAINT_LIMITS)

#: The count field that says how many events of each type a bucket holds (feed watch).
TYPE_COUNT = {
    "policy.issued": "policies_issued",
    "premium.received": "premium_receipts",
    "policy.cooling_off_cancel": "cooling_off_cancels",
    "policy.surrendered": "surrenders",
    "claim.reported": "claims_reported",
    "claim.closed": "claims_closed",
    "complaint.received": "complaints",
    "complaint.closed": "complaints_closed",
    "call.completed": "calls",
    "survey.response": "survey_responses",
    "inspection.sample": "inspections",
    "target.set": "targets_set",
}
