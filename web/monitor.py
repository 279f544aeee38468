"""The monitor pages: one HTML shell per view; the view itself is drawn by monitor.js from
the farm API and kept current by the farm's event stream (no page polls the whole farm)."""

from __future__ import annotations

import re
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse
from starlette.routing import Route

JOB_ID = re.compile(r"[0-9]{1,18}")
VIEWS = (
    ("jobs", "/monitor/jobs", "Jobs"),
    ("renders", "/monitor/renders", "Renders"),
    ("pools", "/monitor/pools", "Pools"),
    ("users", "/monitor/users", "Users"),
    ("system", "/monitor/system", "System job"),
)


SCRIPTS = ("ui.js", "monitor.js", "jobs.js", "job.js", "farm.js", "server.js")


def shell(view: str, title: str, attrs: str = "", token: bool = False) -> str:
    """The page of one view. `token`: the farm asks for tokens (af_auth), so the page asks
    for one, not for a user name."""
    links = "".join(
        f'<a href="{href}"{" class=here" if name == view else ""}>{escape(text)}</a>'
        for name, href, text in VIEWS
    )
    scripts = "".join(f'<script src="/static/{name}" defer></script>' for name in SCRIPTS)
    who = (
        '<input id="af-token" type="password" size="8" placeholder="token" '
        'title="your token: afcmd token YOUR_NAME prints it">'
        '<input id="af-user" type="hidden">'
        if token
        else '<label>user <input id="af-user" size="10" placeholder="your name" '
        'title="who this page acts as: your jobs are the ones you may act on"></label>'
        '<input id="af-token" type="hidden">'
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{escape(title)} · Afanasy</title>"
        '<link rel="stylesheet" href="/static/style.css">'
        '<link rel="stylesheet" href="/static/monitor.css">'
        f"{scripts}</head>"
        f'<body data-view="{view}" data-auth="{"token" if token else "trusted"}" {attrs}>'
        f'<header><b>Afanasy</b><nav>{links}<a href="/stats/">Statistics</a></nav>'
        '<span id="af-server" class="server"></span>'
        f'<span class="who">{who}'
        '<label title="act with the admin role (your name must be in af_admins)">'
        '<input type="checkbox" id="af-admin"> admin</label>'
        '<button id="af-help" type="button" title="keyboard shortcuts (?)" '
        'onclick="shortcuts()">?</button>'
        '<span id="af-live" class="live off" title="live updates">●</span></span></header>'
        f'<main><h1 id="title">{escape(title)}</h1><div id="view"></div></main>'
        '<div id="menu" class="menu" role="menu" hidden></div>'
        '<dialog id="modal" class="modal" hidden><p id="modal-text"></p>'
        '<ul id="modal-list" hidden></ul><form id="modal-fields"></form>'
        '<div class="buttons"><button id="modal-cancel" type="button">Cancel</button> '
        '<button id="modal-ok" type="button" class="danger">Confirm</button></div></dialog>'
        '<dialog id="help" class="help"></dialog>'
        '<div id="toast" class="toast" role="status" hidden></div></body></html>'
    )


def routes(token: bool = False) -> list[Route]:
    def view(name: str, title: str):  # type: ignore[no-untyped-def]
        return lambda _request: HTMLResponse(shell(name, title, token=token))

    def job(request: Request) -> HTMLResponse:
        job_id = request.path_params["job_id"]
        if not JOB_ID.fullmatch(job_id):
            return HTMLResponse(shell("job", "No such job", token=token), status_code=404)
        return HTMLResponse(shell("job", f"Job {job_id}", f'data-job-id="{job_id}"', token=token))

    return [
        Route("/monitor", lambda _: RedirectResponse("/monitor/jobs")),
        Route("/monitor/", lambda _: RedirectResponse("/monitor/jobs")),
        *(Route(href, view(name, text)) for name, href, text in VIEWS),
        Route("/monitor/jobs/{job_id}", job),
    ]
