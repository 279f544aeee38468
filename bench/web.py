"""The monitor pages at farm size, and what the live stream sustains.

A fresh afserver with its web process, N simulated renders (bench/_simrenders: afrender's
wire protocol, heartbeats with resources every second, on a thread of this process) and
N jobs (submitted paused, so the farm stays still: the solver's cost at this size is the
farm-scale issue's, not the pages'); `--jobs 10000 --renders 10000` is the issue's size.
Then, in Debian's chromium (playwright):

- every page (jobs, renders, pools, users, system job, a job): first contentful paint,
  and for the tables the time until the virtual table holds every row (from navigation
  start), median of ROUNDS loads each;
- scrolling the jobs table from top to bottom: time until the last rows are drawn;
- a job of 10,000 tasks: its page with every task cell and the tasks table drawn, and a
  push that skips 1,000 of them, from the action until the cells changed on screen;
- live latency: a job's priority changed LIVE_CHANGES times; from the scheduler sending
  the push (its `sent` stamp) to the new value on screen (a MutationObserver on the cell),
  on the jobs page and, for a render's pool, on the renders page.

Live stream: an EventSource-like reader on /api/farm/events while actions change every
job's priority BURSTS times: pushes (SSE events) and job changes delivered per second.

Prints one JSON line on stdout; logs go to stderr; exits 1 when a run failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    BenchError,
    afserver_env,
    free_port,
    guarded,
    logs_on_failure,
    machine,
    report,
    spawn,
    stop,
    wait_for,
)
from bench._simrenders import Engine, raise_fd_limit, sim_names  # noqa: E402
from broker import protocol as P  # noqa: E402

log = logging.getLogger("bench.web")

CHROMIUM = "/usr/bin/chromium"
ROUNDS = 3
BURSTS = 20
LIVE_CHANGES = 10
SUBMITTERS = 8  # threads submitting the jobs
RETRIES = 4


class SimulatedRenders(threading.Thread):
    """The render simulator (bench/_simrenders: afrender's wire protocol, heartbeats with
    resources) driven on a thread of its own while the browser works."""

    def __init__(self, endpoint: str, count: int) -> None:
        super().__init__(name="simulated-renders", daemon=True)
        self.endpoint = endpoint
        self.count = count
        self.online = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        engine = Engine(self.endpoint, sim_names(self.count), heartbeat_sec=1.0)
        engine.start(time.monotonic())

        def stop() -> bool:
            self.online = engine.online()
            return self.stopping.is_set()

        try:
            engine.run(float("inf"), stop)
        finally:
            engine.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


ADMIN = {"X-Afanasy-User": "bench", "X-Afanasy-Admin": "1"}  # af_admins of the bench's farm


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    """A POST; a 503/504 (a scheduler busy with 10,000 renders' beats) is tried again, a
    submission under the same Idempotency-Key, so it is made once."""
    key = {"Idempotency-Key": uuid.uuid4().hex} if url.endswith("/api/farm/jobs") else {}
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **key, **(headers or {})},
    )
    for attempt in range(RETRIES):
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code not in (503, 504) or attempt == RETRIES - 1:
                raise
            log.info("%s: %s, again", url, exc.code)
    raise AssertionError("unreachable")


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return json.loads(resp.read())


def submit_jobs(web: str, count: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 10, "command": "true"}

    def one(i: int) -> None:
        job = {
            "name": f"shot{i:05d}",
            "user_name": f"u{i % 20}",
            "offline": True,
            "blocks": [block],
        }
        post(f"{web}/api/farm/jobs", {"job": job}, {"X-Afanasy-User": f"u{i % 20}"})

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        list(pool.map(one, range(count)))


RESPONSE_END_JS = """(part) => Math.max(-1, ...performance.getEntriesByType('resource')
  .filter((e) => e.name.includes(part)).map((e) => e.responseEnd))"""


def api_time(url: str) -> float:
    """Milliseconds of the listing a page loads, read here (median of ROUNDS): the part of
    a page's time that is the server's."""
    times = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        req = urllib.request.Request(url, headers=ADMIN)
        with urllib.request.urlopen(req, timeout=60) as resp:
            resp.read()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def new_page(browser: Any) -> Any:
    """A page of its own context, as the bench's admin (the page asks a name otherwise)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(
        "localStorage.setItem('afUser', 'bench'); localStorage.setItem('afAdmin', '1')"
    )
    return context.new_page()


def paint_time(browser: Any, url: str, ready: str) -> dict[str, float]:
    """A page without a big table: first contentful paint, and until `ready` is on screen."""
    page = new_page(browser)
    try:
        page.goto(url)
        page.wait_for_selector(ready, timeout=60_000)
        loaded = page.evaluate("performance.now()")
        fcp = page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
        )
        return {"fcp_ms": round(fcp, 1), "ready_ms": round(loaded, 1)}
    finally:
        page.context.close()


LATENCY_JS = """([selector, want, kind, key, field]) => {
  window.shownAt = null; // [when the value was on screen, when its push was sent]
  let sent = 0; // the stamp of the push that carries the change (a listener of our own)
  const listen = (e) => {
    const change = JSON.parse(e.data);
    const hit = (change[kind] || []).some((x) => String(x[kind === 'jobs' ? 'id' : 'name']) === key
                                              && String(x[field]) === want);
    if (hit) { sent = change.sent || 0; af.source.removeEventListener('farm', listen); }
  };
  af.source.addEventListener('farm', listen);
  const observer = new MutationObserver(() => {
    const el = document.querySelector(selector);
    if (el && el.textContent === want) {
      observer.disconnect();
      window.shownAt = [Date.now() / 1000, sent];
    }
  });
  observer.observe(document.querySelector('.vt-body'),
                   { subtree: true, childList: true, characterData: true });
}"""


def live_latency(
    page: Any, selector: str, change: Any, values: list[str], what: tuple[str, str, str]
) -> dict[str, float]:
    """From the scheduler's send to the value on screen, for each of `values` in turn;
    `what`: the push's list, the item's id or name, the field that takes the value."""
    lags = []
    for value in values:
        page.evaluate(LATENCY_JS, [selector, value, *what])
        change(value)
        page.wait_for_function("window.shownAt !== null", timeout=30_000)
        visible, sent = page.evaluate("window.shownAt")
        if not sent:
            raise BenchError("a push without its `sent` stamp")
        lags.append((visible - sent) * 1000)
    return {
        "median_ms": round(statistics.median(lags), 1),
        "max_ms": round(max(lags), 1),
        "changes": len(lags),
    }


def page_times(browser: Any, url: str, rows: int) -> dict[str, float]:
    """Milliseconds from navigation start: first contentful paint, and all rows in the table."""
    page = new_page(browser)
    try:
        page.goto(url)
        page.wait_for_function(
            f"document.querySelector('.vt')?.dataset.rows >= {rows}", timeout=60_000
        )
        loaded = page.evaluate("performance.now()")
        fcp = page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
        )
        scroll = page.evaluate(
            """() => new Promise((done) => {
                 const body = document.querySelector('.vt-body');
                 const t0 = performance.now();
                 body.scrollTop = body.scrollHeight;
                 requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
               })"""
        )
        last_drawn = page.evaluate(
            "Math.max(...[...document.querySelectorAll('.vt-row')].map(r => parseFloat(r.style.top)))"
        )
        if last_drawn < (rows - 40) * 26:
            raise BenchError("scrolling to the bottom did not draw the last rows")
        listing = url.split("/monitor/")[1].split("?")[0]
        return {
            "fcp_ms": round(fcp, 1),
            # when the listing's last byte came: the rest of all_rows_ms is the page's work
            "listing_received_ms": round(page.evaluate(RESPONSE_END_JS, f"/api/farm/{listing}"), 1),
            "all_rows_ms": round(loaded, 1),
            "scroll_ms": round(scroll, 1),
        }
    finally:
        page.context.close()


def big_job_times(browser: Any, web: str, tasks: int) -> dict[str, float]:
    """A job of `tasks` tasks: its page with every task cell drawn, then a push that skips
    a tenth of them, from the action to the cells changed on screen."""
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": tasks, "command": "true"}
    job_id = post(
        f"{web}/api/farm/jobs", {"job": {"name": "big", "offline": True, "blocks": [block]}}
    )["id"]
    page = new_page(browser)
    try:
        page.goto(f"{web}/monitor/jobs/{job_id}")
        page.wait_for_function(
            f"document.querySelectorAll('.task').length === {tasks}"
            f" && document.querySelector('#tasks-table')?.dataset.rows === '{tasks}'",
            timeout=60_000,
        )
        drawn = page.evaluate("performance.now()")
        fcp = page.evaluate(
            "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
        )
        tasks_received = page.evaluate(RESPONSE_END_JS, "/tasks?")
        page.wait_for_selector("#af-live.on")
        skip = tasks // 10
        started = time.monotonic()
        body = {
            "ids": [job_id],
            "block_ids": [0],
            "operation": {"type": "skip", "task_ids": list(range(skip))},
        }
        post(f"{web}/api/farm/jobs/action", body)
        page.wait_for_function(
            f"document.querySelectorAll('.task.t-SKP').length === {skip}", timeout=60_000
        )
        return {"tasks": tasks, "fcp_ms": round(fcp, 1),
                "tasks_received_ms": round(tasks_received, 1), "all_cells_ms": round(drawn, 1),
                "push_of_tenth_ms": round((time.monotonic() - started) * 1000, 1)}  # fmt: skip
    finally:
        page.context.close()


def latency_times(browser: Any, web: str) -> dict[str, Any]:
    """A live change from the scheduler to the screen: a job's priority on the jobs page
    (the first job, in view), a render's pool on the renders page."""
    out: dict[str, Any] = {}
    jobs = get(f"{web}/api/farm/jobs")["jobs"]
    first = min(j["id"] for j in jobs if j["id"] != 1)
    page = new_page(browser)
    try:
        page.goto(f"{web}/monitor/jobs?sort=id")
        page.wait_for_selector(f'#jobs-table .vt-row[data-key="{first}"]', timeout=60_000)
        page.wait_for_selector("#af-live.on", timeout=60_000)

        def priority(value: str) -> None:
            post(
                f"{web}/api/farm/jobs/action",
                {"ids": [first], "params": {"priority": int(value)}},
                ADMIN,
            )

        out["jobs_page"] = live_latency(
            page,
            f'#jobs-table .vt-row[data-key="{first}"] [data-col="priority"]',
            priority,
            [str(10 + i) for i in range(LIVE_CHANGES)],
            ("jobs", str(first), "priority"),
        )
        page.goto(f"{web}/monitor/renders")
        page.wait_for_selector("#renders-table .vt-row", timeout=60_000)
        page.wait_for_selector("#af-live.on", timeout=60_000)
        name = page.get_attribute("#renders-table .vt-row", "data-key")
        pools = [f"/lat{i % 2}" for i in range(LIVE_CHANGES)]
        for pool in set(pools):
            post(
                f"{web}/api/farm/pools/action",
                {"names": ["/"], "operation": {"type": "add_pool", "name": pool.strip("/")}},
                ADMIN,
            )

        def set_pool(value: str) -> None:
            post(
                f"{web}/api/farm/renders/action",
                {"names": [name], "operation": {"type": "set_pool", "name": value}},
                ADMIN,
            )

        out["renders_page"] = live_latency(
            page,
            f'#renders-table .vt-row[data-key="{name}"] [data-col="pool"]',
            set_pool,
            pools,
            ("renders", name, "pool"),
        )
    finally:
        page.context.close()
    return out


def browser_phase(web: str, jobs: int, renders: int) -> dict[str, Any]:
    from playwright.sync_api import Error as BrowserError
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        p = stack.enter_context(sync_playwright())
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            for name, path, rows in (
                ("jobs", "/monitor/jobs", jobs),
                ("renders", "/monitor/renders", renders),
            ):
                runs = [page_times(browser, f"{web}{path}", rows) for _ in range(ROUNDS)]
                out[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                listing = "renders?mode=table" if name == "renders" else name  # as the page
                out[name]["api_ms"] = api_time(f"{web}/api/farm/{listing}")
                log.info("%s page: %s", name, out[name])
            for name, path, ready in (
                ("pools", "/monitor/pools", '.pool[data-path="/"]'),
                ("users", "/monitor/users", "#users-table .vt-row"),
                ("system", "/monitor/system", "#system-blocks tbody tr"),
            ):
                runs = [paint_time(browser, f"{web}{path}", ready) for _ in range(ROUNDS)]
                out[name] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                log.info("%s page: %s", name, out[name])
            out["job_10000_tasks"] = big_job_times(browser, web, 10_000)
            log.info("job page: %s", out["job_10000_tasks"])
            out["live"] = latency_times(browser, web)
            log.info("live: %s", out["live"])
        except BrowserError as exc:
            raise BenchError(f"in the browser: {exc}") from exc
        finally:
            browser.close()
    return out


class Stream:
    """The event stream read on a thread: pushes and the job changes they carry."""

    def __init__(self, url: str) -> None:
        self.pushes = 0
        self.job_changes = 0
        self.hello = False
        self.resp = urllib.request.urlopen(url, timeout=60)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            for raw in self.resp:
                line = raw.decode()
                self.hello = self.hello or line.startswith("event: hello")
                if line.startswith("data: ") and '"jobs"' in line:
                    self.pushes += 1
                    self.job_changes += len(json.loads(line[6:]).get("jobs", []))


def stream_phase(web: str, jobs: int) -> dict[str, Any]:
    stream = Stream(f"{web}/api/farm/events")
    try:
        wait_for(lambda: stream.hello, 10, "the stream's hello")
        want = BURSTS * jobs
        started = time.monotonic()
        for i in range(BURSTS):
            body = {"mask": "shot.*", "params": {"priority": 50 + i % 2}}
            post(f"{web}/api/farm/jobs/action", body, ADMIN)  # every user's jobs: the admin role
        wait_for(lambda: stream.job_changes >= want, 60, f"{want} job changes on the stream")
        took = time.monotonic() - started
    finally:
        stream.resp.close()
    return {
        "bursts": BURSTS,
        "job_changes": stream.job_changes,
        "pushes": stream.pushes,
        "job_changes_per_sec": round(stream.job_changes / took),
        "seconds": round(took, 3),
    }


def run(jobs: int, renders: int) -> dict[str, Any]:
    errors: list[str] = []
    result: dict[str, Any] = {"bench": "web", "jobs": jobs, "renders": renders}
    result["loadavg_before"] = [round(x, 2) for x in os.getloadavg()]  # 6 sessions share it
    with tempfile.TemporaryDirectory(prefix="af-bench-web-") as tmp_name:
        tmp = Path(tmp_name)
        port, web_port = free_port(), free_port()
        env = afserver_env(tmp, port, af_web_port=web_port, af_admins=["bench"])
        web = f"http://127.0.0.1:{web_port}"
        server = None
        raise_fd_limit()  # a socket per simulated render
        sims = SimulatedRenders(P.endpoint("127.0.0.1", port), renders)

        def close() -> None:
            if sims.is_alive():
                sims.stop()
            stop(server, "afserver")

        with logs_on_failure(tmp, close, chars=2000):
            server = spawn(["-m", "workers.supervisor"], env, tmp / "afserver.log")
            wait_for(lambda: _serving(web), 30, "the web process")
            started = time.monotonic()
            sims.start()
            wait_for(lambda: sims.online >= renders, 60, f"{renders} simulated renders online")
            result["register_sec"] = round(time.monotonic() - started, 2)
            started = time.monotonic()
            submit_jobs(web, jobs)
            result["submit_sec"] = round(time.monotonic() - started, 2)
            if Path(CHROMIUM).exists():
                result["pages"] = guarded(
                    "pages", errors, lambda: browser_phase(web, jobs, renders)
                )
            else:
                errors.append(f"pages: no {CHROMIUM} (apt-get install chromium)")
            result["stream"] = guarded("stream", errors, lambda: stream_phase(web, jobs))
    result["machine"] = machine(loadavg=[round(x, 2) for x in os.getloadavg()])
    result["errors"] = errors
    result["ok"] = not errors
    return result


def _serving(web: str) -> bool:
    with contextlib.suppress(OSError):
        return bool(get(f"{web}/api/farm/users"))
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--renders", type=int, default=1000)
    args = parser.parse_args()
    report(lambda: run(args.jobs, args.renders))


if __name__ == "__main__":
    main()
