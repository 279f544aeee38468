"""The monitor's views as a TD uses them, in headless chromium against a real afserver and
renders: the jobs view's search (substring, regex, a refused regex), filters with exclusion,
sort both ways, columns remembered and the whole view restored from a shared URL; a job's
bar moving with a running task's percent; selection and bulk actions; the keyboard; the
phone layout. Screenshots of each page at 1440x900 and 390x844 go to var/screenshots."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Farm
from tests.integration.test_monitor_pages import UI_TIMEOUT, open_page, submit

pytestmark = pytest.mark.integration

SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def shoot(page: Any, name: str) -> None:
    """The page as it is, at the desktop and the phone size (var/ is not committed)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width, height, suffix in ((1440, 900, "desktop"), (390, 844, "phone")):
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.screenshot(path=str(SHOTS / f"{name}-{suffix}.png"))
    page.set_viewport_size(size)


def act(farm: Farm, user: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        f"{farm.web}/api/farm/jobs/action",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"X-Afanasy-User": user, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def jobs_of(farm: Farm) -> dict[int, dict[str, Any]]:
    with urllib.request.urlopen(f"{farm.web}/api/farm/jobs", timeout=10) as resp:
        return {j["id"]: j for j in json.loads(resp.read())["jobs"]}


def wait_order(page: Any, mine: set[int], expected: list[int]) -> None:
    """Until the table shows the jobs of `mine` in this order (a sort is drawn next frame)."""
    page.wait_for_function(
        """([mine, expected]) => JSON.stringify(
             [...document.querySelectorAll('#jobs-table .vt-row')]
               .sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top))
               .map(r => Number(r.dataset.key)).filter(k => mine.includes(k)))
           === JSON.stringify(expected)""",
        arg=[sorted(mine), expected],
        timeout=UI_TIMEOUT,
    )


def wait_rows(page: Any, mine: set[int], expected: set[int]) -> None:
    """Until the table shows exactly `expected` of the jobs in `mine`."""
    page.wait_for_function(
        """([mine, expected]) => {
             const keys = [...document.querySelectorAll('#jobs-table .vt-row')]
               .map(r => Number(r.dataset.key)).filter(k => mine.includes(k)).sort();
             return JSON.stringify(keys) === JSON.stringify(expected.sort());
           }""",
        arg=[sorted(mine), sorted(expected)],
        timeout=UI_TIMEOUT,
    )


@pytest.fixture
def views_farm(make_web_farm) -> Farm:  # type: ignore[no-untyped-def]
    return make_web_farm("r1", "r2", af_admins=["web"])


def test_jobs_view_search_filters_sort_columns_and_a_shared_url(
    views_farm: Farm, browser: Any
) -> None:
    farm = views_farm
    a1 = submit(farm, "shot_010_light", 1, "true", user="alice")
    a2 = submit(farm, "shot_020_light", 20, "sleep 30", user="alice")
    b1 = submit(farm, "shot_010_comp", 1, "true", user="bob")
    c1 = submit(farm, "fx_sim", 1, "true", user="carol")
    act(farm, "alice", {"ids": [a2], "operation": {"type": "pause"}})
    act(farm, "alice", {"ids": [a2], "operation": {"type": "stop"}})
    mine = {a1, a2, b1, c1}

    def settled() -> bool:
        jobs = jobs_of(farm)
        done = all("DON" in jobs[i]["state"] for i in (a1, b1, c1))
        return done and "RUN" not in jobs[a2]["state"] and "OFF" in jobs[a2]["state"]

    from tests.conftest import wait_for

    wait_for(settled, 30, "three jobs done, one paused")
    page = open_page(browser, farm, "/monitor/jobs")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    wait_rows(page, mine, mine)

    # search: a substring, a regex, a refused regex, a bad one
    page.fill("#filter-q", "shot_010")
    wait_rows(page, mine, {a1, b1})
    page.fill("#filter-q", "/^shot_0[12]0_light$/")
    wait_rows(page, mine, {a1, a2})
    page.fill("#filter-q", "/(a+)+$/")
    page.wait_for_function(
        "document.querySelector('#filter-error').textContent.includes('exponential')",
        timeout=UI_TIMEOUT,
    )
    wait_rows(page, mine, set())
    page.fill("#filter-q", "/shot_[/")
    page.wait_for_function(
        "document.querySelector('#filter-error').textContent.startsWith('bad regex')",
        timeout=UI_TIMEOUT,
    )
    page.fill("#filter-q", "")
    wait_rows(page, mine, mine)
    assert page.locator("#filter-error").text_content() == ""

    # users, several and excluded; states, shown only and excluded
    page.fill("#filter-user", "alice,bob")
    wait_rows(page, mine, {a1, a2, b1})
    page.fill("#filter-user", "-alice")
    wait_rows(page, mine, {b1, c1})
    page.fill("#filter-user", "")
    chip = page.locator('#filter-state .chip[data-state="OFF"]')
    chip.click()
    wait_rows(page, mine, {a2})
    chip.click()  # again: excluded
    wait_rows(page, mine, {a1, b1, c1})
    chip.click()  # again: any
    wait_rows(page, mine, mine)

    # sort by name, both ways
    page.click('#jobs-table .vt-head [data-col="name"]')
    wait_order(page, mine, [c1, b1, a1, a2])  # fx_sim, shot_010_comp, shot_010_light, shot_020
    page.click('#jobs-table .vt-head [data-col="name"]')
    page.wait_for_function(
        "document.querySelector('#jobs-table .vt-head [data-col=name]').textContent.includes('▼')",
        timeout=UI_TIMEOUT,
    )
    wait_order(page, mine, [a2, a1, b1, c1])

    # the view in the URL: a link opened elsewhere shows the same
    page.fill("#filter-q", "light")
    page.fill("#filter-user", "alice")
    chip = page.locator('#filter-state .chip[data-state="DON"]')
    chip.click()
    chip.click()  # -DON
    wait_rows(page, mine, {a2})
    url = page.url
    assert "q=light" in url and "user=alice" in url and "state=-DON" in url and "sort=-name" in url
    other = open_page(browser, farm, url.removeprefix(farm.web), user="bob")
    wait_rows(other, mine, {a2})
    assert other.input_value("#filter-q") == "light"
    assert other.input_value("#filter-user") == "alice"
    assert other.get_attribute('#filter-state .chip[data-state="DON"]', "data-mode") == "out"
    assert "▼" in other.locator('#jobs-table .vt-head [data-col="name"]').text_content()
    other.goto(f"{farm.web}/monitor/jobs?sort=name&user=bob,carol")
    wait_rows(other, mine, {b1, c1})
    wait_order(other, mine, [c1, b1])

    # columns: chosen once, remembered by this browser
    page.click("#jobs-columns")
    page.uncheck('#columns-form input[name="priority"]')
    page.check('#columns-form input[name="created"]')
    page.click("#modal-ok")
    page.wait_for_selector('#jobs-table .vt-head [data-col="created"]', timeout=UI_TIMEOUT)
    page.reload()
    page.wait_for_selector('#jobs-table .vt-head [data-col="created"]', timeout=UI_TIMEOUT)
    assert page.locator('#jobs-table .vt-head [data-col="priority"]').count() == 0
    shoot(page, "jobs")
    assert errors == []


def test_a_running_tasks_percent_moves_the_jobs_bar_before_any_task_finishes(
    views_farm: Farm, browser: Any
) -> None:
    farm = views_farm
    # percents 2 s apart (a render reports with its beat, every second); the page is open
    # before the job is submitted, so it sees each
    command = (
        "sleep 1; echo PROGRESS: 10%; sleep 2; echo PROGRESS: 40%; sleep 2; echo PROGRESS: 70%;"
        " sleep 30"
    )
    block = {
        "name": "b",
        "flags": 1,
        "frame_first": 1,
        "frame_last": 4,
        "command": command,
        "parser": "generic",
        "max_running_tasks": 1,
    }
    body = json.dumps({"job": {"name": "progress", "blocks": [block]}}).encode()
    req = urllib.request.Request(
        f"{farm.web}/api/farm/jobs",
        data=body,
        method="POST",
        headers={"X-Afanasy-User": "web", "Content-Type": "application/json"},
    )
    page = open_page(browser, farm, "/monitor/jobs")
    with urllib.request.urlopen(req, timeout=10) as resp:
        job_id = json.loads(resp.read())["id"]
    bar = f'#jobs-table .vt-row[data-key="{job_id}"] [data-col="progress"] .bar'
    page.wait_for_selector(bar, timeout=UI_TIMEOUT)
    seen: list[float] = []
    for _ in range(3):  # three values, each higher: it moves, task by task's percent
        low = seen[-1] if seen else 0.0
        page.wait_for_function(
            f"Number(document.querySelector('{bar}').dataset.progress) > {low}",
            timeout=UI_TIMEOUT,
        )
        seen.append(float(page.get_attribute(bar, "data-progress")))
    assert jobs_of(farm)[job_id]["tasks_done"] == 0  # no task has finished
    assert 0 < seen[0] < seen[1] < seen[2] <= 0.70 / 4 + 1e-6
    row = f'#jobs-table .vt-row[data-key="{job_id}"]'
    assert page.locator(f'{row} [data-col="started"]').text_content() != ""
    assert page.locator(f'{row} [data-col="for"]').text_content().endswith("s")
    # the job's own page: the same bar, the block's too, and the times
    page.goto(f"{farm.web}/monitor/jobs/{job_id}")
    page.wait_for_selector("#job-head .bar[data-progress]", timeout=UI_TIMEOUT)
    page.wait_for_function(
        "Number(document.querySelector('.block-progress .bar')?.dataset.progress) > 0.1",
        timeout=UI_TIMEOUT,
    )
    assert "started" in page.locator("#job-times").text_content()
    shoot(page, "job")


def test_bulk_pause_of_five_selected_jobs(views_farm: Farm, browser: Any) -> None:
    farm = views_farm
    ids = [submit(farm, f"bulk{n}", 40, "sleep 20") for n in range(7)]
    page = open_page(browser, farm, "/monitor/jobs")
    rows = {i: page.locator(f'#jobs-table .vt-row[data-key="{i}"]') for i in ids}
    rows[ids[-1]].wait_for(timeout=UI_TIMEOUT)
    rows[ids[0]].click(modifiers=["ControlOrMeta"])  # selects, does not open
    rows[ids[4]].click(modifiers=["Shift"])  # the range
    assert page.get_attribute("#jobs-table", "data-selected") == "5"
    rows[ids[6]].click(modifiers=["ControlOrMeta"])
    rows[ids[6]].click(modifiers=["ControlOrMeta"])  # toggled back out
    assert page.get_attribute("#jobs-table", "data-selected") == "5"
    assert "5 selected" in page.locator("#jobs-actions").text_content()
    page.click("#jobs-actions")
    assert "5 jobs selected" in page.locator("#menu .menu-title").text_content()
    page.click("#menu button:text-is('Pause')")
    from tests.conftest import wait_for

    wait_for(
        lambda: all("OFF" in jobs_of(farm)[i]["state"] for i in ids[:5]), 20, "five jobs paused"
    )
    jobs = jobs_of(farm)
    assert not any("OFF" in jobs[i]["state"] for i in ids[5:])
    page.wait_for_function(
        """(ids) => ids.every(i => document.querySelector(
             `#jobs-table .vt-row[data-key="${i}"] [data-col="state"]`).textContent.includes('OFF'))""",
        arg=ids[:5],
        timeout=UI_TIMEOUT,
    )
    shoot(page, "jobs-selected")

    # a destructive action on the selection asks once, listing what it touches
    page.click(f'#jobs-table .vt-row[data-key="{ids[0]}"]', button="right")
    assert "5 jobs selected" in page.locator("#menu .menu-title").text_content()
    page.click("#menu button:text-is('Restart all tasks…')")
    page.wait_for_selector("#modal[open]", timeout=UI_TIMEOUT)
    listed = page.locator("#modal-list li").all_text_contents()
    assert len(listed) == 5 and all(f"bulk{n}" in listed[n] for n in range(5))
    assert "null" not in page.locator("#modal").text_content()
    shoot(page, "confirm")
    page.keyboard.press("Escape")  # closes, nothing done
    page.wait_for_selector("#modal", state="hidden", timeout=UI_TIMEOUT)


def test_keyboard_only_delete_with_confirmation_menus_and_help(
    views_farm: Farm, browser: Any
) -> None:
    farm = views_farm
    keep = submit(farm, "kb_keep", 4, "sleep 20")
    gone = submit(farm, "kb_gone", 4, "sleep 20")
    page = open_page(browser, farm, "/monitor/jobs")
    page.locator(f'#jobs-table .vt-row[data-key="{gone}"]').wait_for(timeout=UI_TIMEOUT)
    kb = page.keyboard
    kb.press("?")
    page.wait_for_selector("#help[open]", timeout=UI_TIMEOUT)
    assert "Delete" in page.locator("#help").text_content()
    kb.press("Escape")
    page.wait_for_selector("#help[open]", state="detached", timeout=UI_TIMEOUT)
    kb.press("/")
    assert page.evaluate("document.activeElement.id") == "filter-q"
    kb.type("kb_")
    kb.press("Escape")  # leaves the search box
    page.wait_for_function(  # the search applied (drawn on the next frame)
        "document.querySelector('#jobs-table').dataset.rows === '2'", timeout=UI_TIMEOUT
    )
    kb.press("ArrowDown")  # the first row: kb_keep
    kb.press("ArrowDown")  # kb_gone
    assert page.get_attribute(f'#jobs-table .vt-row[data-key="{gone}"]', "aria-selected") == "true"
    kb.press("Delete")
    page.wait_for_selector("#modal[open]", timeout=UI_TIMEOUT)
    assert "kb_gone" in page.locator("#modal-list").text_content()
    assert "kb_keep" not in page.locator("#modal-list").text_content()
    kb.press("Escape")  # a first time: kept
    page.wait_for_selector("#modal", state="hidden", timeout=UI_TIMEOUT)
    assert gone in jobs_of(farm)
    kb.press("Delete")
    page.wait_for_selector("#modal[open]", timeout=UI_TIMEOUT)
    assert page.evaluate("document.activeElement.id") == "modal-cancel"  # the safe default
    kb.press("Tab")
    kb.press("Enter")
    page.locator(f'#jobs-table .vt-row[data-key="{gone}"]').wait_for(
        state="detached", timeout=UI_TIMEOUT
    )
    assert gone not in jobs_of(farm) and keep in jobs_of(farm)

    # Enter opens the row under the cursor
    kb.press("ArrowUp")
    kb.press("Enter")
    page.wait_for_url(f"**/monitor/jobs/{keep}", timeout=UI_TIMEOUT)

    # menus stay on screen and Escape closes them
    page.go_back()
    row = page.locator(f'#jobs-table .vt-row[data-key="{keep}"]')
    row.wait_for(timeout=UI_TIMEOUT)
    box = row.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] - 3, box["y"] + 5, button="right")
    page.wait_for_selector("#menu:not([hidden])", timeout=UI_TIMEOUT)
    menu = page.locator("#menu").bounding_box()
    assert menu is not None
    assert menu["x"] + menu["width"] <= 1280 and menu["y"] + menu["height"] <= 900
    kb.press("Escape")
    page.wait_for_selector("#menu", state="hidden", timeout=UI_TIMEOUT)
    # a parameter through the page's own dialog, not window.prompt
    page.on("dialog", lambda d: pytest.fail(f"a browser dialog: {d.message}"))
    row.click(button="right")
    page.click("#menu button:text-is('Priority…')")
    page.wait_for_selector("#modal[open] #modal-fields input", timeout=UI_TIMEOUT)
    kb.press("Control+A")
    kb.type("77")
    kb.press("Enter")
    from tests.conftest import wait_for

    wait_for(lambda: jobs_of(farm)[keep]["priority"] == 77, 20, "priority 77")
    row.click(button="right")  # not a number: told, nothing sent
    page.click("#menu button:text-is('Priority…')")
    page.wait_for_selector("#modal[open] #modal-fields input", timeout=UI_TIMEOUT)
    page.fill("#modal-fields input", "")
    kb.press("Enter")
    page.wait_for_selector("#toast.error", timeout=UI_TIMEOUT)
    assert "not a whole number" in page.locator("#toast").text_content()
    assert jobs_of(farm)[keep]["priority"] == 77


PAGES = ("/monitor/jobs", "/monitor/renders", "/monitor/pools", "/monitor/users", "/monitor/system")


def no_horizontal_scroll(page: Any) -> None:
    wide = page.evaluate(
        """() => {
             const over = [document.documentElement, document.body,
                           document.querySelector('header')]
               .filter(el => el.scrollWidth > el.clientWidth + 1)
               .map(el => `${el.tagName} ${el.scrollWidth}>${el.clientWidth}`);
             if (document.documentElement.scrollWidth > innerWidth) over.push('page');
             return over;
           }"""
    )
    assert wide == [], f"{page.url}: {wide}"


def test_phone_layout_has_no_horizontal_scroll_and_an_action_button_per_row(
    views_farm: Farm, browser: Any
) -> None:
    farm = views_farm
    job_id = submit(farm, "a_phone_job_with_a_rather_long_name_for_a_small_screen", 8, "sleep 5")
    page = open_page(browser, farm, "/monitor/jobs", width=390, height=844)
    page.evaluate("localStorage.setItem('afAdmin', '1')")
    assert page.evaluate("document.querySelector('meta[name=viewport]') !== null")
    for path in (*PAGES, f"/monitor/jobs/{job_id}"):
        page.goto(f"{farm.web}{path}")
        page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
        page.wait_for_timeout(300)  # the view drawn (its first load)
        no_horizontal_scroll(page)
        shoot(page, path.strip("/").replace("/", "-"))  # 1440x900 and 390x844
    page.goto(f"{farm.web}/monitor/jobs")
    row = page.locator(f'#jobs-table .vt-row[data-key="{job_id}"]')
    row.wait_for(timeout=UI_TIMEOUT)
    button = row.locator(".row-menu")
    assert button.is_visible()
    box = button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= 390
    button.click()
    page.wait_for_selector("#menu:not([hidden])", timeout=UI_TIMEOUT)
    menu = page.locator("#menu").bounding_box()
    assert menu is not None and menu["x"] >= 0 and menu["x"] + menu["width"] <= 390
    assert page.url.endswith("/monitor/jobs")  # the button opens the menu, not the job
    page.click("#menu button:text-is('Pause')")
    from tests.conftest import wait_for

    wait_for(lambda: "OFF" in jobs_of(farm)[job_id]["state"], 20, "paused from a phone")

    # the dark theme follows the system's setting
    dark = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="dark")
    dark.add_init_script("localStorage.setItem('afUser', 'web')")
    night = dark.new_page()
    night.goto(f"{farm.web}/monitor/jobs")
    night.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
    rgb = night.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]]
    assert max(channels) < 60, rgb
    night.locator(f'#jobs-table .vt-row[data-key="{job_id}"]').wait_for(timeout=UI_TIMEOUT)
    night.screenshot(path=str(SHOTS / "jobs-dark-desktop.png"))


def test_identity_is_asked_once_and_refusals_say_what_to_do_on_the_page(
    make_web_farm, browser: Any
) -> None:  # type: ignore[no-untyped-def]
    farm = make_web_farm("r1", af_admins=["boss"])
    bobs = submit(farm, "bobs_job", 4, "sleep 20", user="bob")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{farm.web}/monitor/jobs")
    page.wait_for_selector("#modal[open] #modal-fields input", timeout=UI_TIMEOUT)
    assert "Who are you" in page.locator("#modal-text").text_content()
    page.fill("#modal-fields input", "alice")
    page.click("#modal-ok")
    page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
    assert page.input_value("#af-user") == "alice"
    page.locator(f'#jobs-table .vt-row[data-key="{bobs}"]').wait_for(timeout=UI_TIMEOUT)
    page.reload()  # remembered: not asked again
    page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
    assert page.locator("#modal[open]").count() == 0

    # another user's job: the refusal says what to do on this page
    page.click(f'#jobs-table .vt-row[data-key="{bobs}"]', button="right")
    page.click("#menu button:text-is('Pause')")
    page.wait_for_selector("#toast.error", timeout=UI_TIMEOUT)
    text = page.locator("#toast").text_content()
    assert "On the page" in text and "user name in the header" in text, text
    page.check("#af-admin")  # alice is no admin
    page.wait_for_function(
        "document.querySelector('#toast').textContent.includes(\"untick 'admin'\")",
        timeout=UI_TIMEOUT,
    )
    page.uncheck("#af-admin")
    page.screenshot(path=str(SHOTS / "refusal-desktop.png"))

    # no user 'web' was made by the page's requests
    req = urllib.request.Request(
        f"{farm.web}/api/farm/users", headers={"X-Afanasy-User": "boss", "X-Afanasy-Admin": "1"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        names = {u["name"] for u in json.loads(resp.read())["users"]}
    assert "web" not in names and "alice" in names, names


def test_with_tokens_the_page_asks_for_the_token_once(make_curve_farm, browser: Any) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import free_port, wait_for

    port = free_port()
    farm = make_curve_farm(af_web_port=port)
    web = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            urllib.request.urlopen(f"{web}/monitor/jobs", timeout=5)
            return True
        except OSError:
            return False

    wait_for(up, 15, "the web serving")
    result = farm.afcmd("token", "ann")
    assert result.returncode == 0, result.stderr
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{web}/monitor/jobs")
    page.wait_for_selector("#modal[open] #modal-fields input[type=password]", timeout=UI_TIMEOUT)
    assert "token" in page.locator("#modal-text").text_content()
    assert page.locator("#af-user").get_attribute("type") == "hidden"  # no name to type
    page.fill("#modal-fields input", "aft_wrong")
    page.click("#modal-ok")
    page.wait_for_selector("#toast.error", timeout=UI_TIMEOUT)
    assert "paste your token" in page.locator("#toast").text_content()
    page.fill("#af-token", result.stdout.strip())
    page.press("#af-token", "Enter")
    page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
    page.reload()
    page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
    assert page.locator("#modal[open]").count() == 0  # remembered
    page.wait_for_function("document.querySelector('#jobs-count').textContent.includes('jobs')")


def submit_block(farm: Farm, name: str, block: dict[str, Any], user: str = "web") -> int:
    body = json.dumps({"job": {"name": name, "blocks": [{"name": "b", "flags": 1, **block}]}})
    req = urllib.request.Request(
        f"{farm.web}/api/farm/jobs",
        data=body.encode(),
        method="POST",
        headers={"X-Afanasy-User": user, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["id"]


def test_tasks_table_of_ten_thousand_tasks_and_output_by_attempt(
    views_farm: Farm, browser: Any
) -> None:
    farm = views_farm
    big = submit_block(
        farm,
        "tenk",
        {"frame_first": 1, "frame_last": 20000, "frames_per_task": 2, "command": "true",
         "hosts_mask": "no_such_render"},
    )  # fmt: skip
    page = open_page(browser, farm, f"/monitor/jobs/{big}")
    page.wait_for_function(
        "document.querySelector('#tasks-table')?.dataset.rows === '10000'", timeout=UI_TIMEOUT
    )
    drawn = page.locator("#tasks-table .vt-row").count()
    assert 0 < drawn < 100  # virtual: only the rows in view are elements
    first = page.locator('#tasks-table .vt-row[data-key="0:0"]')
    assert first.locator('[data-col="frames"]').text_content() == "1-2"
    assert "RDY" in first.locator('[data-col="state"]').text_content()
    # the grid is an overview: a cell far down picks its row and shows the task
    page.locator('.task[data-task="9998"]').click()
    page.wait_for_selector('#tasks-table .vt-row.sel[data-key="0:9998"]', timeout=UI_TIMEOUT)
    assert "19997-19998" in page.locator("#task-title").text_content()
    # sorted by frames, downwards: the last task first
    page.click('#tasks-table .vt-head [data-col="frames"]')
    page.click('#tasks-table .vt-head [data-col="frames"]')
    page.evaluate("document.querySelector('#tasks-table .vt-body').scrollTop = 0")
    page.wait_for_function(
        """[...document.querySelectorAll('#tasks-table .vt-row')]
             .find(r => r.style.top === '0px')?.dataset.key === '0:9999'""",
        timeout=UI_TIMEOUT,
    )
    page.fill("#task-filter", "1999")
    with urllib.request.urlopen(f"{farm.web}/api/farm/jobs/{big}/tasks", timeout=10) as resp:
        listed = json.loads(resp.read())["tasks"]
    expected = sum(
        1 for t in listed if "1999" in t["name"] or "1999" in "-".join(map(str, t["frames"]))
    )
    assert expected >= 7  # 1999-2000, 19989-19990 ... 19999-20000
    page.wait_for_function(
        f"document.querySelector('#tasks-count').textContent.startsWith('{expected} of 10000')",
        timeout=UI_TIMEOUT,
    )
    shoot(page, "job-tenk")

    # a task started twice: each start's output, searchable and downloadable
    twice = submit_block(
        farm,
        "twice",
        {"frame_first": 1, "frame_last": 1, "command": "echo run-$(date +%s%N); echo the end"},
    )
    from tests.conftest import wait_for

    def task0() -> dict[str, Any]:
        with urllib.request.urlopen(f"{farm.web}/api/farm/jobs/{twice}/tasks", timeout=10) as r:
            return json.loads(r.read())["tasks"][0]

    wait_for(lambda: "DON" in task0()["state"], 20, "the first start done")
    act(
        farm,
        "web",
        {"ids": [twice], "block_ids": [0], "operation": {"type": "restart", "task_ids": [0]}},
    )
    wait_for(lambda: task0()["starts"] == 2 and "DON" in task0()["state"], 20, "the second")
    page.goto(f"{farm.web}/monitor/jobs/{twice}")
    page.locator('#tasks-table .vt-row[data-key="0:0"]').click()
    page.wait_for_function(
        "document.querySelector('#task-output').textContent.includes('run-')", timeout=UI_TIMEOUT
    )
    assert page.locator("#task-attempt option").count() == 2
    last = page.locator("#task-output").text_content()
    page.select_option("#task-attempt", "1")
    page.wait_for_function(
        f"""(() => {{ const t = document.querySelector('#task-output').textContent;
             return t.includes('run-') && t !== {json.dumps(last)}; }})()""",
        timeout=UI_TIMEOUT,
    )
    earlier = page.locator("#task-output").text_content()
    page.fill("#task-search", "the end")
    page.wait_for_selector("#task-output mark", timeout=UI_TIMEOUT)
    assert page.locator("#task-found").text_content() == "1 found"
    with page.expect_download() as info:
        page.click("#task-download")
    saved = Path(info.value.path()).read_text()
    assert saved == earlier and "start1" in info.value.suggested_filename
    shoot(page, "job-output")


def test_a_renders_panel_shows_what_it_runs_and_its_resource_history(
    views_farm: Farm, browser: Any
) -> None:
    farm = views_farm
    job_id = submit(farm, "on_a_render", 2, "sleep 30")
    from tests.conftest import wait_for

    wait_for(lambda: jobs_of(farm)[job_id]["tasks_running"] == 2, 20, "both tasks running")
    page = open_page(browser, farm, "/monitor/renders")
    page.evaluate("localStorage.setItem('afAdmin', '1')")
    page.reload()
    page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
    row = page.locator('#renders-table .vt-row[data-key="r1"]')
    row.wait_for(timeout=UI_TIMEOUT)
    row.click()
    page.wait_for_selector("#render-panel:not([hidden]) #render-tasks", timeout=UI_TIMEOUT)
    page.wait_for_function(
        "document.querySelector('#render-tasks')?.textContent.includes('on_a_render')",
        timeout=UI_TIMEOUT,
    )
    text = page.locator("#render-tasks").text_content()
    assert "user web" in text and "task" in text
    link = page.locator("#render-tasks a").first.get_attribute("href")
    assert link == f"/monitor/jobs/{job_id}"
    page.wait_for_function(
        "Number(document.querySelector('#render-graphs [data-graph=cpu]')?.dataset.points) >= 1",
        timeout=UI_TIMEOUT,
    )
    graphs = page.eval_on_selector_all(
        "#render-graphs .graph", "gs => gs.map(g => g.dataset.graph)"
    )
    assert graphs[:5] == ["cpu", "mem", "swap", "hdd", "net"]
    # the ring as the API gives it, and a refusal of the whole farm's history
    req = urllib.request.Request(
        f"{farm.web}/api/farm/renders?mode=history&name=r1",
        headers={"X-Afanasy-User": "web", "X-Afanasy-Admin": "1"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        (r1,) = json.loads(resp.read())["renders"]
    assert r1["history"]["count"] >= 1 and len(r1["history"]["cpu"]) == r1["history"]["count"]
    try:
        urllib.request.urlopen(f"{farm.web}/api/farm/renders?mode=history", timeout=10)
        raise AssertionError("a history of every render was given")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
    shoot(page, "renders")
