"""Stage two of the worker, free of Faust: partials in, buckets closed and scored, checkpoints out
— on the one worker that owns input partition 0.

The closer reads the partials every worker's intake stored (:mod:`streams.intake`), merges them
(:meth:`streams.aggregate.Aggregator.merge`), closes what the watermark has passed and scores it
(:mod:`streams.watch`). Its checkpoint writes, in one transaction, its state (open buckets and
detectors, pickled), the readings and anomalies of the buckets closed since the last one, and
deletes the partials merged: a crash before it re-reads the same partials, which the state's
partial numbers then skip or merge exactly as before.

Which worker closes is the consumer group's choice — the owner of input partition 0 — so a
failed worker's closing moves with its partitions, and one closer sees every partition: several
workers give the same buckets, readings and anomalies as one.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from monitor.metrics import Metrics
from monitor.store import Store
from streams.aggregate import Aggregator
from streams.feedback import VERDICTS
from streams.partial import Partial, decode, encode
from streams.scoring import Anomaly
from streams.slices import Slicer
from streams.watch import Watch, encode_window

log = logging.getLogger(__name__)


@dataclass
class Flush:
    """What one checkpoint covers; taken in one synchronous step so it is self-consistent."""

    state: bytes
    detectors: bytes | None  # None: unchanged since the last checkpoint
    merged: dict[int, int]
    closed_through: float
    forget_before: float
    readings: list[tuple[Any, ...]]
    anomalies: list[Anomaly]
    late: list[tuple[str, int, bytes]]
    windows: list[tuple[Any, ...]] = field(default_factory=list)
    #: ``time.perf_counter()`` when each bucket in this flush closed, for the close-delay metric.
    closed_at: list[float] = field(default_factory=list)


@dataclass
class Closer:
    aggregator: Aggregator
    watch: Watch
    metrics: Metrics
    store: Store
    checkpoint_name: str
    epoch: int | None = None  # fences off an earlier closer (see HistoryStore.save_checkpoint)
    readings: list[tuple[Any, ...]] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    late: list[tuple[str, int, bytes]] = field(default_factory=list)
    windows: list[tuple[Any, ...]] = field(default_factory=list)
    closed_at: list[float] = field(default_factory=list)
    _bank_blob: bytes | None = None  # the detectors (Watch) pickled, until they change
    _bank_stored: bool = False  # whether the store holds that pickle already
    #: Buckets closed since the windows were last exported; only the latest windows are kept,
    #: so they are computed once per checkpoint, not once per bucket (a replay closes many).
    _windows_due: bool = False
    _pickled_at: float = 0.0  # monotonic time the detector state was last pickled
    _pickle_seconds: float = 0.0  # and how long that took

    @classmethod
    def create(cls, settings: Any, metrics: Metrics, store: Store, partitions: int) -> Closer:
        """A closer resumed from the store's last checkpoint, or a fresh one; ``partitions``
        is the input topic's partition count (each holds the watermark until reported on)."""
        epoch = store.claim_closing(settings.app_id)  # before reading: a fenced closer's
        blob, bank_blob = store.load_checkpoint(settings.app_id)  # last write cannot follow
        if blob is not None:
            loaded = pickle.loads(blob)
            if isinstance(loaded, tuple):  # written when the detectors were inside the state
                loaded, bank_blob = loaded
            aggregator = loaded
            assert bank_blob is not None, "a checkpoint without its detectors"
            watch = pickle.loads(bank_blob)
            log.info("closer resumed from checkpoint: %d open buckets, %d series",
                     len(aggregator.buckets), watch.watched)  # fmt: skip
        else:
            slicer = Slicer(settings.slice_combinations, settings.max_orgs)
            aggregator = Aggregator(
                settings.bucket_seconds,
                settings.allowed_lateness_seconds,
                settings.dedup_retention_seconds,
                slicer,
            )
            aggregator.cases.claim_limit_days = settings.claim_settlement_limit_days
            watch = Watch(settings.bucket_seconds, settings.calendar())
        aggregator.clock.expect(range(partitions))
        # The gauges stop at QUALMON_METRIC_ORGS_DEPTH of the org tree the slicer learns.
        metrics.org_depths = aggregator.slicer.depth
        closer = cls(aggregator, watch, metrics, store, settings.app_id, epoch)
        closer.export_latest()
        return closer

    def export_latest(self) -> None:
        """Export what the last closes found, as this worker had closed them: after a restart
        or a move of the closing, dashboards must not go blank until the next bucket closes
        (a day, with daily buckets)."""
        metrics = self.metrics
        for r in self.store.latest_readings(limit=metrics.max_series):
            key = (r["org"], r["product_line"], r["channel"])
            band = (r["lower"], r["expected"], r["upper"])
            metrics.reading(r["indicator"], key, r["value"], r["n"], r["score"], band)
            if r["indicator"] == "compliance_rate":
                metrics.interval(key, r["k"], r["n"])
        metrics.windows(self.watch.window_rows())
        metrics.series.set(self.watch.watched)
        if self.aggregator.clock.watermark > float("-inf"):
            metrics.watermark.set(self.aggregator.clock.watermark)

    def poll(self) -> None:
        """Merge the partials stored since the last poll and close what is due."""
        for _ in self.polling():
            pass

    def polling(self) -> Iterator[None]:
        """:meth:`poll`, pausing after each bucket it closes. A replay closes hundreds of
        buckets at once, seconds of scoring: a caller on an event loop serves the API and the
        intake between them instead (an event POSTed meanwhile timed out into a retry)."""
        agg = self.aggregator
        for partition, seq, body in self.store.pending_partials(agg.merged):
            partial = decode(body)
            if partial.seq > agg.merged.get(partition, 0) + 1:
                # Cannot happen while partition states are compare-and-set; if rows were
                # removed by hand, what is left is merged rather than the closer stopping.
                log.error("partition %d: partial %d follows %d; the ones between are missing",
                          partition, seq, agg.merged.get(partition, 0))  # fmt: skip
            late = agg.merge(partial)
            if late is None:
                continue
            # Partials are merged in the order they were stored, and the watermark is judged
            # after each, as the worker would have after each record: a partition that went
            # idle later must not hide that the others had got ahead before.
            yield from self._close_due()
            for start, events in late.items():
                # A worker summed these before it heard the bucket had closed: kept, as a
                # partial of that one bucket, not added.
                self.metrics.late_partial_events.inc(events)
                kept = Partial(partition, seq, partial.latest, partial.holding)
                kept.cells, kept.counted = {start: partial.cells[start]}, {start: events}
                self.late.append((f"partial/{partition}/{seq}/{start}", start, encode(kept)))
                log.warning("partition %d partial %d: %d events for closed bucket %d",
                            partition, seq, events, start)  # fmt: skip

    def _close_due(self) -> Iterator[None]:
        """Score and queue every bucket the watermark has passed, one at a time."""
        closing = self.aggregator.close_due()
        if closing:
            self.apply_feedback()
        for bucket in closing:
            started = time.perf_counter()
            closed = self.watch.close(bucket, self.aggregator)
            self.metrics.detector.observe(time.perf_counter() - started)
            readings, anomalies = closed.readings, closed.anomalies
            for r in readings:
                band = (r.lower, r.expected, r.upper)
                self.metrics.reading(r.indicator, r.slice, r.value, r.n, r.score, band)
                if r.indicator == "compliance_rate":
                    self.metrics.interval(r.slice, r.k, r.n)
                self.readings.append(
                    (r.indicator, *r.slice, r.bucket_start, r.value, r.k, r.n,
                     r.score, r.expected, r.lower, r.upper)
                )  # fmt: skip
            for a in anomalies:
                self.metrics.anomalies.labels(a.indicator, a.severity).inc()
                self.metrics.anomaly_categories.labels(a.category).inc()
            self.anomalies.extend(anomalies)
            self._bank_blob = None
            self.metrics.buckets_closed.inc()
            self.metrics.series.set(self.watch.watched)
            self.closed_at.append(started)
            yield
        if closing:
            self._windows_due = True
        if self.aggregator.clock.watermark > float("-inf"):
            self.metrics.watermark.set(self.aggregator.clock.watermark)

    def apply_feedback(self) -> None:
        """Apply verdicts posted since the last bucket closed to the series they are about."""
        book = self.watch.feedback
        for row in self.store.feedback_after(book.cursor):
            book.cursor = max(book.cursor, int(row["feedback_id"]))
            if row["verdict"] not in VERDICTS:
                continue
            key = (row["org"], row["product_line"], row["channel"])
            span = self.watch.span_of(int(row["bucket_seconds"]))
            book.apply(row["indicator"], key, row["verdict"], row["value"], row["expected"], span)
            self._bank_blob = None

    def take_flush(self, force: bool = True) -> Flush | None:
        """Everything the next checkpoint must cover; resets the pending lists.

        Unless ``force``, returns None (nothing taken) when the detector state changed and was
        pickled less than ten pickling-times ago: a replay closes buckets every second or two,
        and re-pickling every series each time would cost more than the events themselves. The
        merged partials simply stay in the store a little longer.
        """
        if (
            not force
            and self._bank_blob is None
            and time.monotonic() - self._pickled_at < 10 * self._pickle_seconds
        ):
            return None
        if self._windows_due:
            self._windows_due = False
            rows = self.watch.window_rows()
            self.metrics.windows(rows)
            as_of = self.watch.as_of
            self.windows = [encode_window(key, name, as_of, sums) for key, name, sums in rows]
        agg = self.aggregator
        if self._bank_blob is None:
            started = time.monotonic()
            self._bank_blob = pickle.dumps(self.watch, protocol=pickle.HIGHEST_PROTOCOL)
            self._pickled_at = time.monotonic()
            self._pickle_seconds = self._pickled_at - started
            self._bank_stored = False
        state = pickle.dumps(agg, protocol=pickle.HIGHEST_PROTOCOL)
        flush = Flush(
            state, None if self._bank_stored else self._bank_blob, dict(agg.merged),
            agg.clock.closed_through, agg.dedup_horizon, self.readings, self.anomalies,
            self.late, self.windows, self.closed_at,
        )  # fmt: skip
        self._bank_stored = True  # a failed save stops the worker: nothing to retry here
        self.readings, self.anomalies, self.late = [], [], []
        self.windows, self.closed_at = [], []
        return flush

    def save(self, flush: Flush) -> None:
        self.store.save_checkpoint(
            self.checkpoint_name,
            flush.state,
            detectors=flush.detectors,
            epoch=self.epoch,
            merged=flush.merged,
            closed_through=flush.closed_through,
            forget_before=flush.forget_before,
            readings=flush.readings,
            anomalies=[a.as_dict() for a in flush.anomalies],
            late=flush.late,
        )
        if flush.windows:
            # Derived from the state just saved, and an upsert: a crash in between only leaves
            # the previous windows until the next bucket closes.
            self.store.save_windows(flush.windows)
        # Anomalies were published before this call, so a bucket is fully out once stored.
        stored = time.perf_counter()
        for closed in flush.closed_at:
            self.metrics.bucket_close.observe(stored - closed)
