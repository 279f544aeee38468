"""The executor's side of post commands: a post-commands task is the command itself, run
as any task is (the shell, the task's working directory and user), by an executor that takes
the postcmd service (af_sysjob_postcmd_service). Its output is the task's output; one that
fails for good leaves it in the system job's log (workers/scheduler/systemjob.py)."""

from __future__ import annotations

from render.taskproc import TaskSpec


def prepare(spec: TaskSpec) -> TaskSpec:
    """A post command runs as it was given: nothing to add (the original ran it with the
    shell in the job's working directory, as any render runs a task)."""
    return spec
