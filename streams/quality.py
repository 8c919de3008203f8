"""Data quality, apart from business: silent feeds, duplicate surges, amounts off by a unit.

A monitor that reports a broken feed as a business incident sends the quality department after a
branch that did nothing wrong. So these are watched on their own and reported with category
``data_quality``; while one stands, the business anomalies it would cause on the slices it
touches are withheld (:attr:`Findings.withheld`), and those buckets are not learnt from.

- **Silent feed**: a branch (or, over the whole company, an event type) sends far fewer events
  than its seasonal baseline — judged by the count detector (Poisson, low side) against half
  that baseline, so a branch that usually sends three events on a Sunday may send none, one that
  sends three hundred may not, and a slow day at half its usual business is not a broken feed.
- **Duplicate surge**: the share of events re-sent with a known ``event_id`` rises — judged by
  the proportion detector (binomial, high side) per branch, per bucket and, below a day, over
  each day too (a day of re-sends from a small branch may be a few an hour).
- **Unit jump**: the mean amount per event of a branch (premium, written premium, claims paid,
  surrender values) moves by a factor of 30 or more against its history — fen sent as yuan is
  ×100. Natural swings of a daily mean are far below that; no statistics needed. The
  month-to-date sums of a branch with a unit jump hold the wrong amounts until the month ends:
  its month-to-date indicators are withheld that long, and their detectors start afresh (with
  hourly buckets they learnt the day's hours before the day's verdict).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from streams.detectors import DETECTORS, CountDetector, SeriesFilter
from streams.fields import FIELD, TYPE_COUNT
from streams.slices import ALL, SliceKey

#: (sum, count) of the amounts watched for unit errors; mean = sum / count.
#: The checks, each the ``indicator`` of the anomalies it raises.
CHECKS = ("feed_silence", "duplicate_surge", "amount_unit_jump")
AMOUNTS = {
    "premium_received_yuan": "premium_receipts",
    "written_premium_yuan": "policies_issued",
    "claims_paid_yuan": "claims_paid",
    "surrender_yuan": "surrenders",
}
#: Each event adds 1 to exactly one of these: together they count a feed's events.
_TYPE_FIELDS = tuple(FIELD[name] for name in TYPE_COUNT.values())
UNIT_JUMP_LOG10 = 1.5  # ×31.6: well above any real day-to-day swing of a mean amount
_UNIT_MIN_EVENTS = 5
_UNIT_WARMUP = 5
_ADAPT_AFTER = 7  # a unit that stays changed this many buckets is taken as the new normal
#: A silent feed brings significantly less than half its expected events (the count detector's
#: tolerance: its reference is expected / (1 + 1)). A day at half is business, not a broken
#: feed: closures in the first days after a long holiday (few claims reported during it) came
#: to 46 % of a working day's and were taken for a silent claim.closed feed; a lost feed is at
#: or near nothing.
SILENCE_TOLERANCE = 1.0


@dataclass
class Finding:
    """One data-quality anomaly before it is dressed as an :class:`streams.scoring.Anomaly`."""

    check: str  # one of CHECKS
    slice: SliceKey
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    k: float
    n: float
    detector: str
    detail: dict[str, Any]


@dataclass
class Findings:
    found: list[Finding]
    #: slice -> 'all' (every indicator), 'amounts' (indicators on yuan amounts) or 'month'
    #: (month-to-date indicators)
    withheld: dict[SliceKey, str]
    #: slices whose month-to-date detectors learnt a unit error: to start afresh
    tainted: set[SliceKey] = field(default_factory=set)


@dataclass
class _Unit:
    level: float = 0.0  # EW mean of log10(mean amount)
    seen: int = 0
    run: int = 0


def _touched(slices: Iterable[SliceKey], path: str) -> list[SliceKey]:
    """The slices an org's data reaches: its own, its ancestors' and the company's."""
    orgs = set(path.split("/"))
    return [key for key in slices if key[0] == ALL or key[0] in orgs]


@dataclass
class QualityWatch:
    silence: dict[tuple[str, str], SeriesFilter] = field(default_factory=dict)
    duplicates: dict[str, SeriesFilter] = field(default_factory=dict)
    daily_duplicates: dict[str, SeriesFilter] = field(default_factory=dict)  # below a day
    units: dict[tuple[str, str], _Unit] = field(default_factory=dict)
    #: org -> the (year, month) whose month-to-date sums hold its unit error
    tainted: dict[str, tuple[int, int]] = field(default_factory=dict)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Checkpoints written before month-to-date taints lack them; their silence detectors
        # had the count detector's default tolerance.
        self.__dict__.update({"tainted": {}, "daily_duplicates": {}, **state})
        for f in self.silence.values():
            f.detector.tolerance = SILENCE_TOLERANCE

    def check(
        self,
        slices: dict[SliceKey, list[float]],
        duplicates: dict[str, int],
        leaves: dict[str, str],
        day: dict[SliceKey, list[float]] | None = None,
        season: int = 0,
        month: tuple[int, int] = (0, 0),
        day_duplicates: dict[str, int] | None = None,
        base: int | None = None,
    ) -> Findings:
        """Judge one closed bucket: duplicates on the bucket; when ``day`` (the sums of a day
        that just ended, by slice) is given, silent feeds and unit jumps on the whole day — an
        hour without closures at night is normal, a day without any is not, and a day's mean
        amount is steady where an hour's swings with the mix of products sold in it.
        ``leaves`` maps every known selling org to its org path; ``season`` is the day's,
        ``base`` its weekday on a day of the month-end push (the calendar's);
        ``month`` the bucket's (year, month), for how long a unit jump taints month-to-date
        sums; ``day_duplicates`` the day's re-sent events by org, when buckets are shorter."""
        found: list[Finding] = []
        silent, unit_orgs = set(), set()
        for org in leaves:
            acc = slices.get((org, ALL, ALL))
            if acc is not None:
                events = sum(acc[i] for i in _TYPE_FIELDS)
                dups = float(duplicates.get(org, 0))
                self._duplicates(org, dups, events + dups, found)
            if day is None:
                continue
            today = day.get((org, ALL, ALL))
            events = sum(today[i] for i in _TYPE_FIELDS) if today else 0.0
            if day_duplicates is not None:
                dups = float(day_duplicates.get(org, 0))
                self._duplicates(org, dups, events + dups, found, self.daily_duplicates)
            if self._silence(("org", org), events, (season, base), (org, ALL, ALL), found):
                silent.add(org)
            if today is not None and self._units((org, ALL, ALL), today, found):
                unit_orgs.add(org)
        total = day.get((ALL, ALL, ALL)) if day is not None else None
        for event_type, count_field in TYPE_COUNT.items() if day is not None else ():
            if event_type == "target.set":  # monthly by nature: silence is normal
                continue
            k = total[FIELD[count_field]] if total else 0.0
            self._silence(("type", event_type), k, (season, base), (ALL, ALL, ALL), found)
        newly = {org for org in unit_orgs if self.tainted.get(org) != month}
        for org in unit_orgs:
            self.tainted[org] = month
        for org in [o for o, m in self.tainted.items() if m != month]:
            del self.tainted[org]  # its month is over: the sums start clean
        # A day's verdict reaches every slice the org's data reached that day, not only the
        # last bucket's: with hourly buckets those hours were learnt, and the day is judged too.
        reach = slices.keys() if day is None else slices.keys() | day.keys()
        withheld: dict[SliceKey, str] = {}
        tainted: set[SliceKey] = set()
        # Weakest first: a stronger hold on the same slice overwrites a weaker one.
        for orgs, what in ((self.tainted, "month"), (unit_orgs, "amounts"), (silent, "all")):
            for org in orgs:
                for key in _touched(reach, leaves.get(org, org)):
                    withheld[key] = what
                    if org in newly:
                        tainted.add(key)
        return Findings(found, withheld, tainted)

    def _silence(
        self,
        series: tuple[str, str],
        k: float,
        seasons: tuple[int, int | None],
        key: SliceKey,
        out: list[Finding],
    ) -> bool:
        f = self.silence.get(series)
        if f is None:
            f = self.silence[series] = SeriesFilter(
                CountDetector(direction="low", tolerance=SILENCE_TOLERANCE)
            )
        x = {"value": k, "k": k, "n": k, "season": seasons[0], "base": seasons[1]}
        band = f.detector.expectation(x)
        score, anomalous = f.step(x)
        if anomalous:
            scope, name = series
            detail = {"scope": scope, "event_type" if scope == "type" else "org": name}
            name_ = type(f.detector).__name__
            out.append(Finding("feed_silence", key, k, band.expected, band.lower, band.upper,
                               score, k, band.expected, name_, detail))  # fmt: skip
        return anomalous

    def _duplicates(
        self,
        org: str,
        dups: float,
        n: float,
        out: list[Finding],
        series: dict[str, SeriesFilter] | None = None,
    ) -> None:
        series = self.duplicates if series is None else series
        f = series.get(org)
        if f is None:
            f = series[org] = SeriesFilter(DETECTORS["proportion"](direction="high"))
        if n <= 0:
            return
        x = {"value": dups / n, "k": dups, "n": n, "season": 0}
        band = f.detector.expectation(x)
        score, anomalous = f.step(x)
        if anomalous:
            out.append(Finding("duplicate_surge", (org, ALL, ALL), dups / n, band.expected,
                               band.lower, band.upper, score, dups, n,
                               type(f.detector).__name__, {"duplicates": int(dups)}))  # fmt: skip

    def _units(self, key: SliceKey, acc: list[float], out: list[Finding]) -> bool:
        jumped = False
        for amount, count in AMOUNTS.items():
            n, total = acc[FIELD[count]], acc[FIELD[amount]]
            if n < _UNIT_MIN_EVENTS or total <= 0:
                continue
            y = math.log10(total / n)
            unit = self.units.setdefault((f"{key[0]}|{key[1]}", amount), _Unit())
            shift = y - unit.level
            if unit.seen >= _UNIT_WARMUP and abs(shift) >= UNIT_JUMP_LOG10:
                unit.run += 1
                jumped = True
                factor = 10**shift
                out.append(Finding(
                    "amount_unit_jump", key, total / n, 10**unit.level,
                    10 ** (unit.level - UNIT_JUMP_LOG10), 10 ** (unit.level + UNIT_JUMP_LOG10),
                    min(1.0, abs(shift) / 2.0), n, n, "UnitJump",
                    {"field": amount, "factor": round(factor, 2)},
                ))  # fmt: skip
                if unit.run < _ADAPT_AFTER:
                    continue
                unit.level, unit.run = y, 0  # the feed changed for good: stop repeating it
                continue
            unit.run = 0
            unit.seen += 1
            unit.level += (y - unit.level) / min(unit.seen, 10)
        return jumped
