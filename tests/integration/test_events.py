"""Events delivered for real: an SMTP sink and an HTTP sink started by the test, the events
executor started by afserver, job events with the original's gates and payloads (the render
events are in test_render_events.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import free_port, submit, wait_for

pytestmark = pytest.mark.integration


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [m["Subject"] for m in self.messages]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def one_task(name: str, command: str, **job: Any) -> dict[str, Any]:
    block = {
        "name": "b",
        "flags": 1,
        "frame_first": 1,
        "frame_last": 1,
        "command": command,
        "errors_retries": 0,
    }
    return {"name": name, "user_name": "jimmy", "blocks": [block], **job}


def test_job_events_by_email_and_webhook_and_bad_custom_data(make_farm, smtp, http_sink) -> None:  # type: ignore[no-untyped-def]
    box, smtp_port = smtp
    hooks, http_port = http_sink
    farm = make_farm(email_smtp_server=f"127.0.0.1:{smtp_port}")
    farm.start_server()
    farm.start_render("r1")
    wait_for(lambda: farm.online() == {"r1"}, 20, "render online")
    farm.ask({"user_name": "jimmy", "get": {"type": "stat"}})  # jimmy appears on first contact
    user_data = {
        "emails": ["wrangler@example.com"],
        "webhooks": [f"http://127.0.0.1:{http_port}/hook"],
    }
    farm.ask(
        {
            "admin": True,  # a user's settings are the admin's (we run afserver: an admin)
            "action": {
                "type": "users",
                "names": ["jimmy"],
                "params": {"custom_data": json.dumps(user_data)},
            },
        }
    )

    events = {
        "JOB_DONE": {"methods": ["email"]},
        "JOB_ERROR": {"methods": ["email"]},
        "JOB_DELETED": {"methods": ["webhook"]},
    }
    good = submit(
        farm, one_task("shot010_comp", "true", custom_data=json.dumps({"events": events}))
    )
    bad = submit(
        farm, one_task("shot020_comp", "exit 1", custom_data=json.dumps({"events": events}))
    )
    wait_for(lambda: len(box.messages) >= 2, 30, "two mails")
    assert sorted(box.subjects()) == ["Job Done - shot010_comp", "Job Error - shot020_comp"]
    mail = box.messages[0]
    assert mail["To"] == "wrangler@example.com" and mail["From"] == "noreply@cgru.info"
    assert "jimmy" in mail.get_payload(decode=True).decode()

    farm.ask(  # jimmy deletes his own job
        {
            "user_name": "jimmy",
            "action": {"type": "jobs", "ids": [good], "operation": {"type": "delete"}},
        }
    )
    wait_for(lambda: len(hooks) >= 1, 30, "the JOB_DELETED webhook")
    payload = hooks[0]
    assert payload["events"] == ["JOB_DELETED"] and payload["job"]["name"] == "shot010_comp"
    assert payload["user"]["name"] == "jimmy" and "emails" in payload["user"]["custom_data"]

    # custom data that is not JSON breaks nothing: the user's mapping still sends the mail
    user_data["events"] = {"JOB_DONE": {"methods": ["email"]}}
    farm.ask(
        {
            "admin": True,  # a user's settings are the admin's (we run afserver: an admin)
            "action": {
                "type": "users",
                "names": ["jimmy"],
                "params": {"custom_data": json.dumps(user_data)},
            },
        }
    )
    submit(farm, one_task("shot030_comp", "true", custom_data="{this is not json"))
    wait_for(
        lambda: "Job Done - shot030_comp" in box.subjects(),
        30,
        "the mail despite bad job custom data",
    )
    assert box.subjects().count("Job Done - shot010_comp") == 1  # one mail per event
    assert bad
