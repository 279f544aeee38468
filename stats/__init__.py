"""Statistics of jobs and tasks: the original's tables in PostgreSQL or an embedded SQLite."""

from typing import Any

OFF = "off"


def stats_enabled(cfg: Any) -> bool:
    """`af_db_conninfo = off` keeps no statistics at all. Here, not in backends.py, so that
    afserver's supervisor can ask without loading psycopg."""
    return str(cfg["af_db_conninfo"]).strip().lower() != OFF
