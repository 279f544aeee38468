"""The statistics pages and their JSON API (Starlette).

Endpoints are plain functions, which Starlette runs in its thread pool, so a slow or dead
statistics database holds one request, never the server. Bad parameters answer 400 with
what is wrong, a database that cannot answer 503 with the driver's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from stats import reports
from stats.backends import Backend, StatsError
from stats.reports import ReportError
from web import farm_api, forms, metrics, monitor, openapi, pages
from web.guard import Guard
from web.inputs import BadInput, json_object
from web.live import LiveFeed
from web.origins import Origin
from web.params import parse_query, parse_time
from web.refusals import NOTED, RefusalLog, note_refusal
from workers import watchdog

STATIC = Path(__file__).resolve().parent / "static"
BODY_MAX = 64 * 1024 * 1024  # af_message_size_max's default


class Reports:
    """The statistics database as the pages see it: tables made on first use."""

    def __init__(self, backend: Backend | None, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock
        self._ready = False
        self._lock = threading.Lock()

    def db(self) -> Backend:
        if self.backend is None:
            raise StatsError("statistics are off (af_db_conninfo = off)")
        with self._lock:
            if not self._ready:
                self.backend.update_tables()  # the original adds missing columns at start
                self._ready = True
        return self.backend


def _args(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def create_app(
    backend: Backend | None,
    admin_refusal: Callable[[Request], str | None],
    farm: farm_api.Farm | None = None,
    live: LiveFeed | None = None,
    identity: farm_api.Identify = farm_api.trusted_identity,
    stats_identity: farm_api.Identify | None = None,
    body_max: int = BODY_MAX,
    trusted_origins: frozenset[Origin] = frozenset(),
    hosts: frozenset[str] | None = None,
    healthy: Callable[[], bool] | None = None,
) -> Starlette:
    """`admin_refusal` says why a request may not delete records, or None when it may;
    `healthy`: what else this process runs is well (the statistics writer's thread); while
    it is not, the watchdog is not told the process lives, and afserver restarts it;
    `farm` is the afserver the farm API talks to (none: statistics only), and `live` its
    feed of changes for the event streams. `stats_identity` (with af_auth) proves who reads
    the statistics. What the web refuses goes to the statistics `logs` table."""
    rep = Reports(backend)
    refusals = RefusalLog(lambda rows: rep.db().insert("logs", rows) if backend else None)
    form_tokens = forms.FormTokens()

    def reader_refusal(request: Request) -> farm_api.ApiError | None:
        """With af_auth, statistics (the audit log among them) are for token holders."""
        if stats_identity is None:
            return None
        try:
            stats_identity(request)
        except farm_api.ApiError as exc:
            return exc
        return None

    def guarded(endpoint: Callable[[Request], Response], html: str = "") -> Callable[..., Any]:
        """A statistics endpoint behind `reader_refusal` (an HTML page when `html` titles it)."""

        def checked(request: Request) -> Response:
            refusal = reader_refusal(request)
            if refusal is None:
                return endpoint(request)
            if html:
                body = pages.page(html, pages.error_box(refusal.text))
                return HTMLResponse(body, status_code=refusal.status)
            return JSONResponse({"error": refusal.text}, status_code=refusal.status)

        return checked

    def json_call(work: Callable[[], Any]) -> Response:
        try:
            return JSONResponse(work())
        except ReportError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except StatsError as exc:
            return JSONResponse({"error": f"statistics database: {exc}"}, status_code=503)

    def html_call(title: str, work: Callable[[], str]) -> Response:
        try:
            return HTMLResponse(work())
        except ReportError as exc:
            return HTMLResponse(pages.page(title, pages.error_box(str(exc))), status_code=400)
        except StatsError as exc:
            text = f"statistics database: {exc}"
            return HTMLResponse(pages.page(title, pages.error_box(text)), status_code=503)

    def api_jobs(request: Request) -> Response:
        def work() -> Any:
            q = parse_query(_args(request), rep.clock())
            return {
                "group": q.group_name,
                "rows": reports.jobs_table(rep.db(), q.span, q.group, q.depth),
            }

        return json_call(work)

    def api_tasks(request: Request) -> Response:
        def work() -> Any:
            q = parse_query(_args(request), rep.clock())
            return {
                "group": q.group_name,
                "rows": reports.tasks_table(rep.db(), q.span, q.group, q.depth),
            }

        return json_call(work)

    def api_graph(request: Request) -> Response:
        def work() -> Any:
            q = parse_query(_args(request), rep.clock(), "service")
            return reports.tasks_graph(rep.db(), q.span, q.group, q.depth)

        return json_call(work)

    def api_logs(request: Request) -> Response:
        def work() -> Any:
            q = parse_query(_args(request), rep.clock())
            return {"rows": reports.logs_table(rep.db(), q.span, q.filters)}

        return json_call(work)

    def overview(request: Request) -> Response:
        def work() -> str:
            q = parse_query(_args(request), rep.clock())
            db = rep.db()
            graph = reports.tasks_graph(db, q.span, q.group, q.depth)
            jobs = reports.jobs_table(db, q.span, q.group, q.depth)
            tasks = reports.tasks_table(db, q.span, q.group, q.depth)
            return pages.overview(q, graph, jobs, tasks)

        return html_call("Jobs & tasks", work)

    def logs(request: Request) -> Response:
        def work() -> str:
            q = parse_query(_args(request), rep.clock())
            return pages.logs(q, reports.logs_table(rep.db(), q.span, q.filters))

        return html_call("Logs", work)

    def delete(fields: dict[str, Any]) -> dict[str, Any]:
        """Records deleted by the API's JSON object or the form's fields."""
        unknown = set(fields) - {"folder", "before", "confirm"}
        if unknown:
            raise ReportError(f"unknown field(s): {', '.join(sorted(unknown))}")
        if fields.get("confirm") not in (True, "yes"):
            raise ReportError("deleting records needs confirm: true")
        folder, before = fields.get("folder"), fields.get("before")
        if (folder is None) == (before is None):
            raise ReportError("delete either a folder's records or records before a date")
        if folder is not None:
            if not isinstance(folder, str):
                raise ReportError("folder: expected a folder path")
            return {"deleted": reports.delete_folder(rep.db(), folder), "folder": folder}
        if isinstance(before, bool) or not isinstance(before, int | str):
            raise ReportError("before: expected epoch seconds or a date")
        when = before if isinstance(before, int) else parse_time("before", before)
        if when is None:
            raise ReportError("before: expected a date")
        return {"deleted": reports.delete_before(rep.db(), when), "before": when}

    def refused(request: Request, text: str) -> None:
        """Note a refusal to delete records, unless the token check noted it already."""
        if getattr(request.state, NOTED, False):
            return
        who = ""
        with contextlib.suppress(farm_api.ApiError):
            caller = (stats_identity or identity)(request)
            who = f"{caller['user_name']}@{caller['host_name']}"
        note_refusal(request, "role", text, who)

    async def api_delete(request: Request) -> Response:
        refusal = admin_refusal(request)
        if refusal:
            refused(request, refusal)
            return JSONResponse({"error": refusal}, status_code=403)
        try:
            fields = json_object(await request.body())
        except BadInput as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return await run_in_threadpool(json_call, lambda: delete(fields))

    def admin_html(request: Request, status: int = 200, **shown: str) -> Response:
        """The admin page with its forms' token, and the cookie that matches it."""
        token = request.cookies.get(forms.COOKIE)
        if not form_tokens.valid(token):
            token = form_tokens.issue()
        response = HTMLResponse(pages.admin(form_token=token, **shown), status_code=status)
        response.headers["set-cookie"] = form_tokens.cookie_header(token)
        return response

    def admin_page(request: Request) -> Response:
        refusal = admin_refusal(request)
        return admin_html(request, 403, error=refusal) if refusal else admin_html(request)

    async def admin_post(request: Request) -> Response:
        body = await request.body()
        fields = dict(parse_qsl(body.decode("utf-8", "replace")))
        forged = form_tokens.refusal(
            request.cookies.get(forms.COOKIE), fields.pop(forms.FIELD, None)
        )
        if forged:
            note_refusal(request, "form token", forged)
            return admin_html(request, 403, error=forged)
        refusal = admin_refusal(request)
        if refusal:
            refused(request, refusal)
            return admin_html(request, 403, error=refusal)

        def work() -> Response:
            try:
                done = delete(fields)
            except ReportError as exc:
                return admin_html(request, 400, error=str(exc))
            except StatsError as exc:
                return admin_html(request, 503, error=f"statistics database: {exc}")
            counts = ", ".join(f"{n} {table}" for table, n in done["deleted"].items())
            return admin_html(request, message=f"deleted {counts} records")

        return await run_in_threadpool(work)

    def events(request: Request) -> Response:
        assert live is not None
        try:
            identity(request)  # with af_auth, only a token's holder watches
        except farm_api.ApiError as exc:
            return exc.response()
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(live.stream(), media_type="text/event-stream", headers=headers)

    routes = [
        Route("/", lambda _: RedirectResponse("/monitor/jobs" if farm is not None else "/stats/")),
        Route("/stats", lambda _: RedirectResponse("/stats/")),
        Route("/stats/", guarded(overview, "Jobs & tasks")),
        Route("/stats/logs", guarded(logs, "Logs")),
        Route("/stats/admin", admin_page, methods=["GET"]),
        Route("/stats/admin", admin_post, methods=["POST"]),
        Route("/api/stats/jobs", guarded(api_jobs)),
        Route("/api/stats/tasks", guarded(api_tasks)),
        Route("/api/stats/graph", guarded(api_graph)),
        Route("/api/stats/logs", guarded(api_logs)),
        Route("/api/stats/delete", api_delete, methods=["POST"]),
        Route("/api/openapi.json", lambda _: JSONResponse(openapi.document())),
        *(farm_api.routes(farm, identity) if farm is not None else []),
        *([Route("/api/farm/events", events)] if live is not None else []),
        *(monitor.routes(identity is not farm_api.trusted_identity) if farm is not None else []),
        *(metrics.routes(farm, identity) if farm is not None else []),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        refusals.start()
        if live is not None:
            live.start()
        alive = asyncio.create_task(watchdog.beat_forever(watchdog.beat_from_env(), healthy))
        yield
        alive.cancel()
        if live is not None:
            live.stop()
        refusals.stop()

    guard = Middleware(
        Guard, refusals=refusals, body_max=body_max, trusted=trusted_origins, hosts=hosts
    )

    async def no_route(request: Request, exc: Exception) -> Response:
        """404 and 405 of the router: JSON under /api/, as every other answer there."""
        status = getattr(exc, "status_code", 404)
        text = "no such path" if status == 404 else f"{request.method} is not served here"
        headers = getattr(exc, "headers", None)  # 405: Allow
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": text}, status_code=status, headers=headers)
        page = pages.page(text, pages.error_box(text))
        return HTMLResponse(page, status_code=status, headers=headers)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[guard],
        exception_handlers={404: no_route, 405: no_route},
    )
    app.state.refusals = refusals
    return app
