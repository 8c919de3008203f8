"""The history store: anomalies, indicator history, checkpoints, partials between the worker's
stages, alerts, inspections, audit log, feedback on anomalies and rolling windows.

SQLite by default (a file in the data directory, WAL mode so the API reads while the worker
writes); PostgreSQL when ``QUALMON_DATABASE_URL`` is ``postgresql://...``. One schema for both,
built by the append-only :data:`MIGRATIONS` and recorded in ``schema_version``. Every write that
input can repeat is idempotent, keyed on a natural id: a redelivered bucket, anomaly or alert
cause writes nothing new. One module per concern; :class:`Store` puts them together.
"""

from __future__ import annotations

from monitor.store.alerts import AlertStore
from monitor.store.database import Database, Transaction
from monitor.store.feedback import FeedbackStore
from monitor.store.history import ANOMALY_COLUMNS, READING_COLUMNS, HistoryStore
from monitor.store.inspections import InspectionStore
from monitor.store.migrations import MIGRATIONS
from monitor.store.partials import PartialStore

__all__ = [
    "ANOMALY_COLUMNS",
    "MIGRATIONS",
    "READING_COLUMNS",
    "Database",
    "Store",
    "Transaction",
    "open_store",
]


class Store(HistoryStore, PartialStore, AlertStore, InspectionStore, FeedbackStore):
    def __init__(self, db: Database) -> None:
        self.db = db
        self.migrate()

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def migrate(self) -> int:
        """Apply pending migrations, each in its own transaction; returns the schema version."""
        with self.db.transaction() as tx:
            tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = 0
        for number, script in enumerate(MIGRATIONS, start=1):
            with self.db.transaction() as tx:
                if self.db.dialect == "postgresql":
                    # Two processes starting together must not both apply a migration.
                    tx.execute("LOCK TABLE schema_version IN EXCLUSIVE MODE")
                current = tx.execute("SELECT MAX(version) AS v FROM schema_version")[0]["v"] or 0
                if current >= number:
                    version = current
                    continue
                for statement in filter(str.strip, self.db.ddl(script).split(";")):
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_version VALUES (?)", (number,))
                version = number
        return version

    def close(self) -> None:
        self.db.close()


def open_store(url: str) -> Store:
    """Open (and migrate) the store named by ``QUALMON_DATABASE_URL`` or its SQLite default."""
    return Store(Database(url))
