"""The worker's two stages in one process, wired as the Faust app wires them, for tests.

:class:`Local` is the bare data path — a combiner per partition, partials through their wire
format, one aggregator — for tests about sums, lateness and the watermark. :class:`Stages` is the
whole of it over a real store: intake, stored partials, closer, checkpoints. :func:`dump` reads
what a run stored, to compare runs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from monitor.metrics import Metrics
from monitor.store import Store
from streams.aggregate import Aggregator, ClosedBucket
from streams.closer import Closer
from streams.combine import Combiner
from streams.intake import Intake
from streams.partial import decode, encode
from streams.schema import EventBase
from streams.slices import SliceKey, Slicer


class Local:
    def __init__(
        self,
        bucket_seconds: int,
        lateness: int,
        retention: int,
        slicer: Slicer,
        partitions: tuple[int, ...] = (0,),
    ) -> None:
        self.aggregator = Aggregator(bucket_seconds, lateness, retention, slicer)
        self.aggregator.clock.expect(partitions)
        self.combiners: dict[int, Combiner] = {}

    @property
    def clock(self) -> Any:
        return self.aggregator.clock

    def __getattr__(self, name: str) -> Any:
        # The closing side's state (slicer, targets, buckets, dedup_horizon) is the aggregator's;
        # the counting side's (seen, new_ids) is partition 0's combiner.
        if name in ("seen", "new_ids"):
            return getattr(self.combiner(0), name)
        if name == "buckets":
            self.flush()
        return getattr(self.aggregator, name)

    def combiner(self, partition: int) -> Combiner:
        if partition not in self.combiners:
            agg = self.aggregator
            self.combiners[partition] = Combiner(
                partition, agg.bucket_seconds, agg.dedup_retention_seconds
            )
        return self.combiners[partition]

    def add(self, event: EventBase, partition: int = 0, now: float = 0.0) -> str:
        combiner = self.combiner(partition)
        combiner.heard = now
        return combiner.add(event, self.aggregator.clock.closed_through)

    def flush(self, now: float = 0.0) -> None:
        """Every combiner's partial, merged."""
        for combiner in self.combiners.values():
            partial = combiner.take(now)
            if partial is not None:
                self.aggregator.merge(decode(encode(partial)))

    def close_due(self, now: float = 0.0) -> list[ClosedBucket]:
        self.flush(now)
        closed = self.aggregator.close_due()
        horizon = self.aggregator.dedup_horizon
        for combiner in self.combiners.values():
            combiner.forget_before(horizon)
        return closed

    def slices_of(self, start: int) -> dict[SliceKey, list[float]]:
        self.flush()
        return self.aggregator.slices_of(start)


class Stages:
    """Intake and closer over one store, checkpointed together as one worker does."""

    def __init__(self, settings: Any, metrics: Metrics, store: Store, partitions: int = 2):
        self.intake = Intake.create(settings, metrics, store)
        self.intake.assigned(range(partitions))
        self.closer = Closer.create(settings, metrics, store, partitions)

    def handle(self, value: bytes | None, topic: str, partition: int, offset: int,
               behind: bool = False) -> list[dict]:  # fmt: skip
        dead = self.intake.handle(value, topic, partition, offset, behind)
        assert dead is not None, f"partition {partition} is not assigned"
        return dead

    def checkpoint(self) -> None:
        """Store the intake's partials, then merge, close, score and store them."""
        self.intake.save(self.intake.take_flush())
        self.closer.poll()
        flush = self.closer.take_flush()
        assert flush is not None  # forced: always taken
        self.closer.save(flush)
        self.intake.heard_of_close(flush.closed_through)


def dump(db: Path) -> tuple[list[tuple], list[tuple]]:
    """Every stored reading and anomaly (without its wall-clock creation time), in a fixed order."""
    with sqlite3.connect(db) as conn:
        readings = conn.execute(
            "SELECT * FROM indicator_values ORDER BY indicator, org, product_line, channel, "
            "bucket_start"
        ).fetchall()
        anomalies = conn.execute(
            "SELECT anomaly_id, indicator, org, product_line, channel, bucket_start, value, "
            "expected, lower, upper, score, k, n, detector, severity FROM anomalies "
            "ORDER BY anomaly_id"
        ).fetchall()
    return readings, anomalies
