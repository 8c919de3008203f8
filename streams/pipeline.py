"""The worker's core, free of Faust: records in; events counted; buckets scored; checkpoints out.

Durability without Faust tables (whose changelog recovery the embedded broker breaks, see
``docs/design.md``): the worker acknowledges a record only after a checkpoint covering it is in
the history store. A checkpoint writes, in one transaction, the open buckets and detector state,
the event ids seen since the last one, and the readings and anomalies of buckets closed since.
After a crash, Kafka redelivers everything not yet acknowledged; ids already in the checkpoint are
recognised as duplicates, the rest are counted for the first time — so every event counts once.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from monitor.metrics import Metrics
from monitor.store import Store
from streams.aggregate import Aggregator
from streams.decode import decode_record
from streams.feedback import VERDICTS
from streams.schema import EVENT_TYPES
from streams.scoring import Anomaly
from streams.slices import Slicer
from streams.watch import Watch, encode_window

log = logging.getLogger(__name__)


@dataclass
class Flush:
    """What one checkpoint covers; taken in one synchronous step so it is self-consistent."""

    state: bytes
    new_ids: list[tuple[str, int]]
    forget_before: float
    readings: list[tuple[Any, ...]]
    anomalies: list[Anomaly]
    late: list[tuple[str, int, bytes]]
    acks: list[Any]
    windows: list[tuple[Any, ...]] = field(default_factory=list)
    #: ``time.perf_counter()`` when each bucket in this flush closed, for the close-delay metric.
    closed_at: list[float] = field(default_factory=list)


@dataclass
class Pipeline:
    aggregator: Aggregator
    watch: Watch
    metrics: Metrics
    store: Store
    checkpoint_name: str
    readings: list[tuple[Any, ...]] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    late: list[tuple[str, int, bytes]] = field(default_factory=list)
    acks: list[Any] = field(default_factory=list)
    windows: list[tuple[Any, ...]] = field(default_factory=list)
    #: input partitions known to have records not consumed yet (see EventClock.due)
    lagging: set[int] = field(default_factory=set)
    closed_at: list[float] = field(default_factory=list)
    _bank_blob: bytes | None = None
    #: Buckets closed since the windows were last exported; only the latest windows are kept,
    #: so they are computed once per checkpoint, not once per bucket (a replay closes many).
    _windows_due: bool = False
    _pickled_at: float = 0.0  # monotonic time the detector state was last pickled
    _pickle_seconds: float = 0.0  # and how long that took

    @classmethod
    def create(cls, settings: Any, metrics: Metrics, store: Store) -> Pipeline:
        """A pipeline resumed from the store's last checkpoint, or a fresh one."""
        blob, seen = store.load_checkpoint(settings.app_id)
        if blob is not None:
            aggregator, bank_blob = pickle.loads(blob)
            watch = pickle.loads(bank_blob)
            log.info("resumed from checkpoint: %d open buckets, %d series, %d remembered ids",
                     len(aggregator.buckets), len(watch.series), len(seen))  # fmt: skip
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
        aggregator.seen = seen
        aggregator.new_ids = []
        aggregator.clock.resume(time.time())
        pipeline = cls(aggregator, watch, metrics, store, settings.app_id)
        metrics.series.set(len(watch.series))
        if aggregator.clock.watermark > float("-inf"):
            metrics.watermark.set(aggregator.clock.watermark)
        return pipeline

    def handle(
        self, value: bytes | None, topic: str, partition: int, offset: int, behind: bool = False
    ) -> list[dict]:
        """Count one record's events; returns dead letters for what was not a valid event.

        ``behind``: the partition has more records after this one."""
        if behind:
            self.lagging.add(partition)
        else:
            self.lagging.discard(partition)
        events, dead = decode_record(value, topic, partition, offset)
        counts = self.metrics.event_counts
        now = time.time()
        for event in events:
            outcome = self.aggregator.add(event, partition, now)
            counts[event.event_type, outcome].inc()  # type: ignore[attr-defined]
            if outcome == "late":
                body = orjson.dumps(event.model_dump(mode="json"))
                self.late.append((event.event_id, self.aggregator.seen[event.event_id], body))
        for letter in dead:
            self.metrics.dlq.labels(letter["reason"]).inc()
            counts[_type_of(letter), "invalid"].inc()
            log.warning(
                "dead letter %s at %s/%s@%s item %s",
                letter["reason"], topic, partition, offset, letter["index"],
            )  # fmt: skip
        if events:
            self.close_due(now)
        return dead

    def assigned(self, partitions: Iterable[int]) -> None:
        """Input partitions now owned by this worker; they hold the watermark until heard."""
        now = time.time()
        for partition in partitions:
            self.aggregator.clock.expect(partition, now)

    def revoked(self, partitions: Iterable[int]) -> None:
        """Input partitions moved to another worker no longer hold the watermark back."""
        for partition in partitions:
            self.aggregator.clock.forget(partition)
            self.lagging.discard(partition)

    def close_due(self, now: float) -> None:
        """Score and queue every bucket the watermark has passed."""
        closing = self.aggregator.close_due(now, self.lagging)
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
            self.metrics.series.set(len(self.watch.series))
            self.closed_at.append(started)
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
            book.apply(row["indicator"], key, row["verdict"], row["value"], row["expected"])
            self._bank_blob = None

    def take_flush(self, force: bool = True) -> Flush | None:
        """Everything the next checkpoint must cover; resets the pending lists.

        Unless ``force``, returns None (nothing taken, nothing to acknowledge yet) when the
        detector state changed and was pickled less than ten pickling-times ago: a replay closes
        buckets every second or two, and re-pickling every series each time would cost more
        than the events themselves. Records stay unacknowledged a little longer instead.
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
        seen, new_ids = agg.seen, agg.new_ids
        # The remembered ids are stored incrementally, not inside the state blob.
        agg.seen, agg.new_ids = {}, []
        try:
            if self._bank_blob is None:
                started = time.monotonic()
                self._bank_blob = pickle.dumps(self.watch, protocol=pickle.HIGHEST_PROTOCOL)
                self._pickled_at = time.monotonic()
                self._pickle_seconds = self._pickled_at - started
            state = pickle.dumps((agg, self._bank_blob), protocol=pickle.HIGHEST_PROTOCOL)
        finally:
            agg.seen, agg.new_ids = seen, []
        flush = Flush(
            state, new_ids, agg.dedup_horizon, self.readings, self.anomalies, self.late, self.acks,
            self.windows, self.closed_at,
        )  # fmt: skip
        self.readings, self.anomalies, self.late, self.acks = [], [], [], []
        self.windows, self.closed_at = [], []
        return flush

    def save(self, flush: Flush) -> None:
        self.store.save_checkpoint(
            self.checkpoint_name,
            flush.state,
            new_ids=flush.new_ids,
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


def _type_of(letter: dict[str, Any]) -> str:
    original = letter.get("original")
    kind = original.get("event_type") if isinstance(original, dict) else None
    return kind if kind in EVENT_TYPES else "unknown"
