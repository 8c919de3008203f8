"""The business calendar: seasons the detectors compare like with like, and the month's pace.

A bucket's *season* says which earlier buckets it should be compared with: the same weekday (and
hour, below a day), each day of the month-end push (the last three days of a month) apart from
ordinary days, the quarter-end push apart from an ordinary month-end, and public holidays
(Spring Festival, National Day, configured in ``QUALMON_HOLIDAYS``) apart from everything else.
A season a series has not seen yet is not judged; holidays are not judged at all (see
``docs/indicators.md``).

The same calendar weighs the days of a month for the premium pace: a weekend day sells about 40 %
of a working day, a holiday less, and the last three days of a month carry the push.

>>> cal = Calendar(holidays=frozenset({date(2026, 10, 1)}))
>>> day = 86400
>>> [cal.season(epoch(date(2026, 3, d)), day) for d in (2, 7, 27, 31)]   # Mon, Sat, Fri, Tue
[0, 5, 4, 36]
>>> cal.season(epoch(date(2026, 4, 30)), day), cal.season(epoch(date(2026, 10, 1)), day)
(30, 21)
>>> # By 16 March: 10 working days + 5 weekend days × 0.4 = 12 of March's 29.5
>>> # (22 working days, 9 weekend days, the push on 29-31 March adds 0.4 + 1.5 + 2).
>>> round(cal.month_progress(epoch(date(2026, 3, 16))), 3)
0.407
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from streams.windows import SHANGHAI, shanghai

_DAILY_HOLIDAY, _DAILY_WORKDAY = 21, 22
_HOURLY_HOLIDAY = 144
#: First push season: the last three days of a month, each its own (the last day's push is the
#: strongest), for a working and a weekend day (daily) or each hour of either (below a day).
#: Numbered past the weekday-keyed push seasons of earlier versions (daily 7-20, hourly 48-143),
#: so a checkpoint's factors for those are never read as these.
_DAILY_PUSH, _HOURLY_PUSH = 30, 168
_PUSH_DAYS = 3


def epoch(day: date) -> int:
    """Shanghai midnight starting ``day``, as epoch seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=SHANGHAI).timestamp())


def _month_days(day: date) -> list[date]:
    first = day.replace(day=1)
    after = (first + timedelta(days=32)).replace(day=1)
    return [first + timedelta(days=i) for i in range((after - first).days)]


@dataclass(frozen=True)
class Calendar:
    holidays: frozenset[date] = frozenset()
    #: Weekend days that are working days (调休), seasoned and weighted as working days.
    workdays: frozenset[date] = frozenset()
    weekend_weight: float = 0.4
    holiday_weight: float = 0.2
    #: Weight of the last, second-to-last and third-to-last day of a month.
    month_end_push: tuple[float, ...] = (3.0, 2.5, 2.0)
    _progress: dict[tuple[int, int], list[float]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def season(self, start: int, bucket_seconds: int) -> int:
        """Daily buckets: the weekday (0-6), 21 a holiday, 22 a weekend working day. Below a
        day: the hour of a working day (0-23) or of a weekend day (24-47), 144-167 a holiday —
        the hour-of-day profile is learnt from every day of its kind, not once a week.

        The last three days of a month carry the push, and the last day the strongest: each of
        them is a season of its own, for a working and a weekend day (daily: 30-35 at a
        month-end, 36-41 at a quarter-end) or for each hour of either (168-311, 312-455). Keyed
        by weekday instead, a Saturday that was a month's last day taught its season a push
        that the next month-end Saturday, its third-to-last day, fell far short of.
        """
        local = shanghai(start)
        day = local.date()
        hourly = bucket_seconds < 86400
        if day in self.holidays:
            return (_HOURLY_HOLIDAY + local.hour) if hourly else _DAILY_HOLIDAY
        worked = day.weekday() < 5 or day in self.workdays
        if day in self.workdays and day.weekday() >= 5 and not hourly:
            return _DAILY_WORKDAY
        kind = 0 if worked else 1
        left = (_month_days(day)[-1] - day).days  # 0 on the last day
        if left >= _PUSH_DAYS:
            return local.hour + 24 * kind if hourly else day.weekday()
        quarter = day.month % 3 == 0
        if hourly:
            return _HOURLY_PUSH + 48 * (left + _PUSH_DAYS * quarter) + 24 * kind + local.hour
        return _DAILY_PUSH + 2 * (left + _PUSH_DAYS * quarter) + kind

    def base(self, start: int, bucket_seconds: int) -> int | None:
        """The ordinary season the bucket's push season is a variant of (its weekday, or the
        same hour of the same kind of day), or None outside the push. A push season seen for
        the first time starts from its base's shape rather than from none.

        >>> cal = Calendar()
        >>> [cal.base(epoch(date(2026, 4, d)), 86400) for d in (23, 28, 30)]   # Thu, Tue, Thu
        [None, 1, 3]
        >>> [cal.base(epoch(date(2026, 4, 30)) + h * 3600, 3600) for h in (3, 15)]
        [3, 15]
        """
        season = self.season(start, bucket_seconds)
        if bucket_seconds >= 86400:
            return shanghai(start).weekday() if season >= _DAILY_PUSH else None
        return (season - _HOURLY_PUSH) % 48 if season >= _HOURLY_PUSH else None

    def is_holiday(self, start: int) -> bool:
        return shanghai(start).date() in self.holidays

    def day_weight(self, day: date) -> float:
        """How much of a working day's business this day is expected to bring."""
        if day in self.holidays:
            weight = self.holiday_weight
        elif day.weekday() >= 5 and day not in self.workdays:
            weight = self.weekend_weight
        else:
            weight = 1.0
        left = (_month_days(day)[-1] - day).days  # 0 on the last day
        if left < len(self.month_end_push):
            weight *= self.month_end_push[left]
        return weight

    def month_progress(self, at: float) -> float:
        """Share of the month's weighted business expected before ``at`` (epoch seconds)."""
        local = shanghai(at)
        if local.hour == local.minute == local.second == 0 and local.day == 1:
            return 1.0  # the end of the previous month's last day
        key = (local.year, local.month)
        cumulative = self._progress.get(key)
        if cumulative is None:
            weights = [self.day_weight(d) for d in _month_days(local.date())]
            total, running, cumulative = sum(weights), 0.0, []
            for w in weights:
                cumulative.append(running / total)
                running += w
            cumulative.append(1.0)
            self._progress[key] = cumulative
        i = local.day - 1
        part = (local.hour * 3600 + local.minute * 60 + local.second) / 86400
        return cumulative[i] + (cumulative[i + 1] - cumulative[i]) * part


def parse_days(values: tuple[str, ...], name: str) -> frozenset[date]:
    """``YYYY-MM-DD`` or ``YYYY-MM-DD/YYYY-MM-DD`` (inclusive) items as a set of dates.

    >>> sorted(parse_days(("2026-10-01/2026-10-03", "2026-02-17"), "QUALMON_HOLIDAYS"))[0]
    datetime.date(2026, 2, 17)
    >>> parse_days(("2026-13-01",), "QUALMON_HOLIDAYS")
    Traceback (most recent call last):
    ...
    ValueError: QUALMON_HOLIDAYS has '2026-13-01'; expected YYYY-MM-DD or YYYY-MM-DD/YYYY-MM-DD
    """
    out: set[date] = set()
    for item in values:
        try:
            first, _, last = item.partition("/")
            lo, hi = date.fromisoformat(first), date.fromisoformat(last or first)
        except ValueError:
            raise ValueError(
                f"{name} has {item!r}; expected YYYY-MM-DD or YYYY-MM-DD/YYYY-MM-DD"
            ) from None
        if hi < lo or (hi - lo).days > 366:
            raise ValueError(f"{name} has {item!r}; the range must run forwards, at most a year")
        out.update(lo + timedelta(days=i) for i in range((hi - lo).days + 1))
    return frozenset(out)
