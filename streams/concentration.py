"""Concentration: complaints, surrenders or cooling-off cancellations piling up in one place.

The regulation's trigger for a special inspection is complaints concentrating in one area or
business line. Every day the last 7 days of each event kind are split over the selling leaves
(org × product line × channel) and each leaf must pass two tests, both conditional on totals so
that a company-wide rise is not a concentration:

- **beyond its exposure**: its share of the company's events against its share of the policies
  issued over 30 days, with 25 % over-dispersion allowed (binomial);
- **beyond its own past**: of the leaf's events in the last 30 days, more fell in the last 7 than
  the company's split between those 7 days and the 23 before says (binomial; the classic test
  comparing two Poisson rates). A leaf that always complains more than its sales share — a product
  line with more claims, universal life with more surrenders — passes the first test every day and
  fails this one, and so does a leaf whose quiet history was just luck.

The larger p-value counts (an intersection-union test), Bonferroni-corrected for the number of
leaves tested, and at least :data:`MIN_COUNT` events are needed. An anomaly names the leaf and its
top contributors (agents, products) over those 7 days.

>>> # 15 of the company's 40 where its sales share is 5 %; 16 of its 30-day events in the week
>>> # where the company had 40 of 120 (a third).
>>> concentration_p(k=15, total=40, share=0.05, history=1, history_total=80, tested=100) < 1e-4
True
>>> # The same week, but the leaf always had that many: no change, no concentration.
>>> concentration_p(k=15, total=40, share=0.05, history=30, history_total=80, tested=100)
1.0
>>> concentration_p(k=4, total=40, share=0.05, history=0, history_total=80, tested=100)
1.0
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from streams.combine import CONCENTRATING
from streams.detectors import ALERT_THRESHOLD, binomial_tail, score_from_p
from streams.fields import FIELD
from streams.rolling import Rolling
from streams.slices import ALL, SliceKey

TOLERANCE = 0.25
MIN_COUNT = 5  # fewer events in 7 days than this never make a concentration
_DAYS = 7


def concentration_p(
    k: float, total: float, share: float, history: float, history_total: float, tested: int
) -> float:
    """Bonferroni-corrected p-value that ``k`` of ``total`` events in the last 7 days is beyond
    the leaf's exposure ``share`` and beyond its ``history`` (of ``history_total``) of the 23 days
    before; 1 when there is too little to judge."""
    if k < MIN_COUNT or total <= 0 or history_total <= 0:
        return 1.0
    exposure = binomial_tail(k, total, min(1.0 - 1e-9, share * (1 + TOLERANCE)), "high")
    recent = total / (total + history_total)
    past = binomial_tail(k, k + history, min(1.0 - 1e-9, recent), "high")
    return min(1.0, max(exposure, past) * max(tested, 1))


@dataclass
class Concentrated:
    kind: str
    slice: SliceKey
    k: float
    total: float
    share: float  # observed k / total
    expected_share: float  # the leaf's share of the 23 days before
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
        fields = (FIELD["policies_issued"], *(FIELD[kind] for kind in CONCENTRATING.values()))
        exposure = {key: rolling.day_sums(key, 30, fields) for key in leaves}
        weeks = {key: rolling.day_sums(key, 7, fields) for key in leaves}
        policies = sum(w[FIELD["policies_issued"]] for w in exposure.values())
        for kind in CONCENTRATING.values():
            i = FIELD[kind]
            week = {key: weeks[key][i] for key in leaves}
            total = sum(week.values())
            if total < MIN_COUNT:
                continue
            before = {key: exposure[key][i] - week[key] for key in leaves}
            history = sum(before.values())
            for key in leaves:
                if week[key] < MIN_COUNT:
                    continue
                x = exposure[key][FIELD["policies_issued"]] / policies if policies else 0.0
                p = concentration_p(week[key], total, x, before[key], history, len(leaves))
                score = score_from_p(p)
                if score >= ALERT_THRESHOLD:
                    past = before[key] / history
                    out.append(Concentrated(kind, key, week[key], total, week[key] / total,
                                            past, x, score, self._top(kind, key)))  # fmt: skip
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
