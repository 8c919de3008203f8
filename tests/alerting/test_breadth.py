"""Whether a company-wide anomaly is broad: judged on hand-made branch readings."""

from __future__ import annotations

from typing import Any

import pytest

from alerting.breadth import Branches

PATHS = {
    "00": "00",
    "44": "00/44",
    "4403": "00/44/4403",
    "4401": "00/44/4401",
    "31": "00/31",
    "3101": "00/31/3101",
    "3102": "00/31/3102",
}
START = 1_773_000_000


def company(k: float, expected_k: float, **extra: Any) -> dict[str, Any]:
    """The company's universal line: ``k`` surrenders where ``expected_k`` were expected (each
    worth 0.01 of the line's value)."""
    return {
        "indicator": "surrender_rate",
        "org": "*",
        "product_line": "universal",
        "channel": "*",
        "detector": "CountDetector",
        "value": k / 100,
        "expected": expected_k / 100,
        "k": k,
        "n": 0.0,
        **extra,
    }


def branches(counts: dict[str, tuple[float, float]], unit: float = 100.0) -> Branches:
    readings = [
        ("surrender_rate", org, "universal", "*", START, k / unit, k, 0.0, 0.9, e / unit, 0, 1)
        for org, (k, e) in counts.items()
    ]
    return Branches(readings, PATHS)


@pytest.mark.parametrize(
    ("counts", "broad"),
    [
        ({"4403": (24, 3), "4401": (16, 2), "3101": (40, 5)}, True),  # everywhere
        ({"4403": (70, 3), "4401": (3, 2), "3101": (7, 5)}, False),  # one branch
        ({"4403": (40, 3), "4401": (30, 2), "3101": (10, 5)}, False),  # one province
        ({"3101": (40, 5), "3102": (40, 5)}, False),  # all in one region: nothing to compare
    ],
)
def test_the_rest_of_the_company_decides(counts: dict, broad: bool) -> None:
    k, e = sum(k for k, _ in counts.values()), sum(e for _, e in counts.values())
    assert branches(counts).verdict(company(k, e), START) is broad


def test_the_rest_must_deviate_beyond_what_a_count_may_anyway() -> None:
    # One branch at twice its usual, the other province 16 % up: within the over-dispersion
    # the count detector allows any series, so the company's line is the branch's roll-up.
    counts = {"4403": (4000, 2000), "4401": (1000, 1000), "3101": (8100, 7000)}
    assert branches(counts).verdict(company(13100, 10000), START) is False


def test_what_no_branch_accounts_for_can_be_where_the_problem_sits() -> None:
    # The head office's own book (above every branch), or orgs folded into _other, mis-sells.
    counts = {"4403": (3, 3), "4401": (3, 3), "3101": (4, 4)}
    assert branches(counts).verdict(company(90, 20), START) is False
    assert branches(counts).verdict(company(90, 20), START + 86400) is None  # no readings


def test_a_branch_with_no_count_borrows_the_companys_unit() -> None:
    # Receipts halve everywhere; a small branch happens to have none today, so its own
    # reading shows no unit to read its expectation in counts.
    counts = {"4403": (150, 300), "4401": (100, 200), "3101": (200, 400), "3102": (0, 1)}
    readings = [
        ("premium_income", org, "universal", "*", START, k * 15000, k, k, 0.99, e * 15000, 0, 0)
        for org, (k, e) in counts.items()
    ]
    anomaly = company(450, 901) | {
        "indicator": "premium_income",
        "value": 450 * 15000,
        "expected": 901 * 15000,
        "detail": {"expected_count": 901},
    }
    assert Branches(readings, PATHS).verdict(anomaly, START)


def test_a_proportion_near_one_is_judged_by_its_binomial_spread() -> None:
    # Compliance falls from 0.99 to 0.95 in both provinces: 5.7 binomial sd in the rest of the
    # company, but only 1.8 Poisson sd of its expected successes.
    readings = [
        ("compliance_rate", org, "*", "*", START, 0.95, 950 * s, 1000 * s, 0.9, 0.99, 0, 1)
        for org, s in (("4403", 1), ("4401", 1), ("3101", 1), ("3102", 1))
    ]
    anomaly = {
        "indicator": "compliance_rate",
        "org": "*",
        "product_line": "*",
        "channel": "*",
        "detector": "ProportionDetector",
        "value": 0.95,
        "expected": 0.99,
        "k": 3800.0,
        "n": 4000.0,
    }
    assert Branches(readings, PATHS).verdict(anomaly, START)


def test_only_counts_and_proportions_add_up() -> None:
    counts = {"4403": (24, 3), "4401": (16, 2), "3101": (40, 5)}
    assert branches(counts).verdict(company(80, 10, detector="LevelDetector"), START) is None
