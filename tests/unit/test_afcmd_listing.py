"""jlist and rlist rows: the system job and its executors say what they are."""

from __future__ import annotations

from afcmd.listing import job_row, jobs_note, renders_in_order, renders_note

QUEUES = [
    {"name": "post_commands", "service": "postcmd", "queued": 2, "running": 1, "tasksmax": 1000},
    {"name": "wake-on-lan", "service": "wakeonlan", "queued": 0, "running": 0, "tasksmax": 1000},
    {"name": "events", "service": "events", "queued": 1, "running": 0, "tasksmax": 1000},
]
COUNTS = {"priority": 99, "tasks_done": 0, "tasks_num": 3000, "tasks_error": 0, "percentage": 0}
SYSTEM = {"id": 1, "name": "afanasy", "user_name": "afadmin", "state": "-", "system": QUEUES,
          "tasks_running": 0, **COUNTS}  # fmt: skip
HELLO = {"id": 2, "name": "hello", "user_name": "ann", "state": "RUN", "priority": 99,
         "tasks_done": 3, "tasks_num": 10, "tasks_running": 1, "tasks_error": 0,
         "percentage": 30}  # fmt: skip


def test_the_system_job_shows_its_queued_commands_not_its_slots() -> None:
    assert job_row(SYSTEM) == [1, "afanasy", "afadmin", "idle", 99, "3 queued", 0, 0, "-"]
    assert job_row({**SYSTEM, "state": "RUN", "tasks_running": 1})[3] == "RUN"
    assert job_row(HELLO) == [2, "hello", "ann", "RUN", 99, "3/10", 1, 0, "30%"]


def test_the_note_under_jlist_names_the_system_job_only_when_listed() -> None:
    note = jobs_note([SYSTEM, HELLO])
    assert note.startswith("afanasy (id 1) is the system job")
    assert "post_commands, wake-on-lan, events" in note and "afcmd jshow afanasy" in note
    assert jobs_note([HELLO]) == ""


def render(name: str, services: list[str] | None = None) -> dict:
    return {"name": name, "services": services or []}


def test_executors_come_after_the_farms_renders_with_a_note() -> None:
    listed = [render("sysjob@vm", ["postcmd", "events", "wakeonlan"]), render("zeta"),
              render("postcmd@old", ["postcmd"]), render("alpha"), render("user@ws", ["maya"])]  # fmt: skip
    order = [r["name"] for r in renders_in_order(listed)]
    assert order == ["alpha", "user@ws", "zeta", "postcmd@old", "sysjob@vm"]
    note = renders_note(listed)
    assert note.startswith("sysjob@vm, postcmd@old: the system job's executor")
    assert "DRT" in note and all(len(line) <= 96 for line in note.splitlines())
    assert renders_note([render("alpha")]) == ""
