"""Translation of the original's requests into ours and of our replies into its shapes.

The conversations are pure generators: here each one is driven with the replies our
scheduler gives (as it answers in tests/integration), and what it asks is checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway import shapes
from gateway.translate import (
    MOVE_OPERATIONS,
    Refusal,
    clean_job,
    conversation,
    refused_action,
    user_id,
)

Answer = Callable[[dict[str, Any]], Any]


def drive(
    request: Any, answer: Answer, grant: Callable[[str], bool] = lambda _user: False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Run a conversation: every request of ours goes to answer(); (asks, final reply)."""
    asks: list[dict[str, Any]] = []
    conv = conversation(request, grant)
    try:
        ask = next(conv)
        while True:
            asks.append(ask)
            try:
                reply = answer(ask)
            except Refusal as exc:
                ask = conv.throw(exc)
            else:
                ask = conv.send(reply)
    except StopIteration as done:
        return asks, done.value


def never(ask: dict[str, Any]) -> Any:
    raise AssertionError(f"asked {ask}")


def our_job(job_id: int, name: str, state: str = "RDY", **extra: Any) -> dict[str, Any]:
    return {
        "id": job_id,
        "serial": job_id,
        "name": name,
        "user_name": "jimmy",
        "host_name": "ws01",
        "priority": 99,
        "state": state,
        "branch": "/",
        "time_creation": 1700000000.5,
        "tasks_running": 0,
        "max_running_tasks": -1,
        "max_running_tasks_per_host": -1,
        "params": {"description": "shot", "time_life": -1},
        "blocks": [
            {
                "name": "comp",
                "service": "generic",
                "flags": 1,
                "frame_first": 1,
                "frame_last": 6,
                "frames_per_task": 2,
                "command": "echo @####@",
                "tasks_num": 3,
                "state": state,
                "p_tasks_ready": 3,
                "p_tasks_done": 0,
                "p_percentage": 0,
                "error_hosts": {},
            }
        ],
        **extra,
    }


def test_submission_drops_unknown_keys_and_replies_id_and_serial() -> None:
    job = {
        "name": "shot",
        "user_name": "jimmy",
        "host_name": "ws01",
        "gen_thumbnails": True,
        "blocks": [
            {"name": "b", "numeric": True, "non_sequential": True, "frame_last": 3, "command": "c"},
            {"name": "l", "tasks": [{"name": "t", "command": "c", "extra": 1}]},
        ],
    }
    asks, reply = drive({"job": job}, lambda ask: {"id": 7, "serial": 7, "name": "shot"})
    assert reply == {"id": 7, "serial": 7, "name": "shot"}
    sent = asks[0]
    assert sent["user_name"] == "jimmy" and sent["host_name"] == "ws01"
    assert "gen_thumbnails" not in sent["job"]
    assert sent["job"]["blocks"][0] == {"name": "b", "flags": 1, "frame_last": 3, "command": "c"}
    assert sent["job"]["blocks"][1]["tasks"] == [{"name": "t", "command": "c"}]


def test_refused_submission_has_id_zero_and_the_reason() -> None:
    def refuse(ask: dict[str, Any]) -> Any:
        raise Refusal(7, "job.blocks: a job needs at least one block")

    assert drive({"job": {"name": "x", "blocks": []}}, refuse)[1] == {
        "id": 0,
        "error": "job.blocks: a job needs at least one block",
    }
    assert drive({"job": "x"}, never)[1]["id"] == 0


def test_job_list_in_the_original_shape() -> None:
    asks, reply = drive(
        {"get": {"type": "jobs", "mode": "full"}},
        lambda ask: {
            "jobs": [our_job(2, "shot", "RDY RUN"), {**our_job(1, "afanasy"), "system": {}}]
        },
    )
    # mode full: the original's TJob, a list block's tasks with it
    assert asks[0]["get"] == {"type": "jobs", "mode": "full", "with_tasks": True}
    job, system = reply["jobs"]  # the system job is listed, as the original lists its own
    assert system["id"] == 1 and system["name"] == "afanasy"
    assert job["st"] == 0b11 and job["state"] == "RDY RUN"
    assert job["time_creation"] == 1700000000 and job["description"] == "shot"
    assert "time_life" not in job and "max_running_tasks" not in job
    block = job["blocks"][0]
    assert block["block_num"] == 0 and block["job_id"] == 2 and block["tasks_num"] == 3
    assert block["p_tasks_ready"] == 3 and "p_tasks_done" not in block  # zeros left out


def test_jobs_by_ids_leave_out_the_missing_ones() -> None:
    def answer(ask: dict[str, Any]) -> Any:
        if "ids" in ask["get"]:
            raise Refusal(8, "no job with id 9")
        return {"jobs": [our_job(2, "a"), our_job(3, "b")]}

    asks, reply = drive({"get": {"type": "jobs", "ids": [3, 9]}}, answer)
    assert [j["id"] for j in reply["jobs"]] == [3] and len(asks) == 2


def test_jobs_of_users_by_user_id() -> None:
    def answer(ask: dict[str, Any]) -> Any:
        if ask["get"]["type"] == "users":
            return {"users": [{"id": 4, "name": "jimmy"}, {"id": 5, "name": "kate"}]}
        assert ask["get"]["users"] == ["jimmy"]
        return {"jobs": [our_job(2, "a")]}

    assert [j["id"] for j in drive({"get": {"type": "jobs", "uids": [4]}}, answer)[1]["jobs"]] == [
        2
    ]


def test_blocks_in_their_data_modes() -> None:
    get = {"type": "jobs", "ids": [2], "block_ids": [0, 0], "mode": ["progress", "properties"]}
    _, reply = drive({"get": get}, lambda ask: {"jobs": [our_job(2, "a")]})
    progress, properties = reply["blocks"]
    assert "name" not in progress and progress["p_tasks_ready"] == 3
    assert properties["command"] == "echo @####@" and properties["name"] == "comp"
    bad = {"type": "jobs", "ids": [2], "block_ids": [5], "mode": "progress"}
    assert "no block 5" in drive({"get": bad}, lambda ask: {"jobs": [our_job(2, "a")]})[1]["error"]


def test_task_output_and_its_errors() -> None:
    task = {"block_id": 0, "task_id": 1, "block_name": "comp", "name": "frame 3-4", "state": "DON",
            "starts": 1, "errors": 0, "host": "r1", "time_start": 10.0, "time_done": 12.0,
            "attempt": 1, "output": "frame 0003\n"}  # fmt: skip
    get = {"type": "jobs", "ids": [2], "block_ids": [0], "task_ids": [1], "mode": "output"}
    asks, reply = drive({"get": get}, lambda ask: {"name": "shot", "tasks": [task]})
    assert asks[0]["get"]["type"] == "tasks" and asks[0]["get"]["mode"] == "output"
    out = reply["task"]
    assert out["data"] == "frame 0003\n" and out["job_name"] == "shot"
    assert out["pos"] == {"job": 2, "block": 0, "task": 1, "number": 1}
    assert out["progress"] == {
        "st": 16,
        "state": "DON",
        "str": 1,
        "err": 0,
        "tst": 10,
        "tdn": 12,
        "hst": "r1",
    }

    def refuse(ask: dict[str, Any]) -> Any:
        raise Refusal(8, "task 1 has 0 starts")

    assert drive({"get": get}, refuse)[1]["task"]["data"] == "ERROR: task 1 has 0 starts"


def test_actions_carry_who_asks_and_answer_info() -> None:
    act = {"type": "jobs", "ids": [2], "user_name": "jimmy", "host_name": "ws01",
           "operation": {"type": "pause"}, "mon_id": 3}  # fmt: skip
    reply_info = {"info": {"kind": "log", "text": "pause: 2 'shot'"}, "count": 1}
    asks, reply = drive({"action": act}, lambda ask: reply_info)
    assert asks == [{"action": {"type": "jobs", "operation": {"type": "pause"}, "ids": [2]},
                     "user_name": "jimmy", "host_name": "ws01"}]  # fmt: skip
    assert reply == {"info": {"kind": "log", "text": "pause: 2 'shot'"}}
    assert drive({"action": {"type": "jobs", "ids": [2]}}, never)[1]["info"]["kind"] == "error"

    def refuse(ask: dict[str, Any]) -> Any:
        raise Refusal(8, "no job matches")

    assert drive({"action": act}, refuse)[1] == {
        "info": {"kind": "error", "text": "no job matches"}
    }


def test_every_block_of_each_job_with_block_ids_minus_one() -> None:
    two = our_job(3, "b")
    two["blocks"] = [*two["blocks"], {**two["blocks"][0], "name": "movie"}]

    def answer(ask: dict[str, Any]) -> Any:
        if "get" in ask:
            return {"jobs": [our_job(2, "a"), two]}
        return {"info": {"kind": "log", "text": f"restart {ask['action']['block_ids']}"}}

    op = {"type": "restart", "task_ids": [0]}
    act = {"type": "jobs", "mask": "a|b", "block_ids": [-1], "user_name": "u", "operation": op}
    asks, reply = drive({"action": act}, answer)
    assert [a["action"]["block_ids"] for a in asks[1:]] == [[0], [0, 1]]
    assert [a["action"]["ids"] for a in asks[1:]] == [[2], [3]]
    assert "mask" not in asks[1]["action"]
    masked = {**act, "block_ids": None, "block_mask": "mov.*"}
    asks, _ = drive({"action": masked}, answer)
    assert [a["action"]["block_ids"] for a in asks[1:]] == [[1]]


def test_pools_and_users_are_named_by_id_or_mask() -> None:
    def answer(ask: dict[str, Any]) -> Any:
        if "get" in ask:
            return {"pools": [{"path": "/farm"}, {"path": "/"}]}
        return {"info": {"kind": "log", "text": str(ask["action"]["names"])}}

    act = {"type": "pools", "ids": [2], "user_name": "u", "params": {"priority": 50}}
    asks, reply = drive({"action": act}, answer)
    assert asks[1]["action"] == {"type": "pools", "params": {"priority": 50}, "names": ["/farm"]}
    assert drive({"action": {**act, "ids": [9]}}, answer)[1]["info"]["kind"] == "error"
    _, pools = drive({"get": {"type": "pools"}}, answer)
    assert [(p["id"], p["name"]) for p in pools["pools"]] == [(1, "/"), (2, "/farm")]


def test_requests_not_served_or_malformed_get_errors() -> None:
    for request in ([1], "x", {}, {"monitor": {}}, {"reload_config": 1}, {"get": []},
                    {"get": {"type": "bogus"}}, {"action": {"type": "branches", "user_name": "u"}}):  # fmt: skip
        _, reply = drive(request, never)
        assert "error" in reply or reply["info"]["kind"] == "error", request
    bad_mask = {"get": {"type": "renders", "mask": "("}}
    assert "regular expression" in drive(bad_mask, lambda ask: {"renders": []})[1]["error"]


def test_render_states_in_the_original_shape() -> None:
    ours = {"id": 3, "name": "r1", "flags": 0b1001, "state": ["ONL", "RUN"], "online": True,
            "host_resources": {"cpu_num": 2}}  # fmt: skip
    assert shapes.render(ours) == {"id": 3, "name": "r1", "st": 9, "state": "ONL RUN"}
    assert shapes.render(ours, "resources")["host_resources"] == {"cpu_num": 2}


def test_a_renders_running_tasks_named_as_the_original_lists_them() -> None:
    ours = {"id": 3, "name": "r1", "flags": 9, "state": ["ONL", "RUN"], "online": True,
            "tasks": [[7, 0, 2, 1], [9, 0, 0, 0]], "busy_time": 1700000000}  # fmt: skip
    job = our_job(7, "shot")
    job["blocks"][0].update(service="nuke", capacity=500)

    def answer(ask: dict[str, Any]) -> Any:
        if ask["get"]["type"] == "renders":
            return {"renders": [ours]}
        assert ask["get"] == {"type": "jobs", "ids": [7, 9], "mode": "full"}
        return {"jobs": [job]}  # job 9 went away meanwhile

    asks, reply = drive({"get": {"type": "renders"}}, answer)
    first, second = reply["renders"][0]["tasks"]
    assert first == {
        "job_id": 7, "block_num": 0, "task_num": 2, "number": 1, "time_start": 1700000000,
        "job_name": "shot", "user_name": job["user_name"], "block_name": "comp",
        "service": "nuke", "capacity": 500, "name": "comp.2",
    }  # fmt: skip
    assert second["job_id"] == 9 and "job_name" not in second
    ours["busy_time"] = 0
    job["time_started"] = 1699999999.5
    _, reply = drive({"get": {"type": "renders"}}, answer)
    assert reply["renders"][0]["tasks"][0]["time_start"] == 1699999999
    _, reply = drive({"get": {"type": "renders", "mode": "resources"}}, answer)
    assert "tasks" not in reply["renders"][0]  # no extra request for resources


def test_clean_job_keeps_what_it_cannot_judge() -> None:
    assert clean_job({"name": "x", "blocks": "nope"}) == {"name": "x", "blocks": "nope"}
    assert clean_job({"blocks": [1, {"flags": True, "numeric": True}]})["blocks"] == [
        1,
        {"flags": True},
    ]


def test_errors_read_by_either_generation_of_clients() -> None:
    _, reply = drive({"get": {"type": "bogus"}}, never)
    assert reply["error"] == reply["info"]["text"] and reply["info"]["kind"] == "error"


def test_job_log_and_error_hosts_as_the_original_lists_them() -> None:
    job = our_job(2, "shot", log=["submitted by jimmy"])
    job["blocks"][0]["error_hosts"] = {"r1": 2}
    _, reply = drive(
        {"get": {"type": "jobs", "ids": [2], "mode": "log"}}, lambda a: {"jobs": [job]}
    )
    assert reply == {"message": {"name": "shot", "type": "log", "list": ["submitted by jimmy"]}}
    get = {"type": "jobs", "ids": [2], "mode": "error_hosts"}
    _, reply = drive({"get": get}, lambda a: {"jobs": [job]})
    assert reply["message"]["type"] == "error_hosts"
    assert reply["message"]["list"] == ["r1: 2 error(s) in block 'comp'"]


def test_who_asks_a_get_from_inside_it_as_the_python_api_puts_it() -> None:
    get = {"type": "users", "user_name": "jimmy", "host_name": "ws01"}
    asks, _ = drive({"get": get}, lambda ask: {"users": []})
    assert asks == [{"get": {"type": "users"}, "user_name": "jimmy", "host_name": "ws01"}]


def test_unknown_and_commented_out_operation_keys_are_ignored(caplog: Any) -> None:
    # the original's afcmd.py sends "mask" in service operations; its JSON files write "-key"
    op = {"type": "restart", "mask": "x", "-task_ids": [3], "task_ids": [1]}
    act = {"type": "jobs", "ids": [2], "user_name": "jimmy", "operation": op}
    with caplog.at_level("DEBUG", logger="gateway"):
        asks, _ = drive({"action": act}, lambda ask: {"info": {"kind": "log", "text": "ok"}})
    assert asks[0]["action"]["operation"] == {"type": "restart", "task_ids": [1]}
    assert "ignored keys -task_ids, mask" in caplog.text


def test_appended_work_is_cleaned_as_a_submission_is() -> None:
    block = {"name": "more", "numeric": True, "-command": "old", "command": "r", "tasks": []}
    task = {"name": "t", "command": "c", "-files": ["f"], "weird": 1}
    blocks = {"type": "append_blocks", "blocks": [block]}
    act = {"type": "jobs", "ids": [2], "user_name": "jimmy", "operation": blocks}
    asks, _ = drive({"action": act}, lambda ask: {"info": {"kind": "log", "text": "ok"}})
    assert asks[0]["action"]["operation"]["blocks"] == [
        {"name": "more", "command": "r", "tasks": [], "flags": 1}
    ]
    tasks = {"type": "append_tasks", "tasks": [task]}
    act = {**act, "block_ids": [0], "operation": tasks}
    asks, _ = drive({"action": act}, lambda ask: {"info": {"kind": "log", "text": "ok"}})
    assert asks[0]["action"]["operation"]["tasks"] == [{"name": "t", "command": "c"}]
    assert asks[0]["action"]["block_ids"] == [0]


def test_the_admin_role_is_the_sites_grant_never_the_requests() -> None:
    pause = {
        "action": {
            "type": "renders",
            "mask": "farm.*",
            "user_name": "boss",
            "host_name": "ws9",
            "admin": True,  # sent along: ignored
            "params": {"paused": True},
        }
    }
    asks, _ = drive(pause, lambda ask: {"info": {"kind": "log", "text": "ok"}})
    assert "admin" not in asks[0]
    asks, _ = drive(
        pause, lambda ask: {"info": {"kind": "log", "text": "ok"}}, {"boss"}.__contains__
    )
    assert asks[0]["admin"] is True and asks[0]["user_name"] == "boss"
    get = {"get": {"type": "jobs", "user_name": "jimmy"}}
    asks, _ = drive(get, lambda ask: {"jobs": []}, {"boss"}.__contains__)
    assert "admin" not in asks[0]


def test_a_refused_action_is_told_in_one_line_for_the_log() -> None:
    request = {
        "action": {
            "type": "renders",
            "ids": [3],
            "user_name": "jimmy",
            "host_name": "ws1",
            "operation": {"type": "exit"},
        }
    }
    line = refused_action(request, {"info": {"kind": "error", "text": "needs the admin role"}})
    assert line is not None
    assert "'jimmy'" in line and "'ws1'" in line and "exit" in line and "admin role" in line
    assert refused_action(request, {"info": {"kind": "log", "text": "1 render(s)"}}) is None
    assert (
        refused_action({"get": {"type": "jobs"}}, {"error": "x", "info": {"kind": "error"}}) is None
    )
    params = {"action": {"type": "renders", "params": {"nimby": True}}}
    line = refused_action(params, {"info": {"kind": "error", "text": "no"}})
    assert line is not None and "params nimby" in line and "'?'" in line


def test_the_uid_of_a_page_is_its_users_id() -> None:
    users = {"users": [{"id": 4, "name": "jimmy"}, {"id": 5, "name": "kate"}]}
    assert user_id(users, "kate") == 5
    assert user_id(users, "nobody") == -1 and user_id({}, "kate") == -1


def test_job_move_and_block_params_are_not_served_and_nothing_is_asked() -> None:
    who = {"user_name": "jimmy", "host_name": "ws01"}
    for kind in MOVE_OPERATIONS:
        move = {**who, "type": "users", "ids": [4], "operation": {"type": kind, "jids": [2]}}
        reply = drive({"action": move}, never)[1]
        assert reply["info"]["kind"] == "error" and "not served" in reply["info"]["text"]
    for blocks in ({"block_ids": [0]}, {"block_ids": [-1]}, {"block_mask": "comp"}):
        params = {**who, "type": "jobs", "ids": [2], "params": {"capacity": 500}, **blocks}
        reply = drive({"action": params}, never)[1]
        assert reply["info"]["kind"] == "error" and "not served" in reply["info"]["text"]
        assert "capacity" in reply["info"]["text"]
    # a block operation and a job's own params are still asked
    restart = {
        **who,
        "type": "jobs",
        "ids": [2],
        "operation": {"type": "restart"},
        "block_ids": [0],
    }
    assert drive({"action": restart}, lambda ask: {"info": {"kind": "log", "text": "ok"}})[0]
    job = {**who, "type": "jobs", "ids": [2], "params": {"priority": 50}}
    asks, _ = drive({"action": job}, lambda ask: {"info": {"kind": "log", "text": "ok"}})
    assert asks[0]["action"]["params"] == {"priority": 50} and "block_ids" not in asks[0]["action"]


def test_a_tasks_error_hosts_as_the_original_lists_them() -> None:
    task = {"block_id": 0, "task_id": 1, "block_name": "comp", "name": "frame 3-4",
            "state": "ERR", "starts": 1, "errors": 2, "error_hosts": {"r1": [2, 0.0]}}  # fmt: skip
    job = {**our_job(2, "shot"), "blocks": [{"name": "comp", "error_hosts": {"r1": 2, "r2": 1}}]}

    def answer(ask: dict[str, Any]) -> Any:
        if ask["get"]["type"] == "tasks":
            assert ask["get"]["mode"] == "info" and ask["get"]["task_ids"] == [1]
            return {"name": "shot", "tasks": [task]}
        return {"jobs": [job]}

    get = {"type": "jobs", "ids": [2], "block_ids": [0], "task_ids": [1], "mode": "error_hosts",
           "mon_id": 3}  # fmt: skip
    out = drive({"get": get}, answer)[1]["task"]
    assert out["type"] == "TErrorHosts" and out["pos"]["task"] == 1
    assert out["data"].split("\n") == [
        "Task[1] error hosts: ",
        "r1: 2 at ?",
        "Block['comp'] error hosts:",
        "r1: 2",
        "r2: 1",
    ]
    task["error_hosts"] = {}
    job["blocks"][0]["error_hosts"] = {}
    assert drive({"get": get}, answer)[1]["task"]["data"] == ""
