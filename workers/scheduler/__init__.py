"""The scheduler process: farm state, solving, persistence, periodic checks (main.py).

Kept light: afserver's supervisor imports this package for the exit code alone."""

EXIT_STORE_ERROR = 3  # afserver does not restart a scheduler that cannot open its store
EXIT_LEADERSHIP_LOST = 5  # another afserver may be active: restarted, it waits as a standby
