"""What a detector expects of a bucket: a level with per-season adjustments (the baseline of the
count and level detectors), and the band shown beside every reading and anomaly."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

_PSEUDO_COUNT = 3.0  # prior events behind every seasonal factor of counts
_SEASON_MEMORY = 0.2  # per visit: a count season's sums remember about its last five visits
_MAX_COUNT = 1e15  # no real count or sample comes near; beyond it the exact tails overflow
#: A count season's factor may be all but nothing: a claims back office closed at weekends.
#: (Floored at 5 %, like the divisor in ``learn``, a large company's weekend expected 45
#: closures, and every weekend was a silent feed.)
_FACTOR_FLOOR = 0.001
_DIVISOR_FLOOR = 0.05  # of a season's factor when a visit moves the level (``learn``)
_WARMUP = 14  # buckets a series must have seen before it is scored at all (two weeks of days)


class _Seasonal:
    """A level plus a per-season adjustment, learnt by exponential weighting.

    ``multiplicative`` suits counts (a weekend has 40 % of a weekday's policies); additive suits
    values already on a log scale. A count season's factor is a ratio of sums over its last few
    visits, ``(counts + 3 × prior) / (level + 3)``: three prior events keep a season seen once
    or twice from trusting a handful of events, and the prior fades as visits accumulate. (A
    running mean of per-visit ratios, each shrunk the same way, never lets it fade: a night hour
    of 0.7 receipts against a level of 4 settled at 0.5 instead of 0.17, and quiet nights looked
    like outages.) A season with a *base* (a day of the month-end push, whose base is its
    weekday, or an hour of it) has a factor relative to its base's: the push on top of the
    weekday; an additive season's offset is likewise on top of its base's. Keyed by the push
    alone, a Monday's claims (the weekend's backlog) taught the third-to-last day of a quarter a
    level that a Tuesday in the same place fell far short of, and a month's last day that fell
    on a Monday had claims settled in more days than its season knew (the weekend's wait); keyed
    by the weekday alone, a month's last day taught a push its third-to-last day did not have.
    Relative, both hold, and a push season seen once starts from its weekday's shape.

    The first :data:`_WARMUP` observations are kept and fitted at once — the median as level,
    each season's mean relative to it — so a series that starts on a weekend or at a month-end
    does not take that for its normal. Plain floats, not River objects: a series keeps at most
    a few hundred of them (the bench reports bytes per series).
    """

    __slots__ = ("adjust", "alpha", "level", "multiplicative", "seen", "sums", "warm")

    def __init__(self, alpha: float, multiplicative: bool) -> None:
        self.alpha = alpha
        self.multiplicative = multiplicative
        self.level = 0.0
        self.adjust: dict[int, float] = {}
        self.sums: dict[int, tuple[float, float]] = {}  # count seasons: (counts, level) summed
        self.seen = 0
        self.warm: list[tuple[float, int, int | None]] | None = []

    def ready(self, season: int) -> bool:
        """Warm, and this season seen before: only then is an expectation worth judging by."""
        return self.warm is None and season in self.adjust

    def _under(self, base: int | None) -> float:
        """The factor (or offset) a season with this base is relative to: none without one."""
        none = 1.0 if self.multiplicative else 0.0
        return none if base is None else self.adjust.get(base, none)

    def expect(self, season: int, base: int | None = None) -> float:
        if self.multiplicative:
            return self.level * self._under(base) * self.adjust.get(season, 1.0)
        return self.level + self._under(base) + self.adjust.get(season, 0.0)

    def uncertainty(self, season: int, base: int | None = None) -> float:
        """Squared relative error of the factor of a season with a base (a day, or an hour, of
        the month-end push): it rests on the counts of a handful of visits a year and three
        prior events, so one seen once, from a day's 29 receipts, is known to about ±18 %; the
        error fades as its visits add up. 0 for ordinary seasons — visited every week (or
        day), their error is within the over-dispersion the count detector already allows —
        and for additive seasons, whose spread is learnt with the residuals.
        """
        if base is None or not self.multiplicative:
            return 0.0
        summed = self._summed(season, self.level)
        counts = self.level if summed is None else summed[0]  # not seen: its prior, factor 1
        return 1.0 / (counts + _PSEUDO_COUNT)

    def _summed(self, season: int, level: float) -> tuple[float, float] | None:
        """A count season's sums of (counts, level) over its visits; for one known only by its
        factor (a detector pickled before the sums), what that factor stands for."""
        summed = getattr(self, "sums", {}).get(season)
        if summed is None and season in self.adjust:
            factor = self.adjust[season]
            summed = (max(factor * (level + _PSEUDO_COUNT) - _PSEUDO_COUNT, 0.0), level)
        return summed

    def learn(self, value: float, season: int, base: int | None = None) -> None:
        self.seen += 1
        if self.warm is not None:
            self.warm.append((value, season, base))
            if len(self.warm) >= _WARMUP:
                self._fit(self.warm)
                self.warm = None
            return
        a = self.alpha
        if self.multiplicative:
            under = self._under(base)
            # A season seen for the first time says what its factor is, not where the level
            # is: divided by a factor it does not have yet, a busy afternoon's count would drag
            # the level up and every night after would look short. A season of a few percent
            # of the level says little of it either (a weekend of a back office closed at
            # weekends is not a level gone to nothing): below the divisor's floor, which lets
            # a season first seen empty be divided by and recover, it moves the level in
            # proportion to its factor.
            if season in self.adjust:
                factor = self.adjust[season] * under
                weight = min(1.0, factor / _DIVISOR_FLOOR)
                self.level += a * weight * (value / max(factor, _DIVISOR_FLOOR) - self.level)
            if self.level > 0:
                self._visit(season, value, self.level * under)
        elif season in self.adjust:
            # Seasons come round rarely, so their adjustments learn faster than the level.
            offset, under = self.adjust[season], self._under(base)
            self.level += a * (value - under - offset - self.level)
            self.adjust[season] = offset + min(1.0, 3 * a) * (value - self.level - under - offset)
        else:
            # One seen for the first time takes its adjustment from this observation alone,
            # and, as with counts, says nothing of where the level is.
            self.adjust[season] = value - self.level - self._under(base)

    def _visit(self, season: int, counts: float, level: float) -> None:
        """Add a visit's counts and the level they are set against to the season's sums."""
        summed = self._summed(season, level)
        try:
            sums = self.sums
        except AttributeError:  # a detector pickled before the sums existed
            sums = self.sums = {}
        keep = 1.0 - _SEASON_MEMORY
        k, e = summed if summed is not None else (0.0, 0.0)
        k, e = keep * k + counts, keep * e + level
        sums[season] = (k, e)
        # Pseudo-counts shrink factors of small counts towards 1: 6 against a level of 1 is
        # mostly noise, 6,000 against 1,000 is a season.
        self.adjust[season] = max((k + _PSEUDO_COUNT) / (e + _PSEUDO_COUNT), _FACTOR_FLOOR)

    def _fit(self, points: list[tuple[Any, ...]]) -> None:
        values = sorted(p[0] for p in points)
        middle = len(values) // 2
        self.level = (
            values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
        )
        # Seasons with a base after the ordinary ones, which they are relative to. (Warm-ups
        # pickled before bases were kept hold pairs: no base.)
        ordered = sorted(points, key=lambda p: len(p) > 2 and p[2] is not None)
        by_season: dict[int, list[tuple[float, int | None]]] = {}
        for v, season, *base in ordered:
            by_season.setdefault(season, []).append((v, base[0] if base else None))
        for season, vs in by_season.items():
            if self.multiplicative:
                for v, b in vs:
                    self._visit(season, v, self.level * self._under(b))
            else:
                self.adjust[season] = sum(v - self._under(b) for v, b in vs) / len(vs) - self.level


@dataclass(frozen=True)
class Expectation:
    """What the detector expected: a centre and the band outside which it would alert."""

    expected: float
    lower: float
    upper: float


def seasons(x: dict[Any, Any]) -> tuple[int, int | None]:
    """(season, base) of a bucket; the base only where the calendar gives one."""
    base = x.get("base")
    return int(x.get("season", 0)), None if base is None else int(base)


def usable_count(k: float, n: float | None = None) -> bool:
    """A count (of ``n`` trials) that can be evidence: finite, 0 ≤ k (≤ n) ≤ 1e15.

    Anything else — NaN, infinities, negative counts, more successes than trials — is not judged
    and not learnt: a detector's baseline must never be poisoned by an impossible bucket.

    >>> usable_count(3.0), usable_count(3.0, 2.0), usable_count(float("nan")), usable_count(-1.0)
    (True, False, False, False)
    """
    top = _MAX_COUNT if n is None else n
    return 0.0 <= k <= top <= _MAX_COUNT


def usable_value(*values: float) -> bool:
    """Finite numbers only (NaN and infinities are not judged and not learnt)."""
    return all(math.isfinite(v) for v in values)
