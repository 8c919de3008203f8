"""The store between the worker's two stages: remembered event ids per input partition, partials
waiting to be merged, and how far the closing stage has closed.

The first stage writes a checkpoint's partials in the same transaction as the ids they counted,
and acknowledges its Kafka records only afterwards; the second stage deletes the partials it has
merged in the same transaction as its own checkpoint. So a partial is merged exactly once and an
event is counted exactly once, without Kafka transactions (which the embedded broker lacks):
after a crash, redelivered records whose ids are stored are duplicates, and the rest were never
in a partial.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from monitor.errors import PartitionTakenOver
from monitor.store.database import Database


def partition_state_name(name: str, partition: int) -> str:
    """Checkpoint row of one input partition's first stage (``name`` is the consumer group)."""
    return f"{name}/partition/{partition}"


def clock_name(name: str) -> str:
    """Checkpoint row where the closing stage says how far it has closed."""
    return f"{name}/clock"


def detectors_name(name: str) -> str:
    """Checkpoint row of the closing stage's detectors, written only when they changed."""
    return f"{name}/detectors"


def closer_name(name: str) -> str:
    """Checkpoint row holding the closing stage's epoch: which start of it may write."""
    return f"{name}/closer"


@dataclass(frozen=True)
class PartitionState:
    """Where one input partition's first stage stands, as stored with its last checkpoint."""

    seq: int = 0  # number of the last partial
    latest: float = -math.inf  # latest event time read
    offset: int = -1  # last record covered: records up to it are counted already
    raw: bytes | None = None  # the stored row, which the next write must replace (None: none)

    def encode(self) -> bytes:
        latest = self.latest if self.latest > -math.inf else None
        return orjson.dumps({"seq": self.seq, "latest": latest, "offset": self.offset})

    @classmethod
    def decode(cls, raw: bytes) -> PartitionState:
        d = orjson.loads(raw)
        latest = d.get("latest")
        latest = -math.inf if latest is None else float(latest)
        return cls(int(d["seq"]), latest, int(d.get("offset", -1)), raw)


class PartialStore:
    db: Database

    def save_intake(
        self,
        name: str,
        *,
        partials: Sequence[tuple[int, int, bytes]] = (),
        states: dict[int, tuple[PartitionState, PartitionState]] | None = None,
        new_ids: Sequence[tuple[str, int, int]] = (),
        late: Iterable[tuple[str, int, bytes]] = (),
    ) -> None:
        """One first-stage checkpoint, atomically: (partition, seq, body) partials, each
        partition's (previous, new) state, the (event id, bucket, partition) ids counted, and
        late events.

        A partition whose stored state is no longer the previous one given has been taken over
        by another worker: :class:`PartitionTakenOver` is raised and nothing is written."""
        now = time.time()
        with self.db.transaction() as tx:
            for partition, (before, after) in (states or {}).items():
                row = partition_state_name(name, partition)
                if before.raw is None:  # fails if another worker wrote one meanwhile
                    tx.execute(
                        "INSERT INTO checkpoints VALUES (?, ?, ?)", (row, after.encode(), now)
                    )
                    continue
                tx.execute(
                    "UPDATE checkpoints SET state = ?, updated_at = ? WHERE name = ? AND state = ?",
                    (after.encode(), now, row, before.raw),
                )
                if tx.rowcount() != 1:
                    raise PartitionTakenOver(
                        f"partition {partition} of {name!r} was checkpointed by another worker "
                        "since this one read it: this one no longer owns it and stops"
                    )
            tx.executemany(
                "INSERT INTO seen_events (event_id, bucket_start, source_partition) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                new_ids,
            )
            # No ON CONFLICT: a partial number taken twice means two owners of one partition,
            # and failing the checkpoint (the worker stops) beats losing one of the partials.
            tx.executemany(
                "INSERT INTO partials VALUES (?, ?, ?, ?)",
                ((p, seq, body, now) for p, seq, body in partials),
            )
            tx.executemany(
                "INSERT INTO late_events VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                ((i, b, body, now) for i, b, body in late),
            )

    def load_partitions(
        self, name: str, partitions: Iterable[int]
    ) -> dict[int, tuple[PartitionState, dict[str, int]]]:
        """Each partition's stored state and remembered ids (id -> bucket), read in one pass
        over the ids (a rebalance moves several at once).

        Ids stored before partitions were recorded go to every partition asked for."""
        wanted = sorted(set(partitions))
        out: dict[int, tuple[PartitionState, dict[str, int]]] = {}
        if not wanted:
            return out
        marks = ", ".join("?" * len(wanted))
        with self.db.transaction() as tx:
            names = [partition_state_name(name, p) for p in wanted]
            states = {
                r["name"]: PartitionState.decode(bytes(r["state"]))
                for r in tx.execute(
                    f"SELECT name, state FROM checkpoints WHERE name IN ({marks})", names
                )
            }
            ids: dict[int | None, dict[str, int]] = {p: {} for p in wanted}
            for r in tx.execute(
                "SELECT event_id, bucket_start, source_partition FROM seen_events "
                f"WHERE source_partition IN ({marks}) OR source_partition IS NULL",
                wanted,
            ):
                ids.setdefault(r["source_partition"], {})[r["event_id"]] = r["bucket_start"]
        legacy = ids.pop(None, {})
        for p, state_name in zip(wanted, names, strict=True):
            seen = {**legacy, **ids[p]} if legacy else ids[p]
            out[p] = (states.get(state_name, PartitionState()), seen)
        return out

    def pending_partials(self, merged: dict[int, int]) -> list[tuple[int, int, bytes]]:
        """Partials not merged yet, in the order they were stored — each partition's in its
        own order even where the workers' clocks disagree."""
        # Merged partials wait for the closer's next checkpoint to be deleted: not read again.
        known = sorted(merged)
        where = " OR ".join(["(source_partition = ? AND seq > ?)"] * len(known))
        if known:
            where += f" OR source_partition NOT IN ({', '.join('?' * len(known))})"
        args = [x for p in known for x in (p, merged[p])] + known
        rows = self.db.query(
            "SELECT source_partition, seq, body, created_at FROM partials "
            f"{'WHERE ' + where if known else ''} ORDER BY source_partition, seq",
            args,
        )
        lanes: dict[int, list[tuple[float, int, int, bytes]]] = {}
        for r in rows:
            partition = r["source_partition"]
            lane = lanes.setdefault(partition, [])
            # A partition's stored time never goes back, whatever the worker's clock did.
            at = max(r["created_at"], lane[-1][0]) if lane else r["created_at"]
            lane.append((at, partition, r["seq"], bytes(r["body"])))
        return [(p, seq, body) for _, p, seq, body in heapq.merge(*lanes.values())]

    def claim_closing(self, name: str) -> int:
        """Start closing: a new epoch, which fences off any earlier closer still writing."""
        with self.db.transaction() as tx:
            row = tx.one("SELECT state FROM checkpoints WHERE name = ?", (closer_name(name),))
            epoch = int(bytes(row["state"])) + 1 if row else 1
            tx.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET state = excluded.state, updated_at = excluded.updated_at",
                (closer_name(name), str(epoch).encode(), time.time()),
            )
        return epoch

    def closed_through(self, name: str) -> float:
        """Every bucket starting before this is closed (-inf before the first close)."""
        rows = self.db.query("SELECT state FROM checkpoints WHERE name = ?", (clock_name(name),))
        if not rows:
            return -math.inf
        value: Any = orjson.loads(bytes(rows[0]["state"]))["closed_through"]
        return -math.inf if value is None else float(value)
