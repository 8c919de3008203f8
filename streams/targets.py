"""Premium targets from ``target.set``: the latest target per selling leaf and period.

A target is set for a leaf (org path, product line, channel) and a period: a month
(``2026-03``), a quarter (``2026-Q1``) or a year (``2026``). A later ``target.set`` for the same
leaf and period replaces the earlier one (by event time), so a revised target is not added twice.
A month without its own target takes a third of its quarter's, else a twelfth of its year's.

>>> book = TargetBook()
>>> leaf = ("00/44/4403", "life", "BANCA")
>>> book.set(leaf, "2026-Q1", 900.0, at=1.0)
>>> book.set(leaf, "2026-03", 500.0, at=2.0)
>>> book.set(leaf, "2026-03", 400.0, at=3.0)   # revised
>>> book.month_targets(2026, 3), book.month_targets(2026, 2)
({('00/44/4403', 'life', 'BANCA'): 400.0}, {('00/44/4403', 'life', 'BANCA'): 300.0})
"""

from __future__ import annotations

from dataclasses import dataclass, field

Leaf = tuple[str, str, str]


@dataclass
class TargetBook:
    #: (leaf, period) -> (event time it was set, target yuan)
    targets: dict[tuple[Leaf, str], tuple[float, float]] = field(default_factory=dict)

    def set(self, leaf: Leaf, period: str, target: float, at: float) -> None:
        known = self.targets.get((leaf, period))
        if known is None or at >= known[0]:
            self.targets[leaf, period] = (at, target)

    def month_targets(self, year: int, month: int) -> dict[Leaf, float]:
        """Each leaf's target for the month, from the most specific period set."""
        keys = (f"{year}-{month:02d}", f"{year}-Q{(month - 1) // 3 + 1}", f"{year}")
        share = {keys[0]: 1.0, keys[1]: 1 / 3, keys[2]: 1 / 12}
        best: dict[Leaf, tuple[int, float]] = {}
        for (leaf, period), (_, target) in self.targets.items():
            if period in share:
                rank = keys.index(period)
                if leaf not in best or rank < best[leaf][0]:
                    best[leaf] = (rank, target * share[period])
        return {leaf: value for leaf, (_, value) in best.items()}
