"""With af_auth = curve: keys prove who asks. Authorised afcmd and afrender work as the name
their key proves, whatever they claim; a client with an unknown key or none gets nothing and
is told why, while the broker serves the others undisturbed; a render cannot report on a task
it was not given; keys appear in no log and not in afcmd config."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import zmq.auth

from auth.curve import ClientKeys
from auth.keys import client_keys, fingerprint
from broker import protocol as P
from broker.client import Client, ServerError
from tests.conftest import Farm, make_key, submit, wait_for

pytestmark = pytest.mark.integration


def client(farm: Farm, env: dict[str, str], timeout: float = 5.0) -> Client:
    own, server = client_keys(Path(env["AF_AUTH_KEY_FILE"]), Path(env["AF_AUTH_SERVER_KEY_FILE"]))
    return Client(P.endpoint("127.0.0.1", farm.port), timeout, curve=ClientKeys(own, server))


def long_job(name: str, command: str = "sleep 60") -> dict[str, object]:
    block = {"name": "b", "command": command, "flags": 1, "frame_first": 1, "frame_last": 1}
    return {"name": name, "blocks": [block]}


@pytest.fixture
def curve_farm(make_curve_farm) -> Farm:  # type: ignore[no-untyped-def]
    return make_curve_farm()


def test_keys_prove_the_user_and_unknown_keys_get_nothing(curve_farm: Farm) -> None:
    farm = curve_farm
    alice = make_key(farm, "alice")
    r1 = make_key(farm, "r1")
    farm.start_render("r1", env=r1)
    wait_for(lambda: "r1" in farm.online(), 20, "r1 online with its key")

    # alice's key proves alice, whatever name she claims
    claims_boss = {**alice, "AF_USERNAME": "boss"}
    job = submit(farm, long_job("alice_job", "true"), env=claims_boss)
    shown = farm.afcmd("jshow", str(job), "--json")
    assert shown.returncode == 0 and '"user_name": "alice"' in shown.stdout
    wait_for(lambda: "DON" in farm.afcmd("jshow", str(job)).stdout, 30, "alice's job done on r1")
    other = submit(farm, long_job("boss_job"), env={})  # boss's default key
    result = farm.afcmd("jpause", str(other), env=claims_boss)
    assert result.returncode == 1
    assert "user 'alice' may not pause" in result.stderr and "admin role" in result.stderr
    result = farm.afcmd("--admin", "jpause", str(other), env=claims_boss)
    assert result.returncode == 1 and "not an admin" in result.stderr
    # submitting in another's name needs admin once names are proven
    result = farm.afcmd("job", "submit", "-", env=alice)  # no stdin: an empty job is invalid
    bob_job = {**long_job("bobs"), "user_name": "bob"}
    with client(farm, alice) as c, pytest.raises(ServerError, match="submitting for others"):
        c.request({"job": bob_job})
    assert farm.afcmd("--admin", "jpause", str(job)).returncode == 0  # boss, asking for admin

    # a key not authorised: the handshake fails, nothing is served, the client says why
    stranger = farm.tmp / "stranger"
    stranger.mkdir()
    public, secret = zmq.auth.create_certificates(stranger, "stranger")
    unknown = {**alice, "AF_AUTH_KEY_FILE": secret}
    result = farm.afcmd("--timeout", "1.5", "stat", env=unknown)
    assert result.returncode == 3, result.stderr
    assert "refused this client's key" in result.stderr
    # no key at all (a trusted-mode client) gets nothing either
    result = farm.afcmd("--timeout", "1.5", "stat", env={"AF_AUTH": ""})
    assert result.returncode == 3 and "wants a key" in result.stderr
    # af_auth on, but this host has no key files: said before anything is sent
    result = farm.afcmd("stat", env={"AF_AUTH_KEY_FILE": str(stranger / "none")})
    assert result.returncode == 1 and "afcmd keys create" in result.stderr

    # the broker is not disturbed: strangers keep knocking while the others are served
    own, server = client_keys(Path(secret), Path(alice["AF_AUTH_SERVER_KEY_FILE"]))
    knockers = [
        Client(P.endpoint("127.0.0.1", farm.port), 0.2, curve=ClientKeys(own, server))
        for _ in range(5)
    ]
    try:
        with client(farm, alice) as c:
            for _ in range(20):
                for knocker in knockers:
                    with pytest.raises(Exception, match="refused this client's key"):
                        knocker.request({"get": {"type": "stat"}})
                assert c.request({"get": {"type": "jobs"}})["jobs"]
            stat = c.call(P.MsgType.BROKER_STAT, {})["broker"]
    finally:
        for knocker in knockers:
            knocker.close()
    assert stat["errors"]["HANDSHAKE_FAILED"] >= 5
    assert farm.child("broker.broker").is_running()
    refusals = farm.log("afserver").count("connection refused: its key is not authorised")
    assert 1 <= refusals <= 3, refusals  # said, but not once per knock
    # and the refusal is in the statistics logs table, once per key and 10 s, not per knock
    stranger_fp = fingerprint(z85_public(Path(public)))
    refused = wait_for(
        lambda: [row for row in log_rows(farm) if row[1] == "keys"], 15, "the refusal logged"
    )
    assert 1 <= len(refused) <= 3, refused
    assert refused[0][2] == stranger_fp and "not authorised" in refused[0][3]

    # a render key registers its own render only
    farm.start_render("r2", env=r1)
    wait_for(lambda: "may not register render 'r2'" in farm.log("render-r2"), 20, "r2 refused")
    assert "r2" not in farm.online()
    # a render with an unknown key gets nothing, and says why
    farm.start_render("r3", env=unknown)
    wait_for(lambda: "refused this client's key" in farm.log("render-r3"), 20, "r3 says why")
    assert "r3" not in farm.online()

    # no key in any log, nor in afcmd config
    key_texts = set()
    for path in farm.tmp.rglob("*.key*"):
        pub, sec = zmq.auth.load_certificate(path)
        key_texts |= {k.decode() for k in (pub, sec) if k}
    assert len(key_texts) >= 8
    config = farm.afcmd("config", env=alice)
    assert config.returncode == 0 and 'af_auth = "curve"' in config.stdout
    listed = farm.afcmd("keys", "list")
    assert listed.returncode == 0
    assert {"afadmin", "alice", "boss", "r1"} <= set(listed.stdout.split())
    logs = [config.stdout, listed.stdout]
    logs += [p.read_text(errors="replace") for p in farm.tmp.glob("*.log")]
    for text in logs:
        for key in key_texts:
            assert key not in text


def test_a_render_reports_only_on_its_own_tasks(curve_farm: Farm) -> None:
    farm = curve_farm
    r1, r2, alice = make_key(farm, "r1"), make_key(farm, "r2"), make_key(farm, "alice")
    farm.start_render("r1", env=r1)
    wait_for(lambda: "r1" in farm.online(), 20, "r1 online")
    job = submit(farm, long_job("long"), env=alice)

    def running() -> dict[str, object] | None:
        with client(farm, alice) as c:
            reply = c.request({"get": {"type": "tasks", "job_id": job}})
        task = reply["tasks"][0]
        return task if task["state"].startswith("RUN") else None

    task = wait_for(running, 20, "the task running on r1")
    assert task["host"] == "r1"
    done = {
        "job_id": job,
        "block_id": 0,
        "task_id": 0,
        "attempt": task["starts"],
        "status": "success",
    }

    # r2, a render with its own key, reports r1's task as done: refused, told to forget it
    with client(farm, r2) as fake:
        reg = fake.call(P.MsgType.RENDER_REGISTER, {"name": "r2"})
        reply = fake.call(P.MsgType.RENDER_UPDATE, {"id": reg["id"], "tasks": [done]})
        assert reply["id"] == reg["id"]
        # alice's key cannot speak for r1, nor register as r1
        r1_id = next(r["id"] for r in farm.renders() if r["name"] == "r1")
    with client(farm, alice) as rogue:
        reply = rogue.call(P.MsgType.RENDER_UPDATE, {"id": r1_id, "tasks": [done]})
        assert reply["id"] == -1  # not that render: register first
        with pytest.raises(ServerError, match="may not register render 'r1'"):
            rogue.call(P.MsgType.RENDER_REGISTER, {"name": "r1"})
    task = running()
    assert task is not None and task["host"] == "r1", "a foreign report changed the task"
    r2_log = farm.afcmd("rlog", "r2").stdout
    assert "refused a report on task" in r2_log


def test_afcmd_token_issues_lists_and_revokes(make_farm) -> None:  # type: ignore[no-untyped-def]
    """What the web process will check: a token afcmd issued names its user until revoked;
    the token is printed once and kept nowhere in the clear."""
    from auth.tokens import TokenVerifier

    farm = make_farm()
    farm.start_server()  # afcmd asks it where its keys folder is (with none: refused)
    issued = farm.afcmd("token", "alice")
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip()
    verify = TokenVerifier(farm.store / "keys")
    assert verify(f"Bearer {token}") == "alice"
    listed = farm.afcmd("token", "--list")
    assert listed.returncode == 0 and "alice" in listed.stdout and token not in listed.stdout
    for path in farm.tmp.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), path
    revoked = farm.afcmd("token", "alice", "--revoke")
    assert revoked.returncode == 0 and "1 token(s)" in revoked.stdout
    assert verify(f"Bearer {token}") is None
    assert farm.afcmd("token").returncode != 0  # no user: a usage error, nothing issued


def log_rows(farm: Farm) -> list[tuple[str, str, str, str]]:
    path = farm.store / "stats.sqlite"
    if not path.exists():
        return []
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT subject, type, object, info FROM logs ORDER BY time").fetchall()
    finally:
        db.close()


def z85_public(path: Path) -> bytes:
    public, _ = zmq.auth.load_certificate(path)
    return public
