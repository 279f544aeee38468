"""One interface over the two statistics databases: PostgreSQL (psycopg 3) when
`af_db_conninfo` is set, else an SQLite file `stats.sqlite` in the store folder."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from config.loader import masked
from stats import schema, stats_enabled

if TYPE_CHECKING:
    import psycopg

OK = "Database connection is working"


class StatsError(Exception):
    """The database refused or is unreachable; the text is the driver's."""


class Backend:
    placeholder = "?"
    name = "sqlite"
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)  # the driver's: a StatsError

    def connect(self) -> Any:
        raise NotImplementedError

    def describe(self) -> str:
        """Which database, for a person (no password)."""
        raise NotImplementedError

    def existing_columns(self, conn: Any, table: str) -> list[str]:
        raise NotImplementedError

    def run(self, work: Any) -> Any:
        try:
            conn = self.connect()
        except self.errors as exc:
            raise StatsError(str(exc).strip()) from exc
        try:
            with conn:
                return work(conn)
        except self.errors as exc:
            raise StatsError(str(exc).strip()) from exc
        finally:
            conn.close()

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self.run(lambda conn: conn.execute(sql, params).fetchall())

    def check(self) -> str:
        self.run(lambda conn: conn.execute("SELECT 1").fetchall())
        return OK

    def reset(self, tables: list[str]) -> None:
        """Drop and create the tables (the original's db_reset_*)."""

        def work(conn: Any) -> None:
            for table in tables:
                conn.execute(f"DROP TABLE IF EXISTS {table}")
                conn.execute(schema.create_sql(table))

        self.run(work)

    def update_tables(self) -> list[str]:
        """Create missing tables and add missing columns; returns what was added."""

        def work(conn: Any) -> list[str]:
            added = []
            for table, cols in schema.TABLES.items():
                have = self.existing_columns(conn, table)
                if not have:
                    conn.execute(schema.create_sql(table))
                    added.append(table)
                    continue
                for column in cols:
                    if column[0] not in have:
                        conn.execute(f"ALTER TABLE {table} ADD COLUMN {schema.column_sql(column)}")
                        added.append(f"{table}.{column[0]}")
            return added

        return self.run(work)

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        self.run(lambda conn: self.insert_rows(conn, table, rows))

    def insert_rows(self, conn: Any, table: str, rows: list[dict[str, Any]]) -> None:
        """Rows into a table on an open connection, in the caller's transaction."""
        names = schema.columns(table)
        marks = ", ".join([self.placeholder] * len(names))
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})"
        conn.cursor().executemany(sql, [schema.fit(table, r) for r in rows])

    def write(self, conn: Any, by_table: dict[str, list[dict[str, Any]]]) -> None:
        """A batch of rows of several tables in one transaction: all of it or none."""
        try:
            for table, rows in by_table.items():
                self.insert_rows(conn, table, rows)
            conn.commit()
        except self.errors as exc:
            with contextlib.suppressself.errors:
                conn.rollback()
            raise StatsError(str(exc).strip()) from exc

    def open(self) -> Any:
        """A connection kept by a long-lived writer."""
        try:
            return self.connect()
        except self.errors as exc:
            raise StatsError(str(exc).strip()) from exc

    def count(self, table: str) -> int:
        return self.run(lambda conn: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


class SQLiteBackend(Backend):
    def __init__(self, path: str | Path, create: bool = True) -> None:
        """`create` False: a missing file is an error (afcmd must not make an empty one
        where the server never looks)."""
        self.path = Path(path)
        self.create = create

    def describe(self) -> str:
        return f"SQLite {self.path}"

    def connect(self) -> sqlite3.Connection:
        if not self.create and not self.path.is_file():
            raise sqlite3.OperationalError(
                f"no statistics database at {self.path}: is {self.path.parent} the server's "
                "store folder? (af_store_folder, AF_STORE_FOLDER)"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(self.path, timeout=10)

    def existing_columns(self, conn: Any, table: str) -> list[str]:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


class PostgresBackend(Backend):
    placeholder = "%s"
    name = "postgresql"

    def __init__(self, conninfo: str, timeout: float = 5.0) -> None:
        import psycopg  # here: a farm on SQLite statistics never loads it (~8 MB a process)

        self.conninfo = conninfo
        self.timeout = timeout
        self.errors = (sqlite3.Error, psycopg.Error)
        self._connect = psycopg.connect

    def describe(self) -> str:
        return f"PostgreSQL {masked('af_db_conninfo', self.conninfo)}"

    def connect(self) -> psycopg.Connection:
        return self._connect(self.conninfo, connect_timeout=max(1, int(self.timeout)))

    def insert_rows(self, conn: Any, table: str, rows: list[dict[str, Any]]) -> None:
        """COPY: one stream per table instead of a statement per row."""
        names = ", ".join(schema.columns(table))
        with conn.cursor().copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(schema.fit(table, row))

    def existing_columns(self, conn: Any, table: str) -> list[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s AND table_schema = current_schema()",
            (table,),
        )
        return [r[0] for r in rows]


def open_backend(cfg: Any) -> Backend:
    conninfo = str(cfg["af_db_conninfo"])
    if not stats_enabled(cfg):
        raise StatsError("statistics are off (af_db_conninfo = off)")
    if conninfo:
        return PostgresBackend(conninfo)
    return SQLiteBackend(Path(cfg["af_store_folder"]) / "stats.sqlite")
