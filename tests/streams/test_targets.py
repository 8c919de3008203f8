"""Premium targets: revisions replace, specific periods win, quarters and years are prorated."""

from __future__ import annotations

from streams.targets import TargetBook

A = ("00/44/4403", "life", "BANCA")
B = ("00/31/3101", "health", "AGENCY")


def test_month_targets_from_month_quarter_or_year() -> None:
    book = TargetBook()
    book.set(A, "2026", 1_200.0, at=1.0)
    book.set(B, "2026-Q2", 900.0, at=1.0)
    book.set(B, "2026-05", 250.0, at=1.0)
    # A: a twelfth of its year; B: its own May target, else a third of Q2.
    assert book.month_targets(2026, 5) == {A: 100.0, B: 250.0}
    assert book.month_targets(2026, 4) == {A: 100.0, B: 300.0}
    assert book.month_targets(2027, 1) == {}


def test_an_older_revision_arriving_late_does_not_win() -> None:
    book = TargetBook()
    book.set(A, "2026-03", 500.0, at=20.0)
    book.set(A, "2026-03", 400.0, at=10.0)  # set earlier, delivered later
    assert book.month_targets(2026, 3) == {A: 500.0}
