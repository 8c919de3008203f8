"""Concentration: a leaf's share of the company's complaints against its expected share."""

from __future__ import annotations

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


def test_binomial_tail_with_tolerance_and_bonferroni_by_hand() -> None:
    # P(X >= 5) for X ~ Bin(5, 0.1 × 1.25): 0.125^5 = 3.05e-5, × 10 leaves = 3.05e-4
    assert concentration_p(5, 5, 0.1, 10) == __import__("pytest").approx(0.125**5 * 10)
    assert concentration_p(4, 4, 0.1, 10) == 1.0  # under 5 events: never
    assert concentration_p(5, 5, 0.1, 10**9) == 1.0  # capped


def test_a_leaf_taking_far_more_than_its_share_is_named_with_its_contributors() -> None:
    roll, watch = Rolling(DAY), ConcentrationWatch()
    for d in range(30):
        wave = d >= 25
        roll.add(MAR_2 + d * DAY, {
            key: day_sums(6.0 if (wave and key == LEAVES[0]) else 1.0) for key in LEAVES
        })  # fmt: skip
        watch.remember({("complaints", "4401", "life", "BANCA"): {"agent:A7": 3, "product:P1": 2}})
    [found] = watch.check(roll)
    # Last 7 days: 4401 had 2 × 1 + 5 × 6 = 32 of 32 + 9 × 7 = 95 complaints. Expected share:
    # (23 + 10 × 0.1) / (230 + 10) = 0.1 (it had a tenth of complaints and of policies before).
    assert (found.kind, found.slice, found.k, found.total) == ("complaints", LEAVES[0], 32, 95)
    assert abs(found.expected_share - 0.1) < 1e-12 and found.exposure_share == 0.1
    assert found.score > ALERT_THRESHOLD
    assert found.contributors == {"agents": [("A7", 21)], "products": [("P1", 14)]}  # 7 days


def test_a_company_wide_rise_is_not_a_concentration() -> None:
    roll = Rolling(DAY)
    for d in range(30):
        level = 6.0 if d >= 25 else 1.0
        roll.add(MAR_2 + d * DAY, {key: day_sums(level) for key in LEAVES})
    assert ConcentrationWatch().check(roll) == []
