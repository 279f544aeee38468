"""Plain-text tables for listings; every listing also has --json."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def _duration(seconds: float) -> str:
    minutes, _ = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


def _counts(mapping: dict[str, Any]) -> str:
    shown = [f"{name} {count}" for name, count in sorted(mapping.items()) if count]
    return ", ".join(shown) or "none"


def stat_summary(broker: dict[str, Any], scheduler: dict[str, Any]) -> str:
    """`afcmd stat`: a few lines a wrangler reads at a glance (`--json` has everything)."""
    store = scheduler.get("store", {})
    if store.get("state", "ok") == "ok":
        store_line = "ok"
    else:
        store_line = f"DEGRADED for {store.get('seconds', '?')} s: {store.get('error', '?')}"
    if (role := store.get("server")) and role.get("backend") == "postgresql":
        standbys = ", ".join(s["server"] for s in role.get("standbys", ())) or "none"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(role.get("active_since", 0)))
        store_line += f"; PostgreSQL, {role['name']} active since {since}, standbys: {standbys}"
    replies = [
        f"{kind} n={r['n']} p50≤{r['p50']} ms p99≤{r['p99']} ms"
        for kind, r in sorted(broker.get("reply_ms", {}).items())
        if r.get("n")
    ]
    lines = [
        ("server", f"up {_duration(broker.get('uptime_sec', 0))}; workers: "
                   f"{_counts(broker.get('workers', {}))}; queued: "
                   f"{sum(broker.get('queued', {}).values())}; connections accepted: "
                   f"{broker.get('connections_accepted', 0)}"),
        ("farm", f"renders {scheduler.get('renders_online', 0)} online of "
                 f"{scheduler.get('renders_total', 0)} ({scheduler.get('renders_busy', 0)} busy), "
                 f"jobs {scheduler.get('jobs_total', 0)}, tasks running "
                 f"{scheduler.get('tasks_running', 0)}, users {scheduler.get('users_total', 0)}, "
                 f"pools {scheduler.get('pools_total', 0)}"),
        ("store", store_line),
        ("replies", "; ".join(replies) or "none yet"),
        ("errors", _counts(broker.get("errors", {}))),
    ]  # fmt: skip
    width = max(len(name) for name, _ in lines)
    return "\n".join(f"{name:<{width}}  {text}" for name, text in lines) + (
        "\n(afcmd stat --json: every counter)"
    )
