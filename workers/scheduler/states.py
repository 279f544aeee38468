"""Job, block and task state bits with the original's short names (SPEC B §1.6)."""

from __future__ import annotations

import functools


class State:
    """Plain ints, not an enum.IntFlag: every IntFlag operator builds a member (about a
    microsecond), and these bits are tested in every per-task path and task scan."""

    RDY = 1 << 0  # runnable
    RUN = 1 << 1  # running
    WDP = 1 << 2  # waiting for dependencies
    WTM = 1 << 3  # job time_wait in the future
    DON = 1 << 4  # done (skipped counts as done)
    ERR = 1 << 5  # failed
    SKP = 1 << 8  # skipped (always with DON)
    OFF = 1 << 9  # job paused
    WRN = 1 << 10  # parser warning
    PER = 1 << 11  # parser error
    PBR = 1 << 12  # parser bad result
    PSC = 1 << 13  # parser finished success
    FPO = 1 << 14  # post command failed
    BRF = 1 << 15  # bad rendered files
    PPA = 1 << 16  # preview-pending-approval reached (job)
    RER = 1 << 17  # error task auto-returned to ready
    WRC = 1 << 18  # was running at server start, waits for its render
    TRY = 1 << 19  # try this task next
    SUS = 1 << 20  # suspended
    PFE = 1 << 21  # parser fatal error: never auto-retried


BITS = {name: bit for name, bit in vars(State).items() if name.isupper()}  # name -> bit
_BITS = [(bit, name) for name, bit in BITS.items()]


@functools.lru_cache(maxsize=4096)
def _names(state: int) -> tuple[str, ...]:
    return tuple(name for bit, name in _BITS if state & bit)


def names(state: int) -> list[str]:
    """A state's flags by name. States are few and asked for by the thousand (every task
    change a monitor is told of): remembered, and read with plain ints, not enum flags."""
    return list(_names(int(state)))


def short(state: int) -> str:
    return " ".join(_names(int(state))) or "-"


# What a finished run leaves on a task, by the render's final status (SPEC B §5).
SUCCESS_STATUSES = {
    "success": 0,
    "parser_success": State.PSC,
    "skipped": State.SKP,
    "post_failed": State.FPO,
}
ERROR_STATUSES = {
    "error": 0,
    "killed": 0,
    "failed_start": 0,
    "parser_error": State.PER,
    "parser_fatal": State.PFE,
    "parser_badresult": State.PBR,
    "bad_files": State.BRF,
}
# The task goes back to ready without an error: the render went away or ejected it.
RETURN_STATUSES = frozenset(
    {"ejected", "render_exit", "render_zombie", "render_deregister", "render_lost"}
)
FINAL_STATUSES = frozenset(SUCCESS_STATUSES) | frozenset(ERROR_STATUSES) | RETURN_STATUSES
