"""Concentration: a leaf's share of the company's complaints against its expected share."""

from __future__ import annotations

import pytest

from streams.concentration import ConcentrationWatch, concentration_p
from streams.detectors import ALERT_THRESHOLD
from streams.fields import FIELD, new_accumulator
from streams.rolling import Rolling

DAY = 86400
MAR_2 = 1_772_380_800
LEAVES = [(f"44{i:02d}", "life", "BANCA") for i in range(1, 11)]


def day_sums(complaints: float, policies: float = 100.0) -> list[float]:
    acc = new_accumulator()
    acc[FIELD["complaints"]], acc[FIELD["policies_issued"]] = complaints, policies
    return acc


def test_both_tests_by_hand_the_larger_p_counts() -> None:
    # Beyond exposure: P(X >= 5) for X ~ Bin(5, 0.1 × 1.25) = 0.125^5 = 3.05e-5.
    # Beyond its past (no events in the 45 before): the week held 5 of 50, P = 0.1^5 = 1e-5.
    # The larger, × 10 leaves: 3.05e-4.
    assert concentration_p(5, 5, 0.1, 0, 45, 10) == pytest.approx(0.125**5 * 10)
    # With 15 events of its own in the 45 before: P(X >= 5 | Bin(20, 0.1)) = 0.0432 counts.
    assert concentration_p(5, 5, 0.1, 15, 45, 10) == pytest.approx(0.43170, abs=1e-4)
    assert concentration_p(4, 4, 0.1, 0, 45, 10) == 1.0  # under 5 events: never
    assert concentration_p(5, 5, 0.1, 0, 0, 10) == 1.0  # no history yet: cannot say
    assert concentration_p(5, 5, 0.1, 0, 45, 10**9) == 1.0  # capped


def test_a_leaf_taking_far_more_than_its_share_is_named_with_its_contributors() -> None:
    roll, watch = Rolling(DAY), ConcentrationWatch()
    for d in range(30):
        wave = d >= 25
        roll.add(MAR_2 + d * DAY, {
            key: day_sums(6.0 if (wave and key == LEAVES[0]) else 1.0) for key in LEAVES
        })  # fmt: skip
        watch.remember({("complaints", "4401", "life", "BANCA"): {"agent:A7": 3, "product:P1": 2}})
    [found] = watch.check(roll)
    # Last 7 days: 4401 had 2 × 1 + 5 × 6 = 32 of 32 + 9 × 7 = 95 complaints; the 23 days
    # before, 23 of 230 (a tenth, as its policies). Beyond its past: the company's week is
    # 95 / 325 of its 30 days, the leaf's 32 / 55: P(X >= 32 | Bin(55, 0.2923)) = 7.36e-6;
    # beyond exposure P(X >= 32 | Bin(95, 0.125)) = 7.6e-8. 7.36e-6 × 10 leaves: score 0.517.
    assert (found.kind, found.slice, found.k, found.total) == ("complaints", LEAVES[0], 32, 95)
    assert found.expected_share == 0.1 and found.exposure_share == 0.1
    assert found.score == pytest.approx(0.5166, abs=1e-4)
    assert found.score > ALERT_THRESHOLD
    assert found.contributors == {"agents": [("A7", 21)], "products": [("P1", 14)]}  # 7 days


def test_a_company_wide_rise_is_not_a_concentration() -> None:
    roll = Rolling(DAY)
    for d in range(30):
        level = 6.0 if d >= 25 else 1.0
        roll.add(MAR_2 + d * DAY, {key: day_sums(level) for key in LEAVES})
    assert ConcentrationWatch().check(roll) == []
