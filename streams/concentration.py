"""Concentration: complaints, surrenders or cooling-off cancellations piling up in one place.

The regulation's trigger for a special inspection is complaints concentrating in one area or
business line. Every day the last 7 days of each event kind are split over the selling leaves
(org × product line × channel) and each leaf's count is tested against its expected share: its
own share of that kind over the 23 days before, shrunk towards its share of exposure (policies
issued over 30 days) with :data:`PSEUDO_EVENTS` pseudo-events, so that a leaf with little history
is expected to complain in proportion to its business. The test is conditional on the company's
total (binomial), so a company-wide rise is not a concentration; it allows 25 % over-dispersion
and is Bonferroni-corrected for the number of leaves tested. An anomaly names the leaf and its top
contributors (agents, products) over those 7 days.

>>> concentration_p(k=15, total=40, share=0.05, tested=100) < 1e-4   # 15 of 40, 2 expected
True
>>> concentration_p(k=10, total=40, share=0.05, tested=100) > 1e-4   # 10 of 40: not yet
True
>>> concentration_p(k=4, total=40, share=0.05, tested=100)   # 4 of 40: not evidence
1.0
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streams.aggregate import CONCENTRATING
from streams.detectors import ALERT_THRESHOLD, binomial_tail, score_from_p
from streams.fields import FIELD
from streams.rolling import Rolling
from streams.slices import ALL, SliceKey

PSEUDO_EVENTS = 10.0
TOLERANCE = 0.25
MIN_COUNT = 5  # fewer events in 7 days than this never make a concentration
_DAYS = 7


def concentration_p(k: float, total: float, share: float, tested: int) -> float:
    """Bonferroni-corrected P(X ≥ k) for X ~ Binomial(total, share × (1 + TOLERANCE))."""
    if k < MIN_COUNT or total <= 0:
        return 1.0
    p = binomial_tail(k, total, min(1.0 - 1e-9, share * (1 + TOLERANCE)), "high")
    return min(1.0, p * max(tested, 1))


@dataclass
class Concentrated:
    kind: str
    slice: SliceKey
    k: float
    total: float
    share: float  # observed k / total
    expected_share: float
    exposure_share: float
    score: float
    contributors: dict[str, list[tuple[str, int]]]


@dataclass
class ConcentrationWatch:
    #: the last 7 days' contributors per (kind, org, line, channel), newest last
    recent: list[dict[tuple[str, str, str, str], dict[str, int]]] = field(default_factory=list)

    def remember(self, contributors: dict[tuple[str, str, str, str], dict[str, int]]) -> None:
        """Keep one closed day's contributors (call once per day)."""
        self.recent = [*self.recent, contributors][-_DAYS:]

    def check(self, rolling: Rolling) -> list[Concentrated]:
        leaves = [key for key in rolling.slices if ALL not in key]
        out: list[Concentrated] = []
        exposure = {key: rolling.window(key, "30d") for key in leaves}
        policies = sum(w[FIELD["policies_issued"]] for w in exposure.values() if w)
        for kind in CONCENTRATING.values():
            i = FIELD[kind]
            week = {key: rolling.window(key, "7d")[i] for key in leaves}  # type: ignore[index]
            total = sum(week.values())
            if total < MIN_COUNT:
                continue
            before = {key: exposure[key][i] - week[key] for key in leaves}  # type: ignore[index]
            history = sum(before.values())
            for key in leaves:
                if week[key] < MIN_COUNT:
                    continue
                x = exposure[key][FIELD["policies_issued"]] / policies if policies else 0.0  # type: ignore[index]
                expected = (before[key] + PSEUDO_EVENTS * x) / (history + PSEUDO_EVENTS)
                p = concentration_p(week[key], total, expected, len(leaves))
                score = score_from_p(p)
                if score >= ALERT_THRESHOLD:
                    out.append(Concentrated(kind, key, week[key], total, week[key] / total,
                                            expected, x, score, self._top(kind, key)))  # fmt: skip
        return out

    def _top(self, kind: str, key: SliceKey) -> dict[str, list[tuple[str, int]]]:
        agents: Counter[str] = Counter()
        products: Counter[str] = Counter()
        for day in self.recent:
            for (k, org, line, channel), counts in day.items():
                if k == kind and (org, line, channel) == key:
                    for name, n in counts.items():
                        dim, _, value = name.partition(":")
                        (agents if dim == "agent" else products)[value] += n
        return {"agents": agents.most_common(5), "products": products.most_common(5)}


def detail(c: Concentrated) -> dict[str, Any]:
    return {
        "kind": c.kind,
        "window": "7d",
        "company_total": c.total,
        "expected_share": round(c.expected_share, 6),
        "exposure_share": round(c.exposure_share, 6),
        "top_agents": c.contributors["agents"],
        "top_products": c.contributors["products"],
    }
