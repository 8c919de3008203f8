"""The history store: anomalies, indicator history, worker checkpoints, late events.

SQLite by default (a file in the data directory, WAL mode so the API reads while the worker
writes). Every write is idempotent — keyed on a natural id with ``ON CONFLICT`` — because input is
at-least-once: a bucket re-scored after a restart writes the same rows again and changes nothing.
Migrations are numbered SQL scripts applied in order and recorded in ``schema_version``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE anomalies (
        anomaly_id TEXT PRIMARY KEY,
        indicator TEXT NOT NULL,
        org TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        bucket_start TEXT NOT NULL,
        bucket_seconds INTEGER NOT NULL,
        value REAL NOT NULL,
        expected REAL NOT NULL,
        lower REAL NOT NULL,
        upper REAL NOT NULL,
        score REAL NOT NULL,
        k REAL NOT NULL,
        n REAL NOT NULL,
        detector TEXT NOT NULL,
        severity TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX anomalies_by_time ON anomalies (bucket_start);
    CREATE INDEX anomalies_by_series ON anomalies (indicator, org, product_line, channel);
    CREATE TABLE indicator_values (
        indicator TEXT NOT NULL,
        org TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        bucket_start INTEGER NOT NULL,
        value REAL NOT NULL,
        k REAL NOT NULL,
        n REAL NOT NULL,
        score REAL NOT NULL,
        expected REAL NOT NULL,
        lower REAL NOT NULL,
        upper REAL NOT NULL,
        PRIMARY KEY (indicator, org, product_line, channel, bucket_start)
    );
    CREATE TABLE seen_events (
        event_id TEXT PRIMARY KEY,
        bucket_start INTEGER NOT NULL
    );
    CREATE INDEX seen_events_by_bucket ON seen_events (bucket_start);
    CREATE TABLE late_events (
        event_id TEXT PRIMARY KEY,
        bucket_start INTEGER NOT NULL,
        body BLOB NOT NULL,
        received_at REAL NOT NULL
    );
    CREATE TABLE checkpoints (
        name TEXT PRIMARY KEY,
        state BLOB NOT NULL,
        updated_at REAL NOT NULL
    );
    """,
    # Anomaly categories and their explanation, feedback on anomalies, rolling windows.
    """
    ALTER TABLE anomalies ADD COLUMN category TEXT NOT NULL DEFAULT 'business';
    ALTER TABLE anomalies ADD COLUMN detail TEXT NOT NULL DEFAULT '{}';
    CREATE INDEX anomalies_by_category ON anomalies (category, bucket_start);
    CREATE TABLE anomaly_feedback (
        feedback_id INTEGER PRIMARY KEY,
        anomaly_id TEXT NOT NULL REFERENCES anomalies (anomaly_id),
        verdict TEXT NOT NULL,
        note TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX anomaly_feedback_by_anomaly ON anomaly_feedback (anomaly_id);
    CREATE TABLE indicator_windows (
        org TEXT NOT NULL,
        product_line TEXT NOT NULL,
        channel TEXT NOT NULL,
        window_name TEXT NOT NULL,
        as_of INTEGER NOT NULL,
        sums BLOB NOT NULL,
        PRIMARY KEY (org, product_line, channel, window_name)
    );
    """,
)

ANOMALY_COLUMNS = (
    "anomaly_id", "indicator", "org", "product_line", "channel", "bucket_start", "bucket_seconds",
    "value", "expected", "lower", "upper", "score", "k", "n", "detector", "severity",
    "category", "detail",
)  # fmt: skip
#: Columns added after the first schema, with the value rows written before them take.
_ANOMALY_DEFAULTS = {"category": "business", "detail": "{}"}
READING_COLUMNS = (
    "indicator", "org", "product_line", "channel", "bucket_start",
    "value", "k", "n", "score", "expected", "lower", "upper",
)  # fmt: skip


def open_store(url: str) -> Store:
    """Open the store named by ``QUALMON_DATABASE_URL`` (or its SQLite default)."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return Store(str(path))
    raise ConfigError(
        f"QUALMON_DATABASE_URL has value {url!r}; expected sqlite:///path/to/file.db "
        "(PostgreSQL support arrives with the inspections store)"
    )


class Store:
    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=10000")
        self.migrate()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version."""
        with self._lock:
            c = self._conn
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = c.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] or 0
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                c.execute("BEGIN IMMEDIATE")
                try:
                    for statement in filter(str.strip, script.split(";")):
                        c.execute(statement)
                    c.execute("INSERT INTO schema_version VALUES (?)", (number,))
                    c.execute("COMMIT")
                except BaseException:
                    c.execute("ROLLBACK")
                    raise
                version = number
            return version

    # ---- worker side: one transaction per checkpoint ----------------------------------------

    def save_checkpoint(
        self,
        name: str,
        state: bytes,
        *,
        new_ids: Sequence[tuple[str, int]] = (),
        forget_before: float | None = None,
        readings: Iterable[Sequence[Any]] = (),
        anomalies: Iterable[dict[str, Any]] = (),
        late: Iterable[tuple[str, int, bytes]] = (),
    ) -> None:
        """Write everything a checkpoint covers atomically, so a restart sees all of it or none."""
        now = time.time()
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany(
                    "INSERT INTO seen_events VALUES (?, ?) ON CONFLICT DO NOTHING", new_ids
                )
                if forget_before is not None and forget_before > float("-inf"):
                    c.execute("DELETE FROM seen_events WHERE bucket_start < ?", (forget_before,))
                c.executemany(
                    f"INSERT INTO indicator_values ({', '.join(READING_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(READING_COLUMNS))}) "
                    "ON CONFLICT DO NOTHING",
                    readings,
                )
                c.executemany(
                    f"INSERT INTO anomalies ({', '.join(ANOMALY_COLUMNS)}, created_at) "
                    f"VALUES ({', '.join('?' * (len(ANOMALY_COLUMNS) + 1))}) "
                    "ON CONFLICT DO NOTHING",
                    (
                        [*(a.get(col, _ANOMALY_DEFAULTS.get(col)) for col in ANOMALY_COLUMNS), now]
                        for a in anomalies
                    ),
                )
                c.executemany(
                    "INSERT INTO late_events VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    ((i, b, body, now) for i, b, body in late),
                )
                c.execute(
                    "INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                    "SET state = excluded.state, updated_at = excluded.updated_at",
                    (name, state, now),
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

    def load_checkpoint(self, name: str) -> tuple[bytes | None, dict[str, int]]:
        """The last saved state and the remembered event ids (id -> bucket start)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT state FROM checkpoints WHERE name = ?", (name,)
            ).fetchone()
            ids = dict(self._conn.execute("SELECT event_id, bucket_start FROM seen_events"))
        return (row[0] if row else None), ids

    # ---- API side ---------------------------------------------------------------------------

    def anomalies(
        self,
        *,
        indicator: str | None = None,
        org: str | None = None,
        product_line: str | None = None,
        channel: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 100,
        offset: int = 0,
        category: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of anomalies, newest bucket first, and the total matching."""
        where, args = _filters(
            "", indicator=indicator, org=org, product_line=product_line, channel=channel,
            category=category,
        )  # fmt: skip
        if since:
            where.append("bucket_start >= ?")
            args.append(since)
        if until:
            where.append("bucket_start < ?")
            args.append(until)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            total = self._conn.execute(f"SELECT COUNT(*) FROM anomalies {clause}", args).fetchone()
            rows = self._conn.execute(
                f"SELECT * FROM anomalies {clause} "
                "ORDER BY bucket_start DESC, score DESC, anomaly_id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return [dict(r) for r in rows], int(total[0])

    def anomaly(self, anomaly_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM anomalies WHERE anomaly_id = ?", (anomaly_id,)
            ).fetchone()
        return dict(row) if row else None

    def latest_readings(
        self,
        *,
        indicator: str | None = None,
        org: str | None = None,
        product_line: str | None = None,
        channel: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """The most recent closed bucket of each matching series."""
        where, args = _filters(
            "v.", indicator=indicator, org=org, product_line=product_line, channel=channel
        )
        clause = "".join(f" AND {w}" for w in where)
        sql = (
            "SELECT v.* FROM indicator_values v JOIN ("
            "  SELECT indicator, org, product_line, channel, MAX(bucket_start) AS latest"
            "  FROM indicator_values GROUP BY indicator, org, product_line, channel) m"
            " ON v.indicator = m.indicator AND v.org = m.org AND v.product_line = m.product_line"
            " AND v.channel = m.channel AND v.bucket_start = m.latest"
            f" WHERE 1 = 1{clause}"
            " ORDER BY v.indicator, v.org, v.product_line, v.channel LIMIT ?"
        )
        with self._lock:
            rows = self._conn.execute(sql, [*args, limit]).fetchall()
        return [dict(r) for r in rows]

    # ---- feedback and rolling windows --------------------------------------------------------

    def add_feedback(self, anomaly_id: str, verdict: str, note: str) -> dict[str, Any] | None:
        """Store a verdict on an anomaly; None when there is no such anomaly."""
        with self._lock:
            c = self._conn
            if c.execute("SELECT 1 FROM anomalies WHERE anomaly_id = ?", (anomaly_id,)).fetchone():
                cur = c.execute(
                    "INSERT INTO anomaly_feedback (anomaly_id, verdict, note, created_at) "
                    "VALUES (?, ?, ?, ?)",
                    (anomaly_id, verdict, note, time.time()),
                )
                row = c.execute(
                    "SELECT * FROM anomaly_feedback WHERE feedback_id = ?", (cur.lastrowid,)
                ).fetchone()
                return dict(row)
        return None

    def feedback_on(self, anomaly_id: str) -> list[dict[str, Any]]:
        """Every verdict on one anomaly, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM anomaly_feedback WHERE anomaly_id = ? ORDER BY feedback_id",
                (anomaly_id,),
            ).fetchall()
        return [dict(r) for r in rows]

    def feedback_after(self, feedback_id: int) -> list[dict[str, Any]]:
        """Verdicts stored after ``feedback_id``, oldest first, with their anomaly's fields."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT f.feedback_id, f.verdict, a.* FROM anomaly_feedback f "
                "JOIN anomalies a ON a.anomaly_id = f.anomaly_id "
                "WHERE f.feedback_id > ? ORDER BY f.feedback_id",
                (feedback_id,),
            ).fetchall()
        return [dict(r) for r in rows]

    def save_windows(self, rows: Iterable[Sequence[Any]]) -> None:
        """Upsert the latest sums of each (slice, window)."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                c.executemany(
                    "INSERT INTO indicator_windows VALUES (?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (org, product_line, channel, window_name) DO UPDATE "
                    "SET as_of = excluded.as_of, sums = excluded.sums",
                    rows,
                )
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise

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
        where, args = _filters("", org=org, product_line=product_line, channel=channel)
        clause = "".join(f" AND {w}" for w in where)
        with self._lock:
            rows = self._conn.execute(
                f"SELECT * FROM indicator_windows WHERE window_name = ?{clause} "
                "ORDER BY org, product_line, channel LIMIT ?",
                [window, *args, limit],
            ).fetchall()
        return [dict(r) for r in rows]

    def count(self, table: str) -> int:
        if table not in {
            "anomalies", "indicator_values", "seen_events", "late_events", "anomaly_feedback",
            "indicator_windows",
        }:  # fmt: skip
            raise ValueError(f"unknown table {table!r}")
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _filters(prefix: str, **values: str | None) -> tuple[list[str], list[Any]]:
    where = [f"{prefix}{column} = ?" for column, v in values.items() if v is not None]
    return where, [v for v in values.values() if v is not None]
