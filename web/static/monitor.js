// Afanasy monitor: the views of /monitor/*, drawn from the farm API and kept current by the
// farm's event stream (/api/farm/events). Plain JavaScript, no framework, no CDN. This file:
// who the page acts as, requests, live changes and the start; ui.js has the page's parts,
// jobs.js, job.js and farm.js the views (each adds itself to VIEWS).
"use strict";

const af = {
  jobs: new Map(), renders: new Map(), users: new Map(),
  job: null, tasks: [], taskIndex: new Map(), blocks: [], selected: null, outputTimer: null,
  draw: null, // the current view's redraw, called (once per frame) after changes
  table: null, // the current view's table: the keyboard moves in it
};
window.af = af; // for people (and tests) poking around in the console
const VIEWS = {};

// --- identity and requests ---------------------------------------------------------------
// Trusted mode: the page acts as the user named in its header (asked once, remembered).
// With af_auth (body data-auth="token"): as the holder of the token (asked once too).

const AUTH = () => document.body.dataset.auth || "trusted";

function identity() {
  return {
    user: localStorage.getItem("afUser") || "",
    admin: localStorage.getItem("afAdmin") === "1",
    token: localStorage.getItem("afToken") || "", // with af_auth: from `afcmd token USER`
  };
}

async function api(method, path, body) {
  const who = identity();
  const headers = {};
  if (who.user) headers["X-Afanasy-User"] = who.user;
  if (who.admin) headers["X-Afanasy-Admin"] = "1";
  if (who.token) headers.Authorization = `Bearer ${who.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
  if (!resp.ok) {
    // the web's refusals say what to do on this page (web/refusals.py: for_page)
    const err = new Error(data.page ? `${data.error}. ${data.page}` : data.error || `HTTP ${resp.status}`);
    err.status = resp.status;
    throw err;
  }
  return data;
}

// The statistics pages are plain links, which send no Authorization header: with af_auth
// they read the token from this cookie (SameSite=Strict: other sites' requests lack it).
function keepTokenCookie() {
  const token = identity().token;
  document.cookie = token
    ? `af_token=${encodeURIComponent(token)}; path=/; SameSite=Strict`
    : "af_token=; path=/; max-age=0; SameSite=Strict";
}

async function act(kind, body, what) {
  if (AUTH() !== "token" && !identity().user) await introduce(true); // a change needs a name
  try {
    const reply = await api("POST", `/api/farm/${kind}/action`, body);
    toast(reply.info ? reply.info.text : what);
    return true;
  } catch (err) {
    toast(`${what}: ${err.message}`, true);
    return false;
  }
}

/** Ask once who this page acts as: the user name (trusted mode) or the token (af_auth). */
async function introduce(force) {
  const who = identity();
  if (AUTH() === "token") {
    if (who.token && !force) return;
    const token = await dialog({
      text: "This farm asks for a token. Paste yours (afcmd token YOUR_NAME prints it); the page keeps it in this browser.",
      fields: [{ name: "token", label: "token ", type: "password" }], ok: "Use it",
    });
    if (token && token.token) setToken(token.token);
  } else {
    if (who.user && !force) return;
    const answer = await dialog({
      text: "Who are you on the farm? Your jobs are the ones you may act on; the page remembers the name in this browser.",
      fields: [{ name: "user", label: "user name ", value: who.user, placeholder: "your login" }], ok: "Use it",
    });
    if (answer && answer.user) setUser(answer.user);
  }
}

function setUser(name) {
  localStorage.setItem("afUser", name.trim());
  document.getElementById("af-user").value = name.trim();
}

function setToken(token) {
  localStorage.setItem("afToken", token.trim());
  document.getElementById("af-token").value = token.trim();
  keepTokenCookie();
  if (af.source) af.source.close();
  connect();
}

// --- live changes ------------------------------------------------------------------------

let frame = 0;
function redraw() {
  if (frame) return;
  frame = requestAnimationFrame(() => {
    frame = 0;
    af.drawn = (af.drawn || 0) + 1; // redraws done: tests wait on it
    if (af.draw) af.draw();
  });
}

function connect() {
  const live = document.getElementById("af-live");
  const token = identity().token;
  const source = new EventSource(token ? `/api/farm/events?token=${encodeURIComponent(token)}` : "/api/farm/events");
  source.addEventListener("hello", () => { live.className = "live on"; });
  source.addEventListener("farm", (e) => apply(JSON.parse(e.data)));
  source.addEventListener("resync", () => load());
  source.onerror = () => { live.className = "live off"; };
  af.source = source;
}

function apply(change) {
  af.applied = (af.applied || 0) + 1; // changes applied: tests wait on it
  if (change.sent) af.lastSent = change.sent; // when the scheduler sent it (bench/web.py)
  for (const job of change.jobs || []) af.jobs.set(job.id, job);
  for (const id of change.jobs_deleted || []) af.jobs.delete(id);
  for (const render of change.renders || []) af.renders.set(render.id, render);
  for (const [id, res] of change.resources || []) {
    const render = af.renders.get(id);
    if (render) render.host_resources = res;
  }
  for (const id of change.renders_deleted || []) af.renders.delete(id);
  for (const user of change.users || []) af.users.set(user.name, user);
  if (af.job) {
    const id = af.job.id;
    if ((change.jobs_deleted || []).includes(id)) { af.job.deleted = true; }
    const mine = (change.jobs || []).find((j) => j.id === id);
    if (mine) Object.assign(af.job, mine);
    for (const group of change.tasks || []) {
      if (group.job_id !== id) continue;
      for (const t of group.tasks) {
        const task = af.taskIndex.get(`${t.block_id}:${t.task_id}`);
        if (task) {
          if (!t.state.includes("RUN")) delete task.percent;
          Object.assign(task, t);
        }
      }
      af.tasksChanged = true;
    }
    if ((change.tasks_reload || []).includes(id)) loadTasks();
  }
  if (change.pools_changed && af.reloadPools) af.reloadPools();
  if (af.onChange) af.onChange(change);
  if (!af.wants || af.wants(change)) redraw(); // 10,000 jobs are not redrawn for resources
}

// --- start -------------------------------------------------------------------------------

async function load() {
  try {
    await af.load();
  } catch (err) {
    toast(err.message, true);
  }
}

function keyboard(e) {
  if (document.querySelector("dialog[open]")) return; // the dialog's own keys
  if (typing(e)) {
    if (e.key === "Escape") e.target.blur();
    return;
  }
  if (e.key === "?") { shortcuts(); e.preventDefault(); return; }
  if (e.key === "/" && af.focusSearch) { af.focusSearch(); e.preventDefault(); return; }
  if ((e.key === "Delete" || e.key === "Backspace") && af.deleteSelection && af.table && af.table.selected.size) {
    af.deleteSelection(af.table.selection());
    e.preventDefault();
    return;
  }
  if (af.table && af.table.key(e)) e.preventDefault();
}

document.addEventListener("DOMContentLoaded", () => {
  const user = document.getElementById("af-user");
  const admin = document.getElementById("af-admin");
  const token = document.getElementById("af-token");
  user.value = identity().user;
  admin.checked = identity().admin;
  token.value = identity().token;
  user.addEventListener("change", () => { setUser(user.value); load(); });
  token.addEventListener("change", () => { setToken(token.value); load(); });
  admin.addEventListener("change", () => {
    localStorage.setItem("afAdmin", admin.checked ? "1" : "0");
    load();
  });
  keepTokenCookie();
  document.addEventListener("keydown", keyboard);
  VIEWS[document.body.dataset.view](document.getElementById("view"));
  introduce().then(() => {
    connect(); // first: what changes while the view loads is applied on top
    load();
  });
});
