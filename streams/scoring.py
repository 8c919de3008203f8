"""Scoring closed buckets: one detector per (indicator, slice) series, run once per bucket.

>>> from streams.indicators import FIELD, new_accumulator
>>> from streams.aggregate import ClosedBucket
>>> bank = SeriesBank(bucket_seconds=86400)
>>> def day(i, calls, answered):
...     acc = new_accumulator()
...     acc[FIELD["calls"]], acc[FIELD["calls_answered"]] = calls, answered
...     return ClosedBucket(1_772_380_800 + i * 86400, {("01", "*", "*"): acc})
>>> for i in range(14):
...     _ = bank.score(day(i, 1000, 950 + i % 3))
>>> readings, anomalies = bank.score(day(14, 1000, 500))   # an outage
>>> [(a.indicator, a.org, round(a.value, 2)) for a in anomalies]
[('hotline_answer_rate', '01', 0.5)]
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_args

import orjson

from streams.aggregate import ClosedBucket
from streams.calendar import Calendar
from streams.detectors import DETECTORS, SeriesFilter
from streams.feedback import FeedbackBook
from streams.indicators import INDICATORS, Category, Indicator
from streams.slices import SliceKey
from streams.windows import base_of, iso, season_of

#: What an anomaly is about: the business itself, a concentration in one slice (the trigger for
#: a special inspection), or the data feeding the monitor.
CATEGORIES: tuple[Category, ...] = get_args(Category)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredReading:
    """One indicator of one slice in one closed bucket, with its score."""

    indicator: str
    slice: SliceKey
    bucket_start: int
    value: float
    k: float
    n: float
    score: float
    expected: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Anomaly:
    """A scored reading at or above the threshold; ``anomaly_id`` is deterministic, so a bucket
    scored twice (a redelivery after a restart) yields the same id and is stored once."""

    anomaly_id: str
    indicator: str
    org: str
    product_line: str
    channel: str
    bucket_start: str
    bucket_seconds: int
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    k: float
    n: float
    detector: str
    severity: str
    category: str = "business"
    #: JSON object with what explains the anomaly: top contributors, case ids, the field off by
    #: a unit; "{}" when the reading says it all.
    detail: str = "{}"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def severity_of(score: float) -> str:
    """Severity from the calibrated score: p ≤ 1e-4 minor, ≤ 1e-6 major, ≤ 1e-8 critical."""
    if score >= 1.0:
        return "critical"
    if score >= 0.75:
        return "major"
    return "minor"


def anomaly_id(indicator: str, key: SliceKey, start: int, span: str = "", part: str = "") -> str:
    """Deterministic id; ``span`` tells a day judged over hourly buckets from the day's first
    hour, which starts at the same time, and ``part`` one finding of several on the same slice
    and bucket from another (the event type gone silent, the amount field off by a unit). Ids
    without them stay as they always were."""
    raw = f"{indicator}|{'|'.join(key)}|{start}" + (f"|{span}" if span else "")
    raw += f"|{part}" if part else ""
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _held(hold: str | None, indicator: Indicator) -> bool:
    """Is ``indicator`` withheld on a slice under ``hold`` (see :meth:`SeriesBank.score`)?"""
    if hold == "all":
        return True
    return indicator.amounts if hold == "amounts" else hold == "month" and indicator.month_to_date


class SeriesBank:
    """Every watched series' detector, created on first sight of the series.

    ``only`` names the indicators it reads (all when None); ``span`` marks the ids of its
    anomalies when it judges days beside a bank of shorter buckets (:class:`streams.watch.Watch`).
    """

    def __init__(
        self,
        bucket_seconds: int,
        calendar: Calendar | None = None,
        only: frozenset[str] | None = None,
        span: str = "",
    ) -> None:
        self.bucket_seconds = bucket_seconds
        self.calendar = calendar
        self.only = only  # names, not indicators: a bank is pickled, their readers are not
        self.span = span
        self.series: dict[tuple[str, SliceKey], SeriesFilter] = {}
        self.errors = 0  # series-buckets skipped because their detector raised

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Banks pickled before ``only`` read every indicator, under plain ids.
        self.__dict__.update({"only": None, "span": "", **state})

    @property
    def indicators(self) -> list[Indicator]:
        every = INDICATORS.values()
        return list(every) if self.only is None else [i for i in every if i.name in self.only]

    def season(self, start: int) -> int:
        if self.calendar is None:
            return season_of(start, self.bucket_seconds)
        return self.calendar.season(start, self.bucket_seconds)

    def base(self, start: int) -> int | None:
        if self.calendar is None:
            return base_of(self.season(start), self.bucket_seconds)
        return self.calendar.base(start, self.bucket_seconds)

    def forget(self, keys: set[SliceKey], which: Callable[[Indicator], bool]) -> None:
        """Drop the detectors of these slices' indicators ``which`` picks: what they learnt is
        known to be wrong, and they start afresh."""
        for indicator in self.indicators:
            if which(indicator):
                for key in keys:
                    self.series.pop((indicator.name, key), None)

    def _filter(self, indicator: Indicator, key: SliceKey) -> SeriesFilter:
        found = self.series.get((indicator.name, key))
        if found is None:
            detector = DETECTORS[indicator.kind](direction=indicator.direction)
            found = self.series[(indicator.name, key)] = SeriesFilter(detector)
        return found

    def score(
        self,
        bucket: ClosedBucket,
        withheld: dict[SliceKey, str] | None = None,
        feedback: FeedbackBook | None = None,
    ) -> tuple[list[ScoredReading], list[Anomaly]]:
        """Score every indicator of every slice. ``withheld`` slices (a data-quality finding
        stands: 'all' indicators, only those on 'amounts', or on 'month'-to-date sums) are shown
        but neither judged nor learnt; ``feedback`` mutes patterns marked expected and holds
        confirmed incidents."""
        season = self.season(bucket.start)
        base = self.base(bucket.start)
        readings: list[ScoredReading] = []
        anomalies: list[Anomaly] = []
        withheld = withheld or {}
        if feedback is not None and not (feedback.accepted or feedback.confirmed):
            feedback = None  # nothing to apply: the plain step is cheaper
        # A public holiday is shown but neither judged nor learnt: a week or two a year is too
        # little to learn a season from, and learning it would drag every baseline down.
        holiday = self.calendar is not None and self.calendar.is_holiday(bucket.start)
        indicators = self.indicators
        for key, acc in bucket.slices.items():
            hold = "all" if holiday else withheld.get(key)
            for indicator in indicators:
                reading = indicator.read(acc)
                if reading.value is None:
                    continue
                if not indicator.judged:
                    v = reading.value
                    if v == reading.k == reading.n == 0:
                        continue  # nothing of it here (no open cases, no target): no series
                    readings.append(ScoredReading(
                        indicator.name, key, bucket.start, v, reading.k, reading.n, 0.0, v, v, v
                    ))  # fmt: skip
                    continue
                x = {"value": reading.value, "k": reading.k, "n": reading.n, "season": season,
                     "base": base}  # fmt: skip
                series = self._filter(indicator, key)
                try:
                    band = series.detector.expectation(x)
                    if reading.k < indicator.min_evidence or _held(hold, indicator):
                        score, anomalous = 0.0, False
                    elif feedback is None:
                        score, anomalous = series.step(x)
                    else:
                        score, anomalous = self._step_with(feedback, series, indicator, key, x)
                except ArithmeticError as exc:
                    # One series' numeric trouble must not cost the other series their bucket.
                    log.error("%s %s: detector failed on %r: %r", indicator.name, key, x, exc)
                    self.errors += 1
                    continue
                expected, lower, upper = band.expected, band.lower, band.upper
                if indicator.kind == "count":
                    # The count detector expects counts; show the band in the indicator's unit.
                    # Amounts under a data-quality hold are suspect (the month-to-date ones
                    # only in their sums): not remembered.
                    unit = series.unit_of(reading.k, reading.per_k, hold in (None, "month"))
                    expected, lower, upper = expected * unit, lower * unit, upper * unit
                scored = ScoredReading(
                    indicator.name,
                    key,
                    bucket.start,
                    reading.value,
                    reading.k,
                    reading.n,
                    score,
                    expected,
                    lower,
                    upper,
                )
                readings.append(scored)
                if anomalous:
                    # A count is judged on counts: its anomaly shows the count expected beside
                    # the value, which may be yuan (premium) or complaints per 10k policies.
                    counted = indicator.kind == "count"
                    info = {"expected_count": round(band.expected, 3)} if counted else {}
                    anomalies.append(self._anomaly(scored, type(series.detector).__name__, info))
        return readings, anomalies

    def _step_with(
        self,
        feedback: FeedbackBook,
        series: SeriesFilter,
        indicator: Indicator,
        key: SliceKey,
        x: dict[str, Any],
    ) -> tuple[float, bool]:
        name = indicator.name
        if feedback.holds(name, key, self.span):
            series.run = 0  # a confirmed incident is not to become the new normal
        score, anomalous = series.step(x)
        if not anomalous:
            feedback.release(name, key, self.span)
            return score, False
        expected = series.detector.expectation(x).expected
        observed = x["k"] if indicator.kind == "count" else x["value"]
        if feedback.mutes(name, key, observed, expected):
            # Not learnt either: learning a known outage would widen the band for every other
            # deviation of this series. A run of known patterns must not make it adapt.
            series.run = 0
            return score, False
        return score, True

    def _anomaly(self, r: ScoredReading, detector: str, info: dict[str, Any]) -> Anomaly:
        org, product_line, channel = r.slice
        return Anomaly(
            anomaly_id=anomaly_id(r.indicator, r.slice, r.bucket_start, self.span),
            indicator=r.indicator,
            org=org,
            product_line=product_line,
            channel=channel,
            bucket_start=iso(r.bucket_start),
            bucket_seconds=self.bucket_seconds,
            value=r.value,
            expected=r.expected,
            lower=r.lower,
            upper=r.upper,
            score=r.score,
            k=r.k,
            n=r.n,
            detector=detector,
            severity=severity_of(r.score),
            detail=orjson.dumps(info).decode(),
        )
