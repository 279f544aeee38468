"""The statistics tables exactly as the original's (seed "Database Schema"), for both dialects.

Strings are varchar(af_db_stringnamelen = 512), commands and resources
varchar(af_db_stringexprlen = 4096); numbers default to 0.
"""

from __future__ import annotations

NAME = "character varying(512)"
EXPR = "character varying(4096)"

Column = tuple[str, str, str | None]  # name, type, default

TABLES: dict[str, list[Column]] = {
    "jobs": [
        ("annotation", NAME, None),
        ("blockname", NAME, None),
        ("capacity", "integer", "0"),
        ("description", NAME, None),
        ("folder", NAME, None),
        ("jobname", NAME, None),
        ("hostname", NAME, None),
        ("service", NAME, None),
        ("tasks_done", "integer", "0"),
        ("tasks_quantity", "integer", "0"),
        ("run_time_sum", "bigint", "0"),
        ("time_done", "bigint", "0"),
        ("time_started", "bigint", "0"),
        ("username", NAME, None),
        ("serial", "bigint", "0"),
        ("id_block", "integer", "0"),
    ],
    "tasks": [
        ("annotation", NAME, None),
        ("blockname", NAME, None),
        ("capacity", "integer", "0"),
        ("command", EXPR, None),
        ("description", NAME, None),
        ("error", "integer", "0"),
        ("errors_count", "integer", "0"),
        ("folder", NAME, None),
        ("frame_pertask", "bigint", "0"),
        ("hostname", NAME, None),
        ("jobname", NAME, None),
        ("resources", EXPR, None),
        ("service", NAME, None),
        ("starts_count", "integer", "0"),
        ("time_done", "bigint", "0"),
        ("time_started", "bigint", "0"),
        ("username", NAME, None),
        ("serial", "bigint", "0"),
        ("id_block", "integer", "0"),
        ("id_task", "integer", "0"),
    ],
    "logs": [
        ("time", "bigint", "0"),
        ("subject", NAME, None),
        ("type", NAME, None),
        ("object", NAME, None),
        ("info", EXPR, None),
    ],
}

LIMITS = {name: 512 for table in TABLES.values() for name, kind, _ in table if kind == NAME}
LIMITS.update({name: 4096 for table in TABLES.values() for name, kind, _ in table if kind == EXPR})


def column_sql(column: Column) -> str:
    name, kind, default = column
    return f"{name} {kind}" + (f" DEFAULT {default}" if default is not None else "")


def create_sql(table: str) -> str:
    return f"CREATE TABLE {table} ({', '.join(column_sql(c) for c in TABLES[table])})"


def columns(table: str) -> list[str]:
    return [name for name, _, _ in TABLES[table]]


def fit(table: str, row: dict[str, object]) -> tuple[object, ...]:
    """A row in column order, strings cut to their column's length."""
    out = []
    for name, _, default in TABLES[table]:
        value = row.get(name, None if default is None else 0)
        if isinstance(value, str) and len(value) > LIMITS.get(name, 1 << 30):
            value = value[: LIMITS[name]]
        out.append(value)
    return tuple(out)
