"""Feedback: the same pattern is muted, a larger or opposite one is not, confirmations hold."""

from __future__ import annotations

import pickle

import pytest

from streams.aggregate import ClosedBucket
from streams.feedback import FeedbackBook
from streams.fields import FIELD, new_accumulator
from streams.scoring import SeriesBank

KEY = ("4403", "*", "*")
DAY, MONDAY = 86400, 1_772_380_800


def test_same_pattern_is_muted_larger_or_opposite_is_not() -> None:
    book = FeedbackBook()
    book.apply("hotline_answer_rate", KEY, "expected", 0.5, 0.95)
    assert book.mutes("hotline_answer_rate", KEY, 0.5, 0.95)
    assert book.mutes("hotline_answer_rate", KEY, 0.46, 0.95)  # a little worse: same pattern
    assert not book.mutes("hotline_answer_rate", KEY, 0.1, 0.95)  # much worse
    assert not book.mutes("hotline_answer_rate", KEY, 1.0, 0.5)  # the other direction
    assert not book.mutes("hotline_answer_rate", ("4404", "*", "*"), 0.5, 0.95)  # other series
    book.apply("hotline_answer_rate", KEY, "false_positive", 0.3, 0.95)  # a wider one, same side
    assert book.mutes("hotline_answer_rate", KEY, 0.35, 0.95)
    assert pickle.loads(pickle.dumps(book)).accepted == book.accepted
    with pytest.raises(ValueError, match="verdict 'maybe' is unknown"):
        book.apply("hotline_answer_rate", KEY, "maybe", 0.5, 0.95)


def test_a_later_true_positive_withdraws_the_pattern_it_falls_in() -> None:
    book = FeedbackBook()
    book.apply("hotline_answer_rate", KEY, "expected", 0.5, 0.95)
    # A deviation in the other direction says nothing about the accepted one.
    book.apply("hotline_answer_rate", KEY, "true_positive", 1.0, 0.5)
    assert book.mutes("hotline_answer_rate", KEY, 0.5, 0.95)
    # "That was expected" — then "no, it was a real outage": the latest word counts.
    book.apply("hotline_answer_rate", KEY, "true_positive", 0.5, 0.95)
    assert not book.mutes("hotline_answer_rate", KEY, 0.5, 0.95)
    assert book.holds("hotline_answer_rate", KEY)


def test_a_confirmed_incident_does_not_become_the_new_normal() -> None:
    def day(d: int, answered: float) -> ClosedBucket:
        acc = new_accumulator()
        acc[FIELD["calls"]], acc[FIELD["calls_answered"]] = 1000.0, answered
        return ClosedBucket(MONDAY + d * DAY, {KEY: acc})

    def alarms(book: FeedbackBook | None) -> list[int]:
        bank, out = SeriesBank(DAY), []
        for d in range(14):
            bank.score(day(d, 950.0 + d % 3), feedback=book)
        for d in range(14, 30):
            if d == 15 and book is not None:
                book.apply("hotline_answer_rate", KEY, "true_positive", 0.5, 0.95)
            _, anomalies = bank.score(day(d, 500.0), feedback=book)
            out += [d for a in anomalies if a.indicator == "hotline_answer_rate"]
        return out

    # Without feedback, after seven anomalous days in a row the series starts learning the
    # outage, and soon stops alarming.
    unconfirmed = alarms(None)
    assert unconfirmed[:7] == list(range(14, 21)) and unconfirmed[-1] < 29
    # Confirmed on day 15, the outage keeps alarming every day it lasts.
    assert alarms(FeedbackBook()) == list(range(14, 30))


def test_a_confirmation_is_of_the_series_it_came_from_the_hour_or_the_day() -> None:
    # Below a day, a day-long incident is by its nature normal hour by hour: the first normal
    # hour must not end the day's confirmation, nor a normal day an hour's.
    book = FeedbackBook()
    book.apply("hotline_answer_rate", KEY, "true_positive", 0.5, 0.95, span="day")
    assert book.holds("hotline_answer_rate", KEY, "day")
    assert not book.holds("hotline_answer_rate", KEY)
    book.release("hotline_answer_rate", KEY)  # an hour of the series scored normal
    assert book.holds("hotline_answer_rate", KEY, "day")
    book.apply("hotline_answer_rate", KEY, "true_positive", 0.5, 0.95)
    book.release("hotline_answer_rate", KEY, "day")  # the next day was normal
    assert book.holds("hotline_answer_rate", KEY)
    assert not book.holds("hotline_answer_rate", KEY, "day")
