"""The worker's side of the store: checkpoints, anomalies and the indicator history.

Every write is idempotent — keyed on a natural id with ``ON CONFLICT`` — because input is
at-least-once: a bucket re-scored after a restart writes the same rows again and changes nothing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from monitor.errors import ClosingTakenOver
from monitor.store.database import Database
from monitor.store.partials import clock_name, closer_name, detectors_name

ANOMALY_COLUMNS = (
    "anomaly_id",
    "indicator",
    "org",
    "product_line",
    "channel",
    "bucket_start",
    "bucket_seconds",
    "value",
    "expected",
    "lower",
    "upper",
    "score",
    "k",
    "n",
    "detector",
    "severity",
    "category",
    "detail",
)
#: Columns added after the first schema, with the value rows written before them take.
_ANOMALY_DEFAULTS = {"category": "business", "detail": "{}"}
READING_COLUMNS = (
    "indicator",
    "org",
    "product_line",
    "channel",
    "bucket_start",
    "value",
    "k",
    "n",
    "score",
    "expected",
    "lower",
    "upper",
)
COUNTABLE = frozenset(
    {
        "anomalies",
        "indicator_values",
        "seen_events",
        "late_events",
        "partials",
        "alerts",
        "notifications",
        "inspections",
        "measures",
        "evaluations",
        "audit_log",
        "silences",
        "anomaly_feedback",
        "indicator_windows",
    }
)


class HistoryStore:
    db: Database

    def save_checkpoint(
        self,
        name: str,
        state: bytes,
        *,
        detectors: bytes | None = None,
        epoch: int | None = None,
        merged: dict[int, int] | None = None,
        closed_through: float = float("-inf"),
        forget_before: float | None = None,
        readings: Iterable[Sequence[Any]] = (),
        anomalies: Iterable[dict[str, Any]] = (),
        late: Iterable[tuple[str, int, bytes]] = (),
    ) -> None:
        """Write everything a closing-stage checkpoint covers atomically, so a restart sees all
        of it or none: ``merged`` (partition -> last partial merged) deletes those partials;
        ``detectors``, when they changed, are written beside the state (often they have not:
        they change when a bucket closes, and they are most of the bytes).

        With ``epoch`` (:meth:`claim_closing`) nothing is written once a later closer has
        claimed: :class:`ClosingTakenOver` is raised instead."""
        now = time.time()
        with self.db.transaction() as tx:
            if epoch is not None:
                tx.execute(
                    "UPDATE checkpoints SET updated_at = ? WHERE name = ? AND state = ?",
                    (now, closer_name(name), str(epoch).encode()),
                )
                if tx.rowcount() != 1:
                    raise ClosingTakenOver(
                        f"closer epoch {epoch} of {name!r} is no longer the latest: another "
                        "worker closes buckets now; this one stops"
                    )
            tx.executemany(
                "DELETE FROM partials WHERE source_partition = ? AND seq <= ?",
                list((merged or {}).items()),
            )
            through = closed_through if closed_through > -math.inf else None
            clock = orjson.dumps({"closed_through": through})
            tx.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET state = excluded.state, updated_at = excluded.updated_at",
                (clock_name(name), clock, now),
            )
            if forget_before is not None and forget_before > float("-inf"):
                tx.execute("DELETE FROM seen_events WHERE bucket_start < ?", (forget_before,))
            tx.executemany(
                f"INSERT INTO indicator_values ({', '.join(READING_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(READING_COLUMNS))}) ON CONFLICT DO NOTHING",
                readings,
            )
            tx.executemany(
                f"INSERT INTO anomalies ({', '.join(ANOMALY_COLUMNS)}, created_at) "
                f"VALUES ({', '.join('?' * (len(ANOMALY_COLUMNS) + 1))}) ON CONFLICT DO NOTHING",
                (
                    [*(a.get(col, _ANOMALY_DEFAULTS.get(col)) for col in ANOMALY_COLUMNS), now]
                    for a in anomalies
                ),
            )
            tx.executemany(
                "INSERT INTO late_events VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                ((i, b, body, now) for i, b, body in late),
            )
            rows = [(name, state, now)]
            if detectors is not None:
                rows.append((detectors_name(name), detectors, now))
            tx.executemany(
                "INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
                "SET state = excluded.state, updated_at = excluded.updated_at",
                rows,
            )

    def load_checkpoint(self, name: str) -> tuple[bytes | None, bytes | None]:
        """The closing stage's last saved state and detectors."""
        rows = self.db.query(
            "SELECT name, state FROM checkpoints WHERE name IN (?, ?)", (name, detectors_name(name))
        )
        found = {r["name"]: bytes(r["state"]) for r in rows}
        return found.get(name), found.get(detectors_name(name))

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
        where, args = filters(
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
        with self.db.transaction() as tx:
            total = tx.execute(f"SELECT COUNT(*) AS n FROM anomalies {clause}", args)[0]["n"]
            rows = tx.execute(
                f"SELECT {', '.join(ANOMALY_COLUMNS)} FROM anomalies {clause} "
                "ORDER BY bucket_start DESC, score DESC, anomaly_id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            )
        return rows, int(total)

    def anomaly(self, anomaly_id: str) -> dict[str, Any] | None:
        rows = self.db.query(
            f"SELECT {', '.join(ANOMALY_COLUMNS)} FROM anomalies WHERE anomaly_id = ?",
            (anomaly_id,),
        )
        return rows[0] if rows else None

    def anomalies_created_since(self, since: float) -> list[dict[str, Any]]:
        """Anomalies stored at or after ``since`` (Unix time), oldest first."""
        return self.db.query(
            f"SELECT {', '.join(ANOMALY_COLUMNS)} FROM anomalies WHERE created_at >= ? "
            "ORDER BY bucket_start, anomaly_id",
            (since,),
        )

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
        where, args = filters(
            "v.", indicator=indicator, org=org, product_line=product_line, channel=channel
        )
        clause = "".join(f" AND {w}" for w in where)
        sql = (
            f"SELECT {', '.join('v.' + c for c in READING_COLUMNS)} FROM indicator_values v JOIN ("
            "  SELECT indicator, org, product_line, channel, MAX(bucket_start) AS latest"
            "  FROM indicator_values GROUP BY indicator, org, product_line, channel) m"
            " ON v.indicator = m.indicator AND v.org = m.org AND v.product_line = m.product_line"
            " AND v.channel = m.channel AND v.bucket_start = m.latest"
            f" WHERE 1 = 1{clause}"
            " ORDER BY v.indicator, v.org, v.product_line, v.channel LIMIT ?"
        )
        return self.db.query(sql, [*args, limit])

    def history(
        self,
        indicator: str,
        product_line: str,
        channel: str,
        start: int,
        end: int,
        org: str | None = None,
    ) -> list[dict[str, Any]]:
        """Readings of one indicator in ``[start, end)`` for one org, or every org when None."""
        where, args = filters("", indicator=indicator, product_line=product_line, channel=channel)
        if org is not None:
            where.append("org = ?")
            args.append(org)
        return self.db.query(
            f"SELECT org, bucket_start, value, k, n, score FROM indicator_values "
            f"WHERE {' AND '.join(where)} AND bucket_start >= ? AND bucket_start < ? "
            "ORDER BY org, bucket_start",
            [*args, start, end],
        )

    def reading_span(
        self, indicator: str, org: str, product_line: str, channel: str
    ) -> tuple[int, int] | None:
        """First and last bucket start of one series; None when it has no reading at all."""
        where, args = filters(
            "", indicator=indicator, org=org, product_line=product_line, channel=channel
        )
        row = self.db.query(
            "SELECT MIN(bucket_start) AS lo, MAX(bucket_start) AS hi FROM indicator_values "
            f"WHERE {' AND '.join(where)}",
            args,
        )[0]
        return None if row["lo"] is None else (int(row["lo"]), int(row["hi"]))

    def readings_at(
        self, indicator: str, orgs: Sequence[str], product_line: str, channel: str, bucket: int
    ) -> list[tuple]:
        """The readings of one indicator, line and channel in one bucket for these orgs, as the
        worker's checkpoint carries them (:data:`READING_COLUMNS`): one query, a primary-key
        lookup per org."""
        if not orgs:
            return []
        rows = self.db.query(
            f"SELECT {', '.join(READING_COLUMNS)} FROM indicator_values WHERE indicator = ? "
            f"AND org IN ({', '.join('?' * len(orgs))}) AND product_line = ? AND channel = ? "
            "AND bucket_start = ?",
            [indicator, *orgs, product_line, channel, bucket],
        )
        return [tuple(r[c] for c in READING_COLUMNS) for r in rows]

    def latest_bucket(self, indicator: str) -> int | None:
        """Start of the latest bucket with a reading of ``indicator`` on any slice: how far the
        service has closed buckets, whatever one slice's own readings say."""
        row = self.db.query(
            "SELECT MAX(bucket_start) AS hi FROM indicator_values WHERE indicator = ?", (indicator,)
        )[0]
        return None if row["hi"] is None else int(row["hi"])

    def add_readings(self, readings: Iterable[Sequence[Any]]) -> None:
        """Indicator history written outside a checkpoint (imports, tests); idempotent."""
        with self.db.transaction() as tx:
            tx.executemany(
                f"INSERT INTO indicator_values ({', '.join(READING_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(READING_COLUMNS))}) ON CONFLICT DO NOTHING",
                readings,
            )

    def count(self, table: str) -> int:
        if table not in COUNTABLE:
            raise ValueError(f"unknown table {table!r}; expected one of {sorted(COUNTABLE)}")
        return int(self.db.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])


def filters(prefix: str, **values: str | None) -> tuple[list[str], list[Any]]:
    where = [f"{prefix}{column} = ?" for column, v in values.items() if v is not None]
    return where, [v for v in values.values() if v is not None]
