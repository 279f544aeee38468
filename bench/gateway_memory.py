"""The gateway's memory under N parallel maximal request bodies (issue 20, item 5).

A fresh afserver with its gateway on loopback (af_message_size_max = --limit, 64 MiB by
default). N clients (8) each send, at once, one submission whose body is as large as the
limit allows, in the AFANASY framing, and read its answer. Shapes of body:

- ``string``: one job whose description is one long string (decodes to about its size;
  the scheduler refuses it, the description being too long: the gateway's cost is the same);
- ``tasks``: one job of many tasks with 1 KiB commands (a large real submission);
- ``small``: one job of many tiny tasks (JSON that decodes to several times its size).

The gateway's RSS is read before (settled), every 10 ms while the bodies are in flight
(peak), and after (settled); the budget is what the gateway lets itself hold in bodies at
once (4 bodies of the limit). Prints one JSON line; exits 1 when a run failed.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from bench._common import (  # noqa: E402
    MB,
    BenchError,
    afserver_env,
    child,
    free_port,
    guarded,
    logs_on_failure,
    machine,
    report,
    settled_rss,
    spawn,
    stop,
    wait_for,
)
from gateway.client import exchange  # noqa: E402
from gateway.framing import Framing  # noqa: E402
from gateway.main import BUDGET_BODIES  # noqa: E402

log = logging.getLogger("bench.gateway_memory")

SHAPES = ("string", "tasks", "small")
SAMPLE_SEC = 0.01
START_TIMEOUT = 20.0
REPLY_TIMEOUT = 300.0


def body_of(shape: str, size: int, n: int) -> bytes:
    """An AFANASY request of about `size` bytes (at most) for client n."""
    job: dict[str, Any] = {"name": f"big{n}", "user_name": "bench", "host_name": "benchhost"}
    block: dict[str, Any] = {"name": "b", "service": "generic"}
    job["blocks"] = [block]
    skeleton = len(json.dumps({"job": job})) + 200
    if shape == "string":
        block["tasks"] = [{"name": "t", "command": "true"}]
        job["description"] = "x" * (size - skeleton)
    else:
        command = ("echo " + "y" * 1010) if shape == "tasks" else "true"
        one = len(json.dumps({"name": "t0000000", "command": command})) + 2
        count = (size - skeleton) // one
        block["tasks"] = [{"name": f"t{i:07d}", "command": command} for i in range(count)]
    body = json.dumps({"job": job}, separators=(",", ":")).encode()
    assert len(body) <= size, (len(body), size)
    return b"AFANASY %d JSON" % len(body) + body


def run_shape(tmp: Path, shape: str, bodies: int, limit: int) -> dict[str, Any]:
    port, gateway_port = free_port(), free_port()
    folder = tmp / shape
    folder.mkdir()
    env = afserver_env(folder, port, af_gateway_port=gateway_port, af_message_size_max=limit)
    server = spawn(["-m", "workers.supervisor"], env, folder / "afserver.log")
    with logs_on_failure(folder, lambda: stop(server, "afserver"), chars=3000):
        gateway = wait_for(lambda: _gateway_of(server.pid), START_TIMEOUT, "the gateway")

        def up() -> bool:
            try:
                return "users" in exchange(gateway_port, _light(), timeout=1.0)[1]
            except Exception:
                return False

        wait_for(up, START_TIMEOUT, "the gateway to answer")
        requests = [body_of(shape, limit, n) for n in range(bodies)]
        before = settled_rss(gateway, 10.0)
        peak = before
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, gateway.memory_info().rss)
                time.sleep(SAMPLE_SEC)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        with ThreadPoolExecutor(bodies) as pool:
            replies = list(
                pool.map(lambda raw: exchange(gateway_port, raw, timeout=REPLY_TIMEOUT), requests)
            )
        wall = time.monotonic() - started
        done.set()
        sampler.join()
        del requests
        after = settled_rss(gateway, 30.0)
        answers = Counter(_outcome(r[1]) for r in replies)
        budget = BUDGET_BODIES * limit
        return {
            "shape": shape,
            "bodies": bodies,
            "body_mib": round(limit / MB, 1),
            "answers": dict(answers),
            "wall_sec": round(wall, 2),
            "rss_mib": {
                "before": round(before / MB, 1),
                "peak": round(peak / MB, 1),
                "after": round(after / MB, 1),
            },
            "peak_over_before_mib": round((peak - before) / MB, 1),
            "body_budget_mib": round(budget / MB, 1),
            "peak_over_budget": round((peak - before) / budget, 2),
        }


def _outcome(reply: dict[str, Any]) -> str:
    """What became of one body: the gateway's answer, in a word or three."""
    error = str(reply.get("error", ""))
    if reply.get("id", 0) > 0:
        return "submitted"
    if "server busy" in error:
        return "told to retry"
    if "too large to decode" in error:
        return "too many values"
    return "refused by the scheduler" if error else "other"


def _gateway_of(server_pid: int) -> psutil.Process | None:
    try:
        return child(server_pid, "gateway.main")
    except BenchError:
        return None


def _light() -> bytes:
    body = b'{"get":{"type":"users"}}'
    return b"AFANASY %d JSON" % len(body) + body


def run(args: argparse.Namespace) -> dict[str, Any]:
    errors: list[str] = []
    results = []
    with tempfile.TemporaryDirectory(prefix="afbench-gwmem-") as tmp_name:
        for shape in args.shapes:
            results.append(
                guarded(
                    shape,
                    errors,
                    lambda s=shape: run_shape(Path(tmp_name), s, args.bodies, args.limit),
                )
            )
    out: dict[str, Any] = {
        "bench": "gateway_memory",
        "machine": machine(platform=platform.platform()),
        "framing": Framing.AFANASY.value,
        "results": results,
        "ok": not errors,
    }
    if errors:
        out["errors"] = errors
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bodies", type=int, default=8, help="parallel maximal bodies (N)")
    parser.add_argument("--limit", type=int, default=64 * MB, help="af_message_size_max")
    parser.add_argument("--shapes", default=",".join(SHAPES), help="comma-separated shapes")
    args = parser.parse_args(argv)
    args.shapes = [s for s in args.shapes.split(",") if s]
    if not set(args.shapes) <= set(SHAPES) or args.bodies < 1 or args.limit < 4096:
        parser.error(f"shapes among {', '.join(SHAPES)}; bodies >= 1; limit >= 4096")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    report(lambda: run(args))


if __name__ == "__main__":
    main()
