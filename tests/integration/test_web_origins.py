"""Other sites cannot act through the user's browser: in chromium, a page served from
another local origin tries every request a page can send without asking (fetch with
text/plain, JSON with and without CORS, forms) against the farm API and the statistics;
no job is created, none is paused, no record is deleted, and each refusal is in the
statistics `logs` table. The monitor's own pages still act (a pause from the job's menu)."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.conftest import Farm, wait_for
from tests.conftest import web_call as call

pytestmark = pytest.mark.integration

UI_TIMEOUT = 20_000
EVIL_JOB = {
    "job": {
        "name": "evil",
        "blocks": [{"name": "b", "flags": 1, "frame_first": 1, "frame_last": 1,
                    "command": "touch /tmp/owned"}],
    }
}  # fmt: skip


def attacker_page(web: str, victim: int) -> str:
    """What a foreign site would serve: fetches and forms aimed at `web`."""
    job = json.dumps(EVIL_JOB)
    pause = json.dumps({"ids": [victim], "operation": {"type": "pause"}})
    delete = json.dumps({"before": 4102444800, "confirm": True})
    # a text/plain form whose one field reads as JSON: name + "=" + value
    cut = job.index('"evil') + len('"evil')
    name, value = job[:cut], job[cut:]
    return f"""<!doctype html><html><body>
<form id="form-job" method="post" action="{web}/api/farm/jobs" enctype="text/plain">
  <input name='{name}' value='{value}'></form>
<form id="form-admin" method="post" action="{web}/stats/admin">
  <input name="before" value="2100-01-01"><input name="confirm" value="yes"></form>
<script>
const WEB = {json.dumps(web)};
const tries = [
  ["/api/farm/jobs", "no-cors", "text/plain", {json.dumps(job)}],
  ["/api/farm/jobs", "cors", "text/plain", {json.dumps(job)}],
  ["/api/farm/jobs", "no-cors", "application/json", {json.dumps(job)}],
  ["/api/farm/jobs", "cors", "application/json", {json.dumps(job)}],
  ["/api/farm/jobs/action", "no-cors", "text/plain", {json.dumps(pause)}],
  ["/api/farm/jobs/action", "cors", "application/json", {json.dumps(pause)}],
  ["/api/stats/delete", "no-cors", "text/plain", {json.dumps(delete)}],
  ["/api/stats/delete", "cors", "application/json", {json.dumps(delete)}],
  ["/stats/admin", "no-cors", "application/x-www-form-urlencoded",
   "before=2100-01-01&confirm=yes"],
];
async function attack() {{
  const results = [];
  for (const [path, mode, type, body] of tries) {{
    try {{
      const r = await fetch(WEB + path, {{method: "POST", mode, credentials: "include",
                                         headers: {{"Content-Type": type}}, body}});
      results.push(`${{path}} ${{mode}} ${{type}}: ${{r.type}} ${{r.status}}`);
    }} catch (e) {{
      results.push(`${{path}} ${{mode}} ${{type}}: blocked`);
    }}
  }}
  return results;
}}
</script></body></html>"""


@pytest.fixture
def foreign_site() -> Iterator[tuple[dict[str, str], str]]:
    """Another origin on loopback (another port): serves the page put in the dict."""
    pages: dict[str, str] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server API
            body = pages.get("page", "").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield pages, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def stats_rows(farm: Farm, sql: str) -> list[tuple]:
    db = sqlite3.connect(farm.store / "stats.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def test_a_foreign_page_changes_nothing(
    make_web_farm,  # type: ignore[no-untyped-def]
    browser: Any,
    foreign_site: tuple[dict[str, str], str],
) -> None:
    farm = make_web_farm()
    pages, foreign = foreign_site
    wait_for(lambda: call(farm, "GET", "/api/farm/jobs")[0] == 200, 15, "the web API serving")
    block = {"name": "b", "flags": 1, "frame_first": 1, "frame_last": 50, "command": "true"}
    status, reply = call(
        farm, "POST", "/api/farm/jobs", {"job": {"name": "victim", "blocks": [block]}}
    )
    assert status == 200, reply
    victim = reply["id"]
    wait_for(
        lambda: stats_rows(farm, "SELECT count(*) FROM logs WHERE info LIKE 'submitted%'")[0][0],
        20,
        "the submission's log row written",
    )
    logs_before = stats_rows(farm, "SELECT count(*) FROM logs")[0][0]

    pages["page"] = attacker_page(farm.web, victim)
    page = browser.new_page()
    page.goto(f"{foreign}/")
    results = page.evaluate("attack()")
    assert len(results) == 9, results
    assert all("blocked" in r or " 403" in r or "opaque 0" in r for r in results), results
    answers = {}
    for form in ("form-job", "form-admin"):
        page.goto(f"{foreign}/")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.evaluate(f"document.getElementById('{form}').submit()")
        answers[form] = (answer.value.status, answer.value.text())

    # DNS rebinding: another site's name resolving to 127.0.0.1 is same-origin with itself
    rebound = "evil.example:" + farm.web.rsplit(":", 1)[1]
    for method, body in (("GET", None), ("POST", EVIL_JOB)):
        status, reply = call(
            farm, method, "/api/farm/jobs", body, Host=rebound, Origin=f"http://{rebound}"
        )
        assert status == 400 and "is not this server" in reply["error"], (method, reply)

    jobs = call(farm, "GET", "/api/farm/jobs")[1]["jobs"]
    assert [j["name"] for j in jobs if j["id"] != 1] == ["victim"]  # no "evil" job
    assert "OFF" not in call(farm, "GET", f"/api/farm/jobs/{victim}")[1]["state"]
    assert stats_rows(farm, "SELECT count(*) FROM logs")[0][0] >= logs_before  # none deleted
    for form, (status, text) in answers.items():
        assert status == 403 and "cross-origin" in text, (form, status, text)

    def refusals_logged() -> bool:
        rows = stats_rows(farm, "SELECT info FROM logs WHERE type = 'web'")
        return any("cross-origin" in info for (info,) in rows)

    wait_for(refusals_logged, 15, "the cross-origin refusals in the logs table")
    assert stats_rows(farm, "SELECT count(*) FROM logs")[0][0] > logs_before  # none deleted

    # the monitor's own page still acts: a pause from the job's menu
    page.goto(f"{farm.web}/monitor/jobs/{victim}")
    page.fill("#modal[open] #modal-fields input", "web")  # the page asks who acts, once
    page.click("#modal-ok")
    page.wait_for_selector("#af-live.on", timeout=UI_TIMEOUT)
    page.wait_for_selector("#job-menu", timeout=UI_TIMEOUT)
    page.click("#job-menu")
    page.click("#menu button:text-is('Pause')")
    page.wait_for_function(
        "document.querySelector('#job-state').textContent.includes('OFF')", timeout=UI_TIMEOUT
    )
    assert "OFF" in call(farm, "GET", f"/api/farm/jobs/{victim}")[1]["state"]

    # ... and the statistics admin form of our own origin, with its anti-forgery token
    page.goto(f"{farm.web}/stats/admin")
    form = page.locator("form.danger").first
    form.locator("input[name=folder]").fill("/nothing/here")
    form.locator("input[name=confirm]").check()
    form.locator("button").click()
    assert "deleted 0 jobs, 0 tasks records" in page.locator("p.done").text_content()


def test_the_admin_form_needs_its_anti_forgery_token(make_web_farm) -> None:  # type: ignore[no-untyped-def]
    """A client without Origin (a script) posting the admin form: refused without the token
    the page gave out, or with a forged one; served with the page's own."""
    farm = make_web_farm()
    wait_for(lambda: call(farm, "GET", "/api/farm/jobs")[0] == 200, 15, "the web API serving")
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    page = opener.open(f"{farm.web}/stats/admin", timeout=10).read().decode()
    token = re.search(r'name="form_token" value="([^"]+)"', page).group(1)

    def post(fields: str) -> tuple[int, str]:
        req = urllib.request.Request(
            f"{farm.web}/stats/admin",
            data=fields.encode(),
            method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with opener.open(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    for fields in ("folder=/x&confirm=yes", "folder=/x&confirm=yes&form_token=forged.00"):
        status, text = post(fields)
        assert status == 403 and "anti-forgery" in text, fields
    status, text = post(f"folder=/x&confirm=yes&form_token={token}")
    assert status == 200 and "deleted 0 jobs, 0 tasks records" in text
