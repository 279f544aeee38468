"""What the monitor page adds to a refusal: the page's own field or checkbox to use."""

from __future__ import annotations

from dataclasses import dataclass

from web.refusals import (
    PAGE_ADMIN,
    PAGE_NOT_ADMIN,
    PAGE_OTHERS,
    PAGE_TOKEN,
    PAGE_UNNAMED,
    for_page,
)
from workers.scheduler import permissions


@dataclass
class Job:
    id: int
    name: str
    user_name: str


def test_each_refusal_names_what_to_do_on_the_page() -> None:
    assert for_page(401, "a valid token is needed") == PAGE_TOKEN
    caller = permissions.Caller("alice", "ws", admin=False, proven=False)
    others = permissions.job_action(caller, "pause", [Job(7, "shot", "bob")], system_job=None)
    assert others is not None and for_page(403, others) == PAGE_OTHERS
    _, not_admin = permissions.identify("alice", "ws", None, True, frozenset({"boss"}))
    assert not_admin is not None and for_page(403, not_admin) == PAGE_NOT_ADMIN
    assert for_page(403, "the system job needs the admin role (X-Afanasy-Admin: 1)") == PAGE_ADMIN
    unnamed = permissions.Caller("", "ws", admin=False, proven=False)
    text = permissions.job_action(unnamed, "pause", [Job(7, "shot", "bob")], system_job=None)
    assert text is not None and for_page(403, text) == PAGE_UNNAMED
    assert for_page(400, "bad input") == "" and for_page(404, "no such job") == ""
