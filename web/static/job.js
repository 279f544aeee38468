// One job: its head (state, progress, times, why it does not run), its blocks with a grid
// of tasks as an overview, and the task panel with output and log.
"use strict";


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
  const table = af.table;
  const chosen = table && task._key && table.selected.has(task._key) ? table.selection() : [task];
  const byBlock = new Map();
  for (const t of chosen) {
    if (!byBlock.has(t.block_id)) byBlock.set(t.block_id, []);
    byBlock.get(t.block_id).push(t.task_id);
  }
  const what = chosen.length === 1 ? `task ${task.name}` : `${chosen.length} tasks`;
  const run = (type, label) => {
    for (const [block, ids] of byBlock) {
      act("jobs", { ids: [af.job.id], block_ids: [block], operation: { type, task_ids: ids } }, `${label} ${what}`);
    }
  };
  const op = (type, label) => [label, () => run(type, label)];
  menu(event, [
    ["Restart…", async () => {
      if (await confirmed(`Restart ${what}? A running one is stopped first.`, chosen.map((t) => `${t.block_name} · ${t.name} (${t.state})`), "Restart")) {
        run("restart", "Restart");
      }
    }, true],
    op("skip", "Skip"), op("done", "Set done"), op("suspend", "Suspend"), op("continue", "Continue"),
  ], what);
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

// --- the tasks table: every task, virtualised (10,000+ rows draw as fast as 20) -----------

const taskRunTime = (t) => (t.time_start ? (t.state.includes("RUN") ? now() : t.time_done || now()) - t.time_start : 0);
const taskDone = (t) => t.state.split(" ").includes("DON");

function taskProgress(t) {
  if (taskDone(t)) return 100;
  return t.state.includes("RUN") ? t.percent || 0 : 0;
}

function framesOf(t) {
  const [a, b] = t.frames || [];
  return a === undefined ? "" : a === b ? String(a) : `${a}-${b}`;
}

const TASK_COLUMNS = [
  { key: "block", title: "block", flex: 1, value: (t) => t.block_id, draw: (t) => t.block_name },
  { key: "name", title: "task", flex: 2, value: (t) => t.task_id, draw: (t) => t.name },
  { key: "frames", title: "frames", flex: 1, value: (t) => (t.frames || [0])[0], draw: framesOf },
  { key: "state", title: "state", flex: 1.2, value: (t) => STATE_RANK.indexOf(topState(t.state)), draw: (t) => t.state },
  { key: "progress", title: "progress", flex: 1.5, value: taskProgress,
    draw: (t) => bar(taskProgress(t), `${taskProgress(t)}%`, t.state.includes("ERR") ? "err" : "") },
  { key: "host", title: "host", flex: 1.2, value: (t) => t.host || "", draw: (t) => t.host },
  { key: "start", title: "started", flex: 1.2, value: (t) => t.time_start, draw: (t) => when(t.time_start) },
  { key: "time", title: "run time", flex: 1, value: taskRunTime, draw: (t) => duration(taskRunTime(t)) },
  { key: "starts", title: "starts", flex: 0.6, value: (t) => t.starts, draw: (t) => t.starts },
  { key: "errors", title: "errors", flex: 0.6, value: (t) => t.errors, draw: (t) => t.errors },
  { key: "menu", title: "", flex: 0.3, sortable: false, cls: "row-act",
    draw: () => h("button", { class: "row-menu", title: "actions", "aria-label": "actions" }, "⋯") },
];

function taskSorter(sort) {
  const down = sort.startsWith("-");
  const column = TASK_COLUMNS.find((c) => c.key === (down ? sort.slice(1) : sort)) || TASK_COLUMNS[1];
  const sign = down ? -1 : 1;
  return (a, b) => {
    const x = column.value(a), y = column.value(b);
    const c = typeof x === "string" ? x.localeCompare(y) : x - y;
    return sign * c || a.block_id - b.block_id || a.task_id - b.task_id;
  };
}

// --- one task: output by attempt (searchable, downloadable) and log ----------------------

function highlight(pre, text, query) {
  if (!query) { pre.textContent = text; return 0; }
  const parts = [];
  const low = text.toLowerCase(), q = query.toLowerCase();
  let at = 0, found = 0;
  for (let i = low.indexOf(q); i >= 0 && found < 5000; i = low.indexOf(q, i + q.length)) {
    parts.push(text.slice(at, i), h("mark", {}, text.slice(i, i + q.length)));
    at = i + q.length;
    found += 1;
  }
  parts.push(text.slice(at));
  pre.replaceChildren(...parts);
  const first = pre.querySelector("mark");
  if (first) pre.scrollTop = first.offsetTop - pre.offsetTop - 40;
  return found;
}

async function showTask(task) {
  af.selected = task;
  task.shown = `${task.state} ${task.starts}`;
  clearTimeout(af.outputTimer);
  for (const el of document.querySelectorAll(".task.picked")) el.classList.remove("picked");
  if (task.cell) task.cell.classList.add("picked");
  const panel = document.getElementById("task-panel");
  const path = `/api/farm/jobs/${af.job.id}/blocks/${task.block_id}/tasks/${task.task_id}`;
  const title = h("h3", { id: "task-title" });
  const attempts = h("select", { id: "task-attempt", title: "the output of which start" });
  const search = h("input", { id: "task-search", type: "search", placeholder: "search the output", autocomplete: "off" });
  const found = h("span", { id: "task-found", class: "note" });
  const pre = h("pre", { id: "task-output" }, "(loading)");
  const log = h("pre", { class: "log", id: "task-log" });
  const download = h("button", { id: "task-download", type: "button" }, "Download");
  let text = "";
  let attempt = 0; // 0: the last start, followed live while it runs
  const fillAttempts = () => {
    const n = task.starts || 0;
    if (attempts.options.length === n + (n ? 0 : 1)) return;
    attempts.replaceChildren(...(n ? Array.from({ length: n }, (_, i) => n - i).map((k) =>
      h("option", { value: k === n ? "0" : String(k) }, k === n ? `start ${k} (last)` : `start ${k}`)) : [h("option", { value: "0" }, "not started")]));
    attempts.value = String(attempt);
  };
  const drawTitle = () => {
    title.textContent = `${task.block_name} · ${task.name}${framesOf(task) ? ` (frames ${framesOf(task)})` : ""} · ${task.state}`
      + `${task.host ? ` on ${task.host}` : ""}${task.state.includes("RUN") ? ` · ${task.percent || 0}%` : ""}`;
  };
  const showText = () => {
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    const n = highlight(pre, text || (task.starts ? "(no output yet)" : "(not started)"), search.value.trim());
    found.textContent = search.value.trim() ? `${n} found` : "";
    if (!search.value.trim() && atEnd) pre.scrollTop = pre.scrollHeight; // a tail stays a tail
  };
  const refresh = async () => {
    if (af.selected !== task) return;
    drawTitle();
    fillAttempts();
    try {
      if (task.starts > 0) {
        text = (await api("GET", `${path}/output${attempt ? `?attempt=${attempt}` : ""}`)).tasks[0].output;
      }
      log.textContent = (await api("GET", `${path}/log`)).tasks[0].log.join("\n");
    } catch (err) {
      text = `(${err.message})`;
    }
    if (af.selected !== task) return;
    showText();
    // Only this one task's output is re-read, and only while its last start runs: a live tail.
    clearTimeout(af.outputTimer);
    if (!attempt && task.state.includes("RUN")) af.outputTimer = setTimeout(refresh, 1000);
  };
  attempts.addEventListener("change", () => { attempt = Number(attempts.value); pre.scrollTop = 0; refresh(); });
  search.addEventListener("input", showText);
  download.addEventListener("click", () => {
    const a = h("a", { href: URL.createObjectURL(new Blob([text], { type: "text/plain" })),
      download: `${af.job.name}-${task.block_name}-${task.name}-start${attempt || task.starts}.txt`.replace(/[^\w.-]+/g, "_") });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });
  panel.replaceChildren(title,
    h("div", { class: "actions" }, h("button", { id: "task-menu", onclick: (e) => taskMenu(e, task) }, "Task ▾"),
      attempts, search, found, download),
    pre, h("h4", {}, "log"), log);
  panel.hidden = false;
  task.refresh = refresh;
  refresh();
}

function jobView(view) {
  const jobId = Number(document.body.dataset.jobId);
  // The menu button stays the same element across redraws: a header rebuilt between a
  // press and its release would lose the click (mousedown and mouseup on different nodes).
  const headInfo = h("span", { id: "job-head-info" });
  const jobButton = h("button", { id: "job-menu", onclick: (e) => jobMenu(e, af.job) }, "Job ▾");
  const head = h("div", { id: "job-head" }, headInfo, jobButton);
  const timeLine = h("div", { id: "job-times" });
  const why = h("p", { id: "job-why", class: "note" });
  const blocks = h("div", { id: "blocks" });
  const panel = h("div", { id: "task-panel", class: "panel", hidden: "" });
  const taskTools = h("div", { class: "filters" },
    h("input", { id: "task-filter", type: "search", placeholder: "task, frame or host", autocomplete: "off", oninput: () => { af.tasksChanged = true; redraw(); } }),
    h("select", { id: "task-state", onchange: () => { af.tasksChanged = true; redraw(); } },
      h("option", { value: "" }, "any state"), ["RUN", "RDY", "ERR", "DON", "SKP", "SUS", "WDP"].map((s) => h("option", { value: s }, s))),
    h("span", { id: "tasks-count", class: "note" }));
  view.append(head, timeLine, why, blocks, panel, h("h3", {}, "Tasks"), taskTools);
  let taskSort = "name";
  const tasksTable = new VirtualTable(view, TASK_COLUMNS.filter((c) => c.key !== "block" || af.blocks.length > 1), {
    id: "tasks-table", sort: taskSort, rowHeight: 24,
    onOpen: (t) => showTask(t), onMenu: (e, t) => taskMenu(e, t),
    onSort: (sort) => { taskSort = sort; af.tasksChanged = true; redraw(); },
  });
  af.table = tasksTable;
  let drawnTasks = null;
  const drawTasks = () => {
    if (drawnTasks !== af.tasks) { // a (re)load: the columns know now how many blocks
      drawnTasks = af.tasks;
      tasksTable.setColumns(TASK_COLUMNS.filter((c) => c.key !== "block" || af.blocks.length > 1));
      for (const t of af.tasks) t._key = `${t.block_id}:${t.task_id}`;
    }
    const q = document.getElementById("task-filter").value.trim().toLowerCase();
    const state = document.getElementById("task-state").value;
    let rows = af.tasks;
    if (q || state) {
      rows = rows.filter((t) => (!state || t.state.split(" ").includes(state))
        && (!q || t.name.toLowerCase().includes(q) || (t.host || "").toLowerCase().includes(q) || framesOf(t).includes(q)));
    }
    rows = taskSort === "name" ? rows.slice() : rows.slice().sort(taskSorter(taskSort));
    tasksTable.setRows(rows);
    document.getElementById("tasks-count").textContent = `${rows.length} of ${af.tasks.length} tasks`;
  };
  setInterval(redraw, 1000); // running for, ETA
  af.draw = () => {
    const job = af.job;
    if (!job) return;
    document.getElementById("title").textContent = `${job.name} (job ${job.id})${job.deleted ? " · deleted" : ""}`;
    const sig = JSON.stringify(job, (k, v) => (k === "blocks" ? undefined : v));
    if (head._sig !== sig) {
      head._sig = sig;
      headInfo.replaceChildren(
        h("span", { id: "job-state", class: "state" }, job.state), " ", jobBar(job),
        ` user ${job.user_name} · priority ${job.priority} · running ${job.tasks_running} · errors ${job.tasks_error} `);
    }
    const times = [["created", when(job.time_creation)], ["started", when(job.time_started)],
      ["running for", duration(runningFor(job))], ["done", when(job.time_done)],
      ["ETA", job.eta && !job.time_done ? duration(job.eta) : ""]];
    const text = times.filter(([, v]) => v).map(([k, v]) => `${k} ${v}`).join(" · ");
    if (timeLine._text !== text) {
      timeLine._text = text;
      timeLine.replaceChildren(...times.filter(([, v]) => v).map(([k, v]) => h("span", { dataset: { time: k } }, `${k} `, h("b", {}, v))));
    }
    if (af.gridDirty) drawGrid(blocks);
    else updateGrid(blocks);
    if (af.tasksChanged || drawnTasks !== af.tasks || taskSort.endsWith("time")) {
      af.tasksChanged = false;
      drawTasks();
    } else {
      tasksTable.draw(); // run times move on
    }
    if (af.selected) {
      const fresh = af.taskIndex.get(`${af.selected.block_id}:${af.selected.task_id}`);
      if (fresh && fresh !== af.selected) showTask(fresh); // the tasks were reloaded
      else if (fresh && `${fresh.state} ${fresh.starts}` !== af.selected.shown) {
        af.selected.shown = `${fresh.state} ${fresh.starts}`;
        if (fresh.refresh) fresh.refresh();
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

function pickRow(t) { // the grid is an overview: a cell picks its row in the table
  const table = af.table;
  if (!table || !table.index.has(t._key)) return;
  table.selectOnly(t._key);
  table.reveal(table.index.get(t._key));
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
    const grid = h("div", { class: "grid", dataset: { block: index } });
    const cells = document.createDocumentFragment();
    for (const t of tasks.slice(0, GRID_PAGE)) { // plain cells: the grid's events are delegated
      const cell = document.createElement("div");
      cell.className = `task ${stateClass(t.state)}`;
      cell.dataset.task = t.task_id;
      cell.dataset.state = t.state;
      t.cell = cell;
      cells.append(cell);
    }
    grid.append(cells);
    const more = tasks.length > GRID_PAGE ? h("p", { class: "note" }, `${tasks.length - GRID_PAGE} more tasks not drawn`) : null;
    return h("section", { class: "block", dataset: { block: index } },
      h("h3", { oncontextmenu: (e) => blockMenu(e, index) }, `${block.name} `,
        h("span", { class: "note" }, `${block.service}`), " ",
        h("span", { class: "block-progress" }),
        h("button", { class: "block-menu", onclick: (e) => blockMenu(e, index) }, "Block ▾")),
      grid, more);
  });
  parent.replaceChildren(...sections);
  if (!parent._delegated) { // one listener each for every cell of every block
    parent._delegated = true;
    const taskOf = (e) => {
      const cell = e.target.closest(".task");
      const grid = cell && cell.parentElement;
      return cell ? af.taskIndex.get(`${grid.dataset.block}:${cell.dataset.task}`) : undefined;
    };
    parent.addEventListener("click", (e) => {
      const t = taskOf(e);
      if (t) { showTask(t); pickRow(t); }
    });
    parent.addEventListener("contextmenu", (e) => {
      const t = taskOf(e);
      if (t) taskMenu(e, t);
    });
    parent.addEventListener("mouseover", (e) => { // the tooltip, made when pointed at
      const t = taskOf(e);
      if (t) e.target.title = `${t.name}${framesOf(t) ? ` (frames ${framesOf(t)})` : ""}: ${t.state}${t.host ? ` on ${t.host}` : ""}`;
    });
  }
  updateGrid(parent);
}

function updateGrid(parent) {
  const sums = new Map(); // block -> [tasks, done, running percent, error, skipped]
  for (const t of af.tasks) {
    if (t.cell && t.cell.dataset.state !== t.state) {
      t.cell.dataset.state = t.state;
      t.cell.className = `task ${stateClass(t.state)}${af.selected && af.selected === t ? " picked" : ""}`;
    }
    const d = sums.get(t.block_id) || [0, 0, 0, 0, 0];
    const words = t.state.split(" ");
    d[0] += 1;
    if (words.includes("SKP")) d[4] += 1;
    else if (words.includes("DON")) d[1] += 1;
    else if (words.includes("ERR")) d[3] += 1;
    else if (words.includes("RUN")) d[2] += t.percent || 0;
    sums.set(t.block_id, d);
  }
  for (const section of parent.querySelectorAll("section.block")) {
    const [n, done, run, err, skip] = sums.get(Number(section.dataset.block)) || [0, 0, 0, 0, 0];
    const sig = `${n} ${done} ${run} ${err} ${skip}`;
    const place = section.querySelector(".block-progress");
    if (place._sig === sig) continue;
    place._sig = sig;
    const total = n || 1;
    place.replaceChildren(segments([["done", done / total], ["run", run / 100 / total], ["err", err / total], ["skip", skip / total]],
      `${done + skip}/${n} ${Math.floor((100 * (done + run / 100)) / total)}%`));
  }
}

VIEWS.job = jobView;
