"""Statistics of jobs and tasks: the original's tables in PostgreSQL or an embedded SQLite."""
