"""Per-event aggregation: de-duplicate, place in an event-time bucket, add to every slice.

Plain dicts and float vectors on purpose: this runs once per event, and a Faust table write per
event would cost a changelog record each (see ``docs/design.md``). Durability comes from the
worker's checkpoints instead (:mod:`streams.checkpoint`).

>>> from streams.schema import parse_event
>>> from streams.slices import Slicer
>>> agg = Aggregator(86400, 3600, 86400, Slicer((), 100))
>>> def call(i, when):
...     return parse_event({"event_id": f"c{i}", "event_type": "call.completed",
...         "event_time": when, "org_code": "01", "product_line": "life", "channel": "TELE",
...         "payload": {"queue": "q", "answered": True, "wait_seconds": 3}})
>>> agg.add(call(1, "2026-03-02T10:00:00+08:00")), agg.add(call(1, "2026-03-02T10:00:00+08:00"))
('accepted', 'duplicate')
>>> agg.add(call(2, "2026-03-03T02:00:00+08:00"))   # next day, past the lateness
'accepted'
>>> [b.start for b in agg.close_due()]
[1772380800]
>>> agg.add(call(3, "2026-03-02T23:00:00+08:00"))   # belongs to the closed day
'late'
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from streams.cases import CaseBook
from streams.indicators import contributions, new_accumulator
from streams.schema import EventBase
from streams.slices import SliceKey, Slicer
from streams.targets import TargetBook
from streams.windows import EventClock, bucket_start

#: Event types whose concentration is watched, with the names their contributors are kept under.
CONCENTRATING = {
    "complaint.received": "complaints",
    "policy.surrendered": "surrenders",
    "policy.cooling_off_cancel": "cooling_off_cancels",
}
TOP_N = 8  # contributors kept per (kind, leaf, dimension) and bucket
#: (org_path, product_line, channel) of an event: the cell its bucket sums are kept in.
Cell = tuple[str, str, str]


@dataclass
class ClosedBucket:
    start: int
    slices: dict[SliceKey, list[float]]
    #: (kind, org_code, product_line, channel) -> {"agent:<id>" or "product:<code>": count}
    contributors: dict[tuple[str, str, str, str], dict[str, int]] = field(default_factory=dict)
    #: org_code -> duplicate events re-sent for this bucket
    duplicates: dict[str, int] = field(default_factory=dict)


def _top(counts: dict[str, int], key: str) -> None:
    """Space-saving count of ``key`` in at most ``2 * TOP_N`` entries (agents and products)."""
    if key in counts:
        counts[key] += 1
    elif len(counts) < 2 * TOP_N:
        counts[key] = 1
    else:  # evict the smallest, inheriting its count: the top stays right for heavy hitters
        smallest = min(counts, key=counts.__getitem__)
        counts[key] = counts.pop(smallest) + 1


@dataclass
class Aggregator:
    bucket_seconds: int
    allowed_lateness_seconds: int
    dedup_retention_seconds: int
    slicer: Slicer
    clock: EventClock = field(init=False)
    #: event_id -> start of its bucket; kept until retention passes so re-sends stay duplicates.
    seen: dict[str, int] = field(default_factory=dict)
    #: ids added since the last checkpoint, persisted incrementally.
    new_ids: list[tuple[str, int]] = field(default_factory=list)
    #: bucket start -> cell -> sums; a cell is the finest grain an event has.
    buckets: dict[int, dict[Cell, list[float]]] = field(default_factory=dict)
    cases: CaseBook = field(default_factory=CaseBook)
    targets: TargetBook = field(default_factory=TargetBook)
    contributors: dict[int, dict[tuple[str, str, str, str], dict[str, int]]] = field(
        default_factory=dict
    )
    duplicates: dict[int, dict[str, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clock = EventClock(self.bucket_seconds, self.allowed_lateness_seconds)

    def add(self, event: EventBase, partition: int = 0, now: float = 0.0) -> str:
        """Count one event read from ``partition`` at wall time ``now``; returns 'accepted',
        'duplicate' or 'late'."""
        epoch = event.event_time.timestamp()
        # Every event, even a duplicate or a late one, shows how far its partition has got.
        self.clock.observe(epoch, partition, now)
        event_id = event.event_id
        if event_id in self.seen:
            dup_start = self.seen[event_id]
            if dup_start in self.buckets:
                per_org = self.duplicates.setdefault(dup_start, {})
                per_org[event.org_code] = per_org.get(event.org_code, 0) + 1
            return "duplicate"
        start = bucket_start(epoch, self.bucket_seconds)
        self.seen[event_id] = start
        self.new_ids.append((event_id, start))
        kind = event.event_type  # type: ignore[attr-defined]
        if kind in _CASE_TYPES or kind == "target.set":
            # Timers and targets need every event, a late one too: a late close still closes.
            self._track(event, kind, epoch)
        if self.clock.status(start) == "closed":
            return "late"
        cells = self.buckets.get(start)
        if cells is None:
            cells = self.buckets[start] = {}
        adds = contributions(event)
        if not adds:
            return "accepted"
        # Only the event's own (org path, line, channel) cell is touched here; roll-up slices
        # are summed from the cells when the bucket closes, once per cell instead of per event.
        cell = (event.org_path or event.org_code, event.product_line, event.channel)
        acc = cells.get(cell)
        if acc is None:
            acc = cells[cell] = new_accumulator()
        for i, amount in adds:
            acc[i] += amount
        if kind in CONCENTRATING:
            self._contribute(event, CONCENTRATING[kind], start)
        return "accepted"

    def _track(self, event: EventBase, kind: str, epoch: float) -> None:
        p = event.payload  # type: ignore[attr-defined]
        leaf = (event.org_path or event.org_code, event.product_line, event.channel)
        if kind == "complaint.received":
            self.cases.open_complaint(p.complaint_id, epoch, leaf)
        elif kind == "complaint.closed":
            self.cases.close_complaint(p.complaint_id)
        elif kind == "claim.reported":
            self.cases.open_claim(p.claim_id, epoch, leaf)
        elif kind == "claim.closed":
            self.cases.close_claim(p.claim_id)
        else:
            self.targets.set(leaf, p.period, float(p.target_premium), epoch)

    def _contribute(self, event: EventBase, kind: str, start: int) -> None:
        per_bucket = self.contributors.setdefault(start, {})
        key = (kind, event.org_code, event.product_line, event.channel)
        counts = per_bucket.get(key)
        if counts is None:
            counts = per_bucket[key] = {}
        if event.agent_id:
            _top(counts, "agent:" + event.agent_id)
        if event.product_code:
            _top(counts, "product:" + event.product_code)

    def close_due(self, now: float = 0.0, lagging: Collection[int] = ()) -> list[ClosedBucket]:
        """Buckets the watermark has passed, oldest first; they are removed from memory."""
        closed = [
            ClosedBucket(
                s,
                self._roll_up(self.buckets.pop(s, {})),
                self.contributors.pop(s, {}),
                self.duplicates.pop(s, {}),
            )
            for s in self.clock.due(now, lagging)
        ]
        if closed:
            self._forget_old_ids()
        return closed

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

    def _forget_old_ids(self) -> None:
        horizon = self.clock.closed_through - self.dedup_retention_seconds
        if horizon == float("-inf"):
            return
        stale = [k for k, start in self.seen.items() if start < horizon]
        for k in stale:
            del self.seen[k]

    @property
    def dedup_horizon(self) -> float:
        """Ids of buckets starting before this are no longer remembered."""
        return self.clock.closed_through - self.dedup_retention_seconds


_CASE_TYPES = frozenset(
    ("complaint.received", "complaint.closed", "claim.reported", "claim.closed")
)
