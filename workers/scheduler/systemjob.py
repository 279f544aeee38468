"""The system job (SPEC B §6, A9, A10): post commands, wake-on-lan and events as tasks.

Job id 1, name "afanasy", user "afadmin". Each of its three blocks has `af_sysjob_tasksmax`
task slots. A queued command takes the smallest free slot; when none is free it waits in
the block's queue, so no command is lost. A done task frees its slot at once; a failed
one is retried (9 times), then dropped with its output in the system job's log. Every
queued or live command is a row in the store until it ends.

Effects happen once where they can, and are recognisable where they cannot: each command
carries a stable id (its effect id) and counts its runs. A start is stored before it leaves
the server, so after a stop a command that was running comes back waiting (WRC) for its
executor, whose kept result ends it without a second run; only one that no executor
finished runs again, as run 2, with the same effect id (a mail's Message-ID, a webhook's
Idempotency-Key) so that its receivers can drop the repeat.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from events.effects import Effect
from workers.scheduler.states import State

if TYPE_CHECKING:
    from workers.scheduler.jobs import Block, Job

SYSTEM_JOB_ID = 1
SYSTEM_JOB_NAME = "afanasy"
SYSTEM_USER = "afadmin"
POST_COMMANDS, WAKE_ON_LAN, EVENTS = 0, 1, 2
BLOCK_NAMES = ("post_commands", "wake-on-lan", "events")
TASK_NAME_MAX = 32
FREE = 0  # a slot without a command: not ready, not counted


@dataclass(slots=True)
class Command:
    id: int
    block: int
    command: str
    working_directory: str = ""
    user_name: str = ""
    job_name: str = ""
    task_name: str = ""
    time_queued: float = 0.0
    pre_for: int = 0  # a job whose tasks wait for this command_pre (0: a post command or event)
    uid: str = ""  # the effect's stable id, made when the command is queued
    runs: int = 0  # how many times it was started: a run after the first is a retry
    slot: int = -1  # where its last start ran: slot, attempt and render
    attempt: int = 0
    host: str = ""

    def to_json(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}  # type: ignore[attr-defined]


def task_name(name: str, command: str) -> str:
    """The given name, else the command up to its first space, at most 32 characters."""
    return (name or command.split(" ", 1)[0])[:TASK_NAME_MAX]


def submission(services: tuple[str, str, str], tasksmax: int, capacity: int) -> dict[str, Any]:
    """The system job as a submission, so it is built and solved like any job."""
    blocks = [
        {
            "name": name,
            "service": service,
            "capacity": capacity,
            "tasks": [{"name": "", "command": ""}] * tasksmax,
            "task_max_run_time": 60,
            "errors_avoid_host": 3,
            "errors_task_same_host": 1,
            "errors_retries": 9,
            "errors_forgive_time": 600,
        }
        for name, service in zip(BLOCK_NAMES, services, strict=True)
    ]
    return {"name": SYSTEM_JOB_NAME, "user_name": SYSTEM_USER, "priority": 99, "blocks": blocks}


@dataclass
class SystemJob:
    job: Job
    tasksmax: int
    tasklife: float
    queues: list[deque[Command]] = field(default_factory=lambda: [deque(), deque(), deque()])
    slots: list[dict[int, Command]] = field(default_factory=lambda: [{}, {}, {}])
    created: list[dict[int, float]] = field(default_factory=lambda: [{}, {}, {}])
    added: list[Command] = field(default_factory=list)  # new or started commands, for the store
    ended: list[int] = field(default_factory=list)  # command ids that ended, for the store
    next_id: int = 1
    errors_deleted: int = 0
    done: list[int] = field(default_factory=lambda: [0, 0, 0])  # per block, since the start
    failed: list[int] = field(default_factory=lambda: [0, 0, 0])
    outputs: dict[tuple[int, int], str] = field(default_factory=dict)  # last failed run's output
    last_output: str = ""  # the output of the last command that ended with an error

    def __post_init__(self) -> None:
        for block in self.job.blocks:
            for i in range(block.tasks_num):
                block.states[i] = FREE
            block.recount()

    # --- queueing --------------------------------------------------------------------------

    def add(self, block: int, command: str, now: float, **fields: Any) -> Command:
        cmd = Command(self.next_id, block, command, time_queued=now, **fields)
        cmd.uid = cmd.uid or uuid.uuid4().hex
        cmd.task_name = task_name(cmd.task_name, command)
        self.next_id += 1
        self.added.append(cmd)
        self.queues[block].append(cmd)
        self.fill(now)
        return cmd

    def restore(self, commands: list[Command], now: float, attempts: list[int]) -> list[Command]:
        """Commands left in the store come back in their order. One that was started goes
        back to its slot waiting (WRC) for the render that ran it, as a job's running task
        does; the others are queued. `attempts`: the highest attempt each block gave, so
        that no new start takes the number of a result an executor may still keep.
        Returns the commands that wait for their render."""
        for block, top in zip(self.job.blocks, attempts, strict=False):
            for i in range(block.tasks_num):
                block.starts[i] = top
        waiting = []
        for cmd in sorted(commands, key=lambda c: c.id):
            cmd.uid = cmd.uid or f"{cmd.id}.{cmd.time_queued:.6f}"  # stored before effect ids
            self.next_id = max(self.next_id, cmd.id + 1)
            block = self.job.blocks[cmd.block]
            if (
                cmd.runs
                and 0 <= cmd.slot < block.tasks_num
                and cmd.slot not in self.slots[cmd.block]
            ):
                self._place(block, cmd.slot, cmd, now)
                block.starts[cmd.slot] = cmd.attempt
                block.hosts[cmd.slot] = block.host_id(cmd.host) if cmd.host else -1
                block.set_state(cmd.slot, State.WRC)
                text = (
                    f"{block.name} task '{cmd.task_name}' was running on {cmd.host or '?'} at the "
                    f"stop (run {cmd.runs}, effect {cmd.uid}): waits for its render"
                )
                self.job.add_log(now, text)
                block.add_task_log(cmd.slot, now, text)
                waiting.append(cmd)
            else:
                self.queues[cmd.block].append(cmd)
        self.fill(now)
        return waiting

    def attempts(self) -> list[int]:
        """The highest attempt each block gave: stored, so restarts never reuse one."""
        return [max(block.starts, default=0) for block in self.job.blocks]

    def started(self, block: Block, i: int, attempt: int, host: str, now: float) -> dict[str, str]:
        """A system task starts: the command counts the run (stored before the start leaves
        the server) and the task's environment gets its effect id and run number."""
        cmd = self.slots[block.index].get(i)
        if cmd is None:
            return {}
        cmd.runs += 1
        cmd.slot, cmd.attempt, cmd.host = i, attempt, host
        self.added.append(cmd)
        if cmd.runs > 1:
            text = (
                f"{block.name} task '{cmd.task_name}' retry: run {cmd.runs} of effect {cmd.uid} "
                "(an earlier run may have taken effect)"
            )
            self.job.add_log(now, text)
            block.add_task_log(i, now, text)
        return Effect(cmd.uid, cmd.runs).env()

    def fill(self, now: float) -> None:
        """Queued commands take the smallest free slots."""
        for b, queue in enumerate(self.queues):
            if not queue:
                continue
            block = self.job.blocks[b]
            slots = self.slots[b]
            i = 0
            while queue and len(slots) < self.tasksmax:
                while i in slots:
                    i += 1
                self._place(block, i, queue.popleft(), now)
                # a new command has run nowhere: a late copy of the slot's last final (a render
                # resends finals until they are closed) must not be taken as this one's
                block.hosts[i] = -1
                block.set_state(i, State.RDY)

    def _place(self, block: Block, i: int, cmd: Command, now: float) -> None:
        self.slots[block.index][i] = cmd
        self.created[block.index][i] = now
        assert block.list_tasks is not None  # the system blocks are list blocks
        block.list_tasks[i] = {
            "name": cmd.task_name,
            "command": cmd.command,
            "working_directory": cmd.working_directory,
            "user_name": cmd.user_name,
        }
        block.errors[i] = 0
        block.task_error_hosts.pop(i, None)

    # --- ends ------------------------------------------------------------------------------

    def after_finish(self, block: Block, i: int, now: float, output: str = "") -> Command | None:
        """A system task ended. Done or out of retries: its slot is freed. Returns the command
        when it ended for good (with an error when the task state is ERR)."""
        state = block.states[i]
        cmd = self.slots[block.index].get(i)
        if cmd is None:
            return None
        if output and state & (State.ERR | State.RER):
            self.outputs[(block.index, i)] = output[-4000:]
        if state & (State.RUN | State.RDY):
            return None
        if not state & State.ERR:
            self.done[block.index] += 1
        else:
            self.errors_deleted += 1
            self.failed[block.index] += 1
            text = f"{block.name} task '{cmd.task_name}' failed {block.errors[i]} times: dropped ({cmd.command})"
            self.job.add_log(now, text)
            block.add_task_log(i, now, text)
            last = self.outputs.get((block.index, i))
            self.last_output = last or ""
            if last:
                self.job.add_log(now, f"output of '{cmd.task_name}':\n{last}")
        self._free(block, i)
        self.fill(now)
        return cmd

    def _free(self, block: Block, i: int) -> None:
        cmd = self.slots[block.index].pop(i)
        self.created[block.index].pop(i, None)
        self.outputs.pop((block.index, i), None)
        self.ended.append(cmd.id)
        block.set_state(i, FREE)
        assert block.list_tasks is not None
        block.list_tasks[i] = {"name": "", "command": ""}

    def expire(self, now: float) -> list[Command]:
        """Tasks still ready `af_sysjob_tasklife` after they were made become errors and go."""
        expired = []
        for block in self.job.blocks:
            for i, made in list(self.created[block.index].items()):
                if now - made >= self.tasklife and block.states[i] & State.RDY:
                    block.set_state(i, State.ERR)
                    block.add_task_log(
                        i, now, f"still not run after af_sysjob_tasklife {self.tasklife:g} s"
                    )
                    cmd = self.after_finish(block, i, now)
                    if cmd is not None:
                        expired.append(cmd)
        return expired

    def reset(self, block: Block, now: float) -> list[int]:
        """Restarting a system block resets its queue (SPEC A10): queued and ready commands
        are dropped; running ones are left to end. Returns the dropped command ids."""
        dropped = [c.id for c in self.queues[block.index]]
        self.queues[block.index].clear()
        self.ended.extend(dropped)
        for i in [i for i in self.slots[block.index] if block.states[i] & State.RDY]:
            dropped.append(self.slots[block.index][i].id)
            self._free(block, i)  # (notes the command as ended)
        self.job.add_log(now, f"block '{block.name}' reset: {len(dropped)} commands dropped")
        return dropped

    def ended_counts(self) -> dict[str, dict[str, int]]:
        """Commands ended for good since the start, by block (postcmd, events, wol)."""
        return {
            block.name: {"done": self.done[block.index], "failed": self.failed[block.index]}
            for block in self.job.blocks
        }

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "name": block.name,
                "service": block.service,
                "queued": len(self.queues[block.index]),
                "live_tasks": len(self.slots[block.index]),
                "running": len(block.running),
                "tasksmax": self.tasksmax,
            }
            for block in self.job.blocks
        ]
