"""Message type -> farm call. Every body is validated here, before the farm sees it."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from broker import protocol as P
from broker.validate import Field, Invalid, Schema, check, one_kind
from workers.base import WorkerConnection
from workers.scheduler.farm import Farm, NotFound, Refused, Registration

log = logging.getLogger("scheduler")

NAME = Field(str, max_len=255)
_SCALAR_MAP = Field(dict, max_len=256)  # free-form resources: plain values, bounded
NETIF = Field(
    dict,
    fields={
        "name": Field(str, required=True, max_len=64),
        "mac": Field(str, required=True, max_len=64),
        "addresses": Field(list, max_len=64, items=Field(str, max_len=64)),
        "broadcasts": Field(list, max_len=64, items=Field(str, max_len=64)),
    },
)

REGISTER: Schema = {
    "name": Field(str, required=True, max_len=255),
    "user_name": NAME,
    "os": NAME,
    "engine": Field(str, max_len=64),
    "address": Field(str, max_len=255),
    "host": _SCALAR_MAP,
    "host_resources": _SCALAR_MAP,
    "netifs": Field(list, max_len=64, items=NETIF),
    "time_launch": Field(float, min=0),
    "tasks": Field(list, max_len=1000),
}
UPDATE: Schema = {
    "id": Field(int, required=True, min=1),
    "host_resources": _SCALAR_MAP,
    "tasks": Field(list, max_len=1000),
}
DEREGISTER: Schema = {"id": Field(int, required=True, min=1)}

REQUEST_KINDS = ("get", "action", "job", "user")
IDENTITY_KEYS = ("user_name", "host_name")
GET: Schema = {
    "type": Field(str, required=True, choices=("renders", "users", "pools", "stat")),
    "mode": Field(str, choices=("full", "log", "list")),
    "names": Field(list, max_len=100_000, items=NAME),
    "mask": Field(str, max_len=1024),
}


def _valid_name(name: str) -> str:
    if not name or name != name.strip() or any(c.isspace() or not c.isprintable() for c in name):
        raise Invalid("name", f"must be a non-empty name without spaces, got {name!r}")
    return name


class SchedulerHandler:
    """Routes each message to the farm and answers it; refusals name what is wrong."""

    def __init__(
        self, conn: WorkerConnection, farm: Farm, clock: Callable[[], float] = time.time
    ) -> None:
        self.conn = conn
        self.farm = farm
        self.clock = clock
        self.requests: Counter[str] = Counter()
        self._routes: dict[int, Callable[[bytes, Any, float], Any]] = {
            P.MsgType.RENDER_REGISTER: self.render_register,
            P.MsgType.RENDER_UPDATE: self.render_update,
            P.MsgType.RENDER_DEREGISTER: self.render_deregister,
            P.MsgType.REQUEST: self.request,
        }

    def handle(self, client: bytes, header: P.Header, body: Any) -> None:
        route = self._routes.get(header.type)
        self.requests[header.type_name] += 1
        if route is None:
            self.conn.error(
                client,
                header.request_id,
                P.ErrorCode.UNKNOWN_TYPE,
                f"unknown message type {header.type}",
            )
            return
        try:
            reply_type, reply = route(client, body, self.clock())
        except Invalid as exc:
            self.requests["invalid"] += 1
            log.info("refused %s from %r: %s", header.type_name, client, exc)
            self.conn.error(client, header.request_id, P.ErrorCode.INVALID, str(exc))
        except Refused as exc:
            self.conn.error(client, header.request_id, P.ErrorCode.REFUSED, str(exc))
        except NotFound as exc:
            self.conn.error(client, header.request_id, P.ErrorCode.NOT_FOUND, str(exc))
        else:
            self.conn.reply(client, reply_type, reply, header.request_id)

    # --- renders -------------------------------------------------------------------------

    def render_register(self, client: bytes, body: Any, now: float) -> tuple[int, Any]:
        data = check(body, REGISTER)
        reg = Registration(
            name=_valid_name(data["name"]),
            user_name=data.get("user_name", ""),
            os=data.get("os", ""),
            engine=data.get("engine", ""),
            address=data.get("address", ""),
            host=data.get("host", {}),
            host_resources=data.get("host_resources", {}),
            netifs=data.get("netifs", []),
            time_launch=float(data.get("time_launch", 0.0)),
        )
        render = self.farm.register_render(client, reg, now)
        log.info("render %s (id %d) online from %s", render.name, render.id, render.address or "?")
        return P.MsgType.RENDER_EVENTS, {"id": render.id, **self.farm.render_config(render)}

    def render_update(self, client: bytes, body: Any, now: float) -> tuple[int, Any]:
        data = check(body, UPDATE)
        render = self.farm.render_of(client, data["id"])
        if render is None:
            # Unknown to us (we restarted, or it went zombie): it must register again.
            return P.MsgType.RENDER_EVENTS, {"id": -1, "reason": "not registered: register again"}
        self.farm.update_render(render, data.get("host_resources"), now)
        return P.MsgType.RENDER_EVENTS, {"id": render.id}

    def render_deregister(self, client: bytes, body: Any, now: float) -> tuple[int, Any]:
        data = check(body, DEREGISTER)
        render = self.farm.render_of(client, data["id"])
        if render is not None:
            self.farm.deregister_render(render, now)
            log.info("render %s (id %d) deregistered", render.name, render.id)
        return P.MsgType.REPLY, {"ok": True}

    # --- client requests -----------------------------------------------------------------

    def request(self, client: bytes, body: Any, now: float) -> tuple[int, Any]:
        kind = one_kind(body, REQUEST_KINDS, IDENTITY_KEYS)
        for key in IDENTITY_KEYS:
            if key in body:
                check_value_str(body[key], key)
        user_name = body.get("user_name", "")
        if user_name:
            self.farm.touch_user(user_name, body.get("host_name", ""), now)
        self.requests[f"request_{kind}"] += 1
        if kind == "get":
            return P.MsgType.REPLY, self.get(check(body["get"], GET, "get"))
        raise Invalid(kind, "this request kind is not served yet by this server version")

    def get(self, req: dict[str, Any]) -> Any:
        what = req["type"]
        if what == "renders":
            renders = self.farm.select_renders(req.get("names"), req.get("mask"))
            if req.get("mode") == "log":
                return {
                    "renders": [{"name": r.name, "id": r.id, "log": list(r.log)} for r in renders]
                }
            return {"renders": [r.to_json(full=req.get("mode") != "list") for r in renders]}
        if what == "users":
            return {
                "users": [
                    u.to_json() for u in sorted(self.farm.users.values(), key=lambda u: u.name)
                ]
            }
        if what == "pools":
            return {"pools": [p.to_json() for p in self.farm.pools.by_path.values()]}
        return {"scheduler": {**self.farm.stat(), "messages": dict(self.requests)}}


def check_value_str(value: Any, key: str) -> None:
    if not isinstance(value, str) or len(value) > 255:
        raise Invalid(key, "expected a name (str of at most 255 characters)")
