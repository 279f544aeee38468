"""Jobs and blocks, with tasks held compactly in per-block arrays (not one object per task).

A 100,000-task block costs a few arrays of numbers; only running tasks, error hosts and
task logs live in small dicts. Every task state change goes through ``Block.set_state`` so
the block's counters stay right without rescanning its tasks.
"""

from __future__ import annotations

import time
from array import array
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workers.scheduler import frames
from workers.scheduler.masks import Mask
from workers.scheduler.states import State, short

if TYPE_CHECKING:
    from broker.patterns import Pattern
    from workers.scheduler.branches import Branch
    from workers.scheduler.users import User

LOG_LINES_MAX = 100  # af_node_log_lines_max / af_task_log_linesmax
_COUNTED = (State.RDY, State.RUN, State.DON, State.ERR, State.SKP, State.SUS, State.WRN)


def stamp(now: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))


@dataclass(slots=True)
class TaskRun:
    """A task while it runs on a render (the original's TaskRun)."""

    render_id: int
    host: str
    attempt: int
    time_start: float
    capacity: int
    time_progress: float  # last progress change, for task_progress_change_timeout
    percent: int = 0
    frame: int = 0
    activity: str = ""
    stop_reason: str = ""  # set when the server asked the render to stop it
    stop_state: int = 0  # state to leave the task in when the stop is reported (0 = ready)
    output_bytes: int = 0
    start_seq: int = 0  # the push that carries the start (0: adopted, the render holds it)


@dataclass(slots=True, eq=False)
class Block:
    index: int
    name: str
    numeric: bool
    tasks_num: int
    service: str = "generic"
    parser: str = ""
    capacity: int = 1000
    capacity_coeff_min: float = 0.0
    capacity_coeff_max: float = 0.0
    flags: int = 0
    frame_first: int = 0
    frame_last: int = 0
    frames_per_task: int = 1
    frames_inc: int = 1
    sequential: int = 1
    tasks_name: str = ""
    command: str = ""
    working_directory: str = ""
    files: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    command_pre: str = ""
    command_post: str = ""
    list_tasks: list[dict[str, Any]] | None = None  # non-numeric: name, command, files, environment
    depend_mask: Pattern | None = None
    tasks_depend_mask: Pattern | None = None
    hosts_mask: Mask | None = None
    hosts_mask_exclude: Mask | None = None
    need_memory: int = -1
    need_power: int = -1
    need_hdd: int = -1
    need_properties: Mask | None = None
    need_gpu_mem_mb: int = -1
    need_cpu_freq_mgz: int = -1
    need_cpu_cores: int = -1
    need_cpu_freq_cores: int = -1
    errors_retries: int = -1
    errors_avoid_host: int = -1
    errors_task_same_host: int = -1
    errors_forgive_time: int = -1
    task_max_run_time: int = 0
    task_min_run_time: int = 0
    task_progress_change_timeout: int = -1
    max_running_tasks: int = -1
    max_running_tasks_per_host: int = -1
    parser_coeff: int = 1
    tickets: dict[str, int] = field(default_factory=dict)
    custom_data: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # as submitted, for "jshow"
    # --- tasks, one slot per task -------------------------------------------------------
    states: array = field(default_factory=lambda: array("I"))
    starts: array = field(default_factory=lambda: array("I"))
    errors: array = field(default_factory=lambda: array("I"))
    time_start: array = field(default_factory=lambda: array("d"))
    time_done: array = field(default_factory=lambda: array("d"))
    hosts: array = field(default_factory=lambda: array("i"))  # index into host_names, -1 none
    # --- sparse per-task data and counters -----------------------------------------------
    host_names: list[str] = field(default_factory=list)
    host_index: dict[str, int] = field(default_factory=dict)
    running: dict[int, TaskRun] = field(default_factory=dict)
    running_per_render: Counter[int] = field(default_factory=Counter)
    running_capacity: int = 0
    counts: Counter[int] = field(default_factory=Counter)
    error_hosts: dict[str, list[float]] = field(default_factory=dict)  # host -> [count, last]
    task_error_hosts: dict[int, dict[str, list[float]]] = field(default_factory=dict)
    task_logs: dict[int, deque[str]] = field(default_factory=dict)
    state: int = 0
    time_started: float = 0.0
    run_time_sum: float = 0.0
    cursor: int = 0  # no task below this index is ready (sequential 1 only)
    job_id: int = 0
    dirty: set[int] = field(default_factory=set)  # tasks changed since the last commit
    dirty_sink: set[Block] | None = field(default=None, repr=False)  # the farm's dirty blocks
    delta_rows: int = 0  # task rows stored beside the block's snapshot (compacted when many)

    def init_tasks(self, suspended: bool) -> None:
        first = State.SUS if suspended else State.RDY
        n = self.tasks_num
        self.states = array("I", [first]) * n
        self.starts = array("I", [0]) * n
        self.errors = array("I", [0]) * n
        self.time_start = array("d", [0.0]) * n
        self.time_done = array("d", [0.0]) * n
        self.hosts = array("i", [-1]) * n
        self.counts = Counter({bit: n for bit in _COUNTED if first & bit})

    def recount(self) -> None:
        """Counters from the task arrays (after a restore)."""
        counts: Counter[int] = Counter()
        for state, n in Counter(self.states).items():  # few distinct states: count at C speed
            for bit in _COUNTED:
                if state & bit:
                    counts[int(bit)] += n
        self.counts = counts
        self.cursor = 0

    # --- states --------------------------------------------------------------------------

    def set_state(self, i: int, new: int) -> None:
        """Every change of a task goes through here, so it is also where the store learns of it."""
        self.dirty.add(i)
        if self.dirty_sink is not None:
            self.dirty_sink.add(self)
        old = self.states[i]
        if old == new:
            return
        changed = old ^ new
        counts = self.counts
        for bit in _COUNTED:
            if changed & bit:
                counts[bit] += 1 if new & bit else -1
        self.states[i] = new
        if new & State.RDY and i < self.cursor:
            self.cursor = i

    def count(self, bit: int) -> int:
        return self.counts[int(bit)]

    @property
    def done(self) -> bool:
        return self.count(State.DON) == self.tasks_num

    def host_id(self, host: str) -> int:
        index = self.host_index.get(host)
        if index is None:
            index = self.host_index[host] = len(self.host_names)
            self.host_names.append(host)
        return index

    def add_task_log(self, i: int, now: float, text: str) -> None:
        log = self.task_logs.get(i)
        if log is None:
            log = self.task_logs[i] = deque(maxlen=LOG_LINES_MAX)
        log.append(f"{stamp(now)} {text}")

    # --- what a task is ------------------------------------------------------------------

    def task_frames(self, i: int) -> tuple[int, int]:
        if self.numeric:
            return frames.task_frames(
                i, self.frame_first, self.frame_last, self.frames_per_task, self.frames_inc
            )
        per = max(1, self.frames_per_task)
        start = self.frame_first + i * per
        return start, start + per - 1

    def task_name(self, i: int) -> str:
        if self.numeric:
            start, end = self.task_frames(i)
            return frames.numeric_task_name(self.tasks_name, start, end, self.frames_inc)
        assert self.list_tasks is not None  # non-numeric blocks always have their task list
        return frames.list_task_name(self.tasks_name, self.list_tasks[i].get("name", f"task {i}"))

    def task_command(self, i: int) -> str:
        if self.numeric:
            start, end = self.task_frames(i)
            return frames.fill_frames(self.command, start, end)
        assert self.list_tasks is not None
        return frames.list_task_command(self.command, self.list_tasks[i].get("command", ""))

    def task_files(self, i: int) -> list[str]:
        if self.numeric:
            start, end = self.task_frames(i)
            return [frames.fill_frames(f, start, end) for f in self.files]
        assert self.list_tasks is not None
        return list(self.list_tasks[i].get("files", [])) or list(self.files)

    def task_working_directory(self, i: int) -> str:
        if self.list_tasks is not None:
            return self.list_tasks[i].get("working_directory") or self.working_directory
        return self.working_directory

    def task_environment(self, i: int) -> dict[str, str]:
        if self.list_tasks is not None:
            return {**self.environment, **self.list_tasks[i].get("environment", {})}
        return self.environment

    def order(self) -> Iterator[int]:
        """Task indices in pick order; sequential 1 starts at the first possibly-ready task."""
        if self.sequential == 1:
            states = self.states
            while self.cursor < self.tasks_num and not states[self.cursor] & State.RDY:
                self.cursor += 1
            return iter(range(self.cursor, self.tasks_num))
        return frames.task_order(self.tasks_num, self.sequential, lambda i: self.task_frames(i)[0])

    def progress(self) -> dict[str, Any]:
        n = self.tasks_num
        done = self.count(State.DON)
        return {
            "tasks_num": n,
            "p_tasks_ready": self.count(State.RDY),
            "p_tasks_running": len(self.running),
            "p_tasks_done": done,
            "p_tasks_error": self.count(State.ERR),
            "p_tasks_skipped": self.count(State.SKP),
            "p_tasks_suspended": self.count(State.SUS),
            "p_tasks_warning": self.count(State.WRN),
            "p_percentage": int(100 * done / n) if n else 100,
            "state": short(self.state),
            "error_hosts": {h: int(v[0]) for h, v in self.error_hosts.items()},
        }


@dataclass(slots=True, eq=False)
class Job:
    id: int
    serial: int
    name: str
    user_name: str
    blocks: list[Block]
    user: User = field(repr=False)
    host_name: str = ""
    priority: int = 99
    annotation: str = ""
    description: str = ""
    custom_data: str = ""
    hidden: bool = False
    command_pre: str = ""
    command_post: str = ""
    time_creation: float = 0.0
    time_life: int = -1
    time_wait: float = 0.0
    depend_mask: Pattern | None = None
    depend_mask_global: Pattern | None = None
    branch: str = "/"
    folders: dict[str, str] = field(default_factory=dict)
    ppa: bool = False
    maintenance: bool = False
    ignorenimby: bool = False
    ignorepaused: bool = False
    max_tasks_per_second: int = -1
    max_running_tasks: int = -1
    max_running_tasks_per_host: int = -1
    hosts_mask: Mask | None = None
    hosts_mask_exclude: Mask | None = None
    need_os: Mask | None = None
    need_properties: Mask | None = None
    need_power: int = -1
    need_memory: int = -1
    need_hdd: int = -1
    pools: dict[str, int] = field(default_factory=dict)
    solve_method: str = "solve_priority"
    solve_need: str = "solve_capacity"
    project: str = ""
    department: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # as submitted, for "jshow"
    # the client's idempotency key of the submission: a retry with it gets this job back
    submit_key: str = ""
    state: int = 0
    paused: bool = False
    deleting: bool = False
    time_started: float = 0.0
    time_done: float = 0.0
    time_solved: float = 0.0  # last time a task started: ties in need go to the one waiting longest
    tps: list[int] = field(default_factory=lambda: [0, 0])  # second, tasks started in it
    branch_node: Branch = field(default=None, repr=False)  # type: ignore[assignment]
    running_tasks: int = 0
    running_capacity: int = 0
    running_per_render: Counter[int] = field(default_factory=Counter)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_LINES_MAX))
    waiting_pre: set[int] = field(default_factory=set)  # command_pre system commands not done yet
    pre_failed: bool = False

    def add_log(self, now: float, text: str) -> None:
        self.log.append(f"{stamp(now)} {text}")

    @property
    def done(self) -> bool:
        return bool(self.state & State.DON)

    def tasks_total(self) -> int:
        return sum(b.tasks_num for b in self.blocks)

    def task_depends_done(self, block: Block, i: int) -> bool:
        """tasks_depend_mask: the tasks of matching blocks covering this task's frames are done."""
        mask = block.tasks_depend_mask
        if mask is None:
            return True
        start, end = block.task_frames(i)
        for other in self.blocks:
            if other is block or not mask.fullmatch(other.name):
                continue
            step = max(1, other.frames_per_task) * (
                max(1, other.frames_inc) if other.numeric else 1
            )
            first = (start - other.frame_first) // step
            last = (end - other.frame_first) // step
            for n in range(max(0, first), min(other.tasks_num - 1, last) + 1):
                if not other.states[n] & State.DON:
                    return False
        return True

    def eta(self) -> float:
        """Seconds until done, guessed from each block's mean task time so far: the tasks
        left (the running ones by their percent) at the block's current concurrency, the
        blocks one after the other (0: nothing to guess from yet)."""
        total = 0.0
        for b in self.blocks:
            left = b.tasks_num - b.count(State.DON)
            if not left:
                continue
            finished = b.count(State.DON) - b.count(State.SKP)
            if finished <= 0 or b.run_time_sum <= 0:
                return 0.0
            mean = b.run_time_sum / finished
            running = sum(1 - r.percent / 100 for r in b.running.values())
            total += (left - len(b.running) + running) * mean / max(1, len(b.running))
        return total

    def summary(self) -> dict[str, Any]:
        total = self.tasks_total()
        done = sum(b.count(State.DON) for b in self.blocks)
        percents = sum(r.percent for b in self.blocks for r in b.running.values())
        return {
            "id": self.id,
            "serial": self.serial,
            "name": self.name,
            "user_name": self.user_name,
            "host_name": self.host_name,
            "priority": self.priority,
            "state": short(self.state),
            "branch": self.branch,
            "time_creation": self.time_creation,
            "time_started": self.time_started,
            "time_done": self.time_done,
            "time_wait": self.time_wait,
            "tasks_num": total,
            "tasks_done": done,
            "tasks_running": self.running_tasks,
            "tasks_error": sum(b.count(State.ERR) for b in self.blocks),
            "tasks_skipped": sum(b.count(State.SKP) for b in self.blocks),
            # the running tasks' percents summed: a bar moves before a task finishes
            "tasks_running_percent": percents,
            "percentage": int(100 * done / total) if total else 100,
            "eta": round(self.eta()) if self.running_tasks else 0,
            "max_running_tasks": self.max_running_tasks,
            "max_running_tasks_per_host": self.max_running_tasks_per_host,
            "hosts_mask": self.hosts_mask.pattern if self.hosts_mask else "",
            "annotation": self.annotation,
            "custom_data": self.custom_data,
        }
