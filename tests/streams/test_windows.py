"""Shanghai-aligned buckets, seasons, and the per-partition watermark that closes buckets."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from streams.windows import EventClock, bucket_start, season_of, shanghai

HOUR, DAY = 3600, 86400


def epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# 2026-03-01T00:00Z = 1_772_323_200 (2026-01-01 = 1_767_225_600, + 59 days).
# Shanghai midnight of 1 March is 8 h earlier: 2026-02-28T16:00Z = 1_772_294_400;
# of 2 March: 1_772_294_400 + 86_400 = 1_772_380_800.
MIDNIGHT_MAR_1 = 1_772_294_400
MIDNIGHT_MAR_2 = 1_772_380_800


@pytest.mark.parametrize(
    ("when", "size", "start"),
    [
        ("2026-03-01T23:59:59+08:00", DAY, MIDNIGHT_MAR_1),
        ("2026-03-02T00:00:00+08:00", DAY, MIDNIGHT_MAR_2),
        # UTC midnight is 08:00 in Shanghai: the middle of a Shanghai day, not a boundary.
        ("2026-03-01T23:59:59+00:00", DAY, MIDNIGHT_MAR_2),
        ("2026-03-01T15:59:59+00:00", DAY, MIDNIGHT_MAR_1),
        ("2026-03-01T16:00:00+00:00", DAY, MIDNIGHT_MAR_2),
        # 23:00 Shanghai on 1 March = MIDNIGHT_MAR_2 - 1 h.
        ("2026-03-01T23:59:59+08:00", HOUR, MIDNIGHT_MAR_2 - HOUR),
        ("2026-03-02T00:00:00+08:00", HOUR, MIDNIGHT_MAR_2),
        ("2026-03-02T10:30:00+08:00", HOUR, MIDNIGHT_MAR_2 + 10 * HOUR),
    ],
)
def test_bucket_start_is_shanghai_aligned(when: str, size: int, start: int) -> None:
    assert bucket_start(epoch(when), size) == start


def test_bucket_start_just_before_midnight_by_a_millisecond() -> None:
    assert bucket_start(MIDNIGHT_MAR_2 - 0.001, DAY) == MIDNIGHT_MAR_1
    assert bucket_start(MIDNIGHT_MAR_2 + 0.0, DAY) == MIDNIGHT_MAR_2


@pytest.mark.parametrize("size", [HOUR, 4 * HOUR, DAY])
def test_buckets_hold_their_epoch_and_start_on_a_shanghai_boundary(size: int) -> None:
    for i in range(200):
        t = MIDNIGHT_MAR_1 + i * 7919.5  # a prime stride lands everywhere in the bucket
        start = bucket_start(t, size)
        assert start <= t < start + size
        local = shanghai(start)
        assert (local.minute, local.second) == (0, 0)
        assert local.hour % (size // HOUR if size < DAY else 24) == 0


@pytest.mark.parametrize(
    ("day", "season"),
    [
        ("2026-03-02", 0),  # Monday
        ("2026-03-08", 6),  # Sunday
        ("2026-03-28", 5),  # Saturday; 28 + 3 = 31 March, same month: ordinary
        ("2026-03-29", 6 + 7),  # Sunday; 29 + 3 = 1 April: month-end
        ("2026-03-30", 0 + 7),  # Monday, month-end
        ("2026-03-31", 1 + 7),  # Tuesday, month-end
        ("2026-04-01", 2),  # Wednesday, a new month
        # February 2026 has 28 days: the last three are 26, 27, 28.
        ("2026-02-25", 2),  # Wednesday; 25 + 3 = 28 February: ordinary
        ("2026-02-26", 3 + 7),  # Thursday, month-end
        ("2026-02-28", 5 + 7),  # Saturday, month-end
        ("2026-03-01", 6),  # Sunday
        # February 2028 has 29: 26 Feb (Saturday) + 3 = 29 Feb, still February.
        ("2028-02-26", 5),
        ("2028-02-27", 6 + 7),  # Sunday, month-end
    ],
)
def test_season_of_daily_buckets(day: str, season: int) -> None:
    start = bucket_start(epoch(f"{day}T12:00:00+08:00"), DAY)
    assert season_of(start, DAY) == season


@pytest.mark.parametrize(
    ("hour", "season"),
    [
        ("2026-03-02T00:00", 0),  # Monday 00:00
        ("2026-03-02T09:00", 9),
        ("2026-03-08T23:00", 6 * 24 + 23),  # Sunday 23:00 = 167, the last ordinary hour
        ("2026-02-25T23:00", 2 * 24 + 23),  # Wednesday 23:00, not yet month-end: 71
        ("2026-02-26T00:00", 3 * 24 + 168),  # Thursday 00:00, month-end: 240
        ("2026-03-31T13:00", 1 * 24 + 13 + 168),  # Tuesday 13:00, month-end: 205
    ],
)
def test_season_of_hourly_buckets(hour: str, season: int) -> None:
    start = bucket_start(epoch(f"{hour}:00+08:00"), HOUR)
    assert season_of(start, HOUR) == season


def test_seasons_stay_in_range() -> None:
    days = {season_of(MIDNIGHT_MAR_1 + i * DAY, DAY) for i in range(400)}
    hours = {season_of(MIDNIGHT_MAR_1 + i * HOUR, HOUR) for i in range(24 * 400)}
    assert days == set(range(14))
    assert hours == set(range(336))


# ---- EventClock: hourly buckets from Monday 2 March 2026 00:00 Shanghai -----------------------


def at(hours: float) -> float:
    return MIDNIGHT_MAR_2 + hours * HOUR


def h(hours: int) -> int:
    return MIDNIGHT_MAR_2 + hours * HOUR


def observe(clock: EventClock, epoch: float, partition: int = 0, holding: bool = True) -> None:
    """What a partial with one event at ``epoch`` reports."""
    clock.report(partition, epoch, holding, [bucket_start(epoch, clock.bucket_seconds)])


def test_slowest_partition_holds_buckets_open() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    observe(clock, at(10.5), partition=0)
    observe(clock, at(13.2), partition=1)
    # Watermark = min(10:30, 13:12) = 10:30; bucket 10:00 ends 11:00 > 10:30: nothing closes.
    assert clock.due() == []
    assert clock.watermark == at(10.5)
    assert clock.status(h(10)) == "open"
    observe(clock, at(12.1), partition=0)
    # Watermark = min(12:06, 13:12) = 12:06: bucket 10:00 closes; 13:00 is still open.
    assert clock.due() == [h(10)]
    assert clock.watermark == at(12.1)
    assert clock.status(h(10)) == "closed"
    assert clock.status(h(11)) == "open"
    assert clock.status(h(13)) == "open"
    assert clock.open_buckets == {h(12), h(13)}


def test_out_of_order_event_does_not_move_a_partition_back() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    observe(clock, at(12.5), partition=0)
    observe(clock, at(11.2), partition=0)  # older, same partition
    assert clock.due() == [h(11)]  # watermark 12:30 closes 11:00, keeps 12:00
    assert clock.watermark == at(12.5)


def test_allowed_lateness_delays_closing() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=600)
    observe(clock, at(10.5))
    observe(clock, at(11) + 599)  # 11:09:59: bucket 10:00 + 10 min not yet passed
    assert clock.due() == []
    observe(clock, at(11) + 600)  # 11:10:00 exactly
    assert clock.due() == [h(10)]


def test_a_partition_its_owner_calls_idle_stops_holding_the_watermark() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    observe(clock, at(10.5), partition=0)
    observe(clock, at(13.2), partition=1)
    assert clock.due() == []
    clock.report(0, at(10.5), holding=False)  # caught up and silent (streams.combine)
    assert clock.due() == [h(10)]
    assert clock.watermark == at(13.2)


def test_an_expected_partition_holds_the_watermark_until_reported_on() -> None:
    # The closer expects every partition of the input topic: one whose owner has not said
    # anything yet (still starting, or a worker that died) holds the watermark where it is.
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    clock.expect([0, 1])
    observe(clock, at(10.5), partition=1)
    observe(clock, at(13.4), partition=1)
    assert clock.due() == [] and clock.watermark == -math.inf
    observe(clock, at(12.5), partition=0)
    assert clock.due() == [h(10)] and clock.watermark == at(12.5)


def test_a_new_owner_with_nothing_read_yet_keeps_what_was_known() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    observe(clock, at(12.5), partition=0)
    observe(clock, at(12.7), partition=1)
    assert clock.due() == []
    clock.report(0, -math.inf, holding=True)  # partition 0 moved; its new owner read nothing
    observe(clock, at(13.5), partition=1)
    assert clock.due() == [] and clock.watermark == at(12.5)  # held where it was known
    observe(clock, at(13.6), partition=0)  # the new owner's first records
    assert clock.due() == [h(12)]


def test_all_partitions_idle_keeps_the_watermark() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    observe(clock, at(10.5), partition=0)
    observe(clock, at(12.5), partition=1)
    assert clock.due() == []
    clock.report(0, at(10.5), holding=False)
    clock.report(1, at(12.5), holding=False)
    assert clock.due() == []  # nobody holding: nothing to go by
    assert clock.watermark == at(10.5)


def test_watermark_never_decreases() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    observe(clock, at(13.5), partition=0)
    assert clock.due() == [] and clock.watermark == at(13.5)
    observe(clock, at(13.8), partition=2)  # a new partition, behind nobody
    observe(clock, at(9.0), partition=1)  # a newly assigned partition far behind
    clock.due()
    assert clock.watermark == at(13.5)  # min(13:30, 09:00, 13:48) = 09:00, but never back


def test_due_returns_each_bucket_once() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    returned: list[int] = []
    for minutes in range(0, 6 * 60, 7):  # 00:00 .. 05:55, several events per bucket
        observe(clock, at(minutes / 60))
        returned += clock.due()
        returned += clock.due()  # asking again changes nothing
    assert returned == [h(0), h(1), h(2), h(3), h(4)]  # 05:00 open: watermark is 05:55
    assert clock.open_buckets == {h(5)}
    assert clock.closed_through == h(5)


def test_status_turns_closed_when_a_bucket_closes() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    assert clock.status(h(0)) == "open"  # nothing closed yet
    assert clock.closed_through == -math.inf
    observe(clock, at(1.5))
    observe(clock, at(2.5))
    assert clock.status(h(1)) == "open"
    observe(clock, at(3.5))
    assert clock.due() == [h(1), h(2)]
    # Every bucket up to the end of the last closed one is closed; events for them are late.
    assert clock.closed_through == h(3)
    assert [clock.status(h(i)) for i in range(5)] == ["closed", "closed", "closed", "open", "open"]
    assert clock.open_buckets == {h(3)}


def test_a_late_report_does_not_reopen_a_closed_bucket() -> None:
    # "Closing is final": a bucket returned by due() must never be returned again, even if a
    # partial brings events for it afterwards (the aggregator checks status() first, but the
    # clock's own contract should not depend on every caller doing so).
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    observe(clock, at(10.5))
    observe(clock, at(12.1))
    assert clock.due() == [h(10)]
    observe(clock, at(10.75))  # late: bucket 10:00 is closed
    assert clock.status(h(10)) == "closed"
    assert clock.due() == []
