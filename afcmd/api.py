"""A small Python API for submitters, after the original's af.Job / af.Block / af.Task.

job = Job("shot010_comp", user_name="jimmy")
block = job.block("comp", command="nuke -F@#@-@#@ -x scene.nk", service="nuke")
block.frames(1, 100, per_task=10)
job.send()               # -> {"id": ..., "serial": ..., "name": ...}
"""

from __future__ import annotations

import getpass
import socket
from typing import Any

from auth import curve
from broker import protocol as P
from broker.client import Client
from config import load_config

NUMERIC = 1 << 0


class Task:
    def __init__(self, name: str, command: str = "", **fields: Any) -> None:
        self.data: dict[str, Any] = {"name": name, "command": command, **fields}


class Block:
    def __init__(
        self, name: str, command: str = "", service: str = "generic", **fields: Any
    ) -> None:
        self.data: dict[str, Any] = {"name": name, "command": command, "service": service, **fields}
        self.tasks: list[Task] = []

    def frames(self, first: int, last: int, per_task: int = 1, inc: int = 1) -> Block:
        """Make this a numeric block over frames first..last."""
        self.data.update(
            frame_first=first, frame_last=last, frames_per_task=per_task, frames_inc=inc
        )
        self.data["flags"] = self.data.get("flags", 0) | NUMERIC
        return self

    def task(self, name: str, command: str = "", **fields: Any) -> Task:
        task = Task(name, command, **fields)
        self.tasks.append(task)
        return task

    def to_json(self) -> dict[str, Any]:
        data = dict(self.data)
        if self.tasks:
            data["tasks"] = [t.data for t in self.tasks]
        return data


class Job:
    def __init__(self, name: str, user_name: str | None = None, **fields: Any) -> None:
        self.data: dict[str, Any] = {
            "name": name,
            "user_name": user_name or getpass.getuser(),
            "host_name": socket.gethostname().lower(),
            **fields,
        }
        self.blocks: list[Block] = []

    def block(self, name: str, command: str = "", service: str = "generic", **fields: Any) -> Block:
        block = Block(name, command, service, **fields)
        self.blocks.append(block)
        return block

    def to_json(self) -> dict[str, Any]:
        return {**self.data, "blocks": [b.to_json() for b in self.blocks]}

    def send(self, server: str | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Submit; returns the server's {"id", "serial", "name"} or raises a ClientError."""
        with _client(server, timeout) as client:
            return client.submit(self.to_json())


def _client(server: str | None, timeout: float | None) -> Client:
    """A client of af_servername's servers in turn (or `server`'s list)."""
    cfg = load_config()
    servers = P.parse_servers(server or cfg["af_servername"], cfg["af_serverport"])
    endpoints = [P.endpoint(host, port) for host, port in servers]
    wait = timeout or cfg["af_client_timeout"]
    return Client(endpoints, wait, curve=curve.client_keys(cfg))


def _append(
    job_id: int,
    key: str,
    items: list[dict[str, Any]],
    server: str | None,
    block_ids: list[int] | None = None,
) -> dict[str, Any]:
    act: dict[str, Any] = {
        "type": "jobs",
        "ids": [job_id],
        "operation": {"type": f"append_{key}", key: items},
    }
    if block_ids is not None:
        act["block_ids"] = block_ids
    with _client(server, None) as client:
        return client.request({"action": act})


def append_blocks(job_id: int, blocks: list[Block], server: str | None = None) -> dict[str, Any]:
    """Add blocks to a job that exists, running or done (a done job is ready again)."""
    return _append(job_id, "blocks", [b.to_json() for b in blocks], server)


def append_tasks(
    job_id: int,
    block_id: int,
    tasks: list[Task],
    server: str | None = None,
) -> dict[str, Any]:
    """Add tasks at the end of a list block of a job that exists."""
    return _append(job_id, "tasks", [t.data for t in tasks], server, [block_id])
