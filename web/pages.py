"""HTML of the statistics pages (pure: report data in, a page out).

Plain server-rendered HTML with one local stylesheet: no script, no CDN. Every number a
table shows sits in a cell named by `data-col`, in a row named by `data-name`, so a page
can be checked against the database it was built from.
"""

from __future__ import annotations

import time
from html import escape
from typing import Any

from web.params import Query
from web.svg import tasks_graph

NAV = (("/stats/", "Jobs & tasks"), ("/stats/logs", "Logs"), ("/stats/admin", "Delete records"))
# "/" is the monitor where the web serves a farm, these pages where it serves statistics only
BACK = '<a href="/">← Monitor</a>'


def _when(ts: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def _input_time(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M", time.localtime(ts))


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def _bucket_name(seconds: int) -> str:
    names = {60: "minute", 3600: "hour", 86400: "day", 604800: "week"}
    return names.get(seconds) or f"{seconds // 604800} weeks"


def page(title: str, body: str, current: str = "") -> str:
    links = "".join(
        f'<a href="{href}"{" class=here" if href == current else ""}>{escape(text)}</a>'
        for href, text in NAV
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · Afanasy statistics</title>"
        '<link rel="stylesheet" href="/static/style.css"></head><body>'
        f"<header><b>Afanasy statistics</b><nav>{BACK}{links}</nav></header>"
        f"<main><h1>{escape(title)}</h1>{body}</main></body></html>"
    )


def error_box(text: str) -> str:
    return f'<p class="error" role="alert">{escape(text)}</p>'


def _select(name: str, value: str, options: tuple[tuple[str, str], ...]) -> str:
    opts = "".join(
        f'<option value="{v}"{" selected" if v == value else ""}>{escape(t)}</option>'
        for v, t in options
    )
    return f'<label>{escape(name)} <select name="{name}">{opts}</select></label>'


def range_form(q: Query, action: str, extra: str = "") -> str:
    groups = (("folder", "folder"), ("service", "service"), ("user", "user"))
    return (
        f'<form class="range" method="get" action="{action}">'
        f'<label>from <input type="datetime-local" name="from" value="{_input_time(q.span.begin)}"></label>'
        f'<label>to <input type="datetime-local" name="to" value="{_input_time(q.span.end)}"></label>'
        f"{_select('group', q.group_name, groups)}"
        f'<label>folder depth <input type="number" name="depth" min="0" max="16" value="{q.depth}"></label>'
        f'{extra}<button type="submit">Show</button></form>'
    )


def _favourite(fav: dict[str, Any]) -> str:
    return f"{escape(fav['name'] or '(none)')} {fav['share']:g}%" if fav["name"] else ""


def _table(table_id: str, caption: str, columns: list[tuple[str, str]], rows: list[dict]) -> str:
    head = "".join(f"<th>{escape(title)}</th>" for _, title in columns)
    body = []
    for row in rows:
        cells = []
        for key, _ in columns:
            value = row[key]
            if key in ("service", "user"):
                shown = _favourite(value)
            elif key.startswith("run_time"):
                shown = _duration(value)
            elif key == "done_percent":
                shown = f"{value:g}%"
            else:
                shown = escape(str(value))
            raw = value["name"] if isinstance(value, dict) else value
            cells.append(f'<td data-col="{key}" data-value="{escape(str(raw))}">{shown}</td>')
        body.append(f'<tr data-name="{escape(row["name"])}">{"".join(cells)}</tr>')
    if not rows:
        body.append(f'<tr><td colspan="{len(columns)}" class="empty">no records</td></tr>')
    return (
        f'<table id="{table_id}"><caption>{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


JOB_COLUMNS = [
    ("name", "group"),
    ("jobs", "jobs"),
    ("blocks", "blocks"),
    ("tasks_avg", "tasks avg"),
    ("capacity_avg", "capacity avg"),
    ("run_time_sum", "run time sum"),
    ("run_time_avg", "run time avg"),
    ("done_percent", "done"),
    ("service", "favourite service"),
    ("user", "favourite user"),
]
TASK_COLUMNS = [
    ("name", "group"),
    ("tasks", "tasks"),
    ("errors", "errors"),
    ("capacity_avg", "capacity avg"),
    ("run_time_sum", "run time sum"),
    ("run_time_avg", "run time avg"),
    ("done_percent", "done"),
    ("service", "favourite service"),
    ("user", "favourite user"),
]


def overview(q: Query, graph: dict, jobs: list[dict], tasks: list[dict]) -> str:
    by = q.group_name + (f" (depth {q.depth})" if q.group == "folder" else "")
    body = (
        range_form(q, "/stats/")
        + f'<section><h2>Tasks graph</h2><p class="note">{graph["total"]} finished task runs, '
        f"{_when(q.span.begin)} to {_when(q.span.end)}, per "
        f"{_bucket_name(graph['bucket_seconds'])} by {escape(by)}</p>"
        f'<div class="graph-box">{tasks_graph(graph)}</div></section>'
        f"<section><h2>Jobs</h2>{_table('jobs-table', f'Deleted jobs blocks by {by}', JOB_COLUMNS, jobs)}</section>"
        f"<section><h2>Tasks</h2>{_table('tasks-table', f'Task runs by {by}', TASK_COLUMNS, tasks)}</section>"
    )
    return page("Jobs & tasks", body, "/stats/")


def logs(q: Query, rows: list[dict]) -> str:
    filters = "".join(
        f'<label>{c} <input name="{c}" value="{escape(q.filters.get(c, ""))}" '
        f'placeholder="contains…"></label>'
        for c in ("subject", "type", "object", "info")
    )
    head = "<th>time</th><th>subject</th><th>type</th><th>object</th><th>info</th>"
    body = (
        "".join(
            f"<tr><td data-col=time data-value={r['time']}>{_when(r['time'])}</td>"
            + "".join(
                f'<td data-col="{c}">{escape(r[c] or "")}</td>'
                for c in ("subject", "type", "object", "info")
            )
            + "</tr>"
            for r in rows
        )
        or '<tr><td colspan="5" class="empty">no records</td></tr>'
    )
    table = f'<table id="logs-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return page("Logs", range_form(q, "/stats/logs", filters) + table, "/stats/logs")


def admin(message: str = "", error: str = "", form_token: str = "") -> str:
    """The page to delete records; `form_token` goes in each form (anti-forgery)."""
    hidden = f'<input type="hidden" name="form_token" value="{escape(form_token)}">'
    note = (f'<p class="done" role="status">{escape(message)}</p>' if message else "") + (
        error_box(error) if error else ""
    )
    body = (
        note + '<form method="post" action="/stats/admin" class="danger">'
        f"<h2>Delete a folder's records</h2>{hidden}"
        '<label>folder <input name="folder" placeholder="/project/sequence" required></label>'
        '<label><input type="checkbox" name="confirm" value="yes" required> '
        "yes, delete its jobs and tasks records and those of the folders below</label>"
        '<button type="submit">Delete folder records</button></form>'
        '<form method="post" action="/stats/admin" class="danger">'
        f"<h2>Delete records before a date</h2>{hidden}"
        '<label>before <input type="date" name="before" required></label>'
        '<label><input type="checkbox" name="confirm" value="yes" required> '
        "yes, delete jobs, tasks and logs records older than this</label>"
        '<button type="submit">Delete old records</button></form>'
    )
    return page("Delete records", body, "/stats/admin")
