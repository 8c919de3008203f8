"""Whether a company-wide anomaly is a problem of its own or the roll-up of one region's.

The company's universal line is anomalous when a rate cut makes policyholders of every branch
surrender it, and also when one branch mis-sells it: the first is one company-wide incident,
the second is the branch's, and the company's line is only its roll-up. What tells them apart
is the evidence left once the region carrying most of the deviation is taken out. A company
slice is *broad* when the rest of the company still deviates the same way: by at least a third
of the whole deviation (two regions alike share it half and half) and beyond chance
(:data:`Z` standard deviations, and for a count beyond the over-dispersion its detector
allows). Two unrelated problems at once therefore read as one
company-wide incident only when the smaller is at least half the size of the larger.

A region is an org one level below the top the branches share (a province; each branch when
all sit in one province); its evidence is the sum of its branches' readings of the same
indicator, product line and channel in the same bucket. What no region accounts for — an org's
own book above the branches, the fold of orgs past ``QUALMON_MAX_ORGS`` — is one more
candidate for where the deviation sits. A count's expectation is read in counts (premium
receipts, not yuan); a branch with none that day shows no unit of its own, and the company's
(yuan per receipt) stands in for it. Counts and
proportions only, whose evidence adds up over branches; a mean or a ratio of amounts does not.

>>> paths = {"4403": "00/44/4403", "4401": "00/44/4401", "3101": "00/31/3101"}
>>> company = {"indicator": "surrender_rate", "org": "*", "product_line": "universal",
...            "channel": "*", "detector": "CountDetector",
...            "value": 0.8, "expected": 0.1, "k": 80.0, "n": 0.0}
>>> def day(counts):  # each branch's surrenders and expected surrenders (0.01 each)
...     return Branches([("surrender_rate", org, "universal", "*", 100, k / 100, k, 0.0, 0.9,
...                       e / 100, 0.0, 1.0) for org, (k, e) in counts.items()], paths)

Every branch eight times its usual: the rest of the company is as anomalous as the whole.

>>> day({"4403": (24, 3), "4401": (16, 2), "3101": (40, 5)}).verdict(company, 100)
True

One branch mis-selling: without its province the company is as usual.

>>> day({"4403": (70, 3), "4401": (3, 2), "3101": (7, 5)}).verdict(company, 100)
False
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from alerting.rules import expected_count
from streams.detectors import CountDetector

#: How far beyond chance the rest of the company must deviate (about p ≤ 3e-5, one-sided).
Z = 4.0
#: The share of the company's deviation the rest must carry.
SHARE = 1 / 3
#: The over-dispersion a count may show without alarming (the count detector's tolerance).
TOLERANCE = CountDetector().tolerance
#: Detectors whose evidence is a count that adds up over slices.
ADDITIVE = ("CountDetector", "ProportionDetector")


class Branches:
    """One checkpoint's readings of the branches (the orgs no other org lies below; code ->
    path in ``paths``), indexed by indicator, product line, channel and bucket."""

    def __init__(self, readings: Sequence[Sequence[Any]], paths: Mapping[str, str]) -> None:
        self._source, self._paths = readings, paths

    @cached_property
    def _index(self) -> tuple[dict[str, str], dict[tuple[str, str, str, int], list[Any]]]:
        """Each branch's region's path, and the branches' readings by key; built only once a
        company-wide anomaly asks, as most checkpoints have none."""
        leaves = branches_of(self._paths)
        top = _shared_depth(list(leaves.values()))
        region = {code: "/".join(p.split("/")[: top + 1]) for code, p in leaves.items()}
        readings: dict[tuple[str, str, str, int], list[Any]] = {}
        for r in self._source:
            if r[1] in region:
                readings.setdefault((r[0], r[2], r[3], int(r[4])), []).append(r)
        return region, readings

    def verdict(self, anomaly: Mapping[str, Any], start: int) -> bool | None:
        """Whether a company-wide ``anomaly`` of the bucket starting at ``start`` is broad (see
        the module's docstring); None when it cannot be judged: not a company slice's, not a
        count's or a proportion's, or no branch reading at hand."""
        detector = anomaly.get("detector")
        if anomaly["org"] != "*" or detector not in ADDITIVE:
            return None
        k, n = anomaly["k"], anomaly["n"]
        whole = expected_k(
            detector, anomaly["value"], anomaly["expected"], k, n, expected_count(anomaly)
        )
        if whole is None:
            return None
        region_of, readings = self._index
        key = (anomaly["indicator"], anomaly["product_line"], anomaly["channel"], start)
        if key not in readings:
            return None
        # A branch with no count shows no unit of its own: the company's stands in for it.
        unit = anomaly["expected"] / whole if whole > 0 else 0.0
        regions: dict[str, list[float]] = {}
        for r in readings[key]:
            expected = expected_k(detector, r[5], r[9], r[6], r[7])
            if expected is None and unit > 0:
                expected = r[9] / unit
            if expected is not None:  # else left to what no region accounts for
                region = regions.setdefault(region_of[r[1]], [0.0, 0.0, 0.0])
                region[0] += r[6]
                region[1] += expected
                region[2] += r[7]
        if len(regions) < 2:
            return False
        # Small branches' detectors expect at least one event a bucket: their expectations may
        # add up to more than the company's. Then they are shares of it, no more.
        summed = sum(g[1] for g in regions.values())
        if summed > whole > 0:
            for g in regions.values():
                g[1] *= whole / summed
        sign = 1.0 if anomaly["value"] >= anomaly["expected"] else -1.0
        unaccounted = [k - sum(g[0] for g in regions.values()),
                       whole - sum(g[1] for g in regions.values()),
                       n - sum(g[2] for g in regions.values())]  # fmt: skip
        most = max([*regions.values(), unaccounted], key=lambda g: sign * (g[0] - g[1]))
        rest_k, rest_e, rest_n = k - most[0], whole - most[1], n - most[2]
        whole_deviation, rest = sign * (k - whole), sign * (rest_k - rest_e)
        # A proportion's successes vary binomially; a count varies as Poisson, beyond the
        # over-dispersion the count detector allows every series.
        counted = detector == "CountDetector"
        p = rest_e / rest_n if not counted and rest_n > 0 else 0.0
        spread = math.sqrt(max(rest_e * (1.0 - min(max(p, 0.0), 1.0)), 1.0))
        allowed = TOLERANCE * rest_e if counted else 0.0
        return (
            whole_deviation > 0 and rest >= SHARE * whole_deviation and rest >= allowed + Z * spread
        )


def branches_of(paths: Mapping[str, str]) -> dict[str, str]:
    """The orgs no other org lies below (code -> path).

    >>> branches_of({"00": "00", "44": "00/44", "4403": "00/44/4403", "31": "00/31"})
    {'4403': '00/44/4403', '31': '00/31'}
    """
    inner = {p.rsplit("/", 1)[0] for p in paths.values() if "/" in p}
    return {code: p for code, p in paths.items() if p not in inner}


def deviation(anomaly: Mapping[str, Any]) -> float:
    """How far a reading is from what was expected, for what was expected: of two company-wide
    slices crossing each other, the one deviating most is where the incident sits.

    >>> deviation({"value": 0.8, "expected": 0.1}), deviation({"value": 0.0, "expected": 5.0})
    (7.0, 1.0)
    """
    expected = anomaly["expected"]
    return abs(anomaly["value"] - expected) / abs(expected) if expected else math.inf


def expected_k(
    detector: str, value: float | None, expected: float, k: float, n: float, count: float = 0.0
) -> float | None:
    """The count a reading of ``k`` (of ``n``) was expected to rest on: a proportion's expected
    successes, a count's expected count (``count`` when known, else from the value's unit,
    ``value / k``). None when it cannot be told: a count of none shows no unit.

    >>> expected_k("ProportionDetector", 0.5, 0.9, 50, 100), expected_k("CountDetector", 0, 3, 0, 0)
    (90.0, None)
    """
    if detector == "ProportionDetector":
        return expected * n
    if count > 0:
        return count
    if value and k > 0:
        return expected * k / value
    return None


def _shared_depth(leaf_paths: list[str]) -> int:
    """How many levels of the org tree every branch shares (1: all below the head office), so a
    region is the org one level further down (``00/44`` for ``00/44/4403``)."""
    split = [p.split("/") for p in leaf_paths]
    depth = 0
    while all(len(s) > depth + 1 for s in split) and len({s[depth] for s in split}) == 1:
        depth += 1
    return depth
