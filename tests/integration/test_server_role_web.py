"""The web shows which afserver is active: on a PostgreSQL store with a standby, the active's
`/api/farm/stat` and page header name it, since when, and the standby connected; the
standby's own web answers that it is a standby and names the active one."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Farm, free_port, wait_for, web_call

pytestmark = pytest.mark.integration
UI_TIMEOUT = 20_000  # ms, playwright's unit


def web_farm(make_farm: Callable[..., Farm], conninfo: str) -> Farm:
    port = free_port()
    farm = make_farm(af_store_db=conninfo, af_db_conninfo="off", af_web_port=port)
    farm.web = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    return farm


def standbys(farm: Farm) -> list[str]:
    status, stat = web_call(farm, "GET", "/api/farm/stat")
    if status != 200:
        return []
    return [s["server"] for s in stat["scheduler"]["store"]["server"].get("standbys", [])]


def header(browser: Any, farm: Farm, tmp_path: Path, name: str, expected: str) -> str:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script("localStorage.setItem('afUser', 'wrangler')")  # asked once otherwise
    page = context.new_page()
    page.goto(f"{farm.web}/monitor/jobs")  # type: ignore[attr-defined]
    page.wait_for_function(
        "(want) => document.getElementById('af-server').textContent.includes(want)",
        arg=expected,
        timeout=UI_TIMEOUT,
    )
    page.screenshot(path=str(tmp_path / f"{name}.png"))
    text: str = page.locator("#af-server").inner_text()
    context.close()
    return text


def test_the_web_names_the_active_server_and_its_standby(
    make_farm: Callable[..., Farm], pg_conninfo: str, browser: Any, tmp_path: Path
) -> None:
    active = web_farm(make_farm, pg_conninfo)
    active.start_server()
    standby = web_farm(make_farm, pg_conninfo)
    standby.server = standby._spawn("afserver", [sys.executable, "-m", "workers.supervisor", "-v"])
    wait_for(
        lambda: any(s.endswith(f":{standby.port}") for s in standbys(active)),
        30,
        "the active's /api/farm/stat to list the standby",
    )
    status, stat = web_call(active, "GET", "/api/farm/stat")
    assert status == 200, stat
    server = stat["scheduler"]["store"]["server"]
    assert server["role"] == "active" and server["backend"] == "postgresql"
    assert server["name"].endswith(f":{active.port}") and server["active_since"] > 0

    wait_for(lambda: web_call(standby, "GET", "/api/farm/stat")[0] == 503, 30, "the standby's web")
    status, refusal = web_call(standby, "GET", "/api/farm/stat")
    assert "standby, active is afserver@" in refusal["error"]
    assert f":{active.port}" in refusal["error"]

    shown = header(browser, active, tmp_path, "active-header", "standby: afserver@")
    assert f"active: {server['name']} since" in shown
    assert f":{standby.port}" in shown.split("standby:")[1]
    shown = header(browser, standby, tmp_path, "standby-header", "standby, active is")
    assert f":{active.port}" in shown
