"""How far a season's residuals reached on earlier visits: a burst that comes back at about the
same time of day is not a new one.

Bursty CPU and network series often spike at the same time every day (a backup, a batch job).
The point test sees each such spike as the largest z in a long while and alarms on every one;
the season's profile cannot learn it either, since alarming values are kept out of it. This
record keeps, per season, the lowest and highest residual (value minus the season's profile) of
its earlier visits, fading by 0.5 per visit; a residual inside the range of this season or
its neighbours on earlier visits is, for the point test, no evidence.

Only *earlier* visits count. For a series sampled every five minutes, a half-hour season is
visited six times in a row; a visit is committed only once the next one has ended too, so a
lasting change cannot explain itself, and the previous season (whose visit just ended, today's,
not an earlier day's) is read without it.

The same record, one-sided, keeps the highest running average of the run test per season
(:class:`~streams.detectors.metric.MetricDetector`): quantised CPU series repeat the same lasting
shift at the same time every day, and the run test alarmed on each.

Kept as single-precision arrays (a slot per season), the low side only where it is asked for,
and records of one series can share their index of seasons (it costs as much as two arrays):
with hour-of-week seasons a record of doubles would make the pickled detector too large.

>>> r = SeasonalReach()
>>> for season, residual in [(5, 9.0), (5, 0.0), (6, 0.0)]:
...     r.learn(season, residual)
>>> r.bounds(6, 0.0)   # in season 6, the visit to season 5 just now does not count yet
(0.0, 0.0)
>>> for season in [7, 4, 5]:   # a day later, back at season 5: 9 was reached here before
...     r.learn(season, 0.0)
>>> r.bounds(5, 0.0), r.bounds(4, 0.0)
((0.0, 9.0), (0.0, 9.0))
"""

from __future__ import annotations

from array import array

# Per visit. For residuals alone 0 – 0.5 measured alike (0.7 loses a window); with the run
# average's record too, 0.5 for both is 0.1 better than 0.3 for either (one false positive).
_KEEP = 0.5
_FLOAT_MAX = 1e38  # stored ranges are clipped to single precision's range


def _clip(x: float) -> float:
    return max(-_FLOAT_MAX, min(_FLOAT_MAX, x))


class SeasonalReach:
    """Per season, the range of a quantity on earlier visits; only its highest values if not
    ``low``. ``seasons`` is the index of seasons of another record to share."""

    __slots__ = ("_high", "_low", "_pending", "_slots", "_visit")

    def __init__(self, low: bool = True, seasons: dict[int, int] | None = None) -> None:
        self._slots = {} if seasons is None else seasons  # season -> index into the arrays
        self._low = array("f") if low else None
        self._high = array("f")
        self._visit: tuple[int, float, float] | None = None  # season, low, high of this visit
        self._pending: tuple[int, float, float] | None = None  # the visit before it

    @property
    def seasons(self) -> dict[int, int]:
        return self._slots

    def bounds(self, season: int, centre: float) -> tuple[float, float]:
        """The range already seen about this season on earlier visits (at least ``centre``,
        for residuals their median)."""
        low = high = centre
        for s in (season - 1, season, season + 1):
            slot = self._slots.get(s)
            if slot is not None and slot < len(self._high):
                high = max(high, self._high[slot])
                if self._low is not None:
                    low = min(low, self._low[slot])
        return low, high

    def _commit(self, visit: tuple[int, float, float]) -> None:
        season, low, high = visit
        slot = self._slots.setdefault(season, len(self._slots))
        # A record sharing the index may have added seasons: 0 is where every range fades to.
        while len(self._high) <= slot:
            self._high.append(0.0)
            if self._low is not None:
                self._low.append(0.0)
        # Fading towards 0 (the profile): a spike that stops coming back is forgotten.
        self._high[slot] = _clip(max(high, self._high[slot] * _KEEP))
        if self._low is not None:
            self._low[slot] = _clip(min(low, self._low[slot] * _KEEP))

    def learn(self, season: int, residual: float) -> None:
        visit = self._visit
        if visit is not None and visit[0] != season:  # the visit is over
            if self._pending is not None:
                self._commit(self._pending)
            self._pending, visit = visit, None
        if visit is None:
            self._visit = (season, residual, residual)
        else:
            self._visit = (season, min(visit[1], residual), max(visit[2], residual))
