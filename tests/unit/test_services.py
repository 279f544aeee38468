"""The render's service step: events tasks run the events delivery (or a site's module)."""

from __future__ import annotations

import sys

from render.services import DATA_ENV, prepare
from render.taskproc import TaskSpec


def spec(service: str, command: str) -> TaskSpec:
    return TaskSpec(job_id=1, block_id=2, task_id=0, attempt=1, command=command, service=service)


def test_other_services_run_their_command_as_it_is() -> None:
    original = spec("postcmd", "rm /tmp/x")
    assert prepare(original, "events") is original


def test_events_tasks_run_the_events_service_with_the_payload() -> None:
    prepared = prepare(spec("events", '{"events": ["JOB_DONE"]}'), "events")
    assert prepared.command.endswith("-m events.service") and sys.executable in prepared.command
    assert prepared.environment[DATA_ENV] == '{"events": ["JOB_DONE"]}'


def test_a_sites_events_module_by_name() -> None:
    prepared = prepare(spec("studio.events", "{}"), "studio.events")
    assert prepared.command.endswith("-m studio.events")


def test_post_commands_are_prepared_by_postcmd_under_the_configured_service() -> None:
    original = spec("studio.post", "rm /tmp/x")
    assert prepare(original, "events", "studio.post") is original
