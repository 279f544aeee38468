"""Logging setup shared by every process, so all their lines look alike on stderr."""

from __future__ import annotations

import logging
import os
import sys

_MARK = "_afanasy_handler"


def setup_logging(verbosity: int, name: str) -> None:
    """Log to stderr as ``time LEVEL name[pid] logger: message``.

    ``verbosity`` -1 shows warnings only, 0 adds info, 1 or more adds debug. Calling it
    again replaces the handler it installed before, so a process that re-execs its setup
    (or a test) never prints each line twice.
    """
    if verbosity < 0:
        level = logging.WARNING
    elif verbosity == 0:
        level = logging.INFO
    else:
        level = logging.DEBUG
    # The process name is literal text in the format, so escape any % it may hold; the pid
    # comes from each record, which stays right in forked children.
    label = name.replace("%", "%%")
    fmt = f"%(asctime)s %(levelname)s {label}[%(process)d] %(name)s: %(message)s"

    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _MARK, False):
            root.removeHandler(handler)
            handler.close()
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _MARK, True)
    handler.setFormatter(logging.Formatter(fmt))
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler logs every job run at INFO; our periodic checks run every second.
    logging.getLogger("apscheduler").setLevel(max(level, logging.WARNING))


VERBOSITY_ENV = "AF_VERBOSITY"


def verbosity_from_env() -> int:
    """The -v level afserver hands to its child processes (0 when unset or unreadable)."""
    try:
        return int(os.environ.get(VERBOSITY_ENV, "0"))
    except ValueError:
        return 0
