"""The monitor pages in headless chromium against a real afserver and real renders: jobs
appear and their tasks turn RUN then DON without a reload, a running task's output grows on
screen, a job paused from its menu starts no new task, a render goes NIMBY and back, a job
is deleted after its confirmation, and the system job opens for an admin. Screenshots of
each page are saved in the test's folder."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Farm

pytestmark = pytest.mark.integration

UI_TIMEOUT = 20_000  # ms, playwright's unit


def submit(farm: Farm, name: str, tasks: int, command: str, user: str = "web") -> int:
    """A job of the pages' own user ("web" unless set), so their menus may act on it."""
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": tasks, "command": command}
    body = json.dumps({"job": {"name": name, "blocks": [block]}}).encode()
    req = urllib.request.Request(
        f"{farm.web}/api/farm/jobs",
        data=body,
        method="POST",
        headers={"X-Afanasy-User": user, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["id"]


def started(farm: Farm, job_id: int) -> int:
    with urllib.request.urlopen(f"{farm.web}/api/farm/jobs/{job_id}/tasks", timeout=10) as resp:
        return sum(1 for t in json.loads(resp.read())["tasks"] if t["starts"] > 0)


@pytest.fixture
def monitor_farm(make_web_farm) -> Farm:  # type: ignore[no-untyped-def]
    return make_web_farm("r1", "r2", af_admins=["web"])


def open_page(
    browser: Any, farm: Farm, path: str, user: str = "web", width: int = 1280, height: int = 900
) -> Any:
    """A page of its own browser context, whose user name is set (the page asks for it once
    otherwise: test_identity_is_asked_once shows that)."""
    context = browser.new_context(viewport={"width": width, "height": height})
    if user:
        context.add_init_script(
            f"if (!localStorage.getItem('afUser')) localStorage.setItem('afUser', {json.dumps(user)})"
        )
    page = context.new_page()
    page.goto(f"{farm.web}{path}")
    page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)  # the event stream is up
    return page


def answer(page: Any, text: str) -> None:
    """Answer the page's own dialog (a <dialog>, not window.prompt)."""
    page.wait_for_selector("#modal[open] #modal-fields input", timeout=UI_TIMEOUT)
    page.fill("#modal-fields input", text)
    page.click("#modal-ok")


def test_jobs_run_live_and_a_paused_job_starts_nothing(
    monitor_farm: Farm, browser: Any, tmp_path: Path
) -> None:
    farm = monitor_farm
    page = open_page(browser, farm, "/monitor/jobs")
    loaded = page.evaluate("performance.timeOrigin")
    job_id = submit(farm, "live", 6, "sleep 0.4; echo frame @#@")
    row = page.locator(f'#jobs-table .vt-row[data-key="{job_id}"]')
    row.wait_for(timeout=UI_TIMEOUT)  # pushed, not reloaded
    page.screenshot(path=str(tmp_path / "monitor-jobs.png"))
    row.click()
    page.wait_for_url(f"**/monitor/jobs/{job_id}")
    page.wait_for_selector(".task.t-RUN", timeout=UI_TIMEOUT)
    job_page_origin = page.evaluate("performance.timeOrigin")
    page.wait_for_function(
        "document.querySelectorAll('.task.t-DON').length === 6", timeout=UI_TIMEOUT
    )
    assert page.evaluate("performance.timeOrigin") == job_page_origin  # no reload meanwhile
    assert job_page_origin != loaded
    assert "DON" in page.locator("#job-state").text_content()
    page.screenshot(path=str(tmp_path / "monitor-job.png"), full_page=True)

    # pause from the job's menu: the running tasks finish, nothing new starts
    busy = submit(farm, "busy", 30, "sleep 0.5")
    page.goto(f"{farm.web}/monitor/jobs/{busy}")
    page.wait_for_selector(".task.t-RUN", timeout=UI_TIMEOUT)
    page.click("#job-menu")
    page.click("#menu button:text-is('Pause')")
    page.wait_for_function(
        "document.querySelector('#job-state').textContent.includes('OFF')", timeout=UI_TIMEOUT
    )
    page.wait_for_function(
        "document.querySelectorAll('.task.t-RUN').length === 0", timeout=UI_TIMEOUT
    )
    count = started(farm, busy)
    assert count < 30
    window_end = time.monotonic() + 2.0
    while time.monotonic() < window_end:  # sampling a window in which nothing may start
        assert started(farm, busy) == count
        time.sleep(0.2)

    # delete it from the jobs list, after the confirmation
    page.goto(f"{farm.web}/monitor/jobs")
    target = page.locator(f'#jobs-table .vt-row[data-key="{busy}"]')
    target.click(button="right")
    page.click("#menu button:text-is('Delete…')")
    assert page.locator("#modal").is_visible()
    page.screenshot(path=str(tmp_path / "monitor-confirm.png"))
    page.click("#modal-ok")
    target.wait_for(state="detached", timeout=UI_TIMEOUT)


def test_task_output_grows_on_screen(monitor_farm: Farm, browser: Any, tmp_path: Path) -> None:
    farm = monitor_farm
    command = "for i in 1 2 3 4 5 6 7 8; do echo line $i; sleep 0.4; done"
    job_id = submit(farm, "tail", 1, command)
    page = open_page(browser, farm, f"/monitor/jobs/{job_id}")
    cell = page.locator(".task").first
    page.wait_for_selector(".task.t-RUN", timeout=UI_TIMEOUT)
    cell.click()
    page.wait_for_function(
        "document.querySelector('#task-output')?.textContent.includes('line 1')",
        timeout=UI_TIMEOUT,
    )
    first = page.locator("#task-output").text_content()
    assert "line 8" not in first  # read while the task was still running
    page.wait_for_function(
        "document.querySelector('#task-output')?.textContent.includes('line 8')",
        timeout=UI_TIMEOUT,
    )
    assert len(page.locator("#task-output").text_content()) > len(first)
    page.screenshot(path=str(tmp_path / "monitor-output.png"), full_page=True)

    # a whole block from its menu
    held = submit(farm, "held", 12, "true")
    page.goto(f"{farm.web}/monitor/jobs/{held}")
    page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
    page.click("#job-menu")
    page.click("#menu button:text-is('Pause')")
    page.click("section.block button.block-menu")
    page.click("#menu button:text-is('Skip all')")
    page.wait_for_function(
        "[...document.querySelectorAll('.task')].every(t => t.classList.contains('t-SKP') || t.classList.contains('t-DON'))"
        " && document.querySelectorAll('.task.t-SKP').length > 0",
        timeout=UI_TIMEOUT,
    )


def test_render_nimby_and_the_system_job(monitor_farm: Farm, browser: Any, tmp_path: Path) -> None:
    farm = monitor_farm
    page = open_page(browser, farm, "/monitor/renders")
    page.check("#af-admin")  # renders, pools and users need the admin role
    r1 = page.locator('#renders-table .vt-row[data-key="r1"]')
    r1.wait_for(timeout=UI_TIMEOUT)
    r1.click(button="right")
    page.click("#menu button:text-is('NIMBY')")
    page.wait_for_function(
        """document.querySelector('#renders-table .vt-row[data-key="r1"] [data-col="state"]')
           .textContent.split(' ').includes('NBY')""",
        timeout=UI_TIMEOUT,
    )
    assert "NBY" in next(r for r in farm.renders() if r["name"] == "r1")["state"]
    page.screenshot(path=str(tmp_path / "monitor-renders.png"))
    page.locator('#renders-table .vt-row[data-key="r1"]').click(button="right")
    page.click("#menu button:text-is('Free')")
    page.wait_for_function(
        """!document.querySelector('#renders-table .vt-row[data-key="r1"] [data-col="state"]')
           .textContent.split(' ').includes('NBY')""",
        timeout=UI_TIMEOUT,
    )

    page.uncheck("#af-admin")
    page.goto(f"{farm.web}/monitor/system")
    page.wait_for_selector("#system .error", timeout=UI_TIMEOUT)
    assert "admin" in page.locator("#system .error").text_content()
    page.check("#af-admin")
    page.wait_for_selector("#system-blocks tbody tr", timeout=UI_TIMEOUT)
    assert page.locator("#system-blocks tbody tr").count() == 3
    page.screenshot(path=str(tmp_path / "monitor-system.png"), full_page=True)

    page.goto(f"{farm.web}/monitor/pools")
    page.wait_for_selector('.pool[data-path="/"]', timeout=UI_TIMEOUT)
    page.click('.pool[data-path="/"]', button="right")
    page.click("#menu button:text-is('Add service…')")
    answer(page, "nuke")
    page.wait_for_function(
        """document.querySelector('.pool[data-path="/"]').textContent.includes('nuke')""",
        timeout=UI_TIMEOUT,
    )  # pools_changed pushed, the tree reloaded
    page.screenshot(path=str(tmp_path / "monitor-pools.png"))

    page.goto(f"{farm.web}/monitor/users")
    row = page.locator('#users-table .vt-row[data-key="web"]')
    row.wait_for(timeout=UI_TIMEOUT)
    row.click(button="right")
    page.click("#menu button:text-is('Priority…')")
    answer(page, "42")
    page.wait_for_function(
        """document.querySelector('#users-table .vt-row[data-key="web"] [data-col="priority"]')
           .textContent === '42'""",
        timeout=UI_TIMEOUT,
    )
    page.screenshot(path=str(tmp_path / "monitor-users.png"))


def test_a_click_during_a_burst_of_live_updates_always_opens_the_job(
    monitor_farm: Farm, browser: Any, tmp_path: Path
) -> None:
    """A press held as a person holds it (down, a live change lands, up) opens the job 20
    times of 20: the row under the pointer is patched in place, not rebuilt, so the click
    still has one element to land on."""
    farm = monitor_farm
    busy = submit(farm, "burst", 400, "sleep 0.2")
    for n in range(5):
        submit(farm, f"other{n}", 2, "true")
    page = open_page(browser, farm, "/monitor/jobs")
    opened = 0
    for _attempt in range(20):
        row = page.locator(f'#jobs-table .vt-row[data-key="{busy}"]')
        row.wait_for(timeout=UI_TIMEOUT)
        box = row.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + box["width"] / 3, box["y"] + box["height"] / 2)
        applied = page.evaluate("[af.applied || 0, af.drawn || 0]")
        page.mouse.down()
        # the press lasts until a live change has been applied and drawn
        page.wait_for_function(
            f"af.applied > {applied[0]} && af.drawn > {applied[1]}", timeout=UI_TIMEOUT
        )
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.mouse.up()
        try:
            page.wait_for_url(f"**/monitor/jobs/{busy}", timeout=3000)
            opened += 1
        except Exception:  # noqa: BLE001 - a lost click: counted, the page stays
            continue
        page.go_back()
        page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
    assert opened == 20
    page.screenshot(path=str(tmp_path / "monitor-jobs-burst.png"))
