"""Special inspections, their root causes, measures, effect evaluations and the audit log.

Rows only; the lifecycle and its rules are :mod:`alerting.inspections`. JSON columns (root-cause
analysis, evaluation body, audit before/after) are stored as text so both dialects read them alike.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from monitor.store.database import Database, Transaction
from monitor.store.history import filters

INSPECTION_COLUMNS = (
    "inspection_id",
    "cause_id",
    "rule",
    "title",
    "indicator",
    "org",
    "org_path",
    "product_line",
    "channel",
    "state",
    "reopened",
    "opened_at",
    "updated_at",
    "closed_at",
)
MEASURE_COLUMNS = (
    "measure_id",
    "inspection_id",
    "title",
    "department",
    "owner",
    "deadline",
    "effective_from",
    "indicator",
    "org",
    "product_line",
    "channel",
    "target",
    "state",
    "overdue_alert_id",
    "created_at",
    "updated_at",
)
CAUSE_COLUMNS = ("cause_id", "inspection_id", "category", "analysis", "created_by", "created_at")
EVALUATION_COLUMNS = (
    "evaluation_id",
    "inspection_id",
    "measure_id",
    "verdict",
    "body",
    "created_by",
    "created_at",
)
AUDIT_COLUMNS = ("audit_id", "entity", "entity_id", "action", "actor", "at", "before", "after")


def _insert(tx: Transaction, table: str, columns: tuple[str, ...], row: Mapping[str, Any]) -> int:
    tx.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
        "ON CONFLICT DO NOTHING",
        [row[c] for c in columns],
    )
    return tx.rowcount()


def _update(
    tx: Transaction,
    table: str,
    key: str,
    key_value: str,
    changes: Mapping[str, Any],
    only_if: str = "",
) -> int:
    """Update one row; ``only_if`` is a further condition (SQL) the row must meet. Returns
    how many rows changed."""
    sets = ", ".join(f"{c} = ?" for c in changes)
    where = f"{key} = ?" + (f" AND {only_if}" if only_if else "")
    tx.execute(f"UPDATE {table} SET {sets} WHERE {where}", [*changes.values(), key_value])
    return tx.rowcount()


class InspectionStore:
    db: Database

    def create_inspection(self, tx: Transaction, row: Mapping[str, Any]) -> bool:
        """Insert; False when an inspection for the same cause exists already (a replay)."""
        return _insert(tx, "inspections", INSPECTION_COLUMNS, row) == 1

    def inspection_for_cause(self, tx: Transaction, cause_id: str) -> dict[str, Any] | None:
        return tx.one(
            f"SELECT {', '.join(INSPECTION_COLUMNS)} FROM inspections WHERE cause_id = ?",
            (cause_id,),
        )

    def open_inspections(self, tx: Transaction | None = None) -> list[dict[str, Any]]:
        sql = (
            f"SELECT {', '.join(INSPECTION_COLUMNS)} FROM inspections WHERE state <> 'closed' "
            "ORDER BY opened_at, inspection_id"
        )
        return tx.execute(sql) if tx else self.db.query(sql)

    def get_inspection(
        self, tx: Transaction, inspection_id: str, *, lock: bool = False
    ) -> dict[str, Any] | None:
        """``lock`` when the row read is the base of a change (a move, an edit, a rescope): what
        is audited and published as "before" is then what the change replaced."""
        return tx.one(
            f"SELECT {', '.join(INSPECTION_COLUMNS)} FROM inspections WHERE inspection_id = ?",
            (inspection_id,),
            lock=lock,
        )

    def inspection(self, inspection_id: str) -> dict[str, Any] | None:
        with self.db.transaction() as tx:
            return self.get_inspection(tx, inspection_id)

    def update_inspection(self, tx: Transaction, inspection_id: str, **changes: Any) -> None:
        _update(tx, "inspections", "inspection_id", inspection_id, changes)

    def update_untouched(self, tx: Transaction, inspection_id: str, **changes: Any) -> bool:
        """Update an inspection only while still ``opened``; False when someone has moved it
        on meanwhile (another connection, on PostgreSQL, may have committed since it was read)."""
        return (
            _update(tx, "inspections", "inspection_id", inspection_id, changes, "state = 'opened'")
            == 1
        )

    def inspections(
        self, *, state: str | None = None, org: str | None = None, limit: int = 100, offset: int = 0
    ) -> tuple[list[dict[str, Any]], int]:
        where, args = filters("", state=state, org=org)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self.db.transaction() as tx:
            total = tx.execute(f"SELECT COUNT(*) AS n FROM inspections {clause}", args)[0]["n"]
            rows = tx.execute(
                f"SELECT {', '.join(INSPECTION_COLUMNS)} FROM inspections {clause} "
                "ORDER BY opened_at DESC, inspection_id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            )
        return rows, int(total)

    def attach_alert(self, tx: Transaction, inspection_id: str, alert_id: str, at: float) -> bool:
        tx.execute(
            "INSERT INTO inspection_alerts VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (inspection_id, alert_id, at),
        )
        return tx.rowcount() == 1

    def inspection_alert_ids(self, inspection_id: str, tx: Transaction | None = None) -> list[str]:
        sql = "SELECT alert_id FROM inspection_alerts WHERE inspection_id = ? ORDER BY added_at"
        rows = tx.execute(sql, (inspection_id,)) if tx else self.db.query(sql, (inspection_id,))
        return [r["alert_id"] for r in rows]

    # ---- root causes, measures, evaluations -------------------------------------------------

    def add_cause(self, tx: Transaction, row: Mapping[str, Any]) -> None:
        _insert(tx, "root_causes", CAUSE_COLUMNS, {**row, "analysis": _json(row["analysis"])})

    def causes(self, inspection_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"SELECT {', '.join(CAUSE_COLUMNS)} FROM root_causes WHERE inspection_id = ? "
            "ORDER BY created_at, cause_id",
            (inspection_id,),
        )
        return [{**r, "analysis": orjson.loads(r["analysis"])} for r in rows]

    def add_measure(self, tx: Transaction, row: Mapping[str, Any]) -> None:
        _insert(tx, "measures", MEASURE_COLUMNS, row)

    def update_measure(self, tx: Transaction, measure_id: str, **changes: Any) -> None:
        _update(tx, "measures", "measure_id", measure_id, changes)

    def get_measure(self, tx: Transaction, measure_id: str) -> dict[str, Any] | None:
        return tx.one(
            f"SELECT {', '.join(MEASURE_COLUMNS)} FROM measures WHERE measure_id = ?",
            (measure_id,),
        )

    def measures(self, inspection_id: str) -> list[dict[str, Any]]:
        return self.db.query(
            f"SELECT {', '.join(MEASURE_COLUMNS)} FROM measures WHERE inspection_id = ? "
            "ORDER BY created_at, measure_id",
            (inspection_id,),
        )

    def overdue_measures(self, now: float) -> list[dict[str, Any]]:
        """Measures past their deadline, not done, and not yet alerted on."""
        return self.db.query(
            f"SELECT {', '.join(MEASURE_COLUMNS)} FROM measures WHERE state = 'planned' "
            "AND deadline < ? AND overdue_alert_id IS NULL ORDER BY deadline, measure_id",
            (now,),
        )

    def count_overdue(self, now: float) -> int:
        return int(
            self.db.query(
                "SELECT COUNT(*) AS n FROM measures WHERE state = 'planned' AND deadline < ?",
                (now,),
            )[0]["n"]
        )

    def add_evaluation(self, tx: Transaction, row: Mapping[str, Any]) -> None:
        _insert(tx, "evaluations", EVALUATION_COLUMNS, {**row, "body": _json(row["body"])})

    def evaluations(self, inspection_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM evaluations WHERE inspection_id = ? "
            "ORDER BY created_at, evaluation_id",
            (inspection_id,),
        )
        return [{**r, "body": orjson.loads(r["body"])} for r in rows]

    # ---- audit log -----------------------------------------------------------------------------

    def audit(
        self,
        tx: Transaction,
        entity: str,
        entity_id: str,
        action: str,
        actor: str,
        at: float,
        before: Any = None,
        after: Any = None,
    ) -> None:
        _insert(
            tx,
            "audit_log",
            AUDIT_COLUMNS,
            {
                # Time-ordered ids keep entries written in one instant in the order they happened.
                "audit_id": f"{time.time_ns():020d}{uuid.uuid4().hex[:8]}",
                "entity": entity,
                "entity_id": entity_id,
                "action": action,
                "actor": actor,
                "at": at,
                "before": None if before is None else _json(before),
                "after": None if after is None else _json(after),
            },
        )

    def audit_log(self, entity: str, entity_id: str) -> list[dict[str, Any]]:
        rows = self.db.query(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log WHERE entity = ? AND entity_id = ? "
            "ORDER BY at, audit_id",
            (entity, entity_id),
        )
        return [{**r, "before": _load(r["before"]), "after": _load(r["after"])} for r in rows]

    def audit_for_inspection(self, inspection_id: str) -> list[dict[str, Any]]:
        """The inspection's own entries and those of its causes, measures and evaluations."""
        rows = self.db.query(
            f"SELECT {', '.join(AUDIT_COLUMNS)} FROM audit_log WHERE entity_id = ? "
            "OR entity_id IN (SELECT measure_id FROM measures WHERE inspection_id = ?) "
            "OR entity_id IN (SELECT cause_id FROM root_causes WHERE inspection_id = ?) "
            "OR entity_id IN (SELECT evaluation_id FROM evaluations WHERE inspection_id = ?) "
            "ORDER BY at, audit_id",
            (inspection_id,) * 4,
        )
        return [{**r, "before": _load(r["before"]), "after": _load(r["after"])} for r in rows]


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _load(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)
