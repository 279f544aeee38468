"""A small page of ours that speaks the original's web protocol the way its GUI does
(XMLHttpRequest POST to "/" with an AFANASY length header; get config, monitor
registration, events polled each cycle, changed jobs asked by id), served by the gateway's
GET, in headless Chromium: it registers and shows a job's state change without a reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.client import send
from tests.conftest import free_port, load_slack, wait_for

pytestmark = pytest.mark.integration

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>watch</title></head>
<body><div id="registered">Not Registered</div><div id="id">0</div><pre id="jobs"></pre>
<script>
"use strict";
var g_id = 0;
var jobs = {};
function nw_request(obj, func) {
  var text = JSON.stringify(obj);
  var xhr = new XMLHttpRequest();
  xhr.overrideMimeType("application/json");
  xhr.open("POST", "/", true);
  xhr.setRequestHeader("AFANASY", text.length);
  xhr.onreadystatechange = function() {
    if (this.readyState == 4 && this.status == 200) func(JSON.parse(this.responseText));
  };
  xhr.send(text);
}
function show() {
  var lines = [];
  for (var id in jobs) lines.push(jobs[id].name + " " + jobs[id].state);
  document.getElementById("jobs").textContent = lines.join("\\n");
}
function received(obj) {
  if (obj.monitor) {
    if (g_id == 0 && obj.monitor.id > 0) {
      g_id = obj.monitor.id;
      document.getElementById("registered").textContent = "Registered";
      document.getElementById("id").textContent = g_id;
    } else if (obj.monitor.id != g_id) {
      g_id = 0;
      register();
    }
    return;
  }
  if (obj.events) {
    for (var id of obj.events.jobs_del || []) delete jobs[id];
    var ids = (obj.events.jobs_change || []).concat(obj.events.jobs_add || []);
    if (ids.length) nw_request({"get": {"type": "jobs", "ids": ids}}, received);
    show();
    return;
  }
  if (obj.jobs) {
    for (var job of obj.jobs) jobs[job.id] = job;
    show();
  }
}
function register() {
  nw_request({"monitor": {"user_name": "jim", "host_name": "ws1", "engine": navigator.userAgent}},
             received);
}
function cycle() {
  if (g_id) nw_request({"get": {"type": "monitors", "ids": [g_id], "mode": "events"}}, received);
  setTimeout(cycle, 200);
}
nw_request({"get": {"type": "config"}}, function(obj) {
  if (obj.cgru_config && obj.cgru_config.length) { register(); cycle(); }
});
</script></body></html>
"""


def test_a_page_speaking_the_original_protocol_follows_a_job_live(
    make_farm: Any, browser: Any, tmp_path: Path
) -> None:
    gui = tmp_path / "gui"
    (gui / "afanasy" / "browser").mkdir(parents=True)
    (gui / "afanasy" / "browser" / "index.html").write_text(PAGE)
    port = free_port()
    farm = make_farm(af_gateway_port=port, af_gateway_gui_folder=str(gui))
    farm.start_server()
    farm.start_render("gw-render-0")
    wait_for(lambda: "gw-render-0" in farm.online(), 30, "the render online")
    wait_for(lambda: "users" in send(port, {"get": {"type": "users"}}), 15, "the gateway to serve")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"http://127.0.0.1:{port}/")
    timeout_ms = 15_000 * load_slack()
    page.wait_for_function(
        "document.getElementById('registered').textContent == 'Registered'", timeout=timeout_ms
    )
    job = {
        "job": {
            "name": "live",
            "user_name": "jim",
            "host_name": "ws1",
            "blocks": [{"name": "b", "tasks": [{"name": "t", "command": "sleep 2"}]}],
        }
    }
    send(port, job)
    page.wait_for_function(
        "document.getElementById('jobs').textContent.indexOf('live') >= 0 &&"
        " document.getElementById('jobs').textContent.indexOf('RUN') >= 0",
        timeout=timeout_ms,
    )
    page.wait_for_function(
        "document.getElementById('jobs').textContent.indexOf('live DON') >= 0",
        timeout=2 * timeout_ms,
    )
    assert errors == []
    assert "Traceback" not in farm.log("afserver")
