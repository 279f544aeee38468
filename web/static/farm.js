// The farm's other views: renders, pools, users and the system job.
"use strict";


function usage(r) {
  const res = r.host_resources || {};
  const cpu = 100 - (res.cpu_idle ?? 100);
  const mem = res.mem_total_mb ? (100 * (res.mem_total_mb - res.mem_free_mb)) / res.mem_total_mb : 0;
  const hdd = res.hdd_total_gb ? (100 * (res.hdd_total_gb - res.hdd_free_gb)) / res.hdd_total_gb : 0;
  return { cpu, mem, hdd, res };
}

function renderMenu(event, r) {
  const chosen = af.table && af.table.selected.has(String(r.name)) ? af.table.selection() : [r];
  const names = { names: chosen.map((x) => x.name) };
  const what = chosen.length === 1 ? `render ${r.name}` : `${chosen.length} renders`;
  const params = (p, label) => [label, () => act("renders", { ...names, params: p }, `${label} ${what}`)];
  const op = (type, label) => [label, () => act("renders", { ...names, operation: { type } }, `${label} ${what}`)];
  menu(event, [
    params({ nimby: true }, "nimby"), params({ NIMBY: true }, "NIMBY"),
    params({ nimby: false, NIMBY: false }, "Free"),
    params({ paused: true }, "Pause"), params({ paused: false }, "Unpause"),
    ["Eject tasks…", async () => {
      if (await confirmed(`Eject the running tasks of ${what}? They go back to the queue.`, chosen.map((x) => x.name), "Eject")) {
        act("renders", { ...names, operation: { type: "eject_tasks" } }, `Eject tasks of ${what}`);
      }
    }, true],
    op("heal_sick", "Heal sick"), op("wol_sleep", "Sleep"), op("wol_wake", "Wake"),
    ["Set pool…", async () => {
      const pool = await ask(`Pool of ${what}`, chosen.length === 1 ? r.pool : "");
      if (pool) act("renders", { ...names, operation: { type: "set_pool", name: pool } }, "Set pool");
    }],
    ["Delete (offline only)…", () => deleteRenders(chosen), true],
  ], what);
}

async function deleteRenders(chosen) {
  const what = chosen.length === 1 ? `render ${chosen[0].name}` : `these ${chosen.length} renders`;
  if (await confirmed(`Delete ${what}? Only an offline render can be deleted.`, chosen.map((x) => `${x.name} (${x.state.join(" ")})`), "Delete")) {
    act("renders", { names: chosen.map((x) => x.name), operation: { type: "delete" } }, "Delete");
  }
}

// --- one render's panel: what it runs, its resources now and their recent history -------

async function showRender(panel, name) {
  af.shownRender = name;
  af.renderJobs = af.renderJobs || new Map(); // job id -> summary, for the tasks' names
  panel.hidden = false;
  clearTimeout(af.historyTimer);
  const fetchHistory = async () => {
    if (af.shownRender !== name) return;
    try {
      const data = await api("GET", `/api/farm/renders?mode=history&name=${encodeURIComponent(name)}`);
      const found = data.renders.find((r) => r.name === name);
      if (found && af.shownRender === name) af.history = { name, ...found.history };
    } catch (err) {
      toast(err.message, true);
    }
    redraw();
    af.historyTimer = setTimeout(fetchHistory, 10000); // the server samples every 10 s
  };
  drawRender(panel);
  fetchHistory();
  api("GET", `/api/farm/renders?name=${encodeURIComponent(name)}`).then((data) => {
    for (const r of data.renders) af.renders.set(r.id, { ...af.renders.get(r.id), ...r });
    redraw();
  }).catch((err) => toast(err.message, true));
  panel.scrollIntoView({ block: "nearest" });
}

function drawRender(panel) {
  const r = [...af.renders.values()].find((x) => x.name === af.shownRender);
  if (!r) { panel.hidden = true; return; }
  const { cpu, mem, hdd, res } = usage(r);
  const missing = r.tasks.map(([jobId]) => jobId).filter((id) => !af.renderJobs.has(id));
  for (const id of new Set(missing)) {
    af.renderJobs.set(id, null);
    api("GET", `/api/farm/jobs/${id}`).then((j) => { af.renderJobs.set(id, j); redraw(); }).catch(() => {});
  }
  const tasks = r.tasks.map(([jobId, blockId, taskId, attempt]) => {
    const j = af.renderJobs.get(jobId);
    const block = j && j.blocks ? j.blocks[blockId] : null;
    return h("li", { dataset: { job: jobId } },
      h("a", { href: `/monitor/jobs/${jobId}` }, j ? j.name : `job ${jobId}`),
      ` · ${block ? block.name : `block ${blockId}`} · task ${taskId} (attempt ${attempt})`,
      j ? ` · user ${j.user_name} · job ${j.tasks_done}/${j.tasks_num} done` : "");
  });
  const gpu = res.gpu_string ? `${res.gpu_string}: ${res.gpu_gpu_util ?? 0}% · ${res.gpu_mem_used_mb ?? 0}/${res.gpu_mem_total_mb ?? 0} MB · ${res.gpu_gpu_temp ?? 0} °C` : "";
  const sig = JSON.stringify([r.name, r.state, r.tasks, [...af.renderJobs.keys()].filter((k) => af.renderJobs.get(k)).length, res, (af.history || {}).t, (af.history || {}).name]);
  if (panel._sig === sig) return;
  panel._sig = sig;
  panel.replaceChildren(
    h("h3", {}, `${r.name} · ${r.state.join(" ")}`, h("button", { class: "row-menu", onclick: (e) => renderMenu(e, r) }, "Render ▾")),
    h("p", { class: "note" }, `pool ${r.pool} · capacity ${r.capacity_used} used · ${res.cpu_num || "?"} cpu · ${res.mem_total_mb || "?"} MB`,
      gpu ? ` · GPU ${gpu}` : ""),
    h("h4", {}, r.tasks.length ? `running ${r.tasks.length}` : "running nothing"),
    h("ul", { id: "render-tasks" }, tasks),
    h("div", { class: "render-panel", id: "render-graphs" }, renderGraphs(r, { cpu, mem, hdd, res })));
}

function renderGraphs(r, current) {
  const history = af.history && af.history.name === r.name ? af.history : {};
  const res = current.res;
  const swap = res.swap_total_mb ? (100 * (res.swap_used_mb || 0)) / res.swap_total_mb : 0;
  const net = (res.net_recv_kbsec || 0) + (res.net_send_kbsec || 0);
  const gpuReported = Boolean(res.gpu_string) || (history.gpu || []).some((v) => v > 0);
  const series = [["cpu", "cpu", current.cpu, "%"], ["memory", "mem", current.mem, "%"], ["swap", "swap", swap, "%"],
    ["disk", "hdd", current.hdd, "%"], ["network", "net", net, " KB/s"],
    gpuReported ? ["GPU", "gpu", res.gpu_gpu_util || 0, "%"] : null];
  const minutes = history.count ? Math.round((history.count * history.step) / 60) : 0;
  return series.filter(Boolean).map(([title, key, value, unit]) =>
    h("div", { class: "graph", dataset: { graph: key, points: (history[key] || []).length } },
      h("div", {}, `${title} `, h("b", {}, `${Math.round(value)}${unit}`),
        h("span", { class: "note" }, minutes ? ` · last ${minutes} min` : "")),
      spark(history[key] || [], unit === "%" ? 100 : 0)));
}

function spark(points, scale) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 100");
  svg.setAttribute("preserveAspectRatio", "none");
  if (points.length === 1) points = [points[0], points[0]]; // one sample: a level line
  const top = Math.max(scale || 1, ...points);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.map((v, i) => `${(100 * i) / Math.max(1, points.length - 1)},${100 - (100 * v) / top}`).join(" "));
  svg.append(line);
  return svg;
}

function rendersView(view) {
  view.append(h("p", { id: "renders-count", class: "note" }));
  const panel = h("div", { id: "render-panel", class: "panel", hidden: true });
  const table = new VirtualTable(view, [
    { key: "name", title: "name", flex: 2 },
    { key: "state", title: "state", flex: 2, draw: (r) => r.state.join(" ") },
    { key: "cpu", title: "cpu", flex: 1.5, draw: (r) => bar(usage(r).cpu) },
    { key: "mem", title: "mem", flex: 1.5, draw: (r) => bar(usage(r).mem) },
    { key: "hdd", title: "disk", flex: 1.5, draw: (r) => bar(usage(r).hdd) },
    { key: "tasks", title: "tasks", flex: 0.7, draw: (r) => r.tasks.length },
    { key: "capacity_used", title: "capacity", flex: 1 },
    { key: "pool", title: "pool", flex: 1.5 },
    { key: "menu", title: "", flex: 0.3, cls: "row-act",
      draw: () => h("button", { class: "row-menu", title: "actions", "aria-label": "actions" }, "⋯") },
  ], { id: "renders-table", onMenu: renderMenu, onOpen: (r) => showRender(panel, r.name) });
  view.append(panel);
  af.table = table;
  af.deleteSelection = deleteRenders;
  af.wants = (change) => Boolean(change.renders || change.resources || change.renders_deleted);
  af.draw = () => {
    const rows = [...af.renders.values()]
      .filter((r) => !r.name.includes("@")) // the system job's executors live in the system view
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => ({ ...r, _key: r.name, _cls: r.online ? "" : "offline" }));
    table.setRows(rows);
    document.getElementById("renders-count").textContent = `${rows.length} renders, ${rows.filter((r) => r.online).length} online`;
    if (af.shownRender) drawRender(panel);
  };
  af.load = async () => {
    const data = await api("GET", "/api/farm/renders?mode=table"); // a panel reads its one in full
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
          ["Set parameter…", async () => {
            const text = await ask(`Parameter of ${p.path} as key=value (e.g. zombie_time=30)`, "");
            if (!text || !text.includes("=")) return;
            const [key, ...rest] = text.split("=");
            let value = rest.join("=");
            try { value = JSON.parse(value); } catch { /* a plain string */ }
            act("pools", { names: [p.path], params: { [key.trim()]: value } }, "Pool parameter");
          }],
          ["Add service…", async () => {
            const name = await ask(`Service to allow in ${p.path}`, "");
            if (name) act("pools", { names: [p.path], operation: { type: "farm", mode: "service_add", name } }, "Add service");
          }],
          ["Remove service…", async () => {
            const name = await ask(`Service to remove from ${p.path}`, "");
            if (name) act("pools", { names: [p.path], operation: { type: "farm", mode: "service_remove", name } }, "Remove service");
          }],
          ["Add child pool…", async () => {
            const name = await ask(`New pool under ${p.path}`, "");
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
    onMenu: (event, u) => menu(event, [["Priority…", async () => {
      const value = await ask(`Priority of user ${u.name} (0-250)`, u.priority);
      if (value === null) return;
      if (!/^\d+$/.test(value)) { toast(`Priority: '${value}' is not a whole number`, true); return; }
      act("users", { names: [u.name], params: { priority: Number(value) } }, "Priority");
    }]]),
  });
  af.table = table;
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

Object.assign(VIEWS, { renders: rendersView, pools: poolsView, users: usersView, system: systemView });
