"""The original's web page as a monitor of the gateway: registration, events, expiry."""

from __future__ import annotations

from gateway import watch


def push(**kw: object) -> dict[str, object]:
    return dict(kw)


def test_register_then_poll_what_changed_once() -> None:
    pages = watch.Pages()
    reply = pages.register(
        {"user_name": "jim", "host_name": "ws1", "engine": "firefox"}, "10.0.0.5", 100.0
    )
    page_id = reply["monitor"]["id"]
    assert page_id > 0 and reply["monitor"]["user_name"] == "jim"
    assert pages.events(page_id, 101.0) == {"events": {}}
    pages.fold(
        push(
            jobs=[{"id": 3, "name": "a"}, {"id": 4, "name": "b"}],
            tasks=[
                {
                    "job_id": 3,
                    "tasks": [
                        {
                            "block_id": 0,
                            "task_id": 1,
                            "state": "RUN",
                            "starts": 1,
                            "errors": 0,
                            "host": "r1",
                            "time_start": 5.5,
                        }
                    ],
                }
            ],
            renders=[{"id": 7}],
            renders_deleted=[8],
            users=[{"id": 2, "name": "jim"}],
        )
    )
    pages.fold(push(jobs=[{"id": 3}], jobs_deleted=[4]))
    events = pages.events(page_id, 102.0)["events"]
    assert events["jobs_change"] == [3] and events["jobs_del"] == [4]  # deleted: not changed
    assert events["renders_change"] == [7] and events["renders_del"] == [8]
    assert events["users_change"] == [2]
    (progress,) = events["tasks_progress"]
    assert progress["job_id"] == 3 and progress["blocks"] == [0] and progress["tasks"] == [1]
    assert progress["progress"][0]["str"] == 1 and progress["progress"][0]["hst"] == "r1"
    assert progress["progress"][0]["tst"] == 5
    assert events["block_ids"] == {"job_id": [3], "block_num": [0], "mode": ["progress"]}
    assert pages.events(page_id, 103.0) == {"events": {}}  # taken once


def test_an_unknown_or_expired_page_is_told_to_register_again() -> None:
    pages = watch.Pages()
    assert pages.events(5, 0.0) == {"monitor": {"id": 0}}
    page_id = pages.register({}, "::1", 0.0)["monitor"]["id"]
    pages.register({}, "::1", watch.TIMEOUT_SEC + 1)  # registering expires the silent ones
    assert pages.events(page_id, watch.TIMEOUT_SEC + 1) == {"monitor": {"id": 0}}


def test_bounded_pages_and_pending_and_bad_pushes_ignored() -> None:
    pages = watch.Pages()
    for _ in range(watch.PAGES_MAX):
        pages.register({"user_name": 5}, "a", 0.0)
    assert pages.register({}, "a", 0.0) == {"monitor": {"id": 0}}
    page_id = next(iter(pages.by_id))
    tasks = [{"block_id": 0, "task_id": i, "state": "RUN"} for i in range(watch.PENDING_MAX + 1)]
    pages.fold({"tasks": [{"job_id": 1, "tasks": tasks}], "jobs": [{"id": 1}]})
    pages.fold(None)
    pages.fold({"jobs": "x", "tasks": [5, {"job_id": "x"}], "renders_deleted": [True, 2]})
    events = pages.events(page_id, 1.0)["events"]
    assert "tasks_progress" not in events and events["jobs_change"] == [1]
    assert events["renders_del"] == [2]


def test_a_page_is_told_the_uid_of_its_user() -> None:
    pages = watch.Pages()
    mine = pages.register({"user_name": "jim"}, "10.0.0.5", 0.0, uid=4)["monitor"]
    assert mine["uid"] == 4 and mine["user_name"] == "jim"
    assert pages.register({}, "10.0.0.5", 0.0)["monitor"]["uid"] == -1  # none: VISOR mode
