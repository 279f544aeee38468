"""Statistics of jobs and tasks: the original's tables in PostgreSQL or an embedded SQLite."""

from typing import Any

OFF = "off"


def stats_enabled(cfg: Any) -> bool:
    """`af_db_conninfo = off` keeps no statistics at all. Here, not in backends.py, so that
    afserver's supervisor can ask without loading psycopg."""
    return str(cfg["af_db_conninfo"]).strip().lower() != OFF


def writer_in_web(cfg: Any) -> bool:
    """Where the statistics writer runs: a thread of the web process when the web is on
    (the statistics' reader and their writer in one process, one interpreter less at rest:
    ~11 MB), afserver's `stats` process when it is off."""
    return stats_enabled(cfg) and int(cfg["af_web_port"]) > 0
