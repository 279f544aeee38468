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


def shell(view: str, title: str, attrs: str = "") -> str:
    links = "".join(
        f'<a href="{href}"{" class=here" if name == view else ""}>{escape(text)}</a>'
        for name, href, text in VIEWS
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} · Afanasy</title>"
        '<link rel="stylesheet" href="/static/style.css">'
        '<link rel="stylesheet" href="/static/monitor.css">'
        '<script src="/static/monitor.js" defer></script>'
        '<script src="/static/server.js" defer></script></head>'
        f'<body data-view="{view}" {attrs}>'
        f'<header><b>Afanasy</b><nav>{links}<a href="/stats/">Statistics</a></nav>'
        '<span id="af-server" class="server"></span>'
        '<span class="who"><label>user <input id="af-user" size="10"></label>'
        '<label><input type="checkbox" id="af-admin"> admin</label>'
        '<input id="af-token" type="password" size="8" placeholder="token" '
        'title="with af_auth: your token from afcmd token USER">'
        '<span id="af-live" class="live off" title="live updates">●</span></span></header>'
        f'<main><h1 id="title">{escape(title)}</h1><div id="view"></div></main>'
        '<div id="menu" class="menu" hidden></div>'
        '<div id="modal" class="modal" hidden><div class="box"><p id="modal-text"></p>'
        '<button id="modal-ok" class="danger">Confirm</button> '
        '<button id="modal-cancel">Cancel</button></div></div>'
        '<div id="toast" class="toast" hidden></div></body></html>'
    )


def routes() -> list[Route]:
    def view(name: str, title: str):  # type: ignore[no-untyped-def]
        return lambda _request: HTMLResponse(shell(name, title))

    def job(request: Request) -> HTMLResponse:
        job_id = request.path_params["job_id"]
        if not JOB_ID.fullmatch(job_id):
            return HTMLResponse(shell("job", "No such job"), status_code=404)
        return HTMLResponse(shell("job", f"Job {job_id}", f'data-job-id="{job_id}"'))

    return [
        Route("/monitor", lambda _: RedirectResponse("/monitor/jobs")),
        Route("/monitor/", lambda _: RedirectResponse("/monitor/jobs")),
        *(Route(href, view(name, text)) for name, href, text in VIEWS),
        Route("/monitor/jobs/{job_id}", job),
    ]
