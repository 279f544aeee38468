"""The system job's queues: slots up to tasksmax, FIFO overflow, ends, life time, reset."""

from __future__ import annotations

from workers.scheduler.farm import Farm, Registration
from workers.scheduler.pools import Builtins
from workers.scheduler.solver import Solver
from workers.scheduler.states import State
from workers.scheduler.systemjob import POST_COMMANDS, SYSTEM_JOB_ID, task_name

NOW = 1000.0


def farm_with_system(tasksmax: int = 2, tasklife: float = 1800) -> Farm:
    farm = Farm(Builtins(), NOW)
    farm.create_system_job(("postcmd", "wakeonlan", "events"), tasksmax, tasklife, 1000, NOW)
    return farm


def test_task_names_follow_the_original() -> None:
    assert task_name("", "rm -rf /prj/tmp/shot010.nk") == "rm"
    assert task_name("given", "rm x") == "given"
    assert len(task_name("", "x" * 100)) == 32


def test_commands_fill_slots_up_to_tasksmax_and_queue_the_rest() -> None:
    farm = farm_with_system(tasksmax=2)
    sysjob = farm.sysjob
    assert sysjob is not None and farm.jobs[SYSTEM_JOB_ID].name == "afanasy"
    for n in range(5):
        farm.queue_system(POST_COMMANDS, f"rm /tmp/{n}", NOW, user_name="u", job_name=f"j{n}")
    block = sysjob.job.blocks[POST_COMMANDS]
    assert sorted(sysjob.slots[POST_COMMANDS]) == [0, 1] and len(sysjob.queues[POST_COMMANDS]) == 3
    assert block.count(State.RDY) == 2 and sysjob.job.state & State.RDY
    assert [c.id for c in sysjob.added] == [1, 2, 3, 4, 5]
    # a render takes them; a done one frees its slot for the next in the queue
    render = farm.register_render(b"A", Registration(name="r1"), NOW)
    render.capacity_host, render.max_tasks_host = 10_000, 10
    started = Solver(farm).solve(NOW)
    assert [t["command"] for _, t in started] == ["rm /tmp/0", "rm /tmp/1"]
    task = started[0][1]
    report = {k: task[k] for k in ("job_id", "block_id", "task_id", "attempt")} | {
        "status": "success"
    }
    farm.task_reports(render, [report], NOW)
    assert sysjob.ended == [1] and sysjob.slots[POST_COMMANDS][0].command == "rm /tmp/2"
    assert len(sysjob.queues[POST_COMMANDS]) == 2


def test_failed_tasks_retry_then_go_with_their_output() -> None:
    farm = farm_with_system(tasksmax=2)
    sysjob = farm.sysjob
    assert sysjob is not None
    farm.queue_system(POST_COMMANDS, "false", NOW)
    renders = []
    for n in range(11):
        r = farm.register_render(f"R{n}".encode(), Registration(name=f"r{n}"), NOW)
        renders.append(r)
    block = sysjob.job.blocks[POST_COMMANDS]
    for attempt in range(1, 11):  # errors_retries 9: ten runs, each on another host
        ((render, task),) = Solver(farm).solve(NOW)
        assert task["attempt"] == attempt
        report = {k: task[k] for k in ("job_id", "block_id", "task_id", "attempt")}
        farm.task_reports(
            render, [report | {"status": "error", "output": f"boom {attempt}".encode()}], NOW
        )
    assert 0 not in sysjob.slots[POST_COMMANDS] and block.states[0] == 0
    log = " ".join(sysjob.job.log)
    assert "failed 10 times: dropped (false)" in log and "boom 10" in log
    assert sysjob.errors_deleted == 1


def test_tasks_not_run_within_tasklife_are_dropped_and_reset_empties_the_queue() -> None:
    farm = farm_with_system(tasksmax=1, tasklife=60)
    sysjob = farm.sysjob
    assert sysjob is not None
    for n in range(3):
        farm.queue_system(POST_COMMANDS, f"cmd{n}", NOW)
    farm.refresh(NOW + 61)
    assert "still" in " ".join(sysjob.job.blocks[0].task_logs[0]) or sysjob.errors_deleted == 1
    assert sysjob.slots[POST_COMMANDS][0].command == "cmd1"  # the next one moved up
    dropped = sysjob.reset(sysjob.job.blocks[POST_COMMANDS], NOW + 62)
    assert (
        len(dropped) == 2 and not sysjob.slots[POST_COMMANDS] and not sysjob.queues[POST_COMMANDS]
    )


def test_a_late_copy_of_a_slots_last_final_does_not_end_the_next_command() -> None:
    """A render resends a final until the server closes it. A copy that arrives after the
    slot took the next command is refused (and closed): that command has run nowhere."""
    farm = farm_with_system(tasksmax=1)
    sysjob = farm.sysjob
    assert sysjob is not None
    farm.queue_system(POST_COMMANDS, "touch /tmp/a", NOW)
    farm.queue_system(POST_COMMANDS, "touch /tmp/b", NOW)
    render = farm.register_render(b"A", Registration(name="r1"), NOW)
    render.capacity_host, render.max_tasks_host = 10_000, 10
    [(_, task)] = Solver(farm).solve(NOW)
    final = {k: task[k] for k in ("job_id", "block_id", "task_id", "attempt")} | {
        "status": "success"
    }
    farm.task_reports(render, [final], NOW)
    block = sysjob.job.blocks[POST_COMMANDS]
    assert sysjob.slots[POST_COMMANDS][0].command == "touch /tmp/b"
    late = farm.task_reports(render, [final], NOW + 1)  # the same final, sent again
    assert late.close == [[task["job_id"], task["block_id"], task["task_id"], task["attempt"]]]
    assert late.finished == []
    assert sysjob.slots[POST_COMMANDS][0].command == "touch /tmp/b"
    assert block.states[0] & State.RDY and sysjob.ended == [1]
    [(_, second)] = Solver(farm).solve(NOW + 1)
    assert second["command"] == "touch /tmp/b"
