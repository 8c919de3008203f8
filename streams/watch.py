"""Everything that happens when a bucket closes, in order, kept as one picklable object.

1. Open cases are aged at the bucket's end (:mod:`streams.cases`) and their counts added to every
   slice they belong to; new breaches of the last limit become SLA anomalies.
2. The bucket is rolled into the windows (:mod:`streams.rolling`); month-to-date premium, the
   month's target and the expected progress of the month are set on each slice with a target.
3. Data quality is judged (:mod:`streams.quality`); what it finds withholds the business
   judgement of the slices it touches.
4. Every indicator of every slice is scored (:class:`streams.scoring.SeriesBank`), with feedback.
   Below a day, each day is also judged whole at its end, by a bank of day-long series.
5. At the end of each day, concentration is tested over the last 7 days
   (:mod:`streams.concentration`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.aggregate import Aggregator, ClosedBucket
from streams.calendar import Calendar
from streams.concentration import ConcentrationWatch, detail
from streams.feedback import FeedbackBook
from streams.fields import FIELD, new_accumulator
from streams.indicators import INDICATORS, SIGNALS
from streams.quality import Findings, QualityWatch
from streams.rolling import WINDOWS, Rolling
from streams.scoring import Anomaly, ScoredReading, SeriesBank, anomaly_id, severity_of
from streams.slices import SliceKey, org_code
from streams.windows import bucket_start, iso, shanghai

_SLA_SCORE = 0.75  # a breach of a hard limit is a fact, not a probability: always 'major'
#: Share of a month's expected business the watch may have missed (it started later) and still
#: judge the month's month-to-date indicators: a Sunday missed is 1 %, a fortnight half.
_MONTH_SEEN_MISSING = 0.05
#: What the bank of day-long series judges below a day: every judged indicator but those on
#: month-to-date sums, whose reading at the day's end is its last bucket's.
_DAY_JUDGED = frozenset(i.name for i in INDICATORS.values() if i.judged and not i.month_to_date)


@dataclass
class Closed:
    readings: list[ScoredReading]
    anomalies: list[Anomaly]


@dataclass
class Watch:
    bucket_seconds: int
    calendar: Calendar
    bank: SeriesBank = field(init=False)
    #: below a day, the same indicators judged over each whole day at its end; else None
    days: SeriesBank | None = field(init=False)
    rolling: Rolling = field(init=False)
    quality: QualityWatch = field(default_factory=QualityWatch)
    concentration: ConcentrationWatch = field(default_factory=ConcentrationWatch)
    feedback: FeedbackBook = field(default_factory=FeedbackBook)
    #: contributors of the current day's buckets, merged; handed to concentration at day end
    today: dict[tuple[str, str, str, str], dict[str, int]] = field(default_factory=dict)
    #: start of the first bucket closed: month-to-date sums hold nothing from before it
    started: int | None = None
    #: re-sent events of the current day's buckets by org, below a day
    today_duplicates: dict[str, int] = field(default_factory=dict)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A checkpoint from before ``started`` existed: its months were seen whole. One from
        # before the day bank starts one: it judges days once its detectors have seen two weeks.
        self.__dict__.update({"started": 0, "today_duplicates": {}, **state})
        if "days" not in state:
            self.days = self._day_bank()

    def __post_init__(self) -> None:
        self.bank = SeriesBank(self.bucket_seconds, self.calendar)
        self.days = self._day_bank()
        self.rolling = Rolling(self.bucket_seconds)

    def _day_bank(self) -> SeriesBank | None:
        # A small branch's day-long incident (half of its few calls an hour lost, a surrender
        # wave of a few a day) is significant in no single hour, and is over the day.
        if self.bucket_seconds >= 86400:
            return None
        return SeriesBank(86400, self.calendar, _DAY_JUDGED, span="day")

    def span_of(self, bucket_seconds: int) -> str:
        """The span an anomaly of ``bucket_seconds`` was judged under: its bank's ``span``."""
        return self.days.span if self.days and bucket_seconds > self.bucket_seconds else ""

    @property
    def watched(self) -> int:
        """How many series have a detector."""
        return len(self.bank.series) + (len(self.days.series) if self.days else 0)

    def close(self, bucket: ClosedBucket, agg: Aggregator) -> Closed:
        end = bucket.start + self.bucket_seconds
        slices = bucket.slices
        anomalies = self._age_cases(agg, slices, end)
        self.rolling.add(bucket.start, slices)
        self._targets(agg, slices, end)
        leaves = agg.slicer.leaves()
        day_end = bucket_start(end, 86400) == end  # the bucket ends at midnight
        day_sums = {}  # the day's sums per slice when it ends: the bucket, or the day's buckets
        if day_end:
            day_sums = slices if self.bucket_seconds >= 86400 else self.rolling.today()
        local = shanghai(bucket.start)
        month = (local.year, local.month)
        if self.calendar.is_holiday(bucket.start):
            findings = Findings([], {})  # feeds are quiet on holidays; nothing to learn from them
        elif day_end:
            season = self.calendar.season(end - 86400, 86400)
            day_duplicates = None
            if self.bucket_seconds < 86400:
                day_duplicates = self._add_duplicates(bucket.duplicates)
                self.today_duplicates = {}
            base = self.calendar.base(end - 86400, 86400)
            findings = self.quality.check(
                slices, bucket.duplicates, leaves, day_sums, season, month, day_duplicates, base
            )
        else:
            self._add_duplicates(bucket.duplicates)
            findings = self.quality.check(slices, bucket.duplicates, leaves, month=month)
        if self._month_seen_in_part(bucket.start, month):
            for held in slices:  # the weakest hold: a stronger one on the slice stands
                findings.withheld.setdefault(held, "month")
        if findings.tainted and self.bucket_seconds < 86400:
            # The day's verdict comes at its end: the hours before it were learnt.
            self.bank.forget(findings.tainted, lambda indicator: indicator.month_to_date)
        readings, business = self.bank.score(bucket, findings.withheld, self.feedback)
        anomalies += business
        if day_end and self.days is not None:
            whole_day = ClosedBucket(end - 86400, day_sums)
            anomalies += self.days.score(whole_day, findings.withheld, self.feedback)[1]
        for f in findings.found:
            anomalies.append(self._anomaly(
                f.check, f.slice, bucket.start, f.value, f.expected, f.lower, f.upper, f.score,
                f.k, f.n, f.detector, f.detail, f.part,
            ))  # fmt: skip
        for key, counts in bucket.contributors.items():
            day = self.today.setdefault(key, {})
            for name, n in counts.items():
                day[name] = day.get(name, 0) + n
        if day_end:  # the day is complete
            self.concentration.remember(self.today)
            self.today = {}
            for c in self.concentration.check(self.rolling):
                upper = min(1.0, c.expected_share * 1.25)
                anomalies.append(self._anomaly(
                    f"{c.kind}_concentration", c.slice, bucket.start, c.share, c.expected_share,
                    0.0, upper, c.score, c.k, c.total, "ConcentrationTest", detail(c),
                ))  # fmt: skip
        kept = [a for a in anomalies if a.category == "business" or not self._muted(a)]
        return Closed(readings, kept)

    def _muted(self, a: Anomaly) -> bool:
        key = (a.org, a.product_line, a.channel)
        return self.feedback.mutes(a.indicator, key, a.value, a.expected)

    def _age_cases(
        self, agg: Aggregator, slices: dict[SliceKey, list[float]], end: int
    ) -> list[Anomaly]:
        aged = agg.cases.age(float(end))
        for leaf, row in aged.per_leaf.items():
            for key in agg.slicer.slices(*leaf):
                acc = slices.get(key)
                if acc is None:
                    acc = slices[key] = new_accumulator()
                for name, value in row.items():
                    acc[FIELD[name]] += value
        out = []
        start = end - self.bucket_seconds
        for b in aged.breaches:
            path, line, channel = b.leaf
            key = (org_code(path), line, channel)
            info = {"limit_days": b.limit_days, "cases": b.case_ids, "count": b.count}
            out.append(self._anomaly(
                f"{b.kind}_sla_breach", key, start, float(b.count), 0.0, 0.0, 0.0, _SLA_SCORE,
                float(b.count), float(b.count), "CaseTimer", info,
            ))  # fmt: skip
        return out

    def _add_duplicates(self, duplicates: dict[str, int]) -> dict[str, int]:
        """The day's re-sent events so far, with this bucket's."""
        for org, n in duplicates.items():
            self.today_duplicates[org] = self.today_duplicates.get(org, 0) + n
        return self.today_duplicates

    def _month_seen_in_part(self, start: int, month: tuple[int, int]) -> bool:
        """Did the watch start too far into ``month`` (``start``'s) for its month-to-date sums
        to mean anything? Started on the 26th, its pace would read a fifth of the month's
        premium against nine tenths of its time: "behind pace" all month, and a baseline learnt
        from that."""
        if self.started is None:
            self.started = start
        first = shanghai(self.started)
        if (first.year, first.month) != month:
            return False
        return self.calendar.month_progress(self.started) > _MONTH_SEEN_MISSING

    def _targets(self, agg: Aggregator, slices: dict[SliceKey, list[float]], end: int) -> None:
        local = shanghai(end - 1)
        targets = agg.targets.month_targets(local.year, local.month)
        if not targets:
            return
        per_slice: dict[SliceKey, float] = {}
        for leaf, target in targets.items():
            for key in agg.slicer.slices(*leaf):
                per_slice[key] = per_slice.get(key, 0.0) + target
        progress = self.calendar.month_progress(end)
        premium, receipts = FIELD["premium_received_yuan"], FIELD["premium_receipts"]
        for key, target in per_slice.items():
            mtd = self.rolling.window(key, "mtd")
            acc = slices.get(key)
            if acc is None:
                acc = slices[key] = new_accumulator()
            snapshot = {
                "mtd_premium_yuan": mtd[premium] if mtd else 0.0,
                "mtd_receipts": mtd[receipts] if mtd else 0.0,
                "month_target_yuan": target,
                "month_progress": progress,
            }
            for name, value in snapshot.items():
                acc[FIELD[name]] = value
            self.rolling.set_snapshot(key, snapshot)

    def window_rows(self) -> list[tuple[SliceKey, str, list[float]]]:
        """(slice, window, sums) of every slice and window ending with the last closed bucket."""
        out = []
        for key in self.rolling.slices:
            for name in WINDOWS[1:]:
                sums = self.rolling.window(key, name)
                if sums is not None:
                    out.append((key, name, sums))
        return out

    @property
    def as_of(self) -> int:
        """End of the latest closed bucket: where the windows end."""
        return self.rolling.now + self.bucket_seconds

    def _anomaly(
        self, indicator: str, key: SliceKey, start: int, value: float, expected: float,
        lower: float, upper: float, score: float, k: float, n: float, detector: str,
        info: dict[str, Any], part: str = "",
    ) -> Anomaly:  # fmt: skip
        """A signal's anomaly (an SLA breach, a concentration, a data-quality finding), of the
        category :data:`streams.indicators.SIGNALS` gives it."""
        org, line, channel = key
        return Anomaly(
            anomaly_id=anomaly_id(indicator, key, start, part=part),
            indicator=indicator,
            org=org,
            product_line=line,
            channel=channel,
            bucket_start=iso(start),
            bucket_seconds=self.bucket_seconds,
            value=value,
            expected=expected,
            lower=lower,
            upper=upper,
            score=score,
            k=k,
            n=n,
            detector=detector,
            severity=severity_of(score),
            category=SIGNALS[indicator].category,
            detail=orjson.dumps(info).decode(),
        )


def encode_window(key: SliceKey, name: str, as_of: int, sums: list[float]) -> tuple[Any, ...]:
    """A store row: the non-zero sums by field name, so a later field layout still reads it."""
    body = {f: v for f, v in zip(FIELD, sums, strict=True) if v}
    return (*key, name, as_of, orjson.dumps(body))
