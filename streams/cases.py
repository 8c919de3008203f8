"""Open-case timers: complaints and claims that stay open past their limits, seen before they close.

A case opens with ``complaint.received`` / ``claim.reported`` and closes with the matching
``*.closed`` (by ``complaint_id`` / ``claim_id``). Timers run on event time: when a bucket closes,
every case still open is aged at the bucket's end, so a complaint open for 61 days shows as a
breach of the 60-day limit the day it happens — not months later when (if ever) it is closed.
Per event this is one dict insert or pop; the scan runs once per closed bucket.

>>> book = CaseBook()
>>> leaf = ("00/44/4403", "life", "BANCA")
>>> book.open_complaint("C-1", 0.0, leaf); book.open_complaint("C-2", 0.0, leaf)
>>> book.close_complaint("C-2")
>>> state = book.age(61 * 86400.0)
>>> state.per_leaf[leaf]["complaints_overdue_60d"], [b.case_ids for b in state.breaches]
(1.0, [['C-1']])
>>> book.age(62 * 86400.0).breaches   # a breach is raised once
[]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from streams.fields import COMPLAINT_LIMITS

Leaf = tuple[str, str, str]  # (org_path, product_line, channel) of the selling side
_DAY = 86400.0
_MAX_IDS = 10  # case ids named per breach; the count says how many there were
#: Cases with a time limit; a breach of one is the anomaly ``<kind>_sla_breach``.
KINDS = ("complaint", "claim")


@dataclass
class Breach:
    kind: str  # one of KINDS
    leaf: Leaf
    limit_days: int
    case_ids: list[str] = field(default_factory=list)
    count: int = 0


@dataclass
class AgedCases:
    per_leaf: dict[Leaf, dict[str, float]]
    breaches: list[Breach]


@dataclass
class CaseBook:
    claim_limit_days: int = 30
    complaint_limits: tuple[int, ...] = COMPLAINT_LIMITS
    #: A case open this long is assumed lost by its feed and forgotten (keeps memory bounded).
    forget_after_days: int = 365
    #: case id -> [opened at (epoch s), leaf, limits already breached]
    complaints: dict[str, list[Any]] = field(default_factory=dict)
    claims: dict[str, list[Any]] = field(default_factory=dict)

    def open_complaint(self, case_id: str, at: float, leaf: Leaf) -> None:
        self.complaints.setdefault(case_id, [at, leaf, 0])

    def close_complaint(self, case_id: str) -> None:
        self.complaints.pop(case_id, None)

    def open_claim(self, case_id: str, at: float, leaf: Leaf) -> None:
        self.claims.setdefault(case_id, [at, leaf, 0])

    def close_claim(self, case_id: str) -> None:
        self.claims.pop(case_id, None)

    def age(self, now: float) -> AgedCases:
        """Open cases per leaf aged at ``now``, and the limits first passed since the last call."""
        per_leaf: dict[Leaf, dict[str, float]] = {}
        breaches: dict[tuple[str, Leaf], Breach] = {}
        forget = now - self.forget_after_days * _DAY
        last = self.complaint_limits[-1]
        for book, kind in zip((self.complaints, self.claims), KINDS, strict=True):
            stale = []
            for case_id, case in book.items():
                opened, leaf, passed = case
                if opened < forget:
                    stale.append(case_id)
                    continue
                days = (now - opened) / _DAY
                if days < 0:  # opened after this bucket's end: not yet open at ``now``
                    continue
                row = per_leaf.get(leaf)
                if row is None:
                    row = per_leaf[leaf] = dict.fromkeys(_SNAPSHOT_NAMES, 0.0)
                if kind == "claim":
                    row["claims_open"] += 1
                    row["claims_open_age_days_sum"] += days
                    limit = self.claim_limit_days
                    if days > limit:
                        row["claims_overdue"] += 1
                else:
                    row["complaints_open"] += 1
                    for lim in self.complaint_limits:
                        if days > lim:
                            row[f"complaints_overdue_{lim}d"] += 1
                    limit = last
                if days > limit and not passed:
                    case[2] = 1
                    breach = breaches.get((kind, leaf))
                    if breach is None:
                        breach = breaches[kind, leaf] = Breach(kind, leaf, limit)
                    breach.count += 1
                    if len(breach.case_ids) < _MAX_IDS:
                        breach.case_ids.append(case_id)
                    row[f"{kind}_breaches"] += 1
            for case_id in stale:
                del book[case_id]
        return AgedCases(per_leaf, list(breaches.values()))


_SNAPSHOT_NAMES = (
    "claims_open", "claims_open_age_days_sum", "claims_overdue", "claim_breaches",
    "complaints_open", *(f"complaints_overdue_{lim}d" for lim in COMPLAINT_LIMITS),
    "complaint_breaches",
)  # fmt: skip
