"""Nobody but afserver's own children serves as a worker: a second afserver on the same port
stops at once and never touches the first farm, and a peer that announces itself as a
worker, on the farm's port or on the private link without its secret, is handed nothing."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest
import zmq

from broker import protocol as P
from broker import workerlink
from tests.conftest import Farm, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def served(make_farm) -> Farm:  # type: ignore[no-untyped-def]
    farm = make_farm()
    farm.start_server()
    farm.start_render("render-a")
    wait_for(lambda: farm.online() == {"render-a"}, 20, "render online")
    return farm


def registrations(farm: Farm) -> int:
    return farm.log("render-render-a").count("registered as")


def test_a_second_afserver_on_the_port_stops_at_once_and_leaves_the_first_farm_alone(
    served: Farm, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    farm = served
    before = registrations(farm)
    assert before == 1
    # a second clone: its own store and home, the same port
    second = tmp_path / "second"
    second.mkdir()
    config = json.loads(farm.config_file.read_text()) | {"af_store_folder": str(second / "store")}
    (second / "config.json").write_text(json.dumps(config))
    env = {**farm.env, "AF_CONFIG": str(second / "config.json"), "HOME": str(second)}
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "workers.supervisor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=20,
        cwd=second,
    )
    took = time.monotonic() - began
    assert result.returncode != 0
    assert took < 5, took
    lines = [line for line in result.stderr.splitlines() if "in use" in line]
    assert len(lines) == 1, result.stderr
    assert f"port {farm.port} (farm) is in use by pid" in lines[0]
    assert "afserver" in lines[0] or "supervisor" in lines[0]
    assert "Traceback" not in result.stderr
    assert not (second / "store").exists()  # nothing of it started

    # the first farm goes on as before: no render registered again, its server still serves
    deadline = time.monotonic() + 4  # past a zombie time of the renders (3 s)
    wait_for(lambda: time.monotonic() > deadline, 10, "a zombie time to pass")
    assert farm.online() == {"render-a"}
    assert registrations(farm) == before
    assert farm.server is not None and farm.server.poll() is None


def test_a_peer_posing_as_a_worker_is_handed_nothing(served: Farm) -> None:
    farm = served
    scheduler = farm.child("workers.scheduler.main")
    link = workerlink.from_env(scheduler.environ())
    assert link is not None and link.endpoint.startswith("ipc://")
    folder = os.path.dirname(link.endpoint.removeprefix("ipc://"))
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700  # only afserver's user may enter

    ctx = zmq.Context.instance()
    posers = []
    # on the farm's port, under the scheduler's own identity; and on the private link (this
    # test runs as afserver's user, so it may enter the folder) with a wrong secret
    for endpoint, secret in (
        (P.endpoint("127.0.0.1", farm.port), link.secret),
        (link.endpoint, "guessed"),
        (link.endpoint, None),
    ):
        poser = ctx.socket(zmq.DEALER)
        poser.setsockopt(zmq.LINGER, 0)
        poser.setsockopt(zmq.IDENTITY, f"W:{P.SCHEDULER}".encode())
        poser.connect(endpoint)
        ready = {"service": P.SCHEDULER} | ({"secret": secret} if secret is not None else {})
        poser.send_multipart([P.pack_header(P.MsgType.W_READY), P.pack_body(ready)])
        posers.append(poser)
    try:
        # the farm is served as before while the posers wait
        for _ in range(30):
            assert farm.ask({"get": {"type": "renders"}})["renders"]
        assert farm.online() == {"render-a"}
        for poser in posers:
            got = []
            while poser.poll(0):
                got.append(poser.recv_multipart())
            assert all(P.unpack_header(m[0]).type != P.MsgType.W_REQUESTS for m in got), got
        broker = json.loads(farm.afcmd("stat", "--json").stdout)["broker"]
        assert broker["errors"]["NOT_A_WORKER"] >= 1
        assert broker["workers"] == {P.SCHEDULER: 1}
    finally:
        for poser in posers:
            poser.close(0)
    log = farm.log("afserver")
    assert "on the farm's port; refused" in log
    assert "without this start's secret" in log
