"""The scheduler's durable store: an embedded SQLite database (WAL) in af_store_folder.

Rows hold one node each as JSON beside its key columns, so adding a field needs no
migration; the schema version guards the table layout itself. A file that is not a
readable database of ours stops the server with a clear message and is left untouched.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("store")

SCHEMA_VERSION = 1
FILE_NAME = "farm.sqlite"

_MIGRATIONS: dict[int, list[str]] = {
    1: [
        "CREATE TABLE renders (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL)",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, data TEXT NOT NULL)",
    ],
}


class StoreError(RuntimeError):
    """The store cannot be used; the message says which file and why."""


class Store:
    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILE_NAME
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store folder {self.folder}: {exc}") from exc
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"store {self.path} is not a usable afanasy database ({exc}); "
                "it was left untouched: move it away to start with an empty farm"
            ) from exc

    def _migrate(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
        )
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else 0
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"store {self.path} has schema version {version}, newer than this server "
                f"({SCHEMA_VERSION}); it was left untouched"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction():
                for statement in _MIGRATIONS[target]:
                    self.db.execute(statement)
                self.db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES('schema_version', ?)",
                    (str(target),),
                )
            log.info("store %s migrated to schema version %d", self.path, target)

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def load(self, table: str) -> list[dict[str, Any]]:
        return [
            json.loads(data) for (data,) in self.db.execute(f"SELECT data FROM {table} ORDER BY id")
        ]

    def save(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Upsert nodes (each with id and name) in one transaction."""
        with self.transaction():
            self.db.executemany(
                f"INSERT INTO {table}(id, name, data) VALUES(?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET name=excluded.name, data=excluded.data",
                [(r["id"], r["name"], json.dumps(r, separators=(",", ":"))) for r in rows],
            )

    def delete(self, table: str, ids: Iterable[int]) -> None:
        with self.transaction():
            self.db.executemany(f"DELETE FROM {table} WHERE id=?", [(i,) for i in ids])

    def close(self) -> None:
        self.db.close()


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
