"""Moving a farm from its SQLite store to a PostgreSQL one (`afcmd store_copy`), whole, in
one transaction, while no afserver runs on either: the copy holds the PostgreSQL store's
lock, so an afserver started meanwhile waits as a standby until it is done."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workers.scheduler.pgstore import PgStore
from workers.scheduler.store import FILE_NAME, Store, StoreError

# every table of the store, in an order that reads well in the summary
TABLES = (
    "meta",
    "users",
    "renders",
    "pools",
    "jobs",
    "blocks",
    "tasks",
    "syscommands",
    "stats_outbox",
)


def copy_store(folder: str | Path, conninfo: str) -> dict[str, Any]:
    """Copy the SQLite store in `folder` into the (empty) PostgreSQL store `conninfo`.
    Returns the rows copied by table; raises StoreError with the reason, having written
    nothing, when the source is missing, the target is not empty or is in use."""
    if not (Path(folder) / FILE_NAME).is_file():
        raise StoreError(f"no SQLite store at {Path(folder) / FILE_NAME}")
    source = Store(folder)
    target = PgStore(conninfo, name="afcmd store_copy")
    try:
        if not target.try_acquire():
            raise StoreError(f"an afserver is active on {target.path}: stop it first")
        rows = {t: target.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        rows.pop("meta")
        if any(rows.values()):
            raise StoreError(f"{target.path} is not empty ({rows}): nothing was copied")
        copied: dict[str, int] = {}
        with target.transaction():
            target.db.execute("DELETE FROM meta WHERE key <> 'schema_version'")
            for table in TABLES:
                data = source.db.execute(f"SELECT * FROM {table}").fetchall()
                if table == "meta":
                    data = [r for r in data if r[0] != "schema_version"]
                if data:
                    marks = ", ".join("?" * len(data[0]))
                    target.db.executemany(f"INSERT INTO {table} VALUES({marks})", data)
                copied[table] = len(data)
            target.db.execute(
                "SELECT setval(pg_get_serial_sequence('stats_outbox', 'id'), "
                "(SELECT coalesce(max(id), 0) + 1 FROM stats_outbox), false)"
            )
        return {"from": str(source.path), "to": target.path, "rows": copied}
    finally:
        source.close()
        target.close()
