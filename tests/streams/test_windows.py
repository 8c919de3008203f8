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


def test_slowest_partition_holds_buckets_open() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    clock.observe(at(10.5), partition=0)
    clock.observe(at(13.2), partition=1)
    # Watermark = min(10:30, 13:12) = 10:30; bucket 10:00 ends 11:00 > 10:30: nothing closes.
    assert clock.due() == []
    assert clock.watermark == at(10.5)
    assert clock.status(h(10)) == "open"
    clock.observe(at(12.1), partition=0)
    # Watermark = min(12:06, 13:12) = 12:06: bucket 10:00 closes; 13:00 is still open.
    assert clock.due() == [h(10)]
    assert clock.watermark == at(12.1)
    assert clock.status(h(10)) == "closed"
    assert clock.status(h(11)) == "open"
    assert clock.status(h(13)) == "open"
    assert clock.open_buckets == {h(12), h(13)}


def test_out_of_order_event_does_not_move_a_partition_back() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    clock.observe(at(12.5), partition=0)
    clock.observe(at(11.2), partition=0)  # older, same partition
    assert clock.due() == [h(11)]  # watermark 12:30 closes 11:00, keeps 12:00
    assert clock.watermark == at(12.5)


def test_allowed_lateness_delays_closing() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=600)
    clock.observe(at(10.5))
    clock.observe(at(11) + 599)  # 11:09:59: bucket 10:00 + 10 min not yet passed
    assert clock.due() == []
    clock.observe(at(11) + 600)  # 11:10:00 exactly
    assert clock.due() == [h(10)]


def test_idle_partition_stops_holding_the_watermark_after_idle_seconds() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0, idle_seconds=30)
    clock.observe(at(10.5), partition=0, now=100.0)
    clock.observe(at(13.2), partition=1, now=100.0)
    clock.observe(at(13.4), partition=1, now=125.0)
    # At now=130 partition 0 was heard 30 s ago: still active, still holding at 10:30.
    assert clock.due(now=130.0) == []
    assert clock.watermark == at(10.5)
    # At now=130.5 it is idle: the watermark is partition 1's 13:24 and 10:00 closes.
    assert clock.due(now=130.5) == [h(10)]
    assert clock.watermark == at(13.4)


def test_a_lagging_partition_is_never_idle() -> None:
    # A backlog replay: partition 0 has records the consumer has not reached for a minute.
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0, idle_seconds=30)
    clock.observe(at(10.5), partition=0, now=100.0)
    clock.observe(at(13.4), partition=1, now=160.0)
    assert clock.due(now=160.0, lagging={0}) == []
    assert clock.watermark == at(10.5)
    assert clock.due(now=160.0) == [h(10)]  # caught up and silent: idle after all


def test_an_assigned_partition_holds_the_watermark_until_heard() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0, idle_seconds=30)
    clock.expect(0, now=100.0)
    clock.expect(1, now=100.0)
    clock.observe(at(13.4), partition=1, now=102.0)  # partition 1 is read first
    assert clock.due(now=102.0) == []  # partition 0 may still have 10:00 events
    clock.observe(at(10.5), partition=0, now=104.0)
    assert clock.due(now=120.0) == [] and clock.watermark == at(10.5)  # heard: idle rule
    clock.forget(0)  # moved to another worker
    assert clock.due(now=121.0) == [h(10)]  # 11:00 and 12:00 had no events


def test_an_assigned_partition_never_heard_turns_idle() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0, idle_seconds=30)
    clock.expect(0, now=100.0)
    clock.observe(at(10.5), partition=1, now=110.0)
    clock.observe(at(13.4), partition=1, now=110.0)
    assert clock.due(now=105.0) == []
    assert clock.due(now=105.5) == [h(10)]  # partition 0 delivered nothing for 5 s: empty


def test_all_partitions_idle_keeps_the_watermark() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0, idle_seconds=30)
    clock.observe(at(10.5), partition=0, now=0.0)
    clock.observe(at(12.5), partition=1, now=0.0)
    assert clock.due(now=0.0) == []
    assert clock.due(now=1000.0) == []  # nobody active: nothing to go by
    assert clock.watermark == at(10.5)


def test_watermark_never_decreases() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    clock.observe(at(13.5), partition=0)
    assert clock.due() == [] and clock.watermark == at(13.5)
    clock.observe(at(13.8), partition=2)  # a new partition, behind nobody
    clock.observe(at(9.0), partition=1)  # a newly assigned partition far behind
    clock.due()
    assert clock.watermark == at(13.5)  # min(13:30, 09:00, 13:48) = 09:00, but never back


def test_forget_releases_the_watermark() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    clock.observe(at(10.5), partition=0)
    clock.observe(at(13.4), partition=1)
    assert clock.due() == []
    clock.forget(0)  # partition 0 moved to another worker
    clock.forget(7)  # never seen: harmless
    assert clock.due() == [h(10)]
    assert clock.watermark == at(13.4)


def test_due_returns_each_bucket_once() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    returned: list[int] = []
    for minutes in range(0, 6 * 60, 7):  # 00:00 .. 05:55, several events per bucket
        clock.observe(at(minutes / 60))
        returned += clock.due()
        returned += clock.due()  # asking again changes nothing
    assert returned == [h(0), h(1), h(2), h(3), h(4)]  # 05:00 open: watermark is 05:55
    assert clock.open_buckets == {h(5)}
    assert clock.closed_through == h(5)


def test_status_turns_closed_when_a_bucket_closes() -> None:
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    assert clock.status(h(0)) == "open"  # nothing closed yet
    assert clock.closed_through == -math.inf
    clock.observe(at(1.5))
    clock.observe(at(2.5))
    assert clock.status(h(1)) == "open"
    clock.observe(at(3.5))
    assert clock.due() == [h(1), h(2)]
    # Every bucket up to the end of the last closed one is closed; events for them are late.
    assert clock.closed_through == h(3)
    assert [clock.status(h(i)) for i in range(5)] == ["closed", "closed", "closed", "open", "open"]
    assert clock.open_buckets == {h(3)}


def test_a_late_observation_does_not_reopen_a_closed_bucket() -> None:
    # "Closing is final": a bucket returned by due() must never be returned again, even if an
    # event for it is observed afterwards (Aggregator checks status() first, but the clock's own
    # contract should not depend on every caller doing so).
    clock = EventClock(bucket_seconds=HOUR, allowed_lateness_seconds=0)
    clock.observe(at(10.5))
    clock.observe(at(12.1))
    assert clock.due() == [h(10)]
    clock.observe(at(10.75))  # late: bucket 10:00 is closed
    assert clock.status(h(10)) == "closed"
    assert clock.due() == []
