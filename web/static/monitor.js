// Afanasy monitor: the views of /monitor/*, drawn from the farm API and kept current by the
// farm's event stream (/api/farm/events). Plain JavaScript, no framework, no CDN.
"use strict";

const af = {
  jobs: new Map(), renders: new Map(), users: new Map(),
  job: null, tasks: [], taskIndex: new Map(), blocks: [], selected: null, outputTimer: null,
  draw: null, // the current view's redraw, called (once per frame) after changes
};
window.af = af; // for people (and tests) poking around in the console

// --- identity and requests ---------------------------------------------------------------

function identity() {
  return {
    user: localStorage.getItem("afUser") || "web",
    admin: localStorage.getItem("afAdmin") === "1",
    token: localStorage.getItem("afToken") || "", // with af_auth: from `afcmd token USER`
  };
}

async function api(method, path, body) {
  const who = identity();
  const headers = { "X-Afanasy-User": who.user };
  if (who.admin) headers["X-Afanasy-Admin"] = "1";
  if (who.token) headers.Authorization = `Bearer ${who.token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
  if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
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
  try {
    const reply = await api("POST", `/api/farm/${kind}/action`, body);
    toast(reply.info ? reply.info.text : what);
  } catch (err) {
    toast(`${what}: ${err.message}`, true);
  }
}

function toast(text, error) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.className = error ? "toast error" : "toast";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, error ? 8000 : 3000);
}

// --- drawing helpers ---------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function bar(percent, label, cls) {
  const p = Math.max(0, Math.min(100, Math.round(percent || 0)));
  return h("div", { class: `bar ${cls || ""}`, title: label || `${p}%` },
    h("div", { class: "fill", style: `width:${p}%` }), h("span", {}, label || `${p}%`));
}

let frame = 0;
function redraw() {
  if (frame) return;
  frame = requestAnimationFrame(() => { frame = 0; if (af.draw) af.draw(); });
}

function when(ts) {
  if (!ts) return "";
  const d = new Date(ts * 1000);
  return d.toLocaleString();
}

// --- menus and confirmation --------------------------------------------------------------

function menu(event, items) {
  event.preventDefault();
  event.stopPropagation();
  const el = document.getElementById("menu");
  el.replaceChildren(...items.map(([label, run, danger]) =>
    h("button", { class: danger ? "danger" : "", onclick: () => { el.hidden = true; run(); } }, label)));
  el.style.left = `${event.pageX}px`;
  el.style.top = `${event.pageY}px`;
  el.hidden = false;
}
document.addEventListener("click", () => { document.getElementById("menu").hidden = true; });

function confirmed(text) {
  return new Promise((resolve) => {
    const modal = document.getElementById("modal");
    document.getElementById("modal-text").textContent = text;
    modal.hidden = false;
    const done = (ok) => { modal.hidden = true; resolve(ok); };
    document.getElementById("modal-ok").onclick = () => done(true);
    document.getElementById("modal-cancel").onclick = () => done(false);
  });
}

function ask(text, value) {
  const answer = window.prompt(text, value);
  return answer === null ? null : answer.trim();
}

// --- a table that draws only the rows in view (thousands of jobs or renders) ---------------
// Rows are keyed: a redraw moves and patches the row elements already on screen (only the
// cells whose content changed are replaced), so a click that starts on a row ends on the
// same element even while live changes flow, and the browser keeps hover and focus.

function cellSignature(value) {
  return value instanceof Node ? value.outerHTML ?? value.textContent : String(value ?? "");
}

class VirtualTable {
  constructor(parent, columns, { rowHeight = 26, onClick, onMenu, id } = {}) {
    this.columns = columns;
    this.rowHeight = rowHeight;
    this.onClick = onClick;
    this.onMenu = onMenu;
    this.rows = [];
    this.byKey = new Map(); // key -> row (data), for the delegated events
    this.drawn = new Map(); // key -> row element on screen
    this.head = h("div", { class: "vt-head" },
      columns.map((c) => h("div", { class: `vt-cell ${c.cls || ""}`, style: `flex:${c.flex || 1}`, dataset: { col: c.key || c.title } }, c.title)));
    this.body = h("div", { class: "vt-body" });
    this.spacer = h("div", { class: "vt-spacer" });
    this.body.append(this.spacer);
    this.el = h("div", { class: "vt", id: id || "" }, this.head, this.body);
    parent.append(this.el);
    this.body.addEventListener("scroll", () => this.draw());
    const rowOf = (event) => {
      const el = event.target.closest(".vt-row");
      return el ? this.byKey.get(el.dataset.key) : undefined;
    };
    this.body.addEventListener("click", (e) => {
      const row = rowOf(e);
      if (row && this.onClick) this.onClick(row, e);
    });
    this.body.addEventListener("contextmenu", (e) => {
      const row = rowOf(e);
      if (row && this.onMenu) this.onMenu(e, row);
    });
  }

  setRows(rows) {
    this.rows = rows;
    this.byKey = new Map(rows.map((r) => [String(r._key), r]));
    this.draw();
  }

  rowElement(key) {
    const el = h("div", { class: "vt-row", dataset: { key } },
      this.columns.map((c) => h("div", { class: `vt-cell ${c.cls || ""}`, style: `flex:${c.flex || 1}`, dataset: { col: c.key || c.title } })));
    el.style.height = `${this.rowHeight}px`;
    return el;
  }

  patch(el, row, index) {
    const top = `${index * this.rowHeight}px`;
    if (el.style.top !== top) el.style.top = top;
    const cls = `vt-row ${row._cls || ""}`.trim();
    if (el.className !== cls) el.className = cls;
    this.columns.forEach((c, i) => {
      const value = c.draw ? c.draw(row) : row[c.key];
      const sig = cellSignature(value);
      const cell = el.children[i];
      if (cell._sig === sig) return; // untouched: the element stays as it is
      cell._sig = sig;
      cell.replaceChildren(value instanceof Node ? value : String(value ?? ""));
    });
  }

  draw() {
    const height = this.body.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.body.scrollTop / this.rowHeight) - 5);
    const last = Math.min(this.rows.length, first + Math.ceil(height / this.rowHeight) + 10);
    const spacer = `${this.rows.length * this.rowHeight}px`;
    if (this.spacer.style.height !== spacer) this.spacer.style.height = spacer;
    const keep = new Set();
    for (let i = first; i < last; i++) {
      const row = this.rows[i];
      const key = String(row._key);
      keep.add(key);
      let el = this.drawn.get(key);
      if (!el) {
        el = this.rowElement(key);
        this.drawn.set(key, el);
        this.body.append(el);
      }
      this.patch(el, row, i);
    }
    for (const [key, el] of this.drawn) {
      if (!keep.has(key)) { el.remove(); this.drawn.delete(key); }
    }
    this.el.dataset.rows = String(this.rows.length);
  }
}

// --- live changes ------------------------------------------------------------------------

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
        if (task) Object.assign(task, t);
      }
    }
    if ((change.tasks_reload || []).includes(id)) loadTasks();
  }
  if (change.pools_changed && af.reloadPools) af.reloadPools();
  if (af.onChange) af.onChange(change);
  redraw();
}

// --- jobs --------------------------------------------------------------------------------

function jobMenu(event, job) {
  const ids = { ids: [job.id] };
  const op = (type, label) => [label, () => act("jobs", { ...ids, operation: { type } }, label)];
  menu(event, [
    op("pause", "Pause"), op("start", "Start"), op("stop", "Stop"),
    op("restart_errors", "Restart errors"), op("restart_running", "Restart running"),
    ["Restart all tasks…", async () => {
      if (await confirmed(`Restart every task of job ${job.id} '${job.name}'?`)) {
        act("jobs", { ...ids, operation: { type: "restart" } }, "Restart");
      }
    }, true],
    ["Priority…", () => {
      const value = ask(`Priority of '${job.name}' (0-250)`, job.priority);
      if (value !== null) act("jobs", { ...ids, params: { priority: Number(value) } }, "Priority");
    }],
    ["Max running tasks…", () => {
      const value = ask(`Max running tasks of '${job.name}' (-1: no limit)`, job.max_running_tasks);
      if (value !== null) act("jobs", { ...ids, params: { max_running_tasks: Number(value) } }, "Max running tasks");
    }],
    ["Hosts mask…", () => {
      const value = ask(`Hosts mask of '${job.name}' (regular expression, empty: any)`, job.hosts_mask);
      if (value !== null) act("jobs", { ...ids, params: { hosts_mask: value } }, "Hosts mask");
    }],
    ["Delete…", async () => {
      if (await confirmed(`Delete job ${job.id} '${job.name}'? Its running tasks are stopped.`)) {
        act("jobs", { ...ids, operation: { type: "delete" } }, "Delete");
      }
    }, true],
  ]);
}

const SYSTEM_JOB_ID = 1; // its tasks are slots fed by queues: its progress means nothing
const JOB_STATES = ["", "RUN", "RDY", "DON", "ERR", "OFF", "WDP", "SKP"];

function jobsView(view) {
  const filters = h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
    h("label", {}, "user ", h("input", { id: "filter-user", placeholder: "any", oninput: redraw })),
    h("label", {}, "state ", h("select", { id: "filter-state", onchange: redraw },
      JOB_STATES.map((s) => h("option", { value: s }, s || "any")))),
    h("span", { id: "jobs-count", class: "note" }));
  view.append(filters);
  const table = new VirtualTable(view, [
    { key: "id", title: "id", flex: 0.5 },
    { key: "name", title: "name", flex: 3 },
    { key: "user_name", title: "user", flex: 1 },
    { key: "state", title: "state", flex: 1.5 },
    { key: "progress", title: "progress", flex: 3, draw: (j) => j.id === SYSTEM_JOB_ID
      ? h("a", { href: "/monitor/system" }, "system job: post commands, events, wakes")
      : bar(j.percentage, `${j.tasks_done}/${j.tasks_num} ${j.percentage}%`, j.tasks_error ? "err" : "") },
    { key: "priority", title: "priority", flex: 0.7 },
    { key: "tasks_running", title: "running", flex: 0.7 },
    { key: "tasks_error", title: "errors", flex: 0.7 },
  ], {
    id: "jobs-table",
    onClick: (job) => { location.href = job.id === SYSTEM_JOB_ID ? "/monitor/system" : `/monitor/jobs/${job.id}`; },
    onMenu: jobMenu,
  });
  af.draw = () => {
    const user = document.getElementById("filter-user").value.trim();
    const state = document.getElementById("filter-state").value;
    const rows = [...af.jobs.values()]
      .filter((j) => !user || j.user_name === user)
      .filter((j) => !state || j.state.split(" ").includes(state))
      .sort((a, b) => a.id - b.id)
      .map((j) => ({ ...j, _key: j.id, _cls: `s-${j.state.split(" ")[0]}` }));
    table.setRows(rows);
    document.getElementById("jobs-count").textContent = `${rows.length} of ${af.jobs.size} jobs`;
  };
  af.load = async () => {
    const data = await api("GET", "/api/farm/jobs");
    af.jobs = new Map(data.jobs.map((j) => [j.id, j]));
    redraw();
  };
}

// --- one job: blocks, task grid, output ----------------------------------------------------

function stateClass(state) {
  for (const s of ["RUN", "ERR", "SKP", "DON", "SUS", "WDP", "WRC", "RDY"]) { // SKP is also DON
    if (state.split(" ").includes(s)) return `t-${s}`;
  }
  return "t-other";
}

async function loadTasks() {
  const data = await api("GET", `/api/farm/jobs/${af.job.id}/tasks?limit=1000000`);
  af.tasks = data.tasks;
  af.taskIndex = new Map(af.tasks.map((t) => [`${t.block_id}:${t.task_id}`, t]));
  af.gridDirty = true;
  redraw();
}

function taskMenu(event, task) {
  const body = (type) => ({ ids: [af.job.id], block_ids: [task.block_id], operation: { type, task_ids: [task.task_id] } });
  const op = (type, label) => [label, () => act("jobs", body(type), label)];
  menu(event, [
    op("restart", "Restart"), op("skip", "Skip"), op("done", "Set done"),
    op("suspend", "Suspend"), op("continue", "Continue"),
  ]);
}

function blockMenu(event, index) {
  const block = af.blocks[index];
  const body = (type) => ({ ids: [af.job.id], block_ids: [index], operation: { type } });
  const op = (type, label) => [label, () => act("jobs", body(type), `${block.name}: ${label}`)];
  menu(event, [
    op("restart_errors", "Restart errors"), op("restart_running", "Restart running"),
    op("skip", "Skip all"), op("done", "Set all done"), op("suspend", "Suspend"),
    op("continue", "Continue"), op("reset_error_hosts", "Reset error hosts"),
    ["Restart all…", async () => {
      if (await confirmed(`Restart every task of block '${block.name}'?`)) {
        act("jobs", body("restart"), `${block.name}: restart`);
      }
    }, true],
  ]);
}

async function showTask(task) {
  af.selected = task;
  clearTimeout(af.outputTimer);
  const panel = document.getElementById("task-panel");
  const path = `/api/farm/jobs/${af.job.id}/blocks/${task.block_id}/tasks/${task.task_id}`;
  const refresh = async () => {
    if (af.selected !== task) return;
    let output = "";
    let log = [];
    try {
      if (task.starts > 0) output = (await api("GET", `${path}/output`)).tasks[0].output;
      log = (await api("GET", `${path}/log`)).tasks[0].log;
    } catch (err) {
      output = `(${err.message})`;
    }
    const pre = h("pre", { id: "task-output" }, output || "(no output yet)");
    panel.replaceChildren(
      h("h3", {}, `${task.block_name} · ${task.name} · ${task.state}`, task.host ? ` on ${task.host}` : ""),
      h("div", { class: "actions" }, h("button", { onclick: (e) => taskMenu(e, task) }, "Task ▾")),
      pre, h("h4", {}, "log"), h("pre", { class: "log" }, log.join("\n")));
    pre.scrollTop = pre.scrollHeight;
    // Only this one task's output is re-read, and only while it runs: a live tail.
    if (task.state.includes("RUN")) af.outputTimer = setTimeout(refresh, 1000);
  };
  panel.hidden = false;
  refresh();
}

function jobView(view) {
  const jobId = Number(document.body.dataset.jobId);
  const head = h("div", { id: "job-head" });
  const why = h("p", { id: "job-why", class: "note" });
  const blocks = h("div", { id: "blocks" });
  const panel = h("div", { id: "task-panel", class: "panel", hidden: "" });
  view.append(head, why, blocks, panel);
  af.draw = () => {
    const job = af.job;
    if (!job) return;
    document.getElementById("title").textContent = `${job.name} (job ${job.id})${job.deleted ? " · deleted" : ""}`;
    head.replaceChildren(
      h("span", { id: "job-state", class: "state" }, job.state), " ",
      bar(job.percentage, `${job.tasks_done}/${job.tasks_num} ${job.percentage}%`, job.tasks_error ? "err" : ""),
      ` user ${job.user_name} · priority ${job.priority} · running ${job.tasks_running} · errors ${job.tasks_error} `,
      h("button", { id: "job-menu", onclick: (e) => jobMenu(e, job) }, "Job ▾"));
    if (af.gridDirty) drawGrid(blocks);
    else updateGrid(blocks);
    if (af.selected) {
      const fresh = af.taskIndex.get(`${af.selected.block_id}:${af.selected.task_id}`);
      if (fresh && fresh.state !== af.selected.shownState) {
        af.selected.shownState = fresh.state;
        showTask(fresh);
      }
    }
  };
  const explain = async () => {
    const w = af.job.state.includes("DON") ? null
      : await api("GET", `/api/farm/jobs/${jobId}/why`).catch(() => null);
    why.textContent = w && w.why_text ? `Why not running: ${w.why_text}` : "";
  };
  let whyTimer = 0;
  af.onChange = (change) => { // the explanation follows the job, at most every 2 s
    if ((change.jobs || []).some((j) => j.id === jobId) && !whyTimer) {
      whyTimer = setTimeout(() => { whyTimer = 0; explain(); }, 2000);
    }
  };
  af.load = async () => {
    af.job = await api("GET", `/api/farm/jobs/${jobId}`);
    af.blocks = af.job.blocks;
    await loadTasks();
    await explain();
  };
}

const GRID_PAGE = 10000; // task cells drawn per block; the rest are summed up

function drawGrid(parent) {
  af.gridDirty = false;
  const byBlock = new Map();
  for (const t of af.tasks) {
    if (!byBlock.has(t.block_id)) byBlock.set(t.block_id, []);
    byBlock.get(t.block_id).push(t);
  }
  const sections = af.blocks.map((block, index) => {
    const tasks = byBlock.get(index) || [];
    const cells = tasks.slice(0, GRID_PAGE).map((t) => {
      const cell = h("div", {
        class: `task ${stateClass(t.state)}`, title: `${t.name}: ${t.state}`,
        dataset: { block: index, task: t.task_id, state: t.state },
        onclick: () => showTask(t), oncontextmenu: (e) => taskMenu(e, t),
      });
      t.cell = cell;
      return cell;
    });
    const more = tasks.length > GRID_PAGE ? h("p", { class: "note" }, `${tasks.length - GRID_PAGE} more tasks not drawn`) : null;
    return h("section", { class: "block", dataset: { block: index } },
      h("h3", { oncontextmenu: (e) => blockMenu(e, index) }, `${block.name} `,
        h("span", { class: "note" }, `${block.service}`), " ",
        h("span", { class: "block-progress" }),
        h("button", { class: "block-menu", onclick: (e) => blockMenu(e, index) }, "Block ▾")),
      h("div", { class: "grid" }, cells), more);
  });
  parent.replaceChildren(...sections);
  updateGrid(parent);
}

function updateGrid(parent) {
  const done = new Map();
  for (const t of af.tasks) {
    if (t.cell && t.cell.dataset.state !== t.state) {
      t.cell.dataset.state = t.state;
      t.cell.className = `task ${stateClass(t.state)}`;
      t.cell.title = `${t.name}: ${t.state}`;
    }
    const d = done.get(t.block_id) || [0, 0];
    d[1] += 1;
    if (t.state.split(" ").includes("DON")) d[0] += 1;
    done.set(t.block_id, d);
  }
  for (const section of parent.querySelectorAll("section.block")) {
    const [n, total] = done.get(Number(section.dataset.block)) || [0, 0];
    section.querySelector(".block-progress").replaceChildren(
      bar(total ? (100 * n) / total : 0, `${n}/${total}`));
  }
}

// --- renders -----------------------------------------------------------------------------

function usage(r) {
  const res = r.host_resources || {};
  const cpu = 100 - (res.cpu_idle ?? 100);
  const mem = res.mem_total_mb ? (100 * (res.mem_total_mb - res.mem_free_mb)) / res.mem_total_mb : 0;
  const hdd = res.hdd_total_gb ? (100 * (res.hdd_total_gb - res.hdd_free_gb)) / res.hdd_total_gb : 0;
  return { cpu, mem, hdd, res };
}

function renderMenu(event, r) {
  const names = { names: [r.name] };
  const params = (p, label) => [label, () => act("renders", { ...names, params: p }, label)];
  const op = (type, label) => [label, () => act("renders", { ...names, operation: { type } }, label)];
  menu(event, [
    params({ nimby: true }, "nimby"), params({ NIMBY: true }, "NIMBY"),
    params({ nimby: false, NIMBY: false }, "Free"),
    params({ paused: true }, "Pause"), params({ paused: false }, "Unpause"),
    op("eject_tasks", "Eject tasks"), op("heal_sick", "Heal sick"),
    op("wol_sleep", "Sleep"), op("wol_wake", "Wake"),
    ["Set pool…", () => {
      const pool = ask(`Pool of ${r.name}`, r.pool);
      if (pool) act("renders", { ...names, operation: { type: "set_pool", name: pool } }, "Set pool");
    }],
    ["Delete (offline only)…", async () => {
      if (await confirmed(`Delete render ${r.name}? Only an offline render can be deleted.`)) {
        act("renders", { ...names, operation: { type: "delete" } }, "Delete");
      }
    }, true],
  ]);
}

function rendersView(view) {
  view.append(h("p", { id: "renders-count", class: "note" }));
  const table = new VirtualTable(view, [
    { key: "name", title: "name", flex: 2 },
    { key: "state", title: "state", flex: 2, draw: (r) => r.state.join(" ") },
    { key: "cpu", title: "cpu", flex: 1.5, draw: (r) => bar(usage(r).cpu) },
    { key: "mem", title: "mem", flex: 1.5, draw: (r) => bar(usage(r).mem) },
    { key: "hdd", title: "disk", flex: 1.5, draw: (r) => bar(usage(r).hdd) },
    { key: "tasks", title: "tasks", flex: 0.7, draw: (r) => r.tasks.length },
    { key: "capacity_used", title: "capacity", flex: 1 },
    { key: "pool", title: "pool", flex: 1.5 },
  ], { id: "renders-table", onMenu: renderMenu, onClick: (r) => { af.selectedRender = r.name; } });
  af.draw = () => {
    const rows = [...af.renders.values()]
      .filter((r) => !r.name.includes("@")) // the system job's executors live in the system view
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => ({ ...r, _key: r.name, _cls: r.online ? "" : "offline" }));
    table.setRows(rows);
    document.getElementById("renders-count").textContent = `${rows.length} renders, ${rows.filter((r) => r.online).length} online`;
  };
  af.load = async () => {
    const data = await api("GET", "/api/farm/renders");
    af.renders = new Map(data.renders.map((r) => [r.id, r]));
    redraw();
  };
}

// --- pools, users, the system job ----------------------------------------------------------

function poolsView(view) {
  const tree = h("div", { id: "pools-tree" });
  view.append(tree);
  af.reloadPools = async () => {
    const data = await api("GET", "/api/farm/pools");
    const rows = data.pools.map((p) => {
      const depth = p.path === "/" ? 0 : p.path.split("/").length - 1;
      const details = `${p.renders_online}/${p.renders_total} online ${p.state || ""} `
        + `services ${(p.services || []).join(",") || "inherited"}`;
      return h("div", { class: "pool", style: `margin-left:${depth * 20}px`, dataset: { path: p.path },
        oncontextmenu: (e) => menu(e, [
          ["Set parameter…", () => {
            const text = ask(`Parameter of ${p.path} as key=value (e.g. zombie_time=30)`, "");
            if (!text || !text.includes("=")) return;
            const [key, ...rest] = text.split("=");
            let value = rest.join("=");
            try { value = JSON.parse(value); } catch { /* a plain string */ }
            act("pools", { names: [p.path], params: { [key.trim()]: value } }, "Pool parameter");
          }],
          ["Add service…", () => {
            const name = ask(`Service to allow in ${p.path}`, "");
            if (name) act("pools", { names: [p.path], operation: { type: "farm", mode: "service_add", name } }, "Add service");
          }],
          ["Remove service…", () => {
            const name = ask(`Service to remove from ${p.path}`, "");
            if (name) act("pools", { names: [p.path], operation: { type: "farm", mode: "service_remove", name } }, "Remove service");
          }],
          ["Add child pool…", () => {
            const name = ask(`New pool under ${p.path}`, "");
            if (name) act("pools", { names: [p.path], operation: { type: "add_pool", name } }, "Add pool");
          }],
          ["Delete…", async () => {
            if (await confirmed(`Delete pool ${p.path}?`)) act("pools", { names: [p.path], operation: { type: "delete" } }, "Delete pool");
          }, true],
        ]) },
        h("b", {}, p.path), " ", h("span", { class: "note" }, details));
    });
    tree.replaceChildren(...rows);
  };
  af.load = af.reloadPools;
  af.draw = () => {};
}

function usersView(view) {
  const table = new VirtualTable(view, [
    { key: "name", title: "name", flex: 2 },
    { key: "priority", title: "priority", flex: 1 },
    { key: "jobs_num", title: "jobs", flex: 1 },
    { key: "running_tasks", title: "running", flex: 1 },
    { key: "host_name", title: "host", flex: 2 },
  ], {
    id: "users-table",
    onMenu: (event, u) => menu(event, [["Priority…", () => {
      const value = ask(`Priority of user ${u.name} (0-250)`, u.priority);
      if (value !== null) act("users", { names: [u.name], params: { priority: Number(value) } }, "Priority");
    }]]),
  });
  af.draw = () => table.setRows([...af.users.values()].map((u) => ({ ...u, _key: u.name })));
  af.load = async () => {
    const data = await api("GET", "/api/farm/users");
    af.users = new Map(data.users.map((u) => [u.name, u]));
    redraw();
  };
}

function systemView(view) {
  const body = h("div", { id: "system" });
  view.append(body);
  let timer = 0;
  af.onChange = (change) => {
    if ((change.jobs || []).some((j) => j.id === 1) && !timer) {
      timer = setTimeout(() => { timer = 0; af.load(); }, 1000);
    }
  };
  af.draw = () => {};
  af.load = async () => {
    try {
      const job = await api("GET", "/api/farm/system");
      const rows = job.system.map((b) => h("tr", { dataset: { block: b.name } },
        h("td", {}, b.name), h("td", {}, b.service), h("td", { dataset: { col: "queued" } }, b.queued),
        h("td", {}, b.live_tasks), h("td", {}, b.running), h("td", {}, b.tasksmax)));
      body.replaceChildren(
        h("p", {}, `${job.name} · ${job.state} · user ${job.user_name}`),
        h("table", { id: "system-blocks" },
          h("thead", {}, h("tr", {}, ["block", "service", "queued", "live tasks", "running", "tasks max"].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows)),
        h("h3", {}, "log"), h("pre", { class: "log", id: "system-log" }, (job.log || []).join("\n")));
    } catch (err) {
      body.replaceChildren(h("p", { class: "error" }, err.message));
    }
  };
}

// --- start -------------------------------------------------------------------------------

const VIEWS = { jobs: jobsView, job: jobView, renders: rendersView, pools: poolsView, users: usersView, system: systemView };

async function load() {
  try {
    await af.load();
  } catch (err) {
    toast(err.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const user = document.getElementById("af-user");
  const admin = document.getElementById("af-admin");
  user.value = identity().user;
  admin.checked = identity().admin;
  user.addEventListener("change", () => localStorage.setItem("afUser", user.value.trim() || "web"));
  const token = document.getElementById("af-token");
  token.value = identity().token;
  keepTokenCookie();
  token.addEventListener("change", () => {
    localStorage.setItem("afToken", token.value.trim());
    keepTokenCookie();
    if (af.source) af.source.close();
    connect();
    load();
  });
  admin.addEventListener("change", () => {
    localStorage.setItem("afAdmin", admin.checked ? "1" : "0");
    load();
  });
  VIEWS[document.body.dataset.view](document.getElementById("view"));
  connect(); // first: what changes while the view loads is applied on top
  load();
});
