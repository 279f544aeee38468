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
  const timeLine = h("div", { id: "job-times" });
  const why = h("p", { id: "job-why", class: "note" });
  const blocks = h("div", { id: "blocks" });
  const panel = h("div", { id: "task-panel", class: "panel", hidden: "" });
  view.append(head, timeLine, why, blocks, panel);
  setInterval(redraw, 1000); // running for, ETA
  af.draw = () => {
    const job = af.job;
    if (!job) return;
    document.getElementById("title").textContent = `${job.name} (job ${job.id})${job.deleted ? " · deleted" : ""}`;
    const sig = JSON.stringify(job, (k, v) => (k === "blocks" ? undefined : v));
    if (head._sig !== sig) {
      head._sig = sig;
      head.replaceChildren(
        h("span", { id: "job-state", class: "state" }, job.state), " ", jobBar(job),
        ` user ${job.user_name} · priority ${job.priority} · running ${job.tasks_running} · errors ${job.tasks_error} `,
        h("button", { id: "job-menu", onclick: (e) => jobMenu(e, job) }, "Job ▾"));
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
  const sums = new Map(); // block -> [tasks, done, running percent, error, skipped]
  for (const t of af.tasks) {
    if (t.cell && t.cell.dataset.state !== t.state) {
      t.cell.dataset.state = t.state;
      t.cell.className = `task ${stateClass(t.state)}${af.selected && af.selected === t ? " picked" : ""}`;
      t.cell.title = `${t.name}: ${t.state}`;
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
