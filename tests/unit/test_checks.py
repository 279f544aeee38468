from __future__ import annotations

from workers.scheduler import checks

RES = {
    "mem_free_mb": 500,
    "mem_total_mb": 10000,
    "swap_total_mb": 0,
    "swap_used_mb": 0,
    "hdd_free_gb": 50,
    "hdd_total_gb": 100,
}


def test_sick_needs_distinct_users_in_a_row() -> None:
    records: list[tuple[float, str, str]] = []
    checks.record_error(records, 1, "nuke", "a")
    checks.record_error(records, 2, "nuke", "a")  # the same user again replaces its record
    assert len(records) == 1 and not checks.is_sick(records, 2)
    checks.record_error(records, 3, "maya", "b")
    assert checks.is_sick(records, 2) and not checks.is_sick(records, 0)


def test_no_task_backoff_is_t_2t_4t() -> None:
    sent, times = 0, []
    for now in range(0, 20):
        if checks.no_task_due(0, sent, 2, now):
            times.append(now)
            sent += 1
    assert times == [2, 4, 8, 16]
    assert not checks.no_task_due(0, 0, 0, 100)  # off


def test_overload_at_once_then_t_2t() -> None:
    sent, times = 0, []
    for now in range(10, 30):
        if checks.overload_due(10, sent, 3, now):
            times.append(now)
            sent += 1
    assert times == [10, 13, 16, 22]


def test_overloaded_reads_free_percentages() -> None:
    assert checks.overloaded(RES, 5, -1, -1) == ["free memory 5% <= 5%"]
    assert checks.overloaded(RES, 4, -1, -1) == []
    assert checks.overloaded(RES, -1, 1, 60) == ["free disk 50% <= 60%"]  # no swap: not judged


def test_life_time() -> None:
    assert checks.life_over(0, 10, 0, 11) and not checks.life_over(0, 10, 0, 9)
    assert checks.life_over(0, -1, 5, 6) and not checks.life_over(0, -1, 0, 1e9)
