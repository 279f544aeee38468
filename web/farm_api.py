"""The farm's JSON API: read farm state and act on it from a browser or a script.

The web process is a client of the broker like afcmd: every call becomes a scheduler
request carrying the caller's identity, and the scheduler validates it (so the API refuses
exactly what afcmd would). Errors come back as JSON that says what is wrong, with the
status that fits: 400 bad input, 403 not allowed, 404 unknown, 504 no answer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.curve import ClientKeys
from broker import protocol as P
from broker.client import Client, NoAnswer, ServerError
from web.inputs import BadInput, json_object, whole_number
from web.refusals import for_page, note_refusal

EVENTS_PATH = "/api/farm/events"
TOKEN_COOKIE = "af_token"  # the monitor keeps the token there for the statistics pages
USER_HEADER = "x-afanasy-user"
ADMIN_HEADER = "x-afanasy-admin"
KINDS = ("jobs", "renders", "pools", "users")
STATUS = {
    P.ErrorCode.INVALID: 400,
    P.ErrorCode.REFUSED: 403,
    P.ErrorCode.NOT_FOUND: 404,
    P.ErrorCode.NO_SERVICE: 503,  # the scheduler is away: try again
    P.ErrorCode.OVERLOADED: 503,
    P.ErrorCode.LOST: 503,  # it may have taken effect: a submission with its key may retry
    P.ErrorCode.STANDBY: 503,  # "standby, active is …": the page names the active server
}


class ApiError(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    def response(self) -> JSONResponse:
        """The error as JSON; a refusal adds `page`, what to do about it on the monitor."""
        body = {"error": self.text}
        page = for_page(self.status, self.text)
        if page:
            body["page"] = page
        return JSONResponse(body, status_code=self.status)


class Farm:
    """Broker clients, one per thread of the server's pool (ZeroMQ sockets are not
    thread-safe), all to the same afserver."""

    def __init__(self, endpoint: str, timeout: float, curve: ClientKeys | None = None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.curve = curve
        self._local = threading.local()

    def request(self, body: dict[str, Any], identity: dict[str, Any]) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = Client(self.endpoint, self.timeout, curve=self.curve)
        try:
            return client.request({**body, **identity})
        except ServerError as exc:
            raise ApiError(STATUS.get(exc.code, 502), exc.text) from exc
        except NoAnswer as exc:
            raise ApiError(504, str(exc)) from exc


Identify = Callable[[Request], dict[str, Any]]


def _asks_admin(request: Request) -> bool:
    return request.headers.get(ADMIN_HEADER, "").strip().lower() in ("1", "true", "yes")


def trusted_identity(request: Request) -> dict[str, Any]:
    """Who is calling, in the trusted mode (as afcmd): the user the caller names."""
    user = request.headers.get(USER_HEADER, "").strip()[:255]
    if not user and request.method != "GET":
        user = "web"  # a script's change without a name, as before; a read names nobody
        # (an unnamed read creates no user: a monitor page not yet told who you are)
    host = request.client.host if request.client else ""
    return {"user_name": user, "host_name": host, "admin": _asks_admin(request)}


def token_identity(verify: Callable[[str | None], str | None], cookie: bool = False) -> Identify:
    """Who is calling, with authentication (af_auth): the user a bearer token was issued
    to (`afcmd token USER`). The web process connects with the server's key, which the
    scheduler trusts to name the user it acts for, so the check here is the one that counts.

    The token comes in the Authorization header; on the event stream (an EventSource sends
    no headers) also as `?token=`; with `cookie`, for pages a browser opens, in the
    `af_token` cookie the monitor sets (SameSite=Strict: other sites' requests lack it)."""

    def identify(request: Request) -> dict[str, Any]:
        header = request.headers.get("authorization")
        if header is None and request.url.path == EVENTS_PATH:
            query = request.query_params.get("token")
            header = f"Bearer {query}" if query else None
        if header is None and cookie and request.cookies.get(TOKEN_COOKIE):
            header = f"Bearer {request.cookies[TOKEN_COOKIE]}"
        user = verify(header)
        if user is None:
            text = "a valid token is needed: Authorization: Bearer <token> (afcmd token USER)"
            note_refusal(request, "token", "no valid token" if header is None else "bad token")
            raise ApiError(401, text)
        host = request.client.host if request.client else ""
        return {"user_name": user, "host_name": host, "admin": _asks_admin(request)}

    return identify


def _int(value: str, name: str) -> int:
    try:
        return whole_number(value, name)
    except BadInput as exc:
        raise ApiError(400, str(exc)) from None


def _ints(text: str | None, name: str) -> list[int] | None:
    if text is None or text == "":
        return None
    return [_int(part.strip(), name) for part in text.split(",")]


async def _json_body(request: Request) -> dict[str, Any]:
    """The body as one JSON object (its size is bounded by the guard before it is read)."""
    try:
        return json_object(await request.body())
    except BadInput as exc:
        raise ApiError(400, str(exc)) from None


def routes(farm: Farm, identity: Identify = trusted_identity) -> list[Route]:
    def call(
        request: Request, body: dict[str, Any], pick: Callable[[Any], Any] = lambda r: r
    ) -> Response:
        try:
            return JSONResponse(pick(farm.request(body, identity(request))))
        except ApiError as exc:
            return exc.response()

    def read(
        build: Callable[[Request], dict[str, Any]], pick: Callable[[Any], Any] = lambda r: r
    ) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            try:
                body = build(request)
            except ApiError as exc:
                return exc.response()
            return call(request, body, pick)

        return endpoint

    def one_job(reply: Any) -> Any:
        """The job asked for by id: a job that does not exist is a 404, not an empty list."""
        if not reply.get("jobs"):
            raise ApiError(404, "no such job")
        return reply["jobs"][0]

    def jobs(request: Request) -> dict[str, Any]:
        get: dict[str, Any] = {"type": "jobs", "mode": "list"}
        users = request.query_params.get("user")
        if users:
            get["users"] = users.split(",")
        return {"get": get}

    def job(request: Request) -> dict[str, Any]:
        job_id = _int(request.path_params["job_id"], "job id")
        mode = "why" if request.url.path.endswith("/why") else "full"
        return {"get": {"type": "jobs", "ids": [job_id], "mode": mode}}

    def tasks(request: Request) -> dict[str, Any]:
        get: dict[str, Any] = {
            "type": "tasks",
            "job_id": _int(request.path_params["job_id"], "job id"),
        }
        blocks = _ints(request.query_params.get("block"), "block")
        if blocks is not None:
            get["block_ids"] = blocks
        limit = request.query_params.get("limit")
        if limit:
            get["limit"] = _int(limit, "limit")
        return {"get": get}

    def task(request: Request) -> dict[str, Any]:
        get: dict[str, Any] = {
            "type": "tasks",
            "mode": "log" if request.url.path.endswith("/log") else "output",
            "job_id": _int(request.path_params["job_id"], "job id"),
            "block_ids": [_int(request.path_params["block"], "block")],
            "task_ids": [_int(request.path_params["task"], "task")],
        }
        attempt = request.query_params.get("attempt")
        if attempt:
            get["attempt"] = _int(attempt, "attempt")
        return {"get": get}

    def listing(kind: str, mode: str = "list") -> Callable[[Request], dict[str, Any]]:
        return lambda request: {
            "get": {"type": kind, "mode": request.query_params.get("mode", mode)}
        }

    def renders(request: Request) -> dict[str, Any]:
        """Every render in full; with mode=history, the resource rings of the renders named
        (?name=r1,r2: a history of the whole farm is not a page's to ask for)."""
        mode = request.query_params.get("mode", "full")
        names = [n for n in request.query_params.get("name", "").split(",") if n][:100]
        if mode == "history" and not names:
            raise ApiError(400, "mode=history needs the renders' names: ?mode=history&name=r1")
        get: dict[str, Any] = {"type": "renders", "mode": mode}
        if names:
            get["names"] = names
        return {"get": get}

    def system(request: Request) -> dict[str, Any]:
        who = identity(request)
        if not who["admin"]:
            text = f"the system job needs the admin role ({ADMIN_HEADER}: 1)"
            note_refusal(request, "role", text, f"{who['user_name']}@{who['host_name']}")
            raise ApiError(403, text)
        return {"get": {"type": "jobs", "ids": [1], "mode": "full"}}

    async def submit(request: Request) -> Response:
        try:
            data = await _json_body(request)
        except ApiError as exc:
            return exc.response()
        if set(data) != {"job"}:
            return JSONResponse({"error": 'expected {"job": {...}}'}, status_code=400)
        key = request.headers.get("idempotency-key")  # a retry with it gets the first job
        if key is not None:
            data = {**data, "idempotency_key": key}
        return await run_in_threadpool(call, request, data)

    async def action(request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in KINDS:
            return JSONResponse(
                {"error": f"act on one of {', '.join(KINDS)}, not {kind[:40]!r}"}, status_code=404
            )
        try:
            data = await _json_body(request)
        except ApiError as exc:
            return exc.response()
        if "type" in data:
            return JSONResponse(
                {"error": "the kind is in the path, not in the body"}, status_code=400
            )
        return await run_in_threadpool(call, request, {"action": {"type": kind, **data}})

    # The read endpoints are plain functions: Starlette runs them in its thread pool, where
    # each thread has its own broker client.
    return [
        Route("/api/farm/jobs", read(jobs), methods=["GET"]),
        Route("/api/farm/jobs", submit, methods=["POST"]),
        Route("/api/farm/jobs/{job_id}", read(job, one_job), methods=["GET"]),
        Route("/api/farm/jobs/{job_id}/why", read(job, one_job), methods=["GET"]),
        Route("/api/farm/jobs/{job_id}/tasks", read(tasks), methods=["GET"]),
        Route(
            "/api/farm/jobs/{job_id}/blocks/{block}/tasks/{task}/output",
            read(task),
            methods=["GET"],
        ),
        Route(
            "/api/farm/jobs/{job_id}/blocks/{block}/tasks/{task}/log",
            read(task),
            methods=["GET"],
        ),
        Route("/api/farm/renders", read(renders), methods=["GET"]),
        Route("/api/farm/pools", read(listing("pools")), methods=["GET"]),
        Route("/api/farm/users", read(listing("users")), methods=["GET"]),
        Route("/api/farm/system", read(system, one_job), methods=["GET"]),
        Route("/api/farm/stat", read(lambda _: {"get": {"type": "stat"}}), methods=["GET"]),
        Route("/api/farm/{kind}/action", action, methods=["POST"]),
    ]
