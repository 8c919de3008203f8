"""Deciding on a score, apart from computing it (river's ``anomaly.filter`` idea)."""

from __future__ import annotations

from typing import Any

from streams.detectors.tails import ALERT_THRESHOLD


class SeriesFilter:
    """Decides on a score and protects the detector from learning anomalies.

    A run of ``adapt_after`` anomalous buckets is taken as a new normal and learnt, so a lasting
    shift alarms for a while and then stops, instead of alarming for ever. A detector whose
    ``protects_itself`` is true (:class:`~streams.detectors.MetricDetector`) keeps anomalies out
    of its baseline on its own and must see every bucket to know when an episode ends: it learns
    them all.

    ``unit`` is what one counted event was last worth in the indicator's unit (a receipt's mean
    premium), for showing what a bucket without events was expected to bring.
    """

    __slots__ = ("adapt_after", "detector", "run", "threshold", "unit")

    def __init__(self, detector: Any, threshold: float = ALERT_THRESHOLD, adapt_after: int = 7):
        self.detector = detector
        self.threshold = threshold
        self.adapt_after = adapt_after
        self.run = 0
        self.unit: float | None = None

    def unit_of(self, k: float, per_k: float, remember: bool = True) -> float:
        """The worth of one event to show this bucket's band in: its own where it has events,
        else the last one remembered (an empty bucket's mean premium is not 0 yuan). A bucket
        held back as suspect (amounts in fen) is not remembered."""
        if k > 0 and per_k > 0:
            if remember:
                self.unit = per_k
            return per_k
        return getattr(self, "unit", None) or per_k  # filters pickled before it have none

    def step(self, x: dict[Any, Any]) -> tuple[float, bool]:
        """Score ``x``, then learn it unless it is an anomaly; returns (score, is_anomaly)."""
        score = self.detector.score_one(x)
        anomalous = score >= self.threshold
        self.run = self.run + 1 if anomalous else 0
        protects_itself = getattr(self.detector, "protects_itself", False)
        if not anomalous or self.run >= self.adapt_after or protects_itself:
            self.detector.learn_one(x)
        return score, anomalous
