"""postcmd/: what a job leaves to run, and how its tasks wait for its command_pre."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from postcmd import commands
from postcmd.executor import prepare
from render.taskproc import TaskSpec


@dataclass
class Block:
    working_directory: str
    command_pre: str = ""
    command_post: str = ""


@dataclass
class Job:
    blocks: list[Block]
    command_pre: str = ""
    command_post: str = ""
    id: int = 7
    name: str = "shot"
    user_name: str = "ann"
    waiting_pre: set[int] = field(default_factory=set)
    pre_failed: bool = False
    log: list[str] = field(default_factory=list)

    def add_log(self, now: float, text: str) -> None:
        self.log.append(text)


@dataclass
class Cmd:
    id: int
    command: str
    fields: dict[str, Any]


class Queue:
    def __init__(self) -> None:
        self.queued: list[Cmd] = []

    def __call__(self, command: str, now: float, **fields: Any) -> Cmd:
        cmd = Cmd(len(self.queued) + 1, command, fields)
        self.queued.append(cmd)
        return cmd


def job() -> Job:
    return Job(
        [Block("/a", command_post="rm a.tmp"), Block("/b", command_pre="mkdir out")],
        command_pre="touch lock",
        command_post="rm lock",
    )


def test_the_jobs_own_command_runs_in_its_first_blocks_directory_then_each_blocks() -> None:
    assert commands.job_commands(job(), "command_post") == [("rm lock", "/a"), ("rm a.tmp", "/a")]
    assert commands.job_commands(job(), "command_pre") == [
        ("touch lock", "/a"),
        ("mkdir out", "/b"),
    ]
    assert commands.job_commands(Job([]), "command_post") == []


def test_post_commands_are_queued_with_the_jobs_user_and_name_and_wait_for_nothing() -> None:
    queue = Queue()
    queued = commands.queue_commands(job(), "command_post", queue, 0.0)
    assert [c.command for c in queued] == ["rm lock", "rm a.tmp"]
    assert queued[0].fields == {
        "working_directory": "/a",
        "user_name": "ann",
        "job_name": "shot",
        "pre_for": 0,
    }


def test_a_job_waits_for_its_command_pre_until_each_is_done() -> None:
    queue, j = Queue(), job()
    assert commands.wait_for_pre(j, queue, 0.0)
    assert j.waiting_pre == {1, 2} and all(c.fields["pre_for"] == 7 for c in queue.queued)
    assert commands.why_not_ready(j) == "waiting for its command_pre to run"
    assert commands.pre_ended(j, queue.queued[0], True, "", 1.0)
    assert not commands.pre_ended(j, queue.queued[0], True, "", 1.0)  # told once
    assert commands.pre_ended(j, queue.queued[1], True, "", 1.0)
    assert not j.waiting_pre and commands.why_not_ready(j) is None
    assert j.log[-1] == "command_pre done: mkdir out"


def test_a_failed_command_pre_holds_the_job_and_logs_its_output() -> None:
    queue, j = Queue(), job()
    commands.wait_for_pre(j, queue, 0.0)
    commands.pre_ended(j, queue.queued[0], False, "touch: permission denied", 1.0)
    assert j.pre_failed
    assert commands.why_not_ready(j) == "its command_pre failed (see the job log)"
    assert j.log[-1] == "command_pre FAILED: touch lock\ntouch: permission denied"


def test_a_job_without_command_pre_does_not_wait() -> None:
    j = Job([Block("/a")])
    assert not commands.wait_for_pre(j, Queue(), 0.0)
    assert j.log == []


def test_the_executor_runs_a_post_command_as_it_was_given() -> None:
    spec = TaskSpec(job_id=1, block_id=0, task_id=0, attempt=1, command="rm x", service="postcmd")
    assert prepare(spec) is spec
