"""The farm: sole owner of scheduler state (renders, pools, users) and its indexes.

Only the scheduler's loop thread calls into it. Every method takes ``now`` (wall-clock
seconds); nothing here reads the clock, touches a socket or writes a file. Changes that must
reach the store are collected in ``dirty_*`` sets and flushed by the loop.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from broker.validate import Invalid
from workers.scheduler.pools import Builtins, Pools
from workers.scheduler.renders import Render, RenderFlag
from workers.scheduler.users import User


class Refused(Exception):
    """A valid request the farm will not carry out now; the text says why."""


class NotFound(Exception):
    pass


@dataclass(slots=True)
class Registration:
    """What a render told us when it registered (already validated)."""

    name: str
    user_name: str = ""
    os: str = ""
    engine: str = ""
    address: str = ""
    host: dict[str, Any] = field(default_factory=dict)
    host_resources: dict[str, Any] = field(default_factory=dict)
    netifs: list[dict[str, Any]] = field(default_factory=list)
    time_launch: float = 0.0


class Farm:
    def __init__(self, builtins: Builtins, now: float) -> None:
        self.pools = Pools(builtins, now)
        self.renders: dict[int, Render] = {}
        self.render_by_name: dict[str, Render] = {}
        self.users: dict[str, User] = {}
        self.dirty_renders: set[int] = set()
        self.dirty_users: set[str] = set()  # by name
        self.counters: Counter[str] = Counter()
        self._next_render_id = 1
        self._next_user_id = 1

    # --- restore -------------------------------------------------------------------------

    def restore(self, renders: list[dict[str, Any]], users: list[dict[str, Any]]) -> None:
        """Load stored nodes. Renders come back offline until they register again."""
        for data in renders:
            render = Render.from_settings(data)
            self._add_render(render)
        for data in users:
            user = User.from_json(data)
            self.users[user.name] = user
            self._next_user_id = max(self._next_user_id, user.id + 1)

    def _add_render(self, render: Render) -> None:
        self.renders[render.id] = render
        self.render_by_name[render.name] = render
        self.pools.by_path.get(render.pool, self.pools.by_path["/"]).renders.add(render.id)
        # Ids are never reused: a new render gets one above every id ever stored.
        self._next_render_id = max(self._next_render_id, render.id + 1)

    # --- renders -------------------------------------------------------------------------

    def register_render(self, identity: bytes, reg: Registration, now: float) -> Render:
        """A render comes online. A known name keeps its id, pool and settings."""
        render = self.render_by_name.get(reg.name)
        if render is not None and render.online and render.identity != identity:
            self.counters["registrations_refused"] += 1
            render.add_log(
                now, f"refused a second afrender named {reg.name} from {reg.address or '?'}"
            )
            raise Refused(
                f"a render named '{reg.name}' is already online (registered from "
                f"{render.address or '?'}); set another name with AF_HOSTNAME or --name, "
                "or stop the other afrender"
            )
        if render is None:
            render = Render(id=self._next_render_id, name=reg.name, pool="/")
            self._add_render(render)
            render.add_log(now, "new render")
            self.counters["renders_created"] += 1
        render.user_name = reg.user_name
        render.os = reg.os
        render.engine = reg.engine
        render.address = reg.address
        render.host = reg.host
        render.host_resources = reg.host_resources
        render.netifs = reg.netifs
        render.time_launch = reg.time_launch
        render.go_online(identity, now)
        render.add_log(now, f"online from {reg.address or '?'} (afrender {reg.engine or '?'})")
        self.counters["registrations"] += 1
        self.dirty_renders.add(render.id)
        return render

    def render_of(self, identity: bytes, render_id: int) -> Render | None:
        """The online render this connection registered as, or None (it must register again)."""
        render = self.renders.get(render_id)
        if render is None or not render.online or render.identity != identity:
            return None
        return render

    def update_render(self, render: Render, resources: dict[str, Any] | None, now: float) -> None:
        render.time_update = now
        if resources:
            render.host_resources = resources

    def deregister_render(self, render: Render, now: float) -> None:
        render.go_offline(now)
        render.add_log(now, "offline: afrender exited (deregistered)")
        self.counters["deregistrations"] += 1
        self.dirty_renders.add(render.id)

    def check_zombies(self, now: float) -> list[Render]:
        """Online renders silent for longer than their pool's zombie_time go offline."""
        zombies = []
        for render in self.renders.values():
            if not render.online:
                continue
            zombie_time = self.pools.inherited(render.pool, "zombie_time")
            if now - render.time_update > zombie_time:
                render.go_offline(now)
                render.add_log(
                    now, f"offline: zombie, no update for {now - render.time_update:.1f} s"
                )
                self.counters["zombies"] += 1
                self.dirty_renders.add(render.id)
                zombies.append(render)
        return zombies

    def render_config(self, render: Render) -> dict[str, Any]:
        return self.pools.render_config(render.pool)

    def select_renders(self, names: list[str] | None, mask: str | None) -> list[Render]:
        """Renders by exact names and/or a regex mask (full match, as the original's masks)."""
        if names is None and mask is None:
            return sorted(self.renders.values(), key=lambda r: r.name)
        chosen: dict[int, Render] = {}
        for name in names or ():
            render = self.render_by_name.get(name)
            if render is None:
                raise NotFound(f"no render named '{name}'")
            chosen[render.id] = render
        if mask is not None:
            pattern = compile_mask(mask)
            for render in self.renders.values():
                if pattern.fullmatch(render.name):
                    chosen[render.id] = render
        return sorted(chosen.values(), key=lambda r: r.name)

    # --- users ---------------------------------------------------------------------------

    def touch_user(self, name: str, host_name: str, now: float) -> User:
        """Users appear on first contact and remember their last host."""
        user = self.users.get(name)
        if user is None:
            user = User(self._next_user_id, name, host_name, time_register=now)
            self._next_user_id += 1
            self.users[name] = user
            self.counters["users_created"] += 1
            self.dirty_users.add(user.name)
        elif host_name and user.host_name != host_name:
            user.host_name = host_name
            self.dirty_users.add(user.name)
        user.time_activity = now
        return user

    # --- figures -------------------------------------------------------------------------

    def stat(self) -> dict[str, Any]:
        online = sum(1 for r in self.renders.values() if r.online)
        return {
            "renders_total": len(self.renders),
            "renders_online": online,
            "renders_busy": sum(1 for r in self.renders.values() if r.flags & RenderFlag.RUN),
            "users_total": len(self.users),
            "pools_total": len(self.pools.by_path),
            **dict(self.counters),
        }


def compile_mask(mask: str) -> re.Pattern[str]:
    try:
        return re.compile(mask)
    except re.error as exc:
        raise Invalid("mask", f"not a valid regular expression: {exc}") from exc
