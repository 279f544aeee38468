"""The web API with af_auth = curve: the web process connects with the server's key, and
callers prove who they are with tokens (`afcmd token USER`). No token, a wrong one, or a
revoked one gets a JSON 401; a user's token acts as that user whatever name is claimed; an
admin's token with the admin role may act on others' jobs and delete statistics."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from tests.conftest import Farm, free_port, wait_for
from tests.conftest import web_call as call

pytestmark = pytest.mark.integration


def token(farm: Farm, user: str) -> dict[str, str]:
    result = farm.afcmd("token", user)
    assert result.returncode == 0, result.stderr
    return {"Authorization": f"Bearer {result.stdout.strip()}"}


JOB = {"name": "j", "blocks": [{"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1,
                                "command": "true"}]}  # fmt: skip


def test_tokens_prove_the_web_caller(make_curve_farm) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    farm = make_curve_farm(af_web_port=port)
    farm.web = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    wait_for(lambda: call(farm, "GET", "/api/farm/users")[0] == 401, 15, "the web API serving")
    ann, bob, boss = token(farm, "ann"), token(farm, "bob"), token(farm, "boss")

    # no token, a made-up one: 401 with what is needed; the stream too
    for headers in ({}, {"Authorization": "Bearer aft_made_up"}, {"X-Afanasy-User": "boss"}):
        status, body = call(farm, "GET", "/api/farm/jobs", **headers)
        assert status == 401 and "token" in body["error"], headers
    assert call(farm, "GET", "/api/farm/events")[0] == 401

    # a token acts as its user, whatever name the caller claims
    status, reply = call(
        farm, "POST", "/api/farm/jobs", {"job": JOB}, **ann, **{"X-Afanasy-User": "boss"}
    )
    assert status == 200, reply
    job_id = reply["id"]
    job = call(farm, "GET", f"/api/farm/jobs/{job_id}", **ann)[1]
    assert job["user_name"] == "ann"
    pause = {"ids": [job_id], "operation": {"type": "pause"}}
    status, reply = call(farm, "POST", "/api/farm/jobs/action", pause, **bob)
    assert status == 403 and "admin role" in reply["error"]
    status, reply = call(
        farm, "POST", "/api/farm/jobs/action", pause, **bob, **{"X-Afanasy-Admin": "1"}
    )
    assert status == 403 and "not an admin" in reply["error"]
    status, reply = call(
        farm, "POST", "/api/farm/jobs/action", pause, **boss, **{"X-Afanasy-Admin": "1"}
    )
    assert status == 200, reply
    assert "OFF" in call(farm, "GET", f"/api/farm/jobs/{job_id}", **ann)[1]["state"]

    # statistics deletion: an admin's token asking for the role
    delete = {"before": 1, "confirm": True}
    assert (
        call(farm, "POST", "/api/stats/delete", delete, **ann, **{"X-Afanasy-Admin": "1"})[0] == 403
    )
    assert call(farm, "POST", "/api/stats/delete", delete)[0] == 403
    assert (
        call(farm, "POST", "/api/stats/delete", delete, **boss, **{"X-Afanasy-Admin": "1"})[0]
        == 200
    )

    # a revoked token proves nobody at once
    assert farm.afcmd("token", "ann", "--revoke").returncode == 0
    assert call(farm, "GET", "/api/farm/jobs", **ann)[0] == 401
    text = farm.log("afserver")  # every process of the server logs there
    assert ann["Authorization"][7:] not in text and boss["Authorization"][7:] not in text


def test_statistics_need_a_token_and_refusals_are_logged(make_curve_farm) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    farm = make_curve_farm(af_web_port=port)
    farm.web = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    wait_for(lambda: call(farm, "GET", "/api/farm/users")[0] == 401, 15, "the web API serving")
    ann, boss = token(farm, "ann"), token(farm, "boss")
    admin = {**boss, "X-Afanasy-Admin": "1"}

    # the statistics, the audit log among them, are for token holders
    for path in ("/api/stats/logs", "/api/stats/jobs", "/api/stats/tasks", "/api/stats/graph"):
        assert call(farm, "GET", path)[0] == 401, path
        assert call(farm, "GET", path, **ann)[0] == 200, path
    for path in ("/stats/", "/stats/logs"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{farm.web}{path}", timeout=10)
        assert refused.value.code == 401 and "token" in refused.value.read().decode()
        page = urllib.request.Request(
            f"{farm.web}{path}", headers={"Cookie": f"af_token={ann['Authorization'][7:]}"}
        )  # the cookie the monitor sets for plain links
        with urllib.request.urlopen(page, timeout=10) as resp:
            assert resp.status == 200

    # a token in the URL only on the event stream (an EventSource sends no headers)
    status, body = call(farm, "GET", f"/api/farm/jobs?token={ann['Authorization'][7:]}")
    assert status == 400 and "Authorization" in body["error"]
    stream = urllib.request.urlopen(
        f"{farm.web}/api/farm/events?token={ann['Authorization'][7:]}", timeout=10
    )
    try:
        assert stream.status == 200 and stream.readline().startswith(b"retry:")
    finally:
        stream.close()
    assert call(farm, "GET", "/api/farm/events?token=aft_made_up")[0] == 401

    # refusals of the web layer land in the logs table: a bad token (thirty times: told
    # once, then counted), a missing role, another site's request
    for _ in range(30):
        assert call(farm, "GET", "/api/stats/logs", Authorization="Bearer aft_nope")[0] == 401
    delete = {"before": 1, "confirm": True}
    status, body = call(
        farm, "POST", "/api/stats/delete", delete, **ann, **{"X-Afanasy-Admin": "1"}
    )
    assert status == 403 and "admin role" in body["error"]
    status, body = call(
        farm, "POST", "/api/stats/delete", delete, **admin, Origin="http://evil.example"
    )
    assert status == 403 and "cross-origin" in body["error"]

    def web_rows() -> list[dict]:
        return call(farm, "GET", "/api/stats/logs?type=web", **boss)[1]["rows"]

    def logged() -> bool:
        infos = " | ".join(r["info"] for r in web_rows())
        return all(
            words in infos
            for words in (
                "refused: no valid token",
                "more refusals (token)",
                "refused: deleting",
                "cross-origin",
            )
        )

    wait_for(logged, 20, "the web's refusals in the logs table")
    rows = web_rows()
    assert any(r["subject"].startswith("ann@") and "admin role" in r["info"] for r in rows)
    assert sum("token" in r["info"] for r in rows) <= 6, rows  # not one row per refusal
