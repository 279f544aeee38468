"""The web API with af_auth = curve: the web process connects with the server's key, and
callers prove who they are with tokens (`afcmd token USER`). No token, a wrong one, or a
revoked one gets a JSON 401; a user's token acts as that user whatever name is claimed; an
admin's token with the admin role may act on others' jobs and delete statistics."""

from __future__ import annotations

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
