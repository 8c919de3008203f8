"""Event-time buckets and the watermark that closes them.

Buckets are aligned to Asia/Shanghai (UTC+08:00, no daylight saving since 1991), so a daily bucket
is a Chinese business day and month/quarter boundaries fall where the quality department expects.

>>> clock = EventClock(bucket_seconds=86400, allowed_lateness_seconds=3600)
>>> day = bucket_start(1_772_409_600.0, 86400)   # 2026-03-02T08:00+08:00
>>> day == 1_772_380_800                           # that day's Shanghai midnight
True
>>> clock.observe(1_772_409_600.0, partition=0)
>>> clock.observe(day + 86400 + 3600, partition=1)   # partition 1 is a day ahead
>>> clock.due(), clock.status(day)                    # partition 0 holds the day open
([], 'open')
>>> clock.observe(day + 86400 + 3600, partition=0)   # the next day, past the lateness
>>> clock.due(), clock.status(day)
([1772380800], 'closed')
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

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


#: How long an assigned partition that has delivered nothing yet holds the watermark: long
#: enough for the consumer's first fetch of every partition, short enough that an empty one
#: does not delay every bucket.
UNHEARD_SECONDS = 5.0


@dataclass
class EventClock:
    """Watermarks over event time; a bucket closes once the watermark passes its end plus the
    allowed lateness, and closing is final (the watermark never moves backwards).

    Each input partition is ordered on its own but partitions are consumed interleaved, so the
    watermark is the *slowest* active partition's latest event time: a partition racing ahead
    must not make the others' events late. A partition silent for ``idle_seconds`` of wall time
    stops holding the watermark back (an org whose feed stopped must not stall everyone) — unless
    the caller says it is still lagging: a backlog the consumer has not reached yet is not a
    silent feed, and declaring it idle would make all of it late.
    """

    bucket_seconds: int
    allowed_lateness_seconds: int
    idle_seconds: float = 30.0
    watermark: float = -math.inf
    open_buckets: set[int] = field(default_factory=set)
    closed_through: float = -math.inf  # every bucket starting before this is closed
    _latest: dict[int, float] = field(default_factory=dict)  # partition -> latest event time
    _heard: dict[int, float] = field(default_factory=dict)  # partition -> wall time last heard

    def observe(self, epoch: float, partition: int = 0, now: float = 0.0) -> None:
        if epoch > self._latest.get(partition, -math.inf):
            self._latest[partition] = epoch
        self._heard[partition] = now
        start = bucket_start(epoch, self.bucket_seconds)
        if start >= self.closed_through:  # closing is final
            self.open_buckets.add(start)

    def resume(self, now: float) -> None:
        """After a restart: every partition counts as just heard, so that the time the worker
        was down does not make them all idle and let the first record set the watermark."""
        for partition in self._heard:
            self._heard[partition] = now

    def expect(self, partition: int, now: float) -> None:
        """A partition was assigned: until it is heard from, or :data:`UNHEARD_SECONDS` pass,
        it holds the watermark where it is — a consumer reads partitions one after another at
        first, and the first one read must not close buckets the others still have events for."""
        self._latest.setdefault(partition, -math.inf)
        self._heard.setdefault(partition, now)

    def forget(self, partition: int) -> None:
        """A partition moved to another worker: it no longer holds the watermark back."""
        self._latest.pop(partition, None)
        self._heard.pop(partition, None)

    def status(self, start: int) -> str:
        """'open', or 'closed' when events for this bucket are late."""
        return "closed" if start < self.closed_through else "open"

    def due(self, now: float = 0.0, lagging: Collection[int] = ()) -> list[int]:
        """Buckets that close now, oldest first; afterwards they are closed for good.

        ``lagging``: partitions with records not yet consumed, which are never idle."""
        active = [
            latest
            for p, latest in self._latest.items()
            if p in lagging
            or now - self._heard[p]
            <= (self.idle_seconds if latest > -math.inf else UNHEARD_SECONDS)
        ]
        if active:
            self.watermark = max(self.watermark, min(active))
        horizon = self.watermark - self.allowed_lateness_seconds
        due = sorted(b for b in self.open_buckets if b + self.bucket_seconds <= horizon)
        for b in due:
            self.open_buckets.discard(b)
        if due:
            self.closed_through = max(self.closed_through, due[-1] + self.bucket_seconds)
        return due
