"""Alerts, their sources, the notification outbox (with dead letters), silences, the org tree.

Domain rules live in :mod:`alerting`; this module only reads and writes rows. Methods taking a
``tx`` run inside the caller's transaction, so one anomaly's alert, sources and notifications
are stored together or not at all.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from monitor.store.database import Database, Transaction
from monitor.store.history import filters
from streams.slices import org_code, path_depth

ALERT_COLUMNS = (
    "alert_id",
    "kind",
    "group_key",
    "indicator",
    "org",
    "org_path",
    "product_line",
    "channel",
    "severity",
    "score",
    "value",
    "expected",
    "state",
    "anomaly_id",
    "last_bucket",
    "anomalies",
    "flaps",
    "flapping",
    "summary",
    "acknowledged_by",
    "acknowledged_at",
    "inspection_id",
    "opened_at",
    "updated_at",
    "resolved_at",
)
NOTIFICATION_COLUMNS = (
    "notification_id",
    "alert_id",
    "receiver",
    "event",
    "body",
    "state",
    "attempts",
    "next_attempt_at",
    "last_error",
    "created_at",
    "sent_at",
)
SILENCE_COLUMNS = (
    "silence_id",
    "matchers",
    "starts_at",
    "ends_at",
    "created_by",
    "comment",
    "created_at",
)


class AlertStore:
    db: Database

    # ---- inside the alert engine's transaction ----------------------------------------------

    def source_known(self, tx: Transaction, source_id: str) -> bool:
        return (
            tx.one("SELECT 1 AS x FROM alert_sources WHERE source_id = ?", (source_id,)) is not None
        )

    def add_source(
        self,
        tx: Transaction,
        source_id: str,
        alert: Mapping[str, Any],
        series: tuple,
        bucket: int,
        clear_after: int | None = None,
        reading: tuple[float, float] | None = None,
        broad: bool | None = None,
    ) -> None:
        """Record an anomaly (``source_id``) of ``series`` as part of the alert's current
        episode, with its reading (value, expected) and whether it is ``broad``
        (:mod:`alerting.breadth`; None: not judged)."""
        value, expected = reading or (None, None)
        tx.execute(
            "INSERT INTO alert_sources (source_id, alert_id, episode, broad, indicator, org, "
            "product_line, channel, bucket_start, clear_after, value, expected) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                source_id,
                alert["alert_id"],
                alert["flaps"],
                None if broad is None else int(broad),
                *series,
                bucket,
                clear_after,
                value,
                expected,
            ),
        )

    def alert_sources(self, tx: Transaction, alert: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The member series of the alert's current episode, each with the latest
        ``clear_after`` of its sources (None where a normal bucket clears it)."""
        return tx.execute(
            "SELECT indicator, org, product_line, channel, MAX(clear_after) AS clear_after "
            "FROM alert_sources WHERE alert_id = ? AND episode = ? "
            "GROUP BY indicator, org, product_line, channel",
            (alert["alert_id"], alert["flaps"]),
        )

    def alert_members(
        self, tx: Transaction, alerts: Sequence[Mapping[str, Any]]
    ) -> dict[str, list[tuple[tuple[str, str, str], bool | None, int, int]]]:
        """The member slices (org, product line, channel) of each alert's current episode, in
        one query: each with its latest verdict on breadth (None: never judged), that
        verdict's bucket, and its latest bucket."""
        if not alerts:
            return {}
        episode = {a["alert_id"]: a["flaps"] for a in alerts}
        rows = tx.execute(
            "SELECT alert_id, episode, org, product_line, channel, bucket_start, broad "
            f"FROM alert_sources WHERE alert_id IN ({', '.join('?' * len(episode))}) "
            "ORDER BY bucket_start, source_id",
            list(episode),
        )
        found: dict[str, dict[tuple[str, str, str], list[Any]]] = {}
        for r in rows:
            if r["episode"] == episode[r["alert_id"]]:
                key = (r["org"], r["product_line"], r["channel"])
                slot = found.setdefault(r["alert_id"], {}).setdefault(key, [None, 0, 0])
                if r["broad"] is not None:
                    slot[0], slot[1] = bool(r["broad"]), r["bucket_start"]
                slot[2] = r["bucket_start"]
        return {a: [(key, *slot) for key, slot in slices.items()] for a, slices in found.items()}

    def alert_slices(self, alert: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The member slices of the alert's current episode, each with its latest source
        (``anomaly_id``, ``bucket_start``, ``value``, ``expected``, ``broad``) and how many
        anomalies it brought."""
        rows = self.db.query(
            "SELECT source_id, org, product_line, channel, bucket_start, value, expected, broad "
            "FROM alert_sources WHERE alert_id = ? AND episode = ? "
            "ORDER BY bucket_start, source_id",
            (alert["alert_id"], alert["flaps"]),
        )
        out: dict[tuple[str, str, str], dict[str, Any]] = {}
        for r in rows:
            key = (r["org"], r["product_line"], r["channel"])
            count = out[key]["anomalies"] + 1 if key in out else 1
            broad = out[key]["broad"] if r["broad"] is None and key in out else r["broad"]
            out[key] = {
                "org": r["org"],
                "product_line": r["product_line"],
                "channel": r["channel"],
                "anomaly_id": r["source_id"],
                "bucket_start": r["bucket_start"],
                "value": r["value"],
                "expected": r["expected"],
                "broad": bool(broad),
                "anomalies": count,
            }
        return list(out.values())

    def member_reading(
        self, tx: Transaction, alert: Mapping[str, Any], slice_key: tuple[str, str, str]
    ) -> dict[str, Any] | None:
        """The latest reading (``anomaly_id``, ``value``, ``expected``) of one member slice (org,
        product line, channel) in the alert's current episode; of a day judged whole rather
        than its last hour, which shares its ``bucket_start``. None when the slice has none
        recorded."""
        return tx.one(
            "SELECT source_id AS anomaly_id, value, expected FROM alert_sources "
            "WHERE alert_id = ? AND episode = ? AND org = ? AND product_line = ? "
            "AND channel = ? AND value IS NOT NULL "
            "ORDER BY bucket_start DESC, clear_after IS NULL, source_id LIMIT 1",
            (alert["alert_id"], alert["flaps"], *slice_key),
        )

    def latest_in_group(self, tx: Transaction, group_key: str) -> dict[str, Any] | None:
        return tx.one(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE group_key = ? "
            "ORDER BY opened_at DESC, alert_id DESC LIMIT 1",
            (group_key,),
        )

    def insert_alert(self, tx: Transaction, alert: Mapping[str, Any]) -> None:
        tx.execute(
            f"INSERT INTO alerts ({', '.join(ALERT_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(ALERT_COLUMNS))}) ON CONFLICT DO NOTHING",
            [alert[c] for c in ALERT_COLUMNS],
        )

    def update_alert(self, tx: Transaction, alert_id: str, **changes: Any) -> None:
        unknown = set(changes) - set(ALERT_COLUMNS)
        if unknown:
            raise ValueError(f"unknown alert columns {sorted(unknown)}")
        sets = ", ".join(f"{c} = ?" for c in changes)
        tx.execute(f"UPDATE alerts SET {sets} WHERE alert_id = ?", [*changes.values(), alert_id])

    def get_alert(self, tx: Transaction, alert_id: str) -> dict[str, Any] | None:
        return tx.one(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE alert_id = ?", (alert_id,)
        )

    def firing(
        self, tx: Transaction | None = None, kind: str | None = None
    ) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE state = 'firing'"
        args: list[Any] = []
        if kind:
            sql += " AND kind = ?"
            args.append(kind)
        sql += " ORDER BY opened_at, alert_id"
        return tx.execute(sql, args) if tx else self.db.query(sql, args)

    def normal_since(
        self, tx: Transaction, series: Iterable[Any], after: int, until: int, threshold: float
    ) -> bool:
        """Whether the series has a bucket in ``(after, until]`` that scored below threshold."""
        row = tx.one(
            "SELECT 1 AS x FROM indicator_values WHERE indicator = ? AND org = ? "
            "AND product_line = ? AND channel = ? AND bucket_start > ? AND bucket_start <= ? "
            "AND score < ? LIMIT 1",
            (*series, after, until, threshold),
        )
        return row is not None

    def enqueue(self, tx: Transaction, rows: Iterable[Mapping[str, Any]]) -> int:
        """Queue notifications; a row whose id exists already is left alone (replays)."""
        added = 0
        for row in rows:
            tx.execute(
                f"INSERT INTO notifications ({', '.join(NOTIFICATION_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(NOTIFICATION_COLUMNS))}) ON CONFLICT DO NOTHING",
                [row[c] for c in NOTIFICATION_COLUMNS],
            )
            added += tx.rowcount()
        return added

    def active_silences(self, tx: Transaction | None, now: float) -> list[dict[str, Any]]:
        sql = (
            f"SELECT {', '.join(SILENCE_COLUMNS)} FROM silences "
            "WHERE starts_at <= ? AND ends_at > ? ORDER BY starts_at"
        )
        return tx.execute(sql, (now, now)) if tx else self.db.query(sql, (now, now))

    # ---- notification dispatch ---------------------------------------------------------------

    def due_notifications(self, now: float, limit: int = 100) -> list[dict[str, Any]]:
        return self.db.query(
            f"SELECT {', '.join(NOTIFICATION_COLUMNS)} FROM notifications "
            "WHERE state = 'pending' AND next_attempt_at <= ? "
            "ORDER BY created_at, notification_id LIMIT ?",
            (now, limit),
        )

    def count_pending(self) -> int:
        rows = self.db.query("SELECT COUNT(*) AS n FROM notifications WHERE state = 'pending'")
        return int(rows[0]["n"])

    def next_due(self) -> float | None:
        rows = self.db.query(
            "SELECT MIN(next_attempt_at) AS t FROM notifications WHERE state = 'pending'"
        )
        return rows[0]["t"]

    def settle_notification(self, notification_id: str, **changes: Any) -> None:
        sets = ", ".join(f"{c} = ?" for c in changes)
        with self.db.transaction() as tx:
            tx.execute(
                f"UPDATE notifications SET {sets} WHERE notification_id = ?",
                [*changes.values(), notification_id],
            )

    def notifications(
        self, *, alert_id: str | None = None, state: str | None = None, receiver: str | None = None
    ) -> list[dict[str, Any]]:
        where, args = filters("", alert_id=alert_id, state=state, receiver=receiver)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        return self.db.query(
            f"SELECT {', '.join(NOTIFICATION_COLUMNS)} FROM notifications {clause} "
            "ORDER BY created_at, notification_id",
            args,
        )

    # ---- API side ----------------------------------------------------------------------------

    def alerts(
        self,
        *,
        state: str | None = None,
        indicator: str | None = None,
        org: str | None = None,
        severity: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        where, args = filters("", state=state, indicator=indicator, org=org, severity=severity)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self.db.transaction() as tx:
            total = tx.execute(f"SELECT COUNT(*) AS n FROM alerts {clause}", args)[0]["n"]
            rows = tx.execute(
                f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts {clause} "
                "ORDER BY updated_at DESC, alert_id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            )
        return rows, int(total)

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        rows = self.db.query(
            f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE alert_id = ?", (alert_id,)
        )
        return rows[0] if rows else None

    def alert_counts(self) -> list[dict[str, Any]]:
        """Firing and acknowledged alerts by kind, indicator and severity (for the gauges)."""
        return self.db.query(
            "SELECT kind, indicator, severity, "
            "SUM(CASE WHEN acknowledged_at IS NULL THEN 0 ELSE 1 END) AS acknowledged, "
            "COUNT(*) AS firing FROM alerts WHERE state = 'firing' "
            "GROUP BY kind, indicator, severity"
        )

    def add_silence(self, silence: Mapping[str, Any]) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                f"INSERT INTO silences ({', '.join(SILENCE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(SILENCE_COLUMNS))})",
                [silence[c] for c in SILENCE_COLUMNS],
            )

    def silences(self, *, active_at: float | None = None) -> list[dict[str, Any]]:
        if active_at is not None:
            return self.active_silences(None, active_at)
        return self.db.query(
            f"SELECT {', '.join(SILENCE_COLUMNS)} FROM silences ORDER BY created_at DESC"
        )

    def silence(self, silence_id: str) -> dict[str, Any] | None:
        rows = self.db.query(
            f"SELECT {', '.join(SILENCE_COLUMNS)} FROM silences WHERE silence_id = ?",
            (silence_id,),
        )
        return rows[0] if rows else None

    def expire_silence(self, silence_id: str, now: float | None = None) -> None:
        with self.db.transaction() as tx:
            tx.execute(
                "UPDATE silences SET ends_at = ? WHERE silence_id = ? AND ends_at > ?",
                (now or time.time(), silence_id, now or time.time()),
            )

    # ---- the org tree ------------------------------------------------------------------------

    def add_orgs(self, paths: Iterable[str]) -> None:
        rows = [(org_code(p), p, path_depth(p)) for p in paths]
        if rows:
            with self.db.transaction() as tx:
                tx.executemany(
                    "INSERT INTO orgs VALUES (?, ?, ?) ON CONFLICT (org) DO UPDATE "
                    "SET org_path = excluded.org_path, depth = excluded.depth",
                    rows,
                )

    def org_paths(self) -> dict[str, str]:
        return {r["org"]: r["org_path"] for r in self.db.query("SELECT org, org_path FROM orgs")}
