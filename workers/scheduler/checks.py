"""Pure decisions for the periodic render checks (SPEC B §1.7, §9): sick, no task, overload.

Time is an argument; the farm applies what these decide.
"""

from __future__ import annotations

from typing import Any


def record_error(
    records: list[tuple[float, str, str]], now: float, service: str, user: str
) -> None:
    """An error finish: keep (time, service, user), dropping older records of the same user."""
    records[:] = [r for r in records if r[2] != user]
    records.append((now, service, user))


def is_sick(records: list[tuple[float, str, str]], sick_errors_count: float) -> bool:
    """Errors from that many distinct users in a row make a render sick (<= 0: never)."""
    return sick_errors_count > 0 and len(records) >= sick_errors_count


def no_task_due(idle_since: float, sent: int, period: float, now: float) -> bool:
    """RENDER_NO_TASK at T, 2T, 4T… after going idle (period <= 0: off)."""
    return period > 0 and now - idle_since >= period * (2**sent)


def overload_due(since: float, sent: int, period: float, now: float) -> bool:
    """RENDER_OVERLOAD at once, then T, 2T, 4T… after the overload began."""
    return sent == 0 or now - since >= period * (2 ** (sent - 1))


def overloaded(
    resources: dict[str, Any], mem_pct: float, swap_pct: float, hdd_pct: float
) -> list[str]:
    """What is low: free memory, free swap or free disk at or under its percentage (-1: off)."""
    low = []

    def free_pct(free: float, total: float) -> float | None:
        return 100.0 * free / total if total > 0 else None

    checks = (
        ("memory", mem_pct, resources.get("mem_free_mb", 0), resources.get("mem_total_mb", 0)),
        (
            "swap",
            swap_pct,
            resources.get("swap_total_mb", 0) - resources.get("swap_used_mb", 0),
            resources.get("swap_total_mb", 0),
        ),
        ("disk", hdd_pct, resources.get("hdd_free_gb", 0), resources.get("hdd_total_gb", 0)),
    )
    for name, limit, free, total in checks:
        pct = free_pct(free, total)
        if limit >= 0 and pct is not None and pct <= limit:
            low.append(f"free {name} {pct:.0f}% <= {limit:g}%")
    return low


def life_over(time_creation: float, job_life: int, user_life: int, now: float) -> bool:
    """A job older than its time_life (-1: the user's jobs_life_time; <= 0: forever)."""
    life = job_life if job_life != -1 else user_life
    return life > 0 and now - time_creation > life
