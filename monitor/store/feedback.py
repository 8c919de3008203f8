"""Verdicts on anomalies (feedback the detectors learn from) and the latest rolling windows."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from monitor.store.database import Database
from monitor.store.history import filters


class FeedbackStore:
    db: Database

    def add_feedback(
        self, anomaly_id: str, verdict: str, note: str, actor: str = ""
    ) -> dict[str, Any] | None:
        """Store ``actor``'s verdict on an anomaly; None when there is no such anomaly."""
        with self.db.transaction() as tx:
            if (
                tx.one("SELECT 1 AS found FROM anomalies WHERE anomaly_id = ?", (anomaly_id,))
                is None
            ):
                return None
            if self.db.dialect == "postgresql":
                # Ids are a sequence the worker reads past (feedback_after): two writers must not
                # take the same next number.
                tx.execute("LOCK TABLE anomaly_feedback IN EXCLUSIVE MODE")
            row = tx.one("SELECT COALESCE(MAX(feedback_id), 0) + 1 AS next FROM anomaly_feedback")
            feedback_id = int(row["next"]) if row else 1
            tx.execute(
                "INSERT INTO anomaly_feedback "
                "(feedback_id, anomaly_id, verdict, note, created_at, actor) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (feedback_id, anomaly_id, verdict, note, time.time(), actor),
            )
            return tx.one("SELECT * FROM anomaly_feedback WHERE feedback_id = ?", (feedback_id,))

    def feedback_on(self, anomaly_id: str) -> list[dict[str, Any]]:
        """Every verdict on one anomaly, oldest first."""
        return self.db.query(
            "SELECT * FROM anomaly_feedback WHERE anomaly_id = ? ORDER BY feedback_id",
            (anomaly_id,),
        )

    def feedback_after(self, feedback_id: int) -> list[dict[str, Any]]:
        """Verdicts stored after ``feedback_id``, oldest first, with their anomaly's fields."""
        return self.db.query(
            "SELECT f.feedback_id, f.verdict, a.* FROM anomaly_feedback f "
            "JOIN anomalies a ON a.anomaly_id = f.anomaly_id "
            "WHERE f.feedback_id > ? ORDER BY f.feedback_id",
            (feedback_id,),
        )

    def save_windows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Upsert the latest sums of each (slice, window)."""
        with self.db.transaction() as tx:
            tx.executemany(
                "INSERT INTO indicator_windows VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (org, product_line, channel, window_name) DO UPDATE "
                "SET as_of = excluded.as_of, sums = excluded.sums",
                rows,
            )

    def windows(
        self,
        window: str,
        *,
        org: str | None = None,
        product_line: str | None = None,
        channel: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """The latest sums of window ``window`` per matching slice."""
        where, args = filters("", org=org, product_line=product_line, channel=channel)
        clause = "".join(f" AND {w}" for w in where)
        rows = self.db.query(
            f"SELECT * FROM indicator_windows WHERE window_name = ?{clause} "
            "ORDER BY org, product_line, channel LIMIT ?",
            [window, *args, limit],
        )
        for row in rows:  # BYTEA comes back as memoryview from PostgreSQL
            row["sums"] = bytes(row["sums"])
        return rows
