"""Whether a company-wide anomaly is a problem of its own or the roll-up of one region's.

The company's universal line is anomalous when a rate cut makes policyholders of every branch
surrender it, and also when one branch mis-sells it: the first is one company-wide incident,
the second is the branch's, and the company's line is only its roll-up. What tells them apart
is the evidence left once the largest region is taken out. A company slice is *broad* when,
without the region carrying most of its excess, the rest of the company still deviates the same
way: at least a third of the excess (two regions alike share it half and half), and beyond
chance (Poisson, :data:`Z`). Two unrelated problems at once count as one company-wide only when
the smaller is at least half the size of the larger.

A region is an org just below the top of the tree that events name (a province, or each branch
when all sit in one province); its evidence is the sum of its branches' readings of the same
indicator, product line and channel in the same bucket. Counts and proportions only, whose
evidence adds up; a mean or a ratio of amounts does not.

>>> paths = {"4403": "00/44/4403", "4401": "00/44/4401", "3101": "00/31/3101"}
>>> company = {"indicator": "surrender_rate", "org": "*", "product_line": "universal",
...            "channel": "*", "bucket_start": 100, "detector": "CountDetector",
...            "value": 0.8, "expected": 0.1, "k": 80.0, "n": 0.0}
>>> def branch(org, k, expected):  # value 0.01 per surrender; expected in the same unit
...     return ("surrender_rate", org, "universal", "*", 100, k / 100, k, 0.0, 0.9,
...             expected / 100, 0.0, 1.0)

Every branch eight times its usual: the rest of the company is as anomalous as the whole.

>>> broad(company, 100, [branch("4403", 24, 3), branch("4401", 16, 2), branch("3101", 40, 5)],
...       paths)
True

One branch mis-selling: without its province the company is as usual.

>>> broad(company, 100, [branch("4403", 70, 3), branch("4401", 3, 2), branch("3101", 7, 5)],
...       paths)
False
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from alerting.rules import expected_count

#: How far beyond chance the rest of the company must be (about p ≤ 3e-5, one-sided).
Z = 4.0
#: The share of the company's excess the rest must carry.
SHARE = 1 / 3
#: Detectors whose evidence is a count that adds up over slices.
ADDITIVE = ("CountDetector", "ProportionDetector")


def evidence(
    detector: str, value: float | None, expected: float, k: float, n: float, count: float = 0.0
) -> float | None:
    """The count a reading was expected to rest on: a proportion's expected successes, a count's
    expected count (given, or from the value's unit ``value / k``). None when it cannot be told
    (a count of none shows no unit).

    >>> evidence("ProportionDetector", 0.5, 0.9, 50, 100), evidence("CountDetector", 0.0, 3.0, 0, 0)
    (90.0, None)
    """
    if detector == "ProportionDetector":
        return expected * n
    if count > 0:
        return count
    if value and k > 0:
        return expected * k / value
    return None


def broad(
    anomaly: Mapping[str, Any],
    start: int,
    readings: Sequence[Sequence[Any]],
    paths: Mapping[str, str],
) -> bool:
    """Whether a company-wide ``anomaly`` of the bucket starting at ``start`` is broad (see the
    module's docstring), judged on the checkpoint's ``readings`` of its branches (org code ->
    path in ``paths``)."""
    detector = anomaly.get("detector")
    if anomaly["org"] != "*" or detector not in ADDITIVE:
        return False
    whole = evidence(
        detector,
        anomaly["value"],
        anomaly["expected"],
        anomaly["k"],
        anomaly["n"],
        expected_count(anomaly),
    )
    if whole is None:
        return False
    sign = 1.0 if anomaly["value"] >= anomaly["expected"] else -1.0
    key = (anomaly["product_line"], anomaly["channel"])
    leaves = _leaves(paths)
    top = _shared_depth(list(leaves.values()))
    branches = [
        r
        for r in readings
        if r[0] == anomaly["indicator"] and (r[2], r[3]) == key and int(r[4]) == start
        if r[1] in leaves
    ]
    regions: dict[str, list[float]] = {}
    for r in branches:
        expected = evidence(detector, r[5], r[9], r[6], r[7])
        if expected is None:  # a branch with none: its share of the expectation is unknown
            if sign < 0:
                return False  # and it may be where the shortfall is
            continue
        region = regions.setdefault("/".join(leaves[r[1]].split("/")[: top + 1]), [0.0, 0.0])
        region[0] += r[6]
        region[1] += expected
    if len(regions) < 2:
        return False
    k, e = max(regions.values(), key=lambda g: sign * (g[0] - g[1]))
    excess, rest = sign * (anomaly["k"] - whole), sign * ((anomaly["k"] - k) - (whole - e))
    return excess > 0 and rest >= SHARE * excess and rest >= Z * math.sqrt(max(whole - e, 1.0))


def _leaves(paths: Mapping[str, str]) -> dict[str, str]:
    """The orgs no other org lies below: code -> path."""
    inner = {p.rsplit("/", 1)[0] for p in paths.values() if "/" in p}
    return {code: p for code, p in paths.items() if p not in inner}


def _shared_depth(leaf_paths: list[str]) -> int:
    """How many levels of the org tree every leaf shares (1: all below the head office), so a
    region is the org one level further down (``00/44`` for ``00/44/4403``)."""
    split = [p.split("/") for p in leaf_paths]
    depth = 0
    while all(len(s) > depth + 1 for s in split) and len({s[depth] for s in split}) == 1:
        depth += 1
    return depth
