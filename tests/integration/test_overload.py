"""A busy server degrades gracefully: a slow answer is not a lost server.

While the scheduler is frozen (SIGSTOP: the broker takes it for gone and queues for it), 200
simulated renders keep beating and 20 more come online. The broker's queue is kept small
(af_broker_queue_max 50), so it must shed: idle beats are replaced by newer ones of the same
render or refused as "server busy", registrations are never refused, and no render registers
again. When the scheduler goes on, every render is online once and a job runs every task once.
"""

from __future__ import annotations

import signal
import time
from collections import Counter

import pytest

from bench._common import numeric_job
from bench._simrenders import Engine, sim_names
from broker import protocol as P
from broker.client import Client
from broker.protocol import endpoint
from tests.conftest import Farm, load_slack

pytestmark = pytest.mark.integration

RENDERS = 200
LATE = 20
FREEZE_SEC = 7.0  # under the broker's request timeout (10 s) and the watchdog's (30 s)
TASKS = 100


def run_until(engines: list[Engine], condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Drive every engine's renders until condition() holds; fail at the deadline (stretched
    by the machine's load, as conftest's wait_for)."""
    timeout *= load_slack()
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        for engine in engines:
            engine.run(time.monotonic() + 0.05)


def broker_counts(client: Client) -> dict[str, dict[str, int]]:
    return client.call(P.MsgType.BROKER_STAT, {})["broker"]["messages"]


def test_a_frozen_scheduler_sheds_beats_and_no_render_registers_again(make_farm) -> None:  # type: ignore[no-untyped-def]
    farm: Farm = make_farm(af_broker_queue_max=50, af_render_zombietime=20.0)
    farm.start_server()
    address = endpoint("127.0.0.1", farm.port)
    engine = Engine(address, sim_names(RENDERS), heartbeat_sec=0.5, seed=1)
    late = Engine(address, sim_names(LATE, RENDERS), heartbeat_sec=0.5, first=RENDERS, seed=2)
    engines = [engine, late]
    scheduler = farm.child("workers.scheduler.main")
    client = Client(address, timeout=10.0)
    try:
        engine.start(time.monotonic())
        run_until([engine], lambda: engine.online() == RENDERS, 60, f"{RENDERS} online")
        registered = {r.name: r.id for r in engine.renders}
        before = broker_counts(client)

        scheduler.send_signal(signal.SIGSTOP)
        try:
            late.start(time.monotonic())  # they come online while the server cannot answer
            until = time.monotonic() + FREEZE_SEC
            run_until(engines, lambda: time.monotonic() >= until, FREEZE_SEC + 5, "the freeze")
        finally:
            scheduler.send_signal(signal.SIGCONT)

        run_until(engines, lambda: late.online() == LATE, 60, f"{LATE} late renders online")
        job_id = farm.ask(numeric_job("after the freeze", TASKS))["id"]
        run_until(
            engines,
            lambda: engine.samples.closes + late.samples.closes >= TASKS,
            90,
            f"{TASKS} tasks closed",
        )
        after = broker_counts(client)
        renders = farm.ask({"get": {"type": "renders"}})["renders"]
        ids_after = {r.name: r.id for r in engine.renders}
    finally:
        client.close()
        for e in engines:
            e.close(deregister=True)

    samples = engine.samples
    samples.merge(late.samples)
    beats = after["RENDER_BEAT"]
    # the broker degraded: beats were replaced or refused while the scheduler was away...
    assert beats["dropped"] > before.get("RENDER_BEAT", {}).get("dropped", 0)
    assert samples.shed > 0, "no beat was refused as busy: the queue limit was never reached"
    # ...and nothing else was: no error but "busy", no render taken for gone
    assert samples.errors == []
    assert samples.reregistered == 0
    assert ids_after == registered  # the same ids throughout
    # renders register with growing pauses: a late render sent at most 4 (0, ~2, ~6 s and one
    # more before its answer came), not one per heartbeat
    sent = after["RENDER_REGISTER"]["in"] - before["RENDER_REGISTER"]["in"]
    assert LATE <= sent <= 4 * LATE, sent
    online = {r["name"] for r in renders if r["online"] and r["name"].startswith("sim")}
    assert online == set(sim_names(RENDERS + LATE))
    started = Counter(key[:3] for key in samples.starts)
    assert set(started) == {(job_id, 0, i) for i in range(TASKS)}
    assert [key for key, n in started.items() if n != 1] == []
    assert farm.job(job_id)["tasks_done"] == TASKS
