"""`/metrics`: the farm in Prometheus' text format, for the studio's dashboards.

The web process is a broker client: a scrape asks the scheduler for its aggregated figures
(`get metrics`, O(renders + blocks)) and the broker for its counters (BROKER_STAT, what
`afcmd stat` shows), at most once a second however many scrapers come (CACHE_SEC). A custom
collector turns the two replies into metric families at each scrape.

Who may scrape: whoever may read the farm API (with af_auth, a token's holder: Prometheus'
`authorization: {credentials: TOKEN}`); the metrics show no more than `afcmd stat` does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from broker import protocol as P
from broker.client import Client, NoAnswer, ServerError
from broker.replytimes import REPLY_BUCKETS_MS
from web import farm_api

CACHE_SEC = 1.0  # N scrapers a second cost one request pair to the server
PREFIX = "afanasy"
# a render's heartbeat: an idle beat, or a beat with task reports
HEARTBEATS = ("RENDER_BEAT", "RENDER_UPDATE")


def buckets(counts: list[int]) -> list[tuple[str, float]]:
    """Per-bucket counts (ms upper bounds) as Prometheus' cumulative buckets in seconds."""
    out, seen = [], 0
    for bound, count in zip(REPLY_BUCKETS_MS, counts, strict=False):
        seen += count
        out.append((repr(bound / 1000.0), float(seen)))
    out[-1] = ("+Inf", float(seen))  # the last bucket also holds whatever took longer
    return out


def histogram(name: str, doc: str, counts: list[int], total: float) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=buckets(counts), sum_value=total)


def families(scheduler: dict[str, Any], broker: dict[str, Any]) -> Iterator[Metric]:
    """The metric families of one reading: pure, so a test can feed it any replies."""
    p = PREFIX
    renders = GaugeMetricFamily(
        f"{p}_renders", "Renders by state and pool", labels=["state", "pool"]
    )
    for state, pool, n in scheduler["renders"]:
        renders.add_metric([state, pool], n)
    yield renders
    tasks = GaugeMetricFamily(
        f"{p}_tasks", "Tasks of the jobs in memory by state", labels=["state"]
    )
    for state, n in sorted(scheduler["tasks"].items()):
        tasks.add_metric([state], n)
    yield tasks
    jobs = GaugeMetricFamily(
        f"{p}_jobs", "Jobs in memory by state and user", labels=["state", "user"]
    )
    for state, user, n in scheduler["jobs"]:
        jobs.add_metric([state, user], n)
    yield jobs
    yield GaugeMetricFamily(
        f"{p}_jobs_cold", "Finished jobs kept only in the store", value=scheduler["jobs_cold"]
    )
    timings = scheduler["timings"]
    for key, doc in (
        ("dispatch", "A solve pass's start until its task starts are sent to the renders"),
        ("solve", "One solver pass"),
        ("commit", "One store commit that wrote something"),
    ):
        hist = timings[key]
        yield histogram(f"{p}_{key}_seconds", doc, hist["counts"], hist["sum"])
    replies = [broker.get("reply_ms", {}).get(kind) for kind in HEARTBEATS]
    counts = [0] * len(REPLY_BUCKETS_MS)  # present before the first beat, as zeros
    for reply in replies:
        for i, n in enumerate(reply["counts"] if reply else ()):
            counts[i] += n
    yield histogram(
        f"{p}_heartbeat_reply_seconds",
        "A render's heartbeat, from the broker reading it to the broker sending the reply",
        counts,
        0.0,  # the broker keeps no sum; rates of the buckets and _count still hold
    )
    messages = CounterMetricFamily(
        f"{p}_broker_messages",
        "Broker messages by type and direction",
        labels=["type", "direction"],
    )
    for kind, counts in sorted(broker.get("messages", {}).items()):
        for direction in ("in", "out", "dropped"):
            messages.add_metric([kind, direction], counts[direction])
    yield messages
    queued = GaugeMetricFamily(
        f"{p}_system_queue", "System-job commands waiting, by block", labels=["block"]
    )
    live = GaugeMetricFamily(
        f"{p}_system_live", "System-job commands in a task slot, by block", labels=["block"]
    )
    for block in scheduler["system"]:
        queued.add_metric([block["name"]], block["queued"])
        live.add_metric([block["name"]], block["live_tasks"])
    yield queued
    yield live
    ended = CounterMetricFamily(
        f"{p}_system_commands",
        "System-job commands ended for good (post commands, events, wake-on-lan), by block and result",
        labels=["block", "result"],
    )
    for block, counts in sorted(scheduler["system_ended"].items()):
        for result in ("done", "failed"):
            ended.add_metric([block, result], counts[result])
    yield ended
    counters = CounterMetricFamily(
        f"{p}_scheduler_events", "The scheduler's counters by name", labels=["name"]
    )
    for name, n in sorted(scheduler["counters"].items()):
        counters.add_metric([name], n)
    yield counters
    yield GaugeMetricFamily(
        f"{p}_store_bytes", "The store's files on disk", value=scheduler["store_bytes"]
    )
    cpu = CounterMetricFamily(
        f"{p}_process_cpu_seconds", "CPU time of the server's processes", labels=["process"]
    )
    rss = GaugeMetricFamily(
        f"{p}_process_resident_bytes",
        "Resident memory of the server's processes",
        labels=["process"],
    )
    for proc in scheduler["processes"]:
        cpu.add_metric([proc["name"]], proc["cpu_seconds"])
        rss.add_metric([proc["name"]], proc["rss_bytes"])
    yield cpu
    yield rss
    yield GaugeMetricFamily(
        f"{p}_uptime_seconds", "Since the broker started", value=broker.get("uptime_sec", 0)
    )


class FarmCollector(Collector):
    """Reads the server at most once per CACHE_SEC; every scrape in between gets that reading."""

    def __init__(
        self,
        read: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.read = read
        self.clock = clock
        self._lock = threading.Lock()
        self._reading: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._at = float("-inf")
        self.reads = 0

    def reading(self) -> tuple[dict[str, Any], dict[str, Any]]:
        with self._lock:  # scrapers that come together wait for the one request
            if self._reading is None or self.clock() - self._at >= CACHE_SEC:
                self._reading = self.read()
                self._at = self.clock()
                self.reads += 1
            return self._reading

    def collect(self) -> Iterator[Metric]:
        scheduler, broker = self.reading()
        yield from families(scheduler, broker)


def server_reader(farm: farm_api.Farm) -> Callable[[], tuple[dict[str, Any], dict[str, Any]]]:
    """One client of its own, used under the collector's lock (a ZeroMQ socket is one thread's)."""
    client: list[Client] = []

    def read() -> tuple[dict[str, Any], dict[str, Any]]:
        if not client:
            client.append(Client(farm.endpoint, farm.timeout, curve=farm.curve))
        scheduler = client[0].request({"get": {"type": "metrics"}})["metrics"]
        broker = client[0].call(P.MsgType.BROKER_STAT, {})["broker"]
        return scheduler, broker

    return read


def routes(farm: farm_api.Farm, identity: farm_api.Identify) -> list[Route]:
    collector = FarmCollector(server_reader(farm))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    ProcessCollector(registry=registry)  # this web process: process_cpu_seconds_total, ...

    def scrape() -> Response:
        try:
            body = generate_latest(registry)
        except NoAnswer as exc:
            return JSONResponse({"error": str(exc)}, status_code=504)
        except ServerError as exc:
            return JSONResponse({"error": exc.text}, status_code=503)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    async def endpoint(request: Request) -> Response:
        try:
            identity(request)  # the farm API's readers may scrape
        except farm_api.ApiError as exc:
            return exc.response()
        return await run_in_threadpool(scrape)

    return [Route("/metrics", endpoint)]
