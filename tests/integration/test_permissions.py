"""Who may do what, on a real server in the trusted mode: two users and an admin act through
afcmd; every refusal names the missing right and, like every change, lands in the
statistics `logs` table."""

from __future__ import annotations

import socket
import sqlite3

import pytest

from tests.conftest import Farm, submit, wait_for

pytestmark = pytest.mark.integration

ALICE = {"AF_USERNAME": "alice"}
BOB = {"AF_USERNAME": "bob"}
BOSS = {"AF_USERNAME": "boss"}  # listed in af_admins
HOST = socket.gethostname().lower()
OTHERS = "acting on other users' jobs needs the admin role"


def job(name: str) -> dict[str, object]:
    # hosts_mask matches no render: the jobs wait, nothing else changes them
    block = {"name": "b", "command": "true", "flags": 1, "frame_first": 1, "frame_last": 2}
    return {"name": name, "hosts_mask": "nowhere", "blocks": [block]}


def refused(farm: Farm, env: dict[str, str], *args: str) -> str:
    result = farm.afcmd(*args, env=env)
    assert result.returncode == 1, (args, result.stdout, result.stderr)
    assert "server refused" in result.stderr
    return result.stderr


def ok(farm: Farm, env: dict[str, str], *args: str) -> str:
    result = farm.afcmd(*args, env=env)
    assert result.returncode == 0, (args, result.stderr)
    return result.stdout


def logs(farm: Farm) -> list[tuple[str, str, str, str]]:
    db = sqlite3.connect(farm.store / "stats.sqlite")
    try:
        return db.execute("SELECT subject, type, object, info FROM logs ORDER BY time").fetchall()
    finally:
        db.close()


def test_users_act_on_their_own_jobs_and_admins_on_all(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm = make_farm(af_admins=["boss"])
    farm.start_server()
    farm.start_render("farm01")
    farm.start_render(HOST, env=ALICE)  # alice's workstation runs afrender as alice
    wait_for(lambda: farm.online() >= {"farm01", HOST}, 20, "renders online")
    mine = submit(farm, job("alice_shot"), env=ALICE)
    theirs = submit(farm, job("bob_shot"), env=BOB)

    # alice cannot delete, pause or change bob's job; the error names the right
    for args in (("jdel", str(theirs)), ("jpause", "bob_shot"), ("jpri", str(theirs), "10")):
        assert OTHERS in refused(farm, ALICE, *args)
    # a mask that reaches one foreign job refuses the whole action: nothing half done
    assert OTHERS in refused(farm, ALICE, "jpause", ".*_shot")
    bob_job = farm.job(theirs)
    assert "OFF" not in bob_job["state"]
    assert bob_job["priority"] != 10
    assert "OFF" not in farm.job(mine)["state"]
    # asking for the admin role does not make her one
    assert "not an admin" in refused(farm, ALICE, "--admin", "jdel", str(theirs))
    # her own job is hers
    ok(farm, ALICE, "jpause", str(mine))
    ok(farm, ALICE, "jpri", str(mine), "10")
    assert "OFF" in farm.job(mine)["state"] and farm.job(mine)["priority"] == 10

    # the system job, renders, pools and users are not hers
    assert "but the system job 'afanasy'" in refused(farm, ALICE, "jpri", "afanasy", "1")
    assert "acting on renders" in refused(farm, ALICE, "rpause", "farm01")
    assert "your own workstation" in refused(farm, ALICE, "rnimby", "farm01")
    assert "changing pools" in refused(farm, ALICE, "padd", "/", "alices")
    assert "changing users" in refused(farm, ALICE, "upri", "bob", "1")
    # but nimby on her own workstation, and her own priority (af_perm_user_mod_his_priority)
    ok(farm, ALICE, "rnimby", HOST)
    ok(farm, ALICE, "upri", "alice", "50")
    renders = {r["name"]: r for r in farm.renders()}
    assert "NbY" in renders[HOST]["state"] and "NbY" not in renders["farm01"]["state"]
    ok(farm, ALICE, "rfree", HOST)

    # the admin acts on anything, once he asks for the role
    assert OTHERS in refused(farm, BOSS, "jpause", str(theirs))
    ok(farm, BOSS, "--admin", "jpause", str(theirs))
    assert "OFF" in farm.job(theirs)["state"]
    ok(farm, BOSS, "--admin", "jpri", str(theirs), "20")
    ok(farm, BOSS, "--admin", "rpause", "farm01")
    ok(farm, BOSS, "--admin", "jdel", str(theirs))
    wait_for(lambda: farm.afcmd("jshow", str(theirs)).returncode != 0, 10, "bob's job deleted")

    # every refusal and every change is in the logs table: who, what, on what, result
    def complete() -> list[tuple[str, str, str, str]]:
        rows = logs(farm)
        return (
            rows
            if any(s.startswith("boss@") and i.startswith("delete") for s, _, _, i in rows)
            else []
        )

    rows = wait_for(complete, 10, "the admin's delete in the logs table")
    alice = [(t, o, i) for s, t, o, i in rows if s == f"alice@{HOST}"]
    refusals = [r for r in alice if r[2].startswith("refused: ")]
    assert len([r for r in refusals if OTHERS in r[2]]) == 4
    assert (
        "jobs",
        f"ids: {theirs}",
        f"refused: user 'alice' may not delete job {theirs} 'bob_shot' of bob: {OTHERS} (afcmd --admin, granted to af_admins)",
    ) in alice
    assert any("not an admin" in i for _, _, i in refusals)
    for right in ("system job", "acting on renders", "own workstation", "pools", "users"):
        assert any(right in i for _, _, i in refusals), right
    assert any(t == "jobs" and i.startswith("pause:") for t, _, i in alice)
    own_ws = ("renders", f"mask: {HOST}", "1 render(s): params")
    assert alice.count(own_ws) == 2  # rnimby, rfree
    boss = [(t, o, i) for s, t, o, i in rows if s.startswith("boss@")]
    assert any(i.startswith("refused: ") and OTHERS in i for _, _, i in boss)
    admin_rows = [i for s, t, o, i in rows if s == f"boss@{HOST} (admin)"]
    assert any(i.startswith("pause:") for i in admin_rows)
    assert any(i.startswith("delete:") for i in admin_rows)
    assert any("params" in i for i in admin_rows)


def test_a_render_reports_only_on_its_own_tasks(farm: Farm) -> None:
    """Reports are fenced by render and attempt (farm.task_reports): another render's report,
    or one sent for r1 from another connection, changes nothing."""
    from broker import protocol as P
    from broker.client import Client

    farm.start_server()
    farm.start_render("r1")
    wait_for(lambda: "r1" in farm.online(), 20, "r1 online")
    block = {"name": "b", "command": "sleep 60", "flags": 1, "frame_first": 1, "frame_last": 1}
    job_id = submit(farm, {"name": "long", "blocks": [block]})

    def running() -> dict[str, object] | None:
        task = farm.tasks(job_id)[0]
        return task if task["state"].startswith("RUN") else None

    task = wait_for(running, 20, "the task running on r1")
    done = {"job_id": job_id, "block_id": 0, "task_id": 0, "attempt": task["starts"]}
    done["status"] = "success"
    r1_id = next(r["id"] for r in farm.renders() if r["name"] == "r1")
    with Client(P.endpoint("127.0.0.1", farm.port)) as fake:
        reg = fake.call(P.MsgType.RENDER_REGISTER, {"name": "r2"})
        fake.call(P.MsgType.RENDER_UPDATE, {"id": reg["id"], "tasks": [done]})
        # r1's id from a connection that is not r1's: told to register, nothing taken
        assert fake.call(P.MsgType.RENDER_UPDATE, {"id": r1_id, "tasks": [done]})["id"] == -1
    task = running()
    assert task is not None and task["host"] == "r1", "a foreign report changed the task"
    assert "refused a report on task" in farm.afcmd("rlog", "r2").stdout
