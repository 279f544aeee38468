"""The gateway on a real farm: the original's clients' requests over both framings, with real
renders doing the work, and no TIME-WAIT left on the server's side."""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import sys
import time
from typing import Any

import psutil
import pytest

from gateway.client import exchange, request_bytes, send
from gateway.framing import Framing
from tests.conftest import Farm, free_port, wait_for

pytestmark = pytest.mark.integration


def gateway_farm(make_farm: Any, renders: int = 2, **settings: Any) -> tuple[Farm, int]:
    port = free_port()
    farm = make_farm(af_gateway_port=port, **settings)
    farm.start_server()
    names = [f"gw-render-{i}" for i in range(renders)]
    for name in names:
        farm.start_render(name)
    wait_for(lambda: set(names) <= farm.online(), 30, f"{renders} renders online")
    wait_for(lambda: "users" in send(port, {"get": {"type": "users"}}), 15, "the gateway to serve")
    return farm, port


# the gateway as its own process (the web off), and on the web process's loop
IN_WEB = pytest.mark.parametrize("web", [False, True], ids=["alone", "in_web"])


def gateway_process(farm: Farm, web: bool) -> psutil.Process:
    return farm.child("web.main" if web else "gateway.main")


def time_waits(port: int, side: str = "laddr") -> list[Any]:
    """TCP sockets in TIME-WAIT whose local side is the gateway's port (the server's side),
    or with side="raddr" those of its clients (who closed first, as they should)."""
    return [
        c
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_TIME_WAIT and getattr(c, side) and getattr(c, side).port == port
    ]


def shot(name: str) -> dict[str, Any]:
    """A two-block job as the original's Python API sends it: frames, then a movie of them."""
    return {
        "job": {
            "name": name,
            "user_name": "jimmy",
            "host_name": "ws01",
            "priority": 99,
            "time_creation": 1700000000,
            "blocks": [
                {
                    "name": "comp",
                    "service": "generic",
                    "parser": "generic",
                    "flags": 1,
                    "frame_first": 1,
                    "frame_last": 6,
                    "frames_per_task": 2,
                    "frames_inc": 1,
                    "command": "echo comp @####@-@####@",
                    "files": ["out/img.@####@.exr"],
                    "capacity": 1000,
                    "working_directory": "/tmp",
                },
                {
                    "name": "movie",
                    "service": "generic",
                    "flags": 0,
                    "depend_mask": "comp",
                    "tasks": [{"name": "mov", "command": "echo movie of comp"}],
                },
            ],
        }
    }


@pytest.mark.parametrize("how", [Framing.AFANASY, Framing.HTTP], ids=["afanasy", "http"])
def test_job_life_through_the_gateway(make_farm: Any, how: Framing) -> None:
    # boss acts with the admin role from this host (the original's clients cannot ask)
    farm, port = gateway_farm(make_farm, af_admins=["boss"], af_gateway_admin_hosts=["127.0.0.1"])

    def ask(obj: dict[str, Any]) -> Any:
        return send(port, obj, how)

    def blocks(job_id: int) -> list[dict[str, Any]]:
        get = {"type": "jobs", "ids": [job_id], "block_ids": [0, 1], "mode": ["progress"] * 2}
        return ask({"get": get})["blocks"]

    def task(job_id: int, block: int, number: int, mode: str) -> dict[str, Any]:
        get = {
            "type": "jobs",
            "ids": [job_id],
            "block_ids": [block],
            "task_ids": [number],
            "mode": mode,
        }
        return ask({"get": get})["task"]

    who = {"user_name": "jimmy", "host_name": "ws01"}
    reply = ask(shot(f"shot010_{how.value}"))
    assert reply.get("id", 0) > 0 and reply["serial"] > 0, reply
    job_id = reply["id"]

    listed = {j["id"]: j for j in ask({"get": {"type": "jobs"}})["jobs"]}
    assert listed[job_id]["name"] == f"shot010_{how.value}"
    assert listed[job_id]["user_name"] == "jimmy"
    assert [b["name"] for b in listed[job_id]["blocks"]] == ["comp", "movie"]
    assert listed[job_id]["blocks"][0]["tasks_num"] == 3

    wait_for(
        lambda: all(b["state"] == "DON" for b in blocks(job_id)), 60, "both blocks done by renders"
    )
    comp, movie = blocks(job_id)
    assert comp["p_tasks_done"] == 3 and comp["p_percentage"] == 100
    assert movie["p_tasks_done"] == 1
    comp_done = max(task(job_id, 0, t, "info")["progress"]["tdn"] for t in range(3))
    assert task(job_id, 1, 0, "info")["progress"]["tst"] >= comp_done  # depend_mask held it

    info = task(job_id, 0, 1, "info")
    assert info["exec"]["command"] == "echo comp 0003-0004"
    assert info["exec"]["files"] == ["out/img.0003.exr"]
    assert (info["exec"]["frame_start"], info["exec"]["frame_finish"]) == (3, 4)
    progress = ask({"get": {"type": "jobs", "ids": [job_id], "mode": "progress"}})
    assert progress["job_progress"]["id"] == job_id  # af.py's getJobProgress reads it
    assert [len(b) for b in progress["job_progress"]["progress"]] == [3, 1]
    assert progress["job_progress"]["progress"][0][0]["state"] == "DON"
    full = ask({"get": {"type": "jobs", "ids": [job_id], "block_ids": [0, 1], "mode": "full"}})
    comp_full, movie_full = full["blocks"]
    assert comp_full["command"] == "echo comp @####@-@####@" and "tasks" not in comp_full
    assert comp_full["files"] == ["out/img.@####@.exr"] and comp_full["working_directory"] == "/tmp"
    assert movie_full["tasks"] == [{"name": "mov", "command": "echo movie of comp"}]
    output = task(job_id, 0, 1, "output")
    assert "comp 0003-0004" in output["data"]
    assert output["task_name"] and output["progress"]["hst"].startswith("gw-render-")
    assert "movie of comp" in task(job_id, 1, 0, "output")["data"]

    paused = ask(
        {"action": {"type": "jobs", "ids": [job_id], **who, "operation": {"type": "pause"}}}
    )
    assert paused["info"]["kind"] == "log", paused
    state = ask({"get": {"type": "jobs", "ids": [job_id]}})["jobs"][0]["state"].split()
    assert "OFF" in state

    restart = {"type": "restart", "task_ids": [2]}
    reply = ask(
        {"action": {"type": "jobs", "ids": [job_id], "block_ids": [0], **who, "operation": restart}}
    )
    assert reply["info"]["kind"] == "log", reply
    assert task(job_id, 0, 2, "info")["progress"]["state"] == "RDY"  # paused: it waits

    ask({"action": {"type": "jobs", "ids": [job_id], **who, "operation": {"type": "start"}}})
    wait_for(
        lambda: (
            task(job_id, 0, 2, "info")["progress"]["str"] == 2
            and task(job_id, 0, 2, "info")["progress"]["state"] == "DON"
        ),
        60,
        "the restarted task to run again on a render",
    )
    assert "comp 0005-0006" in task(job_id, 0, 2, "output")["data"]

    deleted = ask(
        {"action": {"type": "jobs", "ids": [job_id], **who, "operation": {"type": "delete"}}}
    )
    assert deleted["info"]["kind"] == "log", deleted
    wait_for(
        lambda: ask({"get": {"type": "jobs", "ids": [job_id]}})["jobs"] == [], 30, "the job gone"
    )

    renders = {r["name"]: r for r in ask({"get": {"type": "renders"}})["renders"]}
    assert renders["gw-render-0"]["state"].split()[0] == "ONL" and renders["gw-render-0"]["st"] & 1
    resources = ask({"get": {"type": "renders", "mode": "resources", "mask": "gw-render-0"}})
    assert [r["host_name"] for r in resources["renders"]] == ["gw-render-0"]
    assert resources["renders"][0]["host_resources"]["cpu_num"] > 0
    assert not {"name", "st", "state"} & set(resources["renders"][0])  # the GUI: no full update
    assert resources["renders"][0]["idle_time"] > 0
    assert "jimmy" in {u["name"] for u in ask({"get": {"type": "users"}})["users"]}
    assert ask({"get": {"type": "pools"}})["pools"][0]["name"] == "/"
    nimby = {"type": "renders", "mask": "gw-render-1", **who, "params": {"nimby": True}}
    refused = ask({"action": nimby})["info"]  # renders are the admins'
    assert refused["kind"] == "error" and "admin role" in refused["text"], refused
    nimby.update(user_name="boss")
    assert ask({"action": nimby})["info"]["kind"] == "log"
    render = ask({"get": {"type": "renders", "ids": [renders["gw-render-1"]["id"]]}})["renders"]
    assert "NbY" in render[0]["state"].split()
    ask({"action": {**nimby, "params": {"NIMBY": True}}})
    assert ask({"action": {**nimby, "params": {"nimby": False}}})["info"]["kind"] == "log"
    render = ask({"get": {"type": "renders", "ids": [renders["gw-render-1"]["id"]]}})["renders"]
    assert not {"NbY", "NBY"} & set(render[0]["state"].split())  # set free of both

    assert time_waits(port) == []
    assert time_waits(port, "raddr")  # the closes happened, on the clients' side


def raw_reply(port: int, raw: bytes, timeout: float = 10.0) -> bytes:
    """Send bytes, read what comes until the gateway closes; b"" when it resets or closes
    without a word. The client closes last here on purpose: the gateway drops it."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(raw)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return data
            if not chunk:
                return data
            data += chunk


def afanasy(body: bytes, length: int | None = None) -> bytes:
    return b"AFANASY %d JSON" % (len(body) if length is None else length) + body


@IN_WEB
def test_bad_input_gets_errors_or_drops_and_the_gateway_keeps_serving(
    make_farm: Any, web: bool
) -> None:
    settings = {"af_web_port": free_port()} if web else {}
    farm, port = gateway_farm(make_farm, renders=0, af_so_server_RCVTIMEO_sec=1, **settings)
    gateway = gateway_process(farm, web)
    huge = 70 * 1024 * 1024

    def error_of(raw: bytes, how: Framing = Framing.AFANASY) -> tuple[int, Any]:
        return exchange(port, raw, how)

    # garbage, the original's binary header, and requests that are not ours to serve
    for raw in (
        b"hello\r\n\r\n" * 10,
        struct.pack(">iii", 81, 34, 100) + bytes(100),
        bytes(range(256)),
    ):
        assert "error" in error_of(raw)[1]
    assert "not valid JSON" in error_of(afanasy(b"{not json"))[1]["error"]
    assert "not valid JSON" in error_of(afanasy(b"[" * 100_000 + b"]" * 100_000))[1]["error"]
    assert "not valid JSON" in error_of(afanasy(b'{"get": NaN}'))[1]["error"]
    assert "error" in error_of(afanasy(b"[1, 2]"))[1]
    assert "error" in error_of(afanasy(b'{"announce": {}}'))[1]  # not served
    assert error_of(afanasy(b'{"monitor": 5}'))[1]["monitor"]["id"] > 0  # the original takes any
    assert "error" in error_of(afanasy(b'{"get": {"type": "bogus"}}'))[1]
    assert "error" in error_of(afanasy(b'{"job": {"name": "x", "blocks": []}}'))[1]
    assert (
        "error" in error_of(afanasy(b'{"job": {"name": 5, "user_name": "u", "blocks": [{}]}}'))[1]
    )
    assert (
        error_of(afanasy(b'{"action": {"type": "jobs", "ids": [1]}}'))[1]["info"]["kind"] == "error"
    )
    big_int = b'{"get": {"type": "jobs", "ids": [%d]}}' % (10**40)
    refused = error_of(afanasy(big_int))[1]["error"]
    assert (
        refused.startswith("get.ids: int 1000") and "not an integer of at most 64 bits" in refused
    )
    status, reply = error_of(b"PUT / HTTP/1.1\r\nHost: x\r\n\r\n", Framing.HTTP)
    assert status == 405 and "error" in reply
    status, reply = error_of(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n{}", Framing.HTTP)
    assert status == 411 and "error" in reply

    # a length that lies: shorter cuts the JSON, longer never comes (dropped after 1 s)
    assert "not valid JSON" in error_of(afanasy(b'{"get": {"type": "users"}}', 5))[1]["error"]
    started = time.monotonic()
    assert raw_reply(port, afanasy(b'{"get": {"type": "users"}}', 1000)) == b""
    assert time.monotonic() - started < 5

    # a request cut short by the client's half-close, and a client gone before its answer
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(afanasy(b'{"get": {"type": "users"}}', 100))
        sock.shutdown(socket.SHUT_WR)
        assert b"ended before" in sock.recv(65536)
    job = {"name": "fire", "user_name": "jimmy", "blocks": [{"tasks": [{"command": "true"}]}]}
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_bytes({"job": job}, Framing.AFANASY))
    wait_for(
        lambda: [j for j in send(port, {"get": {"type": "jobs"}})["jobs"] if j["name"] == "fire"],
        10,
        "the job of a client that did not wait for its answer",
    )

    # 70 MB bodies: refused from their header, the rest read and thrown away, in both framings
    body = b"x" * huge
    status, reply = error_of(afanasy(body))
    assert "exceeds" in reply["error"]
    http = b"POST / HTTP/1.1\r\nAFANASY: %d\r\n\r\n" % huge + body
    status, reply = error_of(http, Framing.HTTP)
    assert status == 413 and "exceeds" in reply["error"]
    assert gateway.memory_info().rss < 200 * 1024 * 1024

    # half-open connections: held, then dropped; the gateway answers others meanwhile
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
    partial = socket.create_connection(("127.0.0.1", port))
    partial.sendall(b"AFANASY 40 JSON{")
    assert "users" in send(port, {"get": {"type": "users"}})
    for sock in [*idle, partial]:
        sock.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""  # dropped, nothing said
        sock.close()
    # a client that reads its answer but never closes is dropped too
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_bytes({"get": {"type": "users"}}, Framing.AFANASY))
        data = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                data += chunk
        assert b'"users"' in data

    assert "users" in send(port, {"get": {"type": "users"}})
    assert "users" in send(port, {"get": {"type": "users"}}, Framing.HTTP)
    assert gateway_process(farm, web).pid == gateway.pid  # never restarted
    assert "Traceback" not in farm.log("afserver")
    assert time_waits(port) == []


def test_a_taken_gateway_port_is_reported_and_the_farm_still_serves(make_farm: Any) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        farm = make_farm(af_gateway_port=holder.getsockname()[1])
        farm.start_server()  # waits for afcmd stat: the farm serves without its gateway
        wait_for(lambda: "gateway cannot listen" in farm.log("afserver"), 15, "the reason logged")
        assert "Traceback" not in farm.log("afserver")


def test_no_gateway_when_its_port_is_zero(make_farm: Any) -> None:
    farm = make_farm(af_gateway_port=0)
    farm.start_server()
    with pytest.raises(LookupError):
        farm.child("gateway.main")


def test_large_bodies_in_flight_are_bounded_and_the_rest_told_to_retry(make_farm: Any) -> None:
    size = 1_000_000  # af_message_size_max: each such body costs two of the four in budget
    farm, port = gateway_farm(make_farm, renders=0, af_message_size_max=size)
    held = []
    for _ in range(2):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(afanasy(b"[" + b" " * 1000, size))  # announced whole, sent in part
        held.append(sock)
    wait_for(
        lambda: exchange(port, afanasy(b"[" + b" " * 1000, size))[1]["info"]["text"].startswith(
            "server busy"
        ),
        10,
        "a third large body to be told to retry",
    )
    assert "users" in send(port, {"get": {"type": "users"}})  # small requests still served
    for sock in held:
        sock.sendall(b" " * (size - 1002) + b"]")
        assert b"a request is a JSON object" in sock.recv(65536)  # each one answered in turn
        sock.close()
    status, reply = exchange(port, afanasy(b"[" + b" " * (size - 2) + b"]"))
    assert "error" in reply and "busy" not in reply["error"]  # room again


def test_a_scheduler_away_gets_an_error_reply_and_serving_resumes(make_farm: Any) -> None:
    farm, port = gateway_farm(make_farm, renders=0, af_broker_request_timeout=1.0)
    scheduler = farm.child("workers.scheduler.main")
    scheduler.suspend()
    try:
        started = time.monotonic()
        reply = send(port, {"get": {"type": "users"}}, Framing.HTTP, timeout=15)
        assert "error" in reply and time.monotonic() - started < 10, reply
    finally:
        scheduler.resume()
    wait_for(lambda: "users" in send(port, {"get": {"type": "users"}}), 30, "serving again")
    assert time_waits(port) == []


def test_afserver_refuses_the_gateway_beside_curve_keys_saying_why(make_farm: Any) -> None:
    """The original's clients carry no key: a gateway under af_auth = curve would let anyone
    act as any user, so afserver (and the gateway on its own) refuse that combination."""
    port = free_port()
    farm = make_farm(af_auth="curve", af_gateway_port=port)
    for module, code in (("workers.supervisor", 1), ("gateway.main", 2)):
        proc = subprocess.run(
            [sys.executable, "-m", module],
            env=farm.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert proc.returncode == code, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1, proc.stderr
        assert f"af_auth = curve with the gateway on (af_gateway_port {port})" in lines[0]
        assert "anyone could act as any user" in lines[0]
        assert "set af_gateway_port to 0" in lines[0]
        assert "Traceback" not in proc.stderr
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass  # nothing listens for the original's clients
    assert not farm.store.exists()  # refused before anything was created


def test_trickling_clients_are_dropped_at_the_deadline(make_farm: Any) -> None:
    """A slowloris client, sending a byte now and then, does not stretch its time: it is
    dropped af_so_server_RCVTIMEO_sec after it connected, whether it trickles its request or
    trickles after its answer instead of closing."""
    farm, port = gateway_farm(make_farm, renders=0, af_so_server_RCVTIMEO_sec=1)
    request = request_bytes({"get": {"type": "users"}}, Framing.AFANASY)

    def trickle(raw: bytes, read_answer: bool) -> tuple[float, bytes]:
        started = time.monotonic()
        data = b""
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            if read_answer:
                sock.sendall(raw)
            sock.settimeout(0.1)
            for i in range(100):  # 10 s of one byte every 0.1 s, unless dropped
                try:
                    sock.sendall(raw[i % len(raw) : i % len(raw) + 1])
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                data += chunk
        return time.monotonic() - started, data

    took, data = trickle(request, read_answer=False)
    assert took < 2.5 and data == b"", (took, data)  # no whole request in 1 s: dropped
    took, data = trickle(request, read_answer=True)
    assert took < 2.5 and b'"users"' in data, (took, data)  # answered, then dropped
    assert "users" in send(port, {"get": {"type": "users"}})
    assert "Traceback" not in farm.log("afserver")


@IN_WEB
def test_connections_past_the_cap_are_reset_at_once(make_farm: Any, web: bool) -> None:
    from gateway.main import CONNECTIONS_MAX

    settings = {"af_web_port": free_port()} if web else {}
    farm, port = gateway_farm(make_farm, renders=0, af_so_server_RCVTIMEO_sec=20, **settings)
    gateway = gateway_process(farm, web)

    def accepted() -> int:
        return sum(
            1
            for c in gateway.net_connections("tcp")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
        )

    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNECTIONS_MAX)]
    try:
        wait_for(lambda: accepted() >= CONNECTIONS_MAX, 10, "the gateway to accept them all")
        # reset at once: seen by the recv, or already by the connect on a busy machine
        with (
            pytest.raises(ConnectionResetError),
            socket.create_connection(("127.0.0.1", port), timeout=5) as extra,
        ):
            with contextlib.suppress(OSError):
                extra.sendall(request_bytes({"get": {"type": "users"}}, Framing.AFANASY))
            extra.recv(65536)
    finally:
        for sock in held:
            sock.close()
    wait_for(lambda: "users" in send(port, {"get": {"type": "users"}}), 10, "serving again")
    assert "busy: too many connections from 127.0.0.1: reset" in farm.log("afserver")
    assert "Traceback" not in farm.log("afserver")


def test_work_appended_to_a_running_and_a_done_job_runs(make_farm: Any) -> None:
    """The original's af.py appendTasks / appendBlocks through the gateway, and afcmd jappend:
    new tasks of a done job make it ready again and real renders run them."""
    farm, port = gateway_farm(make_farm, renders=1)
    who = {"user_name": "jimmy", "host_name": "ws01"}
    job = {"name": "pdg", **who, "blocks": [{"name": "work", "tasks": [{"command": "echo a"}]}]}
    job_id = send(port, {"job": job})["id"]

    def state() -> str:
        return send(port, {"get": {"type": "jobs", "ids": [job_id]}})["jobs"][0]["state"]

    wait_for(lambda: "DON" in state().split(), 60, "the first task done")
    tasks = [{"name": "b", "command": "echo appended-b", "-files": ["x"]}]
    op = {"type": "append_tasks", "tasks": tasks, "mask": "ignored"}
    act = {"type": "jobs", "ids": [job_id], "block_ids": [0], **who, "operation": op}
    reply = send(port, {"action": act})
    assert reply["info"]["kind"] == "log", reply
    assert "DON" not in state().split()
    block = {"name": "more", "flags": 1, "frame_first": 1, "frame_last": 2, "command": "echo m@#@"}
    op = {"type": "append_blocks", "blocks": [block]}
    assert (
        send(port, {"action": {"type": "jobs", "ids": [job_id], **who, "operation": op}})["info"][
            "kind"
        ]
        == "log"
    )
    file = farm.tmp / "tasks.json"
    file.write_text('[{"name": "c", "command": "echo appended-c"}]')
    ran = farm.afcmd(
        "jappend", str(job_id), str(file), "--block", "work", env={"AF_USERNAME": "jimmy"}
    )
    assert ran.returncode == 0 and "1 task(s) added" in ran.stdout, ran.stderr
    wait_for(lambda: "DON" in state().split(), 60, "the appended work done by the render")
    tasks_now = farm.tasks(job_id, "list")
    assert len(tasks_now) == 5
    output = farm.tasks(job_id, "output", block_ids=[0], task_ids=[1])[0]["output"]
    assert "appended-b" in output
