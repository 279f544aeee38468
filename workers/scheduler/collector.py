"""Python's cyclic garbage collector against a farm held in memory.

A full collection walks every container the process holds. With 1,000 jobs of 100 tasks and
10,000 renders that is 100-140 ms, and CPython runs one whenever the objects that outlived
the young generations grew by a quarter: every few seconds while jobs are submitted and
run. Every heartbeat waits for it. What outlives a second is nearly all farm state (jobs,
blocks, renders, their logs), so `freeze` takes it out of the collector's rounds each second
(it costs nothing: the collector's lists are joined, not walked). Once an hour `collect_all`
looks at it all again, so a cycle that became garbage after it was frozen is freed within
the hour; plain garbage is freed by reference counting, frozen or not.
"""

from __future__ import annotations

import gc
import time

FREEZE_SEC = 1.0
COLLECT_ALL_SEC = 3600.0


def freeze() -> None:
    gc.freeze()


def collect_all() -> tuple[float, int]:
    """Collect the whole heap, then freeze what lives. Returns the pause (s) and how many
    objects were found unreachable."""
    began = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    return time.perf_counter() - began, found
