"""The bucket-close pipeline's own state; the pipeline itself runs in
``tests/monitor/test_scenarios``."""

from __future__ import annotations

import pickle
from datetime import date

from streams.calendar import Calendar, epoch
from streams.indicators import INDICATORS
from streams.watch import Watch


def test_month_to_date_is_judged_only_for_months_seen_nearly_whole() -> None:
    watch = Watch(86400, Calendar())
    assert watch._month_seen_in_part(epoch(date(2026, 2, 26)), (2026, 2))  # started on the 26th
    assert watch._month_seen_in_part(epoch(date(2026, 2, 28)), (2026, 2))
    assert not watch._month_seen_in_part(epoch(date(2026, 3, 1)), (2026, 3))  # March is seen whole
    sunday_missed = Watch(86400, Calendar())
    assert not sunday_missed._month_seen_in_part(epoch(date(2026, 3, 2)), (2026, 3))  # 1 % of March


def test_a_checkpoint_from_before_the_start_was_kept_has_seen_its_months_whole() -> None:
    watch = Watch(86400, Calendar())
    state = pickle.loads(pickle.dumps(watch)).__dict__
    del state["started"]
    old = Watch.__new__(Watch)
    old.__setstate__(state)
    assert not old._month_seen_in_part(epoch(date(2026, 2, 26)), (2026, 2))


def test_only_buckets_shorter_than_a_day_have_their_days_judged_whole_too() -> None:
    assert Watch(86400, Calendar()).days is None
    days = Watch(3600, Calendar()).days
    assert days is not None and days.bucket_seconds == 86400 and days.span == "day"
    judged = {i.name for i in days.indicators}
    assert {"hotline_answer_rate", "surrender_rate", "complaint_rate_per_10k_policies"} <= judged
    # Month-to-date sums read the same at the day's end as in its last hour.
    assert "premium_pace" not in judged
    assert all(INDICATORS[name].judged for name in judged)


def test_a_checkpoint_from_before_the_day_bank_gets_one_below_a_day() -> None:
    for seconds, has_days in ((3600, True), (86400, False)):
        state = pickle.loads(pickle.dumps(Watch(seconds, Calendar()))).__dict__
        del state["days"]
        old = Watch.__new__(Watch)
        old.__setstate__(state)
        assert (old.days is not None) is has_days
        assert old.watched == 0


def test_feedback_on_a_day_judged_whole_is_for_the_day_series() -> None:
    hourly, daily = Watch(3600, Calendar()), Watch(86400, Calendar())
    assert (hourly.span_of(86400), hourly.span_of(3600), daily.span_of(86400)) == ("day", "", "")
