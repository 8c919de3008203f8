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
    """

    __slots__ = ("adapt_after", "detector", "run", "threshold")

    def __init__(self, detector: Any, threshold: float = ALERT_THRESHOLD, adapt_after: int = 7):
        self.detector = detector
        self.threshold = threshold
        self.adapt_after = adapt_after
        self.run = 0

    def step(self, x: dict[Any, Any]) -> tuple[float, bool]:
        """Score ``x``, then learn it unless it is an anomaly; returns (score, is_anomaly)."""
        score = self.detector.score_one(x)
        anomalous = score >= self.threshold
        self.run = self.run + 1 if anomalous else 0
        protects_itself = getattr(self.detector, "protects_itself", False)
        if not anomalous or self.run >= self.adapt_after or protects_itself:
            self.detector.learn_one(x)
        return score, anomalous
