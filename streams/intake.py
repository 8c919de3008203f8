"""Stage one of the worker, free of Faust: records in, events de-duplicated and summed, partials
out — on every worker, for the input partitions it owns.

Every checkpoint the intake writes, in one transaction, each owned partition's partial (what it
counted since the previous one, :mod:`streams.partial`), the event ids it counted and its late
events; only then are the records acknowledged. After a crash Kafka redelivers whatever was not
acknowledged: ids already stored are duplicates, the rest were in no partial and count now. So
an event counts once, whichever worker reads it and however often. A partition taken over from
another worker starts from that worker's stored ids and partial number.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from monitor.metrics import Metrics
from monitor.store import Store
from monitor.store.partials import PartitionState
from streams.checks import ReceivingClock
from streams.combine import Combiner
from streams.decode import decode_record
from streams.partial import encode
from streams.schema import EVENT_TYPES

log = logging.getLogger(__name__)


@dataclass
class IntakeFlush:
    """What one first-stage checkpoint covers; taken in one synchronous step."""

    partials: list[tuple[int, int, bytes]]  # (partition, seq, encoded partial)
    states: dict[int, tuple[PartitionState, PartitionState]]  # partition -> (stored, next)
    new_ids: list[tuple[str, int, int]]  # (event id, bucket start, partition)
    late: list[tuple[str, int, bytes]]
    acks: list[Any]


@dataclass
class Intake:
    name: str  # the consumer group: partition states are stored under it
    bucket_seconds: int
    #: also bounds how far ahead of this worker's clock an event may be dated (ReceivingClock)
    allowed_lateness_seconds: int
    dedup_retention_seconds: int
    metrics: Metrics
    store: Store
    combiners: dict[int, Combiner] = field(default_factory=dict)
    #: each owned partition's state as stored by its last checkpoint
    stored: dict[int, PartitionState] = field(default_factory=dict)
    #: each owned partition's last record handled
    offsets: dict[int, int] = field(default_factory=dict)
    #: every bucket starting before this is closed: as far as this worker has heard
    closed_through: float = -math.inf
    late: list[tuple[str, int, bytes]] = field(default_factory=list)
    acks: list[Any] = field(default_factory=list)

    @classmethod
    def create(cls, settings: Any, metrics: Metrics, store: Store) -> Intake:
        # How far the closer has closed is read with each assignment and checkpoint.
        return cls(
            settings.app_id, settings.bucket_seconds, settings.allowed_lateness_seconds,
            settings.dedup_retention_seconds, metrics, store,
        )  # fmt: skip

    def handle(
        self, value: bytes | None, topic: str, partition: int, offset: int, behind: bool = False
    ) -> list[dict] | None:
        """Count one record's events; returns dead letters for what was not a valid event, or
        None for a record of a partition this worker does not own (left unacknowledged: its
        owner reads it).

        ``behind``: the partition has more records after this one."""
        combiner = self.combiners.get(partition)
        if combiner is None:
            # Only a record fetched just before its partition was revoked: counting it here
            # would make two owners of one partition.
            log.warning("record %s/%s@%s of a partition not owned here: left to its owner",
                        topic, partition, offset)  # fmt: skip
            return None
        now = time.time()
        combiner.heard = now
        combiner.behind = behind
        # Events dated too far ahead become dead letters before they can move the watermark.
        clock = ReceivingClock.at(now, self.allowed_lateness_seconds)
        events, dead = decode_record(value, topic, partition, offset, clock)
        if (
            offset <= self.stored[partition].offset
            and events
            and all(e.event_id in combiner.seen for e in events)
        ):
            # Counted and stored already: Kafka redelivers what was stored but not yet
            # committed when a partition moves or a worker restarts. Not re-sent events, so
            # not duplicates. (The ids must agree: a topic recreated after a broker lost its
            # data starts its offsets again, and new events there are counted.)
            return []
        self.offsets[partition] = max(offset, self.offsets.get(partition, -1))
        counts = self.metrics.event_counts
        closed_through = self.closed_through
        for event in events:
            outcome = combiner.add(event, closed_through)
            counts[event.event_type, outcome].inc()  # type: ignore[attr-defined]
            if outcome == "late":
                body = orjson.dumps(event.model_dump(mode="json"))
                self.late.append((event.event_id, combiner.seen[event.event_id], body))
        for letter in dead:
            self.metrics.dlq.labels(letter["reason"]).inc()
            counts[_type_of(letter), "invalid"].inc()
            log.warning(
                "dead letter %s at %s/%s@%s item %s",
                letter["reason"], topic, partition, offset, letter["index"],
            )  # fmt: skip
        return dead

    def assigned(self, partitions: Iterable[int]) -> None:
        """The input partitions owned here from now on: the others are dropped (call after the
        checkpoint that covers them); a new one resumes from its stored ids, partial number,
        offset and latest event time, and holds the watermark until it turns idle."""
        now = time.time()
        owned = set(partitions)
        for partition in self.combiners.keys() - owned:
            del self.combiners[partition], self.stored[partition]
            self.offsets.pop(partition, None)
        # What has closed meanwhile decides which of the loaded ids are still of use.
        self.heard_of_close(self.store.closed_through(self.name))
        new = [p for p in owned if p not in self.combiners]
        for partition, (state, seen) in self.store.load_partitions(self.name, new).items():
            # The latest event time read so far comes along: a partition with nothing left to
            # read is then an idle feed after IDLE_SECONDS, not an empty one after a moment.
            self.combiners[partition] = Combiner(
                partition, self.bucket_seconds, self.dedup_retention_seconds, state.seq, seen,
                latest=state.latest, heard=now,
            )  # fmt: skip
            self.stored[partition] = state
            log.info("partition %d: resumed after partial %d (offset %d), %d remembered ids",
                     partition, state.seq, state.offset, len(seen))  # fmt: skip

    def heard_of_close(self, closed_through: float) -> None:
        """The closing stage closed more buckets: later events for them are late, and ids of
        buckets past the de-duplication retention can be forgotten."""
        if closed_through <= self.closed_through:
            return
        self.closed_through = closed_through
        horizon = closed_through - self.dedup_retention_seconds
        for combiner in self.combiners.values():
            combiner.forget_before(horizon)

    def take_flush(self) -> IntakeFlush:
        """Everything the next checkpoint covers: a partial per partition with news."""
        now = time.time()
        partials, states, new_ids = [], {}, []
        for p, combiner in self.combiners.items():
            partial = combiner.take(now)
            if partial is not None:
                partials.append((p, partial.seq, encode(partial)))
            before = self.stored[p]
            offset = self.offsets.get(p, before.offset)
            if partial is not None or offset > before.offset:
                states[p] = (before, PartitionState(combiner.seq, combiner.latest, offset))
            new_ids += combiner.new_ids
            combiner.new_ids = []
        flush = IntakeFlush(partials, states, new_ids, self.late, self.acks)
        self.late, self.acks = [], []
        return flush

    def save(self, flush: IntakeFlush) -> None:
        self.saved(flush, self.write(flush))

    def write(self, flush: IntakeFlush) -> float:
        """The store's part of :meth:`save`, which reads nothing of this intake's own state (so
        it may run off the event loop while records are counted); returns how far the closing
        stage has closed."""
        if flush.partials or flush.states or flush.new_ids or flush.late:
            self.store.save_intake(
                self.name, partials=flush.partials, states=flush.states, new_ids=flush.new_ids,
                late=flush.late,
            )  # fmt: skip
        # Another worker may be the one closing: learn how far it got.
        return self.store.closed_through(self.name)

    def saved(self, flush: IntakeFlush, closed_through: float) -> None:
        """The rest of :meth:`save`, once ``flush`` is written."""
        for p, (_, after) in flush.states.items():
            if p in self.stored:  # what the next checkpoint of the partition must replace
                self.stored[p] = replace(after, raw=after.encode())
        self.heard_of_close(closed_through)


def _type_of(letter: dict[str, Any]) -> str:
    original = letter.get("original")
    kind = original.get("event_type") if isinstance(original, dict) else None
    return kind if kind in EVENT_TYPES else "unknown"
