"""Services on the render: turn a task into what is run, as the original's Python service
classes do. Most services run their command as it is; the system job's services are owned by
their packages: post commands by postcmd/ (run as they are given), events by events/ (the
events delivery runs with the event JSON, the task's command, in its environment)."""

from __future__ import annotations

import dataclasses
import shlex
import sys

from postcmd import executor as postcmd
from render.taskproc import TaskSpec

DATA_ENV = "AF_EVENT_DATA"


def prepare(spec: TaskSpec, events_service: str, postcmd_service: str = "postcmd") -> TaskSpec:
    """`events_service` is af_sysjob_events_service: "events", or a site's module path;
    `postcmd_service` af_sysjob_postcmd_service."""
    if spec.service == postcmd_service:
        return postcmd.prepare(spec)
    if spec.service != events_service:
        return spec
    module = "events.service" if events_service == "events" else events_service
    return dataclasses.replace(
        spec,
        command=f"{shlex.quote(sys.executable)} -m {module}",
        environment={**spec.environment, DATA_ENV: spec.command},
    )
