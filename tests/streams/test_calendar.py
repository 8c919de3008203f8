"""The business calendar: seasons with holidays, month- and quarter-ends, and the month's pace."""

from __future__ import annotations

from datetime import date

import pytest

from monitor.settings import Settings
from streams.calendar import Calendar, epoch

DAY, HOUR = 86400, 3600


def test_default_holidays_are_spring_festival_and_national_day() -> None:
    cal = Settings().calendar()
    assert date(2026, 2, 17) in cal.holidays  # Chinese New Year's Day 2026
    assert date(2026, 10, 1) in cal.holidays and date(2026, 10, 8) not in cal.holidays
    assert cal.season(epoch(date(2026, 2, 17)), DAY) == 21
    assert cal.season(epoch(date(2026, 2, 17)) + 10 * HOUR, HOUR) == 144 + 10


def test_quarter_end_is_its_own_season_and_weekend_workdays_work() -> None:
    cal = Calendar(workdays=frozenset({date(2026, 2, 14)}))
    # Mon 30 March (quarter-end, second-to-last day), Tue 28 April (month-end, third-to-last),
    # Mon 27 April (ordinary)
    seasons = [cal.season(epoch(date(2026, m, d)), DAY) for m, d in ((3, 30), (4, 28), (4, 27))]
    assert seasons == [30 + 2 * (1 + 3), 30 + 2 * 2, 0]
    assert [cal.base(epoch(date(2026, m, d)), DAY) for m, d in ((3, 30), (4, 28), (4, 27))] == [
        0, 1, None
    ]  # fmt: skip
    assert cal.season(epoch(date(2026, 3, 30)) + 9 * HOUR, HOUR) == 168 + 48 * (1 + 3) + 9
    assert cal.base(epoch(date(2026, 3, 30)) + 9 * HOUR, HOUR) == 9
    assert cal.season(epoch(date(2026, 2, 14)), DAY) == 22  # a Saturday worked
    # Below a day: the hour of a working day, of a weekend day, of a worked Saturday.
    assert cal.season(epoch(date(2026, 3, 4)) + 9 * HOUR, HOUR) == 9  # Wednesday
    assert cal.season(epoch(date(2026, 3, 7)) + 9 * HOUR, HOUR) == 24 + 9  # Saturday
    assert cal.season(epoch(date(2026, 2, 14)) + 9 * HOUR, HOUR) == 9
    assert cal.day_weight(date(2026, 2, 14)) == 1.0
    assert cal.day_weight(date(2026, 2, 15)) == 0.4  # Sunday


def test_each_day_of_the_push_is_its_own_season_whatever_its_weekday() -> None:
    cal = Calendar()
    # Saturday 31 October is a month's last day, Saturday 28 November its third-to-last: the
    # push of the one is not the other's. Thursday 30 April and Friday 31 July are both last
    # working days: one season.
    days = (date(2026, 10, 31), date(2026, 11, 28), date(2026, 4, 30), date(2026, 7, 31))
    season = {d: cal.season(epoch(d), DAY) for d in days}
    assert season[date(2026, 10, 31)] != season[date(2026, 11, 28)]
    assert season[date(2026, 4, 30)] == season[date(2026, 7, 31)] != season[date(2026, 10, 31)]
    # Both start, the first time they are seen, from the shape of their own weekday.
    assert cal.base(epoch(date(2026, 10, 31)), DAY) == cal.base(epoch(date(2026, 11, 28)), DAY) == 5
    # The same below a day: the hour of the same kind of day and the same day of the push.
    assert cal.season(epoch(date(2026, 10, 31)) + 10 * HOUR, HOUR) != cal.season(
        epoch(date(2026, 11, 28)) + 10 * HOUR, HOUR
    )


def test_month_progress_weights_the_month_end_push() -> None:
    cal = Calendar(holidays=frozenset({date(2026, 4, 6)}))
    # April 2026: 30 days, 1 April a Wednesday. Weekends 4,5,11,12,18,19,25,26 (8 × 0.4 = 3.2),
    # holiday Mon 6 April (0.2), 21 working days; the push: Tue 28 ×2, Wed 29 ×2.5, Thu 30 ×3
    # adds 1 + 1.5 + 2 = 4.5. Total 21 + 3.2 + 0.2 + 4.5 = 28.9.
    # Called with a bucket's end: midnight of the 1st ends the previous month.
    assert cal.month_progress(epoch(date(2026, 4, 1))) == 1.0
    assert cal.month_progress(epoch(date(2026, 4, 1)) + 6 * HOUR) == pytest.approx(0.25 / 28.9)
    # By 8 April: 1-3 (3), 4-5 (0.8), 6 (0.2), 7 (1) = 5.0
    assert cal.month_progress(epoch(date(2026, 4, 8))) == pytest.approx(5.0 / 28.9)
    # Half of 8 April (a working day) later: + 0.5
    assert cal.month_progress(epoch(date(2026, 4, 8)) + 12 * HOUR) == pytest.approx(5.5 / 28.9)
    # Before the push, three quarters of the calendar but much less of the business:
    assert cal.month_progress(epoch(date(2026, 4, 28))) == pytest.approx(1 - 7.5 / 28.9)
    assert cal.month_progress(epoch(date(2026, 5, 1))) == 1.0


@pytest.mark.parametrize(
    ("value", "message"),
    [('["2026-02-30"]', "QUALMON_HOLIDAYS has '2026-02-30'"),
     ('["2026-10-07/2026-10-01"]', "must run forwards")],
)  # fmt: skip
def test_bad_holidays_are_refused_by_name(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("QUALMON_HOLIDAYS", value)
    with pytest.raises(ValueError, match=message):
        Settings()
