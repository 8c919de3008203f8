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

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from monitor.store.database import Database


def partition_state_name(name: str, partition: int) -> str:
    """Checkpoint row of one input partition's first stage (``name`` is the consumer group)."""
    return f"{name}/partition/{partition}"


def clock_name(name: str) -> str:
    """Checkpoint row where the closing stage says how far it has closed."""
    return f"{name}/clock"


class PartialStore:
    db: Database

    def save_intake(
        self,
        name: str,
        *,
        partials: Sequence[tuple[int, int, bytes]] = (),
        new_ids: Sequence[tuple[str, int, int]] = (),
        late: Iterable[tuple[str, int, bytes]] = (),
    ) -> None:
        """One first-stage checkpoint: (partition, seq, body) partials, the (event id, bucket,
        partition) ids they counted and late events, atomically."""
        now = time.time()
        last: dict[int, int] = {}
        for partition, seq, _ in partials:
            last[partition] = max(seq, last.get(partition, 0))
        with self.db.transaction() as tx:
            tx.executemany(
                "INSERT INTO seen_events (event_id, bucket_start, source_partition) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                new_ids,
            )
            tx.executemany(
                "INSERT INTO partials VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                ((p, seq, body, now) for p, seq, body in partials),
            )
            tx.executemany(
                "INSERT INTO late_events VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                ((i, b, body, now) for i, b, body in late),
            )
            tx.executemany(
                "INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET state = excluded.state, updated_at = excluded.updated_at",
                (
                    (partition_state_name(name, p), orjson.dumps({"seq": seq}), now)
                    for p, seq in last.items()
                ),
            )

    def load_partition(self, name: str, partition: int) -> tuple[int, dict[str, int]]:
        """The last partial's number and the remembered ids (id -> bucket) of one partition.

        Ids stored before partitions were recorded belong to whichever worker asks."""
        with self.db.transaction() as tx:
            state_name = partition_state_name(name, partition)
            row = tx.one("SELECT state FROM checkpoints WHERE name = ?", (state_name,))
            ids = {
                r["event_id"]: r["bucket_start"]
                for r in tx.execute(
                    "SELECT event_id, bucket_start FROM seen_events "
                    "WHERE source_partition = ? OR source_partition IS NULL",
                    (partition,),
                )
            }
        seq = int(orjson.loads(bytes(row["state"]))["seq"]) if row else 0
        return seq, ids

    def pending_partials(self, merged: dict[int, int]) -> list[tuple[int, int, bytes]]:
        """Partials not merged yet, each partition's in order."""
        rows = self.db.query(
            "SELECT source_partition, seq, body FROM partials ORDER BY source_partition, seq"
        )
        return [
            (r["source_partition"], r["seq"], bytes(r["body"]))
            for r in rows
            if r["seq"] > merged.get(r["source_partition"], 0)
        ]

    def closed_through(self, name: str) -> float:
        """Every bucket starting before this is closed (-inf before the first close)."""
        rows = self.db.query("SELECT state FROM checkpoints WHERE name = ?", (clock_name(name),))
        if not rows:
            return -math.inf
        value: Any = orjson.loads(bytes(rows[0]["state"]))["closed_through"]
        return -math.inf if value is None else float(value)
