"""Event-time buckets and the watermark that closes them.

Buckets are aligned to Asia/Shanghai (UTC+08:00, no daylight saving since 1991), so a daily bucket
is a Chinese business day and month/quarter boundaries fall where the quality department expects.

>>> clock = EventClock(bucket_seconds=86400, allowed_lateness_seconds=3600)
>>> day = bucket_start(1_772_409_600.0, 86400)   # 2026-03-02T08:00+08:00
>>> day == 1_772_380_800                           # that day's Shanghai midnight
True
>>> clock.report(0, 1_772_409_600.0, holding=True, starts=[day])
>>> clock.report(1, day + 86400 + 3600, holding=True)   # partition 1 is a day ahead
>>> clock.due(), clock.status(day)                       # partition 0 holds the day open
([], 'open')
>>> clock.report(0, day + 86400 + 3600, holding=True)   # the next day, past the lateness
>>> clock.due(), clock.status(day)
([1772380800], 'closed')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

#: Asia/Shanghai has been a fixed UTC+08:00 since 1991.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
_OFFSET = 8 * 3600


def bucket_start(epoch: float, bucket_seconds: int) -> int:
    """Start (epoch seconds) of the Shanghai-aligned bucket holding ``epoch``."""
    return int((epoch + _OFFSET) // bucket_seconds * bucket_seconds - _OFFSET)


def shanghai(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=SHANGHAI)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat()


def season_of(start: int, bucket_seconds: int) -> int:
    """Seasonal position of a bucket: weekday for daily buckets, weekday×24+hour below a day.

    Month-end (the last three days of a month, when sales push) gets its own positions, so a
    month-end spike is compared with earlier month-ends rather than with ordinary days.

    >>> season_of(bucket_start(1_772_409_600.0, 86400), 86400)   # Monday 2 March 2026
    0
    >>> season_of(bucket_start(1_774_915_200.0, 86400), 86400)   # Tuesday 31 March: month-end
    8
    """
    local = shanghai(start)
    next3 = local + timedelta(days=3)
    month_end = next3.month != local.month
    if bucket_seconds >= 86400:
        return local.weekday() + (7 if month_end else 0)
    return local.weekday() * 24 + local.hour + (168 if month_end else 0)


def base_of(season: int, bucket_seconds: int) -> int | None:
    """The ordinary season a month-end :func:`season_of` season is a variant of (the same
    weekday, or weekday and hour), or None for an ordinary one.

    >>> base_of(8, 86400), base_of(1, 86400), base_of(168 + 3, 3600), base_of(27, 3600)
    (1, None, 3, None)
    """
    month_end = 7 if bucket_seconds >= 86400 else 168
    return season - month_end if season >= month_end else None


@dataclass
class EventClock:
    """The watermark over event time; a bucket closes once the watermark passes its end plus the
    allowed lateness, and closing is final (the watermark never moves backwards).

    Each input partition is ordered on its own but partitions are read interleaved, by several
    workers, so the watermark is the *slowest* holding partition's latest event time: a
    partition racing ahead must not make the others' events late. Whether a partition holds is
    its owner's word (:meth:`streams.combine.Combiner.holding`): one with a backlog always does,
    one caught up and silent for a while stops. A partition nobody has reported on yet holds
    (its owner may still be starting), and so does one whose owner went quiet: a worker that
    died is not a silent feed.
    """

    bucket_seconds: int
    allowed_lateness_seconds: int
    watermark: float = -math.inf
    open_buckets: set[int] = field(default_factory=set)
    closed_through: float = -math.inf  # every bucket starting before this is closed
    #: partition -> (latest event time, whether it holds the watermark back)
    sources: dict[int, tuple[float, bool]] = field(default_factory=dict)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "sources" not in state:  # a clock of the single-stage worker: every partition held
            latest = state.pop("_latest", {})
            state.pop("_heard", None)
            state.pop("idle_seconds", None)
            state["sources"] = {p: (t, True) for p, t in latest.items()}
        self.__dict__.update(state)

    def expect(self, partitions: Iterable[int]) -> None:
        """Partitions of the input topic: each holds the watermark until it is reported on."""
        for partition in partitions:
            self.sources.setdefault(partition, (-math.inf, True))

    def report(
        self, partition: int, latest: float, holding: bool, starts: Iterable[int] = ()
    ) -> None:
        """What a partition's owner says of it, and the buckets it brought events for."""
        known = self.sources.get(partition, (-math.inf, True))[0]
        self.sources[partition] = (max(latest, known), holding)
        for start in starts:
            if start >= self.closed_through:  # closing is final
                self.open_buckets.add(start)

    def status(self, start: int) -> str:
        """'open', or 'closed' when events for this bucket are late."""
        return "closed" if start < self.closed_through else "open"

    def due(self) -> list[int]:
        """Buckets that close now, oldest first; afterwards they are closed for good."""
        active = [latest for latest, holding in self.sources.values() if holding]
        if active:
            self.watermark = max(self.watermark, min(active))
        horizon = self.watermark - self.allowed_lateness_seconds
        due = sorted(b for b in self.open_buckets if b + self.bucket_seconds <= horizon)
        for b in due:
            self.open_buckets.discard(b)
        if due:
            self.closed_through = max(self.closed_through, due[-1] + self.bucket_seconds)
        return due
