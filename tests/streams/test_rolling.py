"""Rolling windows from closed buckets: calendar-aligned sums, snapshots kept, not summed."""

from __future__ import annotations

import pytest

from streams.fields import FIELD, new_accumulator
from streams.rolling import Rolling

HOUR, DAY = 3600, 86400
MAR_30 = 1_774_800_000  # Monday 30 March 2026 00:00 Shanghai
KEY = ("4403", "*", "*")


def acc(calls: float, open_claims: float = 0.0) -> list[float]:
    out = new_accumulator()
    out[FIELD["calls"]], out[FIELD["claims_open"]] = calls, open_claims
    return out


def calls(roll: Rolling, window: str) -> float:
    sums = roll.window(KEY, window)
    assert sums is not None
    return sums[FIELD["calls"]]


def test_hourly_buckets_roll_into_hour_day_week_month_and_quarter() -> None:
    roll = Rolling(bucket_seconds=HOUR // 2)
    # 30 March: 10 calls in each half hour of 09:00-11:00 (4 buckets); 31 March and 1 April 09:00:
    # 5 calls each; the last bucket is 1 April 09:30.
    for i in range(4):
        roll.add(MAR_30 + 9 * HOUR + i * HOUR // 2, {KEY: acc(10, open_claims=i)})
    roll.add(MAR_30 + DAY + 9 * HOUR, {KEY: acc(5)})
    roll.add(MAR_30 + 2 * DAY + 9 * HOUR, {KEY: acc(5)})
    roll.add(MAR_30 + 2 * DAY + 9 * HOUR + HOUR // 2, {KEY: acc(3)})
    got = {w: calls(roll, w) for w in ("bucket", "hour", "day", "7d", "30d", "mtd", "qtd")}
    # bucket 3; hour 09:00-10:00 of 1 April: 5 + 3; day 8; 7 and 30 days: 40 + 5 + 8 = 53;
    # April to date 8; the second quarter started on 1 April: 8.
    assert got == {"bucket": 3, "hour": 8, "day": 8, "7d": 53, "30d": 53, "mtd": 8, "qtd": 8}


def test_windows_move_with_the_latest_bucket_and_snapshots_take_the_latest() -> None:
    roll = Rolling(bucket_seconds=DAY)
    for d in range(40):
        roll.add(MAR_30 - 39 * DAY + d * DAY, {KEY: acc(1, open_claims=d)})
    assert (calls(roll, "7d"), calls(roll, "30d")) == (7, 30)
    assert calls(roll, "mtd") == 30  # 1-30 March
    week = roll.window(KEY, "7d")
    assert week is not None and week[FIELD["claims_open"]] == 39.0  # the latest, not a sum
    # A slice that was quiet in the last bucket has nothing in it but keeps its week.
    roll.add(MAR_30 + DAY, {("4404", "*", "*"): acc(1)})
    assert (calls(roll, "bucket"), calls(roll, "day"), calls(roll, "7d")) == (0, 0, 6)
    # 31 March is still in March and in the first quarter, which holds all 40 days.
    assert (calls(roll, "mtd"), calls(roll, "qtd")) == (30, 40)


def test_hour_needs_buckets_of_an_hour_or_less_and_unknown_windows_are_named() -> None:
    roll = Rolling(bucket_seconds=DAY)
    roll.add(MAR_30, {KEY: acc(1)})
    assert roll.window(KEY, "hour") is None
    with pytest.raises(ValueError, match="window 'fortnight' is unknown; known: bucket, hour"):
        roll.window(KEY, "fortnight")
