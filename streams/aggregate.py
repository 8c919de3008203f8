"""Stage two's buckets: every partition's partials merged per cell, closed by the watermark.

Per event nothing happens here: the first stage (:mod:`streams.combine`) has summed events per
cell; merging a partial adds its cells into the open buckets, replays its case timers and
targets in order, and reports its partition's progress to the :class:`EventClock`. Partials are
numbered per partition and a partial already merged is skipped, so reading one twice (after a
restart) changes nothing. When the watermark passes a bucket the bucket closes: its cells are
summed into every slice they count in — the total, every org above them, line, channel and the
configured combinations — once per cell instead of once per event.

>>> from streams.partial import Partial
>>> from streams.slices import Slicer
>>> from streams.fields import FIELD, new_accumulator
>>> agg = Aggregator(3600, 0, 86400, Slicer((), 100))
>>> agg.clock.expect([0])
>>> p = Partial(partition=0, seq=1, latest=1_772_384_400.0, holding=True)   # 01:00
>>> p.cells[1_772_380_800] = {("00/44", "life", "TELE"): new_accumulator()}  # 00:00
>>> p.cells[1_772_380_800][("00/44", "life", "TELE")][FIELD["calls"]] = 2.0
>>> agg.merge(p), agg.merge(p)   # the second time it is a re-read: skipped
({}, None)
>>> [(b.start, b.slices[("44", "*", "*")][FIELD["calls"]]) for b in agg.close_due()]
[(1772380800, 2.0)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from operator import add
from typing import Any

from streams.cases import CaseBook
from streams.combine import TOP_N
from streams.partial import Cell, ContributorKey, Partial
from streams.slices import SliceKey, Slicer
from streams.targets import TargetBook
from streams.windows import EventClock


@dataclass
class ClosedBucket:
    start: int
    slices: dict[SliceKey, list[float]]
    #: (kind, org_code, product_line, channel) -> {"agent:<id>" or "product:<code>": count}
    contributors: dict[ContributorKey, dict[str, int]] = field(default_factory=dict)
    #: org_code -> duplicate events re-sent for this bucket
    duplicates: dict[str, int] = field(default_factory=dict)


@dataclass
class Aggregator:
    bucket_seconds: int
    allowed_lateness_seconds: int
    dedup_retention_seconds: int
    slicer: Slicer
    clock: EventClock = field(init=False)
    #: partition -> number of the last partial merged from it
    merged: dict[int, int] = field(default_factory=dict)
    #: bucket start -> cell -> sums; a cell is the finest grain an event has.
    buckets: dict[int, dict[Cell, list[float]]] = field(default_factory=dict)
    cases: CaseBook = field(default_factory=CaseBook)
    targets: TargetBook = field(default_factory=TargetBook)
    contributors: dict[int, dict[ContributorKey, dict[str, int]]] = field(default_factory=dict)
    duplicates: dict[int, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clock = EventClock(self.bucket_seconds, self.allowed_lateness_seconds)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # A checkpoint of the single-stage worker kept the remembered ids in here (they are in
        # the store's seen_events too) and had merged no partial yet.
        state.pop("seen", None)
        state.pop("new_ids", None)
        self.__dict__.update({"merged": {}, **state})

    def merge(self, partial: Partial) -> dict[int, int] | None:
        """Add one partial; returns the events it brought for buckets closed already (bucket
        start -> events, not added), or None when it was merged before."""
        if partial.seq <= self.merged.get(partial.partition, 0):
            return None
        self.merged[partial.partition] = partial.seq
        cases = self.cases
        for op, case_id, at, leaf in partial.cases:
            if op == "open_complaint":
                cases.open_complaint(case_id, at, leaf)
            elif op == "close_complaint":
                cases.close_complaint(case_id)
            elif op == "open_claim":
                cases.open_claim(case_id, at, leaf)
            else:
                cases.close_claim(case_id)
        for leaf, period, target, at in partial.targets:
            self.targets.set(leaf, period, target, at)
        late: dict[int, int] = {}
        status = self.clock.status
        for start, cells in partial.cells.items():
            if status(start) == "closed":  # summed by a worker that had not heard of the close
                late[start] = partial.counted.get(start, 0)
                continue
            mine = self.buckets.setdefault(start, {})
            for cell, sums in cells.items():
                acc = mine.get(cell)
                mine[cell] = sums if acc is None else list(map(add, acc, sums))
        for start, per_key in partial.contributors.items():
            if status(start) == "open":
                _merge_contributors(self.contributors.setdefault(start, {}), per_key)
        for start, per_org in partial.duplicates.items():
            if status(start) == "open":
                mine_dup = self.duplicates.setdefault(start, {})
                for org, n in per_org.items():
                    mine_dup[org] = mine_dup.get(org, 0) + n
        self.clock.report(partial.partition, partial.latest, partial.holding, partial.cells)
        return late

    def close_due(self) -> list[ClosedBucket]:
        """Buckets the watermark has passed, oldest first; they are removed from memory."""
        return [
            ClosedBucket(
                s,
                self._roll_up(self.buckets.pop(s, {})),
                self.contributors.pop(s, {}),
                self.duplicates.pop(s, {}),
            )
            for s in self.clock.due()
        ]

    def slices_of(self, start: int) -> dict[SliceKey, list[float]]:
        """The sums so far of an open bucket, per slice."""
        return self._roll_up(self.buckets.get(start, {}))

    def _roll_up(self, cells: dict[Cell, list[float]]) -> dict[SliceKey, list[float]]:
        """Sum a bucket's cells into every slice they count in."""
        slices: dict[SliceKey, list[float]] = {}
        for (path, product_line, channel), cell in cells.items():
            for key in self.slicer.slices(path, product_line, channel):
                acc = slices.get(key)
                if acc is None:
                    slices[key] = cell.copy()
                else:
                    for i, amount in enumerate(cell):
                        acc[i] += amount
        return slices

    @property
    def dedup_horizon(self) -> float:
        """Ids of buckets starting before this are no longer remembered."""
        return self.clock.closed_through - self.dedup_retention_seconds


def _merge_contributors(
    mine: dict[ContributorKey, dict[str, int]], theirs: dict[ContributorKey, dict[str, int]]
) -> None:
    """Add another partial's top contributors into a bounded summary per key.

    Counts are added; when more than ``2 * TOP_N`` names remain, the next-largest count is
    taken off every name and those left at zero go (the Misra-Gries merge): a contributor
    with more than 1/17 of a key's events is never lost, however the partials were cut. Plain
    "keep the largest" would drop a steady heavy hitter that is small in every single partial.
    """
    keep = 2 * TOP_N
    for key, counts in theirs.items():
        known = mine.get(key)
        if known is None:
            mine[key] = dict(counts)
            continue
        for name, n in counts.items():
            known[name] = known.get(name, 0) + n
        if len(known) > keep:
            cut = sorted(known.values(), reverse=True)[keep]
            mine[key] = {name: n - cut for name, n in known.items() if n > cut}
