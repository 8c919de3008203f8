"""Rolling windows the quality department thinks in, rolled up from closed buckets.

Windows end with the latest closed bucket and are calendar-aligned (Asia/Shanghai):
``bucket`` (the bucket itself), ``hour`` (the clock hour so far; only with buckets of an hour or
less), ``day`` (today so far), ``7d`` and ``30d`` (today and the 6 or 29 days before),
``mtd`` (month to date) and ``qtd`` (quarter to date). Each slice keeps its sums for the current
hour, one vector per day for 30 days, and the month and quarter so far; a closed bucket is added
to each of them once — no per-event work. Snapshot fields (open cases, the target) are not summed:
a window carries the latest value.

>>> from streams.indicators import FIELD, new_accumulator
>>> day = 86400
>>> roll = Rolling(bucket_seconds=day)
>>> march_2 = 1_772_380_800   # Monday 2 March 2026, Shanghai midnight
>>> for i in range(10):       # ten days with 10 calls each
...     acc = new_accumulator(); acc[FIELD["calls"]] = 10.0
...     roll.add(march_2 + i * day, {("*", "*", "*"): acc})
>>> [roll.window(("*", "*", "*"), w)[FIELD["calls"]] for w in ("day", "7d", "30d", "mtd")]
[10.0, 70.0, 100.0, 100.0]
"""

from __future__ import annotations

import pickle
import zlib
from array import array
from dataclasses import dataclass, field
from operator import add

import numpy

from streams.fields import FIELD, FIELDS, SNAPSHOT, new_accumulator
from streams.slices import SliceKey
from streams.windows import shanghai

WINDOWS = ("bucket", "hour", "day", "7d", "30d", "mtd", "qtd")
_DAY = 86400
_SNAP = tuple(sorted(SNAPSHOT))


def _zeros() -> array[float]:
    # Packed doubles: a slice keeps 33 vectors, 8 bytes a value in memory and in the checkpoint.
    return array("d", bytes(8 * len(FIELDS)))


def _add(into: array[float] | list[float], acc: array[float] | list[float]) -> None:
    # One C-level pass over every field, then the few snapshot fields put right: several times
    # faster than indexing the summed fields one by one, and this runs per slice and window.
    summed = map(add, into, acc)
    if isinstance(into, array):
        into[:] = array("d", summed)
    else:
        into[:] = list(summed)
    for i in _SNAP:
        into[i] = acc[i]


def period_starts(start: int) -> tuple[int, int, int, int]:
    """(hour, day, month, quarter) starts in epoch seconds of the Shanghai periods of ``start``.

    >>> period_starts(1_774_949_400)   # Tuesday 31 March 2026 17:30 Shanghai
    (1774947600, 1774886400, 1772294400, 1767196800)
    """
    local = shanghai(start)
    hour = start - local.minute * 60 - local.second
    day = hour - local.hour * 3600
    month = day - (local.day - 1) * _DAY
    first = local.replace(month=(local.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0)
    return hour, day, month, int(first.timestamp())


@dataclass
class _SliceWindows:
    __slots__ = ("days", "hour", "hour_start", "last", "month", "month_start", "quarter",
                 "quarter_start")  # fmt: skip

    hour_start: int
    hour: array[float]
    days: list[tuple[int, array[float]]]  # (day start, sums), oldest first, at most 30
    month_start: int
    month: array[float]
    quarter_start: int
    quarter: array[float]
    last: tuple[int, array[float]]  # the slice's latest bucket


@dataclass
class Rolling:
    bucket_seconds: int
    slices: dict[SliceKey, _SliceWindows] = field(default_factory=dict)
    now: int = 0  # start of the latest closed bucket

    def __getstate__(self) -> dict[str, object]:
        # Mostly zeros (a leaf sees a few event types a day): compressed, the windows of 2,000
        # slices over 30 days take about a megabyte in a checkpoint instead of a dozen.
        raw = pickle.dumps(self.slices, protocol=pickle.HIGHEST_PROTOCOL)
        return {"bucket_seconds": self.bucket_seconds, "now": self.now,
                "slices": zlib.compress(raw, 1)}  # fmt: skip

    def __setstate__(self, state: dict[str, object]) -> None:
        self.bucket_seconds = state["bucket_seconds"]  # type: ignore[assignment]
        self.now = state["now"]  # type: ignore[assignment]
        self.slices = pickle.loads(zlib.decompress(state["slices"]))  # type: ignore[arg-type]

    def add(self, start: int, slices: dict[SliceKey, list[float]]) -> None:
        """Roll one closed bucket's slices into their windows."""
        self.now = max(self.now, start)
        hour, day, month, quarter = period_starts(start)
        for key, acc in slices.items():
            w = self.slices.get(key)
            if w is None:
                w = self.slices[key] = _SliceWindows(
                    hour, _zeros(), [], month, _zeros(), quarter, _zeros(), (start, _zeros()),
                )  # fmt: skip
            if w.hour_start != hour:
                w.hour_start, w.hour = hour, _zeros()
            if w.month_start != month:
                w.month_start, w.month = month, _zeros()
            if w.quarter_start != quarter:
                w.quarter_start, w.quarter = quarter, _zeros()
            if not w.days or w.days[-1][0] != day:
                w.days.append((day, _zeros()))
                horizon = day - 29 * _DAY
                while w.days[0][0] < horizon:
                    w.days.pop(0)
            for into in (w.hour, w.days[-1][1], w.month, w.quarter):
                _add(into, acc)
            w.last = (start, array("d", acc))

    def set_snapshot(self, key: SliceKey, values: dict[str, float]) -> None:
        """Set snapshot fields computed after the bucket was added (target, month progress)."""
        w = self.slices.get(key)
        if w is None:
            return
        for name, value in values.items():
            i = FIELD[name]
            for into in (w.hour, w.days[-1][1], w.month, w.quarter):
                into[i] = value

    def day_sums(self, key: SliceKey, days: int, fields: tuple[int, ...]) -> dict[int, float]:
        """Sums of a few ``fields`` over the last ``days`` days (the ``7d``/``30d`` windows):
        what a check over every leaf needs, without summing every field of every day.

        >>> roll = Rolling(bucket_seconds=86400)
        >>> acc = new_accumulator(); acc[FIELD["calls"]] = 4.0
        >>> roll.add(1_772_380_800, {("01", "*", "*"): acc})
        >>> roll.day_sums(("01", "*", "*"), 7, (FIELD["calls"],)) == {FIELD["calls"]: 4.0}
        True
        """
        out = dict.fromkeys(fields, 0.0)
        w = self.slices.get(key)
        if w is None:
            return out
        horizon = period_starts(self.now)[1] - (days - 1) * _DAY
        for start, sums in w.days:
            if start >= horizon:
                for i in fields:
                    out[i] += sums[i]
        return out

    def today(self) -> dict[SliceKey, list[float]]:
        """The ``day`` window of every slice seen today: what a day-long bucket would have held.

        >>> roll = Rolling(bucket_seconds=3600)
        >>> for hour in range(3):
        ...     acc = new_accumulator(); acc[FIELD["calls"]] = 2.0
        ...     roll.add(1_772_380_800 + hour * 3600, {("01", "*", "*"): acc})
        >>> {key: sums[FIELD["calls"]] for key, sums in roll.today().items()}
        {('01', '*', '*'): 6.0}
        """
        day = period_starts(self.now)[1]
        return {key: list(w.days[-1][1]) for key, w in self.slices.items() if w.days[-1][0] == day}

    def window(self, key: SliceKey, name: str) -> list[float] | None:
        """The slice's sums over window ``name`` ending with the latest closed bucket; None when
        the window cannot be formed (``hour`` over buckets longer than an hour)."""
        if name not in WINDOWS:
            raise ValueError(f"window {name!r} is unknown; known: {', '.join(WINDOWS)}")
        if name == "hour" and self.bucket_seconds > 3600:
            return None
        w = self.slices.get(key)
        out = new_accumulator()
        if w is None:
            return out
        hour, day, month, quarter = period_starts(self.now)
        if name == "bucket":
            return list(w.last[1]) if w.last[0] == self.now else out
        if name == "hour":
            return list(w.hour) if w.hour_start == hour else out
        if name == "mtd":
            return list(w.month) if w.month_start == month else out
        if name == "qtd":
            return list(w.quarter) if w.quarter_start == quarter else out
        span = {"day": 1, "7d": 7, "30d": 30}[name]
        horizon = day - (span - 1) * _DAY
        rows = [sums for start, sums in w.days if start >= horizon]
        if not rows:
            return out
        # Up to 30 day vectors summed at once: this runs for every slice and window.
        stacked = numpy.frombuffer(b"".join(r.tobytes() for r in rows), dtype=numpy.float64)
        total = stacked.reshape(len(rows), len(FIELDS)).sum(axis=0).tolist()
        for i in _SNAP:  # snapshot fields carry the latest value, not a sum
            total[i] = rows[-1][i]
        return total
