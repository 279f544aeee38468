"""Event names, as the original's."""

from __future__ import annotations

import enum


class Event(enum.StrEnum):
    JOB_CREATED = "JOB_CREATED"
    JOB_DELETED = "JOB_DELETED"
    JOB_ERROR = "JOB_ERROR"
    JOB_DONE = "JOB_DONE"
    RENDER_ZOMBIE = "RENDER_ZOMBIE"
    RENDER_SICK = "RENDER_SICK"
    RENDER_NO_TASK = "RENDER_NO_TASK"
    RENDER_OVERLOAD = "RENDER_OVERLOAD"


JOB_EVENTS = frozenset({Event.JOB_CREATED, Event.JOB_DELETED, Event.JOB_ERROR, Event.JOB_DONE})
