"""Anomalies and readings built from a few arguments, and a clock tests move by hand."""

from __future__ import annotations

from typing import Any

from streams.scoring import anomaly_id
from streams.windows import iso

DAY = 86400
T0 = 1_772_380_800  # Monday 2 March 2026 00:00 Asia/Shanghai
COMPLAINTS = "complaint_rate_per_10k_policies"
SURRENDERS = "surrender_rate"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def anomaly(
    day: int,
    org: str = "4403",
    line: str = "life",
    channel: str = "BANCA",
    *,
    indicator: str = COMPLAINTS,
    score: float = 0.8,
    severity: str = "major",
    k: float = 12.0,
    value: float = 30.0,
    expected: float = 2.0,
    n: float = 4000.0,
) -> dict[str, Any]:
    start = T0 + day * DAY
    return {
        "anomaly_id": anomaly_id(indicator, (org, line, channel), start),
        "indicator": indicator,
        "org": org,
        "product_line": line,
        "channel": channel,
        "bucket_start": iso(start),
        "bucket_seconds": DAY,
        "value": value,
        "expected": expected,
        "lower": 0.0,
        "upper": 6.0,
        "score": score,
        "k": k,
        "n": n,
        "detector": "CountDetector",
        "severity": severity,
    }


def reading(
    day: int,
    org: str = "4403",
    line: str = "life",
    channel: str = "BANCA",
    *,
    indicator: str = COMPLAINTS,
    score: float = 0.1,
    value: float = 2.0,
) -> tuple:
    return (indicator, org, line, channel, T0 + day * DAY, value, 1.0, 4000.0, score, 2.0, 0.0, 6.0)


def universal(day: int, counts: dict[str, tuple[float, float]]) -> tuple[list, list]:
    """A day of the universal line's surrenders: each branch's reading (count, expected count)
    and the anomalies of the company's line and of the branches far above their expectation."""
    readings = [
        (SURRENDERS, org, "universal", "*", T0 + day * DAY, k, k, 0.0, 0.9, e, 0.0, 2 * e)
        for org, (k, e) in counts.items()
    ]
    k, e = sum(k for k, _ in counts.values()), sum(e for _, e in counts.values())
    company = anomaly(day, "*", "universal", "*", indicator=SURRENDERS, k=k, value=k, expected=e)
    branches = [
        anomaly(day, org, "universal", "*", indicator=SURRENDERS, k=k, value=k, expected=e)
        for org, (k, e) in counts.items()
        if k > 5 * e
    ]
    return [*branches, company], readings
