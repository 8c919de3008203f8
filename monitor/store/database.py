"""One connection to SQLite or PostgreSQL behind the same few calls.

Queries are written once, in SQLite's dialect with ``?`` placeholders; :class:`Database`
translates placeholders and column types for PostgreSQL, so every store module stays dialect-free.
Rows come back as plain dicts. A single connection serves the process, guarded by a lock: the
worker writes in short transactions and the API reads between them.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError

#: SQLite column types -> PostgreSQL ones. Epoch seconds and counters need 64 bits there.
_PG_TYPES = (
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b"), "BYTEA"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
)


class Transaction:
    """Statements run inside one transaction; see :meth:`Database.transaction`."""

    def __init__(self, db: Database, cursor: Any) -> None:
        self._db, self._cursor = db, cursor

    def execute(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self._cursor.execute(self._db.sql(sql), tuple(args))
        if self._cursor.description is None:
            return []
        return [self._db.row(r, self._cursor) for r in self._cursor.fetchall()]

    def one(
        self, sql: str, args: Sequence[Any] = (), *, lock: bool = False
    ) -> dict[str, Any] | None:
        """The first row, if any. ``lock``: the row is about to be changed from what was read,
        so another transaction must wait to read it (``FOR UPDATE``) until this one ends; on
        SQLite every write transaction already holds the database's lock from its start."""
        if lock and self._db.dialect == "postgresql":
            sql += " FOR UPDATE"
        rows = self.execute(sql, args)
        return rows[0] if rows else None

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(r) for r in rows]
        if batch:
            self._cursor.executemany(self._db.sql(sql), batch)

    def rowcount(self) -> int:
        return int(self._cursor.rowcount)


class Database:
    """``sqlite:///path`` or ``postgresql://...``; anything else is refused by name."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            path = Path(url.removeprefix("sqlite:///"))
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=10000")
            self._conn: Any = conn
        elif url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
            try:
                import psycopg
            except ImportError as exc:  # pragma: no cover - a dependency of the package
                raise ConfigError(
                    "QUALMON_DATABASE_URL names PostgreSQL, which requires "
                    "`pip install 'psycopg[binary]'`"
                ) from exc
            try:
                self._conn = psycopg.connect(url, autocommit=True)
            except psycopg.OperationalError as exc:
                raise ConfigError(
                    f"QUALMON_DATABASE_URL={_redact(url)!r}: cannot connect to PostgreSQL: "
                    f"{str(exc).strip()}"
                ) from exc
        else:
            raise ConfigError(
                f"QUALMON_DATABASE_URL has value {_redact(url)!r}; expected "
                "sqlite:///path/to/file.db or postgresql://user@host:port/database"
            )

    def sql(self, text: str) -> str:
        if self.dialect == "sqlite":
            return text
        return text.replace("?", "%s")

    def ddl(self, text: str) -> str:
        if self.dialect == "sqlite":
            return text
        for pattern, replacement in _PG_TYPES:
            text = pattern.sub(replacement, text)
        return text

    def row(self, raw: Any, cursor: Any) -> dict[str, Any]:
        names = [d[0] for d in cursor.description]
        return dict(zip(names, raw, strict=True))

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One transaction, committed when the block ends and rolled back if it raises.

        SQLite takes the write lock at the start (``BEGIN IMMEDIATE``) so two writers queue
        instead of failing half-way; PostgreSQL runs at READ COMMITTED with row locks.
        """
        with self._lock:
            if self.dialect == "sqlite":
                cursor = self._conn.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield Transaction(self, cursor)
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                finally:
                    cursor.close()
            else:
                with self._conn.transaction(), self._conn.cursor() as cursor:
                    yield Transaction(self, cursor)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """A read outside any explicit transaction."""
        with self._lock:
            cursor = self._conn.cursor()
            try:
                return Transaction(self, cursor).execute(sql, args)
            finally:
                cursor.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def _redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
