"""Users' masks: Python's backtracking `re` against RE2 as broker.patterns runs it.

In process, no server: what one mask costs the scheduler's loop.
- `re_doubling`: seconds of `re.fullmatch("(a+)+$", "a"*n + "!")` for a few n (each extra
  character doubles it; the issue's 25 characters froze the scheduler ~7 s);
- `jlist_ms`: a jlist mask over 10,000 jobs held by an in-process Farm (select_jobs), for
  the catastrophic patterns and a usual one;
- `worst_us`: one test of a 512-character name by patterns near the caps (PROGRAM_MAX);
- `hot_us`: one remembered answer (the solver's case) against re's own call.

Prints one JSON line on stdout; exits 1 when a figure misses its goal (jlist < 100 ms).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench._common import machine, report  # noqa: E402
from broker.patterns import PROGRAM_MAX, compile_pattern  # noqa: E402
from workers.scheduler.farm import Farm  # noqa: E402
from workers.scheduler.pools import Builtins  # noqa: E402

JOBS = 10_000
CATASTROPHIC = ["(a+)+$", "(a|aa)+$", "(.*a){20}"]
NEAR_CAPS = ["(.*){220}", "(.?){220}", "(\\w{10}){66}", "(.*a){220}", "(\\w+\\s?){200}$"]


def re_doubling() -> dict[str, float]:
    out = {}
    for n in (18, 20, 22):
        started = time.perf_counter()
        re.fullmatch("(a+)+$", "a" * n + "!")
        out[str(n)] = round(time.perf_counter() - started, 3)
    return out


def jlist_ms() -> dict[str, float]:
    farm = Farm(Builtins(), 0.0)
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1, "command": "true"}
    for i in range(JOBS):
        farm.add_job({"name": "a" * 40 + f"!{i}", "blocks": [block]}, "u", "h", 0.0)
    out = {}
    for mask in [*CATASTROPHIC, "a+!1.*"]:
        started = time.perf_counter()
        farm.select_jobs(None, mask)
        out[mask] = round((time.perf_counter() - started) * 1000, 1)
    return out


def worst_us() -> dict[str, float]:
    names = ["x" * 256 + "a" * 256, "ab " * 170, "".join(chr(97 + i * 7 % 26) for i in range(512))]
    out = {}
    for text in NEAR_CAPS:
        pattern = compile_pattern(text, "bench")
        started = time.perf_counter()
        for i in range(20):  # distinct names: nothing remembered
            for name in names:
                pattern.fullmatch(name + str(i))
        out[text] = round((time.perf_counter() - started) / 60 * 1e6, 1)
    return out


def hot_us() -> dict[str, float]:
    ours, theirs = compile_pattern("farm[0-9]+", "bench"), re.compile("farm[0-9]+")
    result = {}
    for name, test in (("re2_remembered", ours.fullmatch), ("python_re", theirs.fullmatch)):
        started = time.perf_counter()
        for _ in range(100_000):
            test("farm12")
        result[name] = round((time.perf_counter() - started) * 10, 3)
    return result


def run() -> dict[str, Any]:
    jlist = jlist_ms()
    return {
        "bench": "masks",
        "ok": max(jlist.values()) < 100,
        "program_max": PROGRAM_MAX,
        "re_doubling_s": re_doubling(),
        "jlist_ms_10000_jobs": jlist,
        "worst_us_512_chars": worst_us(),
        "hot_us": hot_us(),
        "machine": machine(),
    }


if __name__ == "__main__":
    report(run)
