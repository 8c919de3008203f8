"""Open-case timers: aged on event time, breaches raised once, state that pickles."""

from __future__ import annotations

import pickle

from streams.cases import CaseBook

DAY = 86400.0
A = ("00/44/4403", "life", "BANCA")
B = ("00/31/3101", "health", "AGENCY")


def test_open_cases_are_counted_and_aged_per_leaf() -> None:
    book = CaseBook(claim_limit_days=30)
    book.open_claim("L1", 0.0, A)
    book.open_claim("L2", 10 * DAY, A)
    book.open_claim("L3", 10 * DAY, B)
    book.close_claim("L3")
    for i, opened in enumerate((0.0, 10.0, 20.0, 40.0)):
        book.open_complaint(f"C{i}", opened * DAY, B)
    aged = book.age(50 * DAY)
    # Claims at A: 50 and 40 days old → 2 open, age sum 90 days, both past 30 days.
    assert {k: aged.per_leaf[A][k] for k in ("claims_open", "claims_open_age_days_sum",
                                             "claims_overdue")} == {
        "claims_open": 2.0, "claims_open_age_days_sum": 90.0, "claims_overdue": 2.0
    }  # fmt: skip
    # Complaints at B: 50, 40, 30, 10 days old; past 15: 3, past 30: 2 (30 is not past), past 60: 0
    row = aged.per_leaf[B]
    assert (row["complaints_open"], row["complaints_overdue_15d"], row["complaints_overdue_30d"],
            row["complaints_overdue_60d"]) == (4.0, 3.0, 2.0, 0.0)  # fmt: skip
    assert [(b.kind, b.leaf, b.count, b.case_ids) for b in aged.breaches] == [
        ("claim", A, 2, ["L1", "L2"])
    ]


def test_a_breach_is_raised_once_and_a_close_ends_the_timer() -> None:
    book = CaseBook()
    book.open_complaint("C1", 0.0, A)
    book.open_complaint("C2", 0.0, A)
    assert book.age(59 * DAY).breaches == []
    book.close_complaint("C2")
    [breach] = book.age(61 * DAY).breaches
    assert (breach.kind, breach.limit_days, breach.case_ids) == ("complaint", 60, ["C1"])
    assert breach.leaf == A and book.age(62 * DAY).per_leaf[A]["complaint_breaches"] == 0.0
    restored = pickle.loads(pickle.dumps(book))
    assert restored.age(63 * DAY).breaches == [] and "C1" in restored.complaints


def test_cases_opened_after_the_bucket_end_are_not_yet_open_and_stale_ones_are_forgotten() -> None:
    book = CaseBook(forget_after_days=100)
    book.open_claim("future", 10 * DAY, A)
    book.open_claim("ancient", 0.0, A)
    assert book.age(5 * DAY).per_leaf[A]["claims_open"] == 1.0  # only "ancient"
    book.age(101 * DAY)
    assert list(book.claims) == ["future"]


def test_the_first_open_of_an_id_wins_and_unknown_closes_are_ignored() -> None:
    book = CaseBook()
    book.open_claim("L1", 0.0, A)
    book.open_claim("L1", 5 * DAY, B)  # a re-sent report under a new event id
    book.close_claim("never-opened")
    assert book.claims["L1"][:2] == [0.0, A]
