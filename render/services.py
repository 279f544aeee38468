"""Services on the render: turn a task into what is run, as the original's Python service
classes do. Most services run their command as it is; the events service runs the events
delivery with the event JSON (the task's command) in its environment."""

from __future__ import annotations

import dataclasses
import shlex
import sys

from render.taskproc import TaskSpec

DATA_ENV = "AF_EVENT_DATA"


def prepare(spec: TaskSpec, events_service: str) -> TaskSpec:
    """`events_service` is af_sysjob_events_service: "events", or a site's module path."""
    if spec.service != events_service:
        return spec
    module = "events.service" if events_service == "events" else events_service
    return dataclasses.replace(
        spec,
        command=f"{shlex.quote(sys.executable)} -m {module}",
        environment={**spec.environment, DATA_ENV: spec.command},
    )
