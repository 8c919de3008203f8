"""Stage one, per input partition: de-duplicate events and sum them per cell into the next partial.

This is the per-event work of the worker, and it runs on whichever worker owns the partition: a
dict lookup for de-duplication, a few float additions into the event's cell — its (org path,
product line, channel) — and, for complaints, surrenders and cooling-off cancellations, a
space-saving count of agents and products. Nothing closes here; the closing stage merges the
partials of every partition (:mod:`streams.partial`, :mod:`streams.aggregate`).

Lateness needs to know what the closing stage has closed (``closed_through``); the worker hands
it in. An event for a bucket closed already is late: it is not summed, and the caller keeps it.

>>> from streams.schema import parse_event
>>> feed = Combiner(partition=0, bucket_seconds=86400, dedup_retention_seconds=86400)
>>> def call(i, when):
...     return parse_event({"event_id": f"c{i}", "event_type": "call.completed",
...         "event_time": when, "org_code": "01", "product_line": "life", "channel": "TELE",
...         "payload": {"queue": "q", "answered": True, "wait_seconds": 3}})
>>> feed.add(call(1, "2026-03-02T10:00:00+08:00")), feed.add(call(1, "2026-03-02T10:00:00+08:00"))
('accepted', 'duplicate')
>>> partial = feed.take(now=0.0)
>>> partial.seq, partial.counted, partial.holding
(1, {1772380800: 1}, True)
>>> feed.add(call(2, "2026-03-02T23:00:00+08:00"), closed_through=1772467200)  # day closed
'late'
>>> late = feed.take(now=0.0)       # nothing summed, but the partition got further
>>> late.cells, late.latest > partial.latest
({}, True)
>>> feed.take(now=0.0) is None     # nothing new to say
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from streams.fields import contributions, new_accumulator
from streams.partial import Partial
from streams.schema import EventBase
from streams.windows import bucket_start

#: Event types whose concentration is watched, with the names their contributors are kept under.
CONCENTRATING = {
    "complaint.received": "complaints",
    "policy.surrendered": "surrenders",
    "policy.cooling_off_cancel": "cooling_off_cancels",
}
TOP_N = 8  # contributors kept per (kind, leaf, dimension) and bucket
#: A partition caught up and silent this long (wall time) stops holding the watermark back: an
#: org whose feed stopped must not stall everyone.
IDLE_SECONDS = 30.0
#: How long a partition that has delivered nothing since it was assigned holds the watermark:
#: long enough for the consumer's first fetch of every partition, short enough that an empty
#: one does not delay every bucket.
UNHEARD_SECONDS = 5.0
_CASE_OPS = {
    "complaint.received": "open_complaint",
    "complaint.closed": "close_complaint",
    "claim.reported": "open_claim",
    "claim.closed": "close_claim",
}


def top(counts: dict[str, int], key: str) -> None:
    """Space-saving count of ``key`` in at most ``2 * TOP_N`` entries (agents and products)."""
    if key in counts:
        counts[key] += 1
    elif len(counts) < 2 * TOP_N:
        counts[key] = 1
    else:  # evict the smallest, inheriting its count: the top stays right for heavy hitters
        smallest = min(counts, key=counts.__getitem__)
        counts[key] = counts.pop(smallest) + 1


@dataclass
class Combiner:
    partition: int
    bucket_seconds: int
    dedup_retention_seconds: int
    seq: int = 0  # number of the last partial taken
    #: event_id -> start of its bucket; kept until retention passes so re-sends stay duplicates.
    seen: dict[str, int] = field(default_factory=dict)
    #: ids added since the last checkpoint, persisted with it.
    new_ids: list[tuple[str, int, int]] = field(default_factory=list)
    latest: float = -math.inf  # latest event time read since the partition was assigned
    heard: float = 0.0  # wall time of assignment or of the last record read
    behind: bool = False  # the last record read had more records after it
    pending: Partial = field(init=False)
    _sent: tuple[float, bool] | None = None  # the progress the last partial reported

    def __post_init__(self) -> None:
        self.pending = Partial(self.partition, 0, -math.inf, True)

    def add(self, event: EventBase, closed_through: float = -math.inf) -> str:
        """Count one event; returns 'accepted', 'duplicate' or 'late'."""
        epoch = event.event_time.timestamp()
        # Every event, a duplicate or a late one too, shows how far its partition has got.
        if epoch > self.latest:
            self.latest = epoch
        p = self.pending
        event_id = event.event_id
        known = self.seen.get(event_id)
        if known is not None:
            if known >= closed_through:  # re-sends into an open bucket are a data-quality sign
                per_org = p.duplicates.setdefault(known, {})
                per_org[event.org_code] = per_org.get(event.org_code, 0) + 1
            return "duplicate"
        start = bucket_start(epoch, self.bucket_seconds)
        self.seen[event_id] = start
        self.new_ids.append((event_id, start, self.partition))
        kind = event.event_type  # type: ignore[attr-defined]
        leaf = (event.org_path or event.org_code, event.product_line, event.channel)
        if kind in _CASE_OPS or kind == "target.set":
            # Timers and targets need every event, a late one too: a late close still closes.
            pay = event.payload  # type: ignore[attr-defined]
            if kind == "target.set":
                p.targets.append([leaf, pay.period, float(pay.target_premium), epoch])
            else:
                case_id = pay.complaint_id if kind.startswith("complaint") else pay.claim_id
                p.cases.append([_CASE_OPS[kind], case_id, epoch, leaf])
        if start < closed_through:
            return "late"
        cells = p.cells.get(start)
        if cells is None:  # a bucket with events closes, even if none of them adds to a sum
            cells = p.cells[start] = {}
        p.counted[start] = p.counted.get(start, 0) + 1
        adds = contributions(event)
        if not adds:
            return "accepted"
        acc = cells.get(leaf)
        if acc is None:
            acc = cells[leaf] = new_accumulator()
        for i, amount in adds:
            acc[i] += amount
        if kind in CONCENTRATING:
            self._contribute(event, CONCENTRATING[kind], start)
        return "accepted"

    def _contribute(self, event: EventBase, kind: str, start: int) -> None:
        per_bucket = self.pending.contributors.setdefault(start, {})
        key = (kind, event.org_code, event.product_line, event.channel)
        counts = per_bucket.get(key)
        if counts is None:
            counts = per_bucket[key] = {}
        if event.agent_id:
            top(counts, "agent:" + event.agent_id)
        if event.product_code:
            top(counts, "product:" + event.product_code)

    def holding(self, now: float) -> bool:
        """Whether the partition holds the watermark back: it has a backlog (never idle: a
        replay is not a silent feed), or was heard from recently."""
        if self.behind:
            return True
        limit = IDLE_SECONDS if self.latest > -math.inf else UNHEARD_SECONDS
        return now - self.heard <= limit

    def take(self, now: float) -> Partial | None:
        """The next partial; None when there is nothing new to say."""
        p = self.pending
        progress = (self.latest, self.holding(now))
        if p.empty and progress == self._sent:
            return None
        self.seq += 1
        p.seq, (p.latest, p.holding) = self.seq, progress
        self._sent = progress
        self.pending = Partial(self.partition, 0, -math.inf, True)
        return p

    def forget_before(self, horizon: float) -> None:
        """Forget ids of buckets starting before ``horizon`` (their re-sends are late anyway)."""
        stale = [k for k, start in self.seen.items() if start < horizon]
        for k in stale:
            del self.seen[k]
