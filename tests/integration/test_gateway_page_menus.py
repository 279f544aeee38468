"""The original web page's menus through the gateway, on a real farm: each request sent as
its page sends it (HTTP POST with an AFANASY header; the JSON as afanasy/browser/*.js builds
it, recorded in tests/fixtures/original/menus), and the reply read as the page reads it.

One farm (afserver with its gateway, one render) serves the module; each test submits its
own jobs as its own user, so the tests do not see each other's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.client import send
from gateway.framing import Framing
from tests.conftest import Farm, free_port, wait_for

pytestmark = pytest.mark.integration

SHAPES = Path(__file__).parent.parent / "fixtures" / "original" / "menus"
RENDER = "menus-render"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((SHAPES / f"{name}.json").read_text())


def filled(template: Any, **values: Any) -> Any:
    """A recorded request with its placeholders ("<job id>": job_id=…) set to values."""
    text = json.dumps(template)
    for key, value in values.items():
        text = text.replace(json.dumps(f"<{key.replace('_', ' ')}>"), json.dumps(value))
    assert "<" not in text, f"a placeholder left unset: {text}"
    return json.loads(text)


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    farm = Farm(tmp_path_factory.mktemp("menus"), {"af_gateway_port": free_port()})
    farm.start_server()
    farm.start_render(RENDER)
    wait_for(lambda: RENDER in farm.online(), 30, "the render online")
    yield farm
    farm.stop()
    assert "Traceback" not in farm.log("afserver")


def page(farm: Farm, obj: Any) -> Any:
    """One request of the page: HTTP POST to the gateway, as network.js nw_request sends."""
    port = json.loads(farm.config_file.read_text())["af_gateway_port"]
    return send(port, obj, Framing.HTTP)


def submit(
    farm: Farm, user: str, blocks: list[dict[str, Any]], name: str = "job", **job_keys: Any
) -> int:
    job = {
        "job": {"name": name, "user_name": user, "host_name": "ws1", "blocks": blocks, **job_keys}
    }
    reply = page(farm, job)
    assert reply.get("id", 0) > 0, reply
    return int(reply["id"])


def one_task(command: str, **block: Any) -> list[dict[str, Any]]:
    return [{"name": "b", "tasks": [{"name": "t0", "command": command}], **block}]


def done(farm: Farm, job_id: int) -> bool:
    return "DON" in farm.job(job_id)["state"].split()


def info_of(reply: Any, kind: str) -> str:
    assert set(reply) == {"info"}, reply
    assert reply["info"]["kind"] == kind, reply
    return str(reply["info"]["text"])


def job_ids(farm: Farm) -> set[int]:
    return {j["id"] for j in farm.ask({"get": {"type": "jobs"}})["jobs"]}


def test_registration_gives_the_users_uid_and_the_page_acts_as_that_user(farm: Farm) -> None:
    shape = fixture("register_uid")
    # ours know a user from their first contact on: a page registering is one
    first = page(farm, filled(shape["request"], user_name="ann"))["monitor"]["uid"]
    mine = submit(farm, "ann", one_task("true"), "mine")
    theirs = submit(farm, "ben", one_task("true"), "theirs")
    wait_for(lambda: done(farm, mine) and done(farm, theirs), 60, "both jobs done")

    reply = page(farm, filled(shape["request"], user_name="ann"))
    for key, fields in shape["reply_keys"].items():
        assert set(fields) <= set(reply[key]), reply
    users = {u["name"]: u["id"] for u in farm.ask({"get": {"type": "users"}})["users"]}
    uid = reply["monitor"]["uid"]
    assert uid == users["ann"] == first and uid > 0 and reply["monitor"]["user_name"] == "ann"
    assert uid != users["ben"]

    # with the uid the page lists its user's jobs, then deletes the done ones (DELDONE)
    listed = page(farm, filled(shape["jobs_of_the_user"], uid=uid))["jobs"]
    assert [j["id"] for j in listed] == [mine]
    deldone = fixture("deldone")
    ids = [j["id"] for j in listed if "DON" in j["state"].split()]
    text = info_of(page(farm, filled(deldone["request"], user_name="ann", done_job_ids=ids)), "log")
    assert str(mine) in text
    wait_for(lambda: mine not in job_ids(farm), 15, "ann's done job deleted")
    # acting as ann, never as anyone else: ben's job is not hers to delete
    other = filled(deldone["request"], user_name="ann", done_job_ids=[theirs])
    assert "ann" in info_of(page(farm, other), "error")
    assert theirs in job_ids(farm)


def test_job_move_is_answered_not_served(farm: Farm) -> None:
    job_id = submit(farm, "cid", one_task("true"), "to-move", offline=True)  # its log stays
    uid = page(farm, filled(fixture("register_uid")["request"], user_name="cid"))["monitor"]["uid"]
    assert uid > 0
    shape = fixture("move_jobs")
    before = farm.job(job_id)
    assert "OFF" in before["state"].split(), before["state"]
    for kind in shape["operation_types"]:
        request = filled(
            shape["request"], user_name="cid", uid=uid, job_id=job_id, operation_type=kind
        )
        text = info_of(page(farm, request), shape["reply_kind"])
        assert shape["reply_says"] in text and kind in text
    after = farm.job(job_id)
    assert (after["priority"], after["log"]) == (before["priority"], before["log"])


def test_block_params_are_refused_never_set_on_the_job(farm: Farm) -> None:
    blocks = [
        {"name": "a", "tasks": [{"name": "t0", "command": "true"}]},
        {"name": "b", "tasks": [{"name": "t0", "command": "true"}]},
    ]
    job_id = submit(farm, "dee", blocks, "two-blocks", offline=True)  # its log stays
    other_id = submit(farm, "dee", blocks, "other", offline=True)
    shape = fixture("block_params")
    before = farm.job(job_id)
    for template in shape["requests"]:
        request = filled(template, user_name="dee", job_id=job_id, other_job_id=other_id)
        text = info_of(page(farm, request), shape["reply_kind"])
        assert shape["reply_says"] in text, text
    for found in (farm.job(job_id), farm.job(other_id)):
        assert found["max_running_tasks"] == -1 and found["max_running_tasks_per_host"] == -1
        assert not found.get("hosts_mask") and not found["params"].get("hosts_mask")
    assert farm.job(job_id)["log"] == before["log"]
    # our server itself never sets a job's params for blocks either
    with pytest.raises(Exception, match="block parameters"):
        farm.ask(
            {
                "action": {
                    "type": "jobs",
                    "ids": [job_id],
                    "params": {"max_running_tasks": 1},
                    "block_ids": [0],
                },  # fmt: skip
                "user_name": "dee",
            }
        )
    # the job's own parameter, without block_ids, is still set
    info_of(page(farm, filled(shape["job_params"], user_name="dee", job_id=job_id)), "log")
    assert farm.job(job_id)["max_running_tasks"] == 2


def test_the_task_window_shows_executable_output_log_and_error_hosts(farm: Farm) -> None:
    good = submit(farm, "eve", one_task("echo hello-from-the-task"), "window")
    bad = submit(farm, "eve", one_task("echo failing; exit 3", errors_retries=0), "failing")
    wait_for(lambda: done(farm, good), 60, "the good job done")
    wait_for(lambda: "ERR" in farm.tasks(bad)[0]["state"].split(), 60, "the failing task in error")
    page_id = page(farm, filled(fixture("register_uid")["request"], user_name="eve"))["monitor"]
    shape = fixture("task_window")

    def tab(job_id: int, mode: str) -> dict[str, Any]:
        request = filled(
            shape["request"], job_id=job_id, mode=mode, task_id=0, page_id=page_id["id"]
        )
        reply = page(farm, request)
        assert set(reply) == {"task"}, reply  # WndTaskShow reads i_obj.task
        task = reply["task"]
        for key in shape["reply_keys"]["task"]:
            assert key in task, (key, task)
        assert task["pos"]["job"] == job_id and (task["pos"]["block"], task["pos"]["task"]) == (
            0,
            0,
        )
        assert set(shape["pos_keys"]) <= set(task["pos"])
        assert task["type"] == shape["modes"][mode]
        assert (task["job_name"], task["block_name"], task["task_name"]) != ("", "", "")
        return task

    executable = tab(good, "info")
    assert set(shape["exec_keys"]) <= set(executable["exec"])
    assert executable["exec"]["command"] == "echo hello-from-the-task"
    assert "DON" in executable["progress"]["state"] and executable["progress"]["str"] == 1
    assert "hello-from-the-task" in tab(good, "output")["data"]
    assert RENDER in tab(good, "log")["data"]
    assert tab(good, "error_hosts")["data"] == ""  # the window says: no error hosts

    lines = tab(bad, "error_hosts")["data"].split("\n")
    assert lines[0] == shape["error_hosts_title"].replace("<task id>", "0")
    assert lines[1].startswith(f"{RENDER}: 1 at ")
    assert "Block['b'] error hosts:" in lines and f"{RENDER}: 1" in lines
    assert "failing" in tab(bad, "output")["data"]


def test_list_blocks_give_the_tasks_view_their_task_names(farm: Farm) -> None:
    blocks = [
        {
            "name": "list",
            "tasks": [
                {"name": "t0", "command": "true"},
                {"name": "shot_b", "command": "true"},
                {"command": "true"},
            ],
        },
        {
            "name": "frames",
            "flags": 1,
            "frame_first": 1,
            "frame_last": 4,
            "frames_per_task": 2,
            "command": "echo @#@",
        },
    ]
    job_id = submit(farm, "fay", blocks, "names")
    shape = fixture("tasks_view_full")
    (job,) = page(farm, filled(shape["request"], job_id=job_id))["jobs"]
    listed, numeric = job["blocks"]
    for block in (listed, numeric):
        assert set(shape["block_keys"]) <= set(block), block
    assert [t["name"] for t in listed["tasks"]] == ["t0", "shot_b", ""]  # genName: 'task 2'
    assert all(set(shape["task_keys"]) <= set(t) for t in listed["tasks"])
    assert listed["tasks_num"] == 3
    # a numeric block has no task list: the page names its tasks by frames
    assert "tasks" not in numeric and numeric["flags"] & 1
    assert (numeric["frame_first"], numeric["frame_last"], numeric["frames_per_task"]) == (1, 4, 2)
    # the jobs list writes blocks without their tasks, as the original's
    (short,) = page(farm, filled(shape["list_request"], job_id=job_id))["jobs"]
    assert all("tasks" not in b for b in short["blocks"])
