// The jobs view: a sortable, filterable table of every job; the view (search, filters,
// sort) lives in the URL, so a link shows the same view; the columns shown are remembered.
"use strict";

const SYSTEM_JOB_ID = 1; // its tasks are slots fed by queues: its progress means nothing
const JOB_STATES = ["RUN", "RDY", "ERR", "OFF", "DON", "WDP", "WTM", "SKP"];
// Most important first: a row's colour is its first state found here.
const STATE_RANK = ["ERR", "RUN", "OFF", "WDP", "WTM", "RDY", "DON"];

function topState(state) {
  const words = (state || "").split(" ");
  return STATE_RANK.find((s) => words.includes(s)) || words[0] || "";
}

// --- search: a substring, or /a regular expression/ -------------------------------------
// The server matches users' patterns with RE2 (linear time); a browser's RegExp
// backtracks, so a pattern RE2 would refuse (back-references, look-arounds) or one that
// can take exponential time (a quantified group that holds a quantifier) is refused here
// with a message rather than run.

function regexRefusal(source) {
  if (source.length > 200) return "longer than 200 characters";
  if (/\\[1-9]|\\k</.test(source)) return "back-references are not supported (RE2)";
  if (/\(\?<?[=!]/.test(source)) return "look-arounds are not supported (RE2)";
  const groups = [false]; // per open group: holds a quantifier
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === "\\") { i++; continue; }
    if (inClass) { if (c === "]") inClass = false; continue; }
    if (c === "[") inClass = true;
    else if (c === "(") groups.push(false);
    else if (c === ")") {
      const quantified = groups.pop();
      if (!groups.length) return "unbalanced parenthesis";
      const next = source[i + 1];
      if (quantified && (next === "*" || next === "+" || next === "{")) {
        return "a repeated group that repeats inside, like (a+)+, can take exponential time";
      }
      if (quantified || next === "*" || next === "+" || next === "{") groups[groups.length - 1] = true;
    } else if (c === "*" || c === "+" || c === "{" || c === "?") groups[groups.length - 1] = true;
  }
  return null;
}

/** What the search text matches: {test(name), error}. */
function nameMatcher(text) {
  const q = (text || "").trim();
  if (!q) return { test: () => true, error: "" };
  const regex = q.match(/^\/(.*)\/([i]?)$/s);
  if (!regex) {
    const low = q.toLowerCase();
    return { test: (name) => name.toLowerCase().includes(low), error: "" };
  }
  const refusal = regexRefusal(regex[1]);
  if (refusal) return { test: () => false, error: `regex refused: ${refusal}` };
  try {
    const re = new RegExp(regex[1], regex[2]);
    return { test: (name) => re.test(name), error: "" };
  } catch (err) {
    return { test: () => false, error: `bad regex: ${err.message.replace(/^Invalid regular expression: /, "")}` };
  }
}

/** "RUN,-DON" -> {include: [RUN], exclude: [DON]}. */
function choice(text) {
  const words = (text || "").split(",").map((w) => w.trim()).filter(Boolean);
  return {
    include: words.filter((w) => !w.startsWith("-")),
    exclude: words.filter((w) => w.startsWith("-")).map((w) => w.slice(1)).filter(Boolean),
  };
}

function jobFilter({ q, state, user }) {
  const name = nameMatcher(q);
  const states = choice(state), users = choice(user);
  const userIs = (u, list) => list.some((w) => u.toLowerCase().includes(w.toLowerCase()));
  return {
    error: name.error,
    test: (j) => {
      const words = j.state.split(" ");
      if (states.include.length && !states.include.some((s) => words.includes(s))) return false;
      if (states.exclude.some((s) => words.includes(s))) return false;
      if (users.include.length && !userIs(j.user_name, users.include)) return false;
      if (users.exclude.length && userIs(j.user_name, users.exclude)) return false;
      return name.test(j.name);
    },
  };
}

// --- progress and times ----------------------------------------------------------------

function jobParts(j) {
  const n = j.tasks_num || 1;
  const skipped = j.tasks_skipped || 0;
  return [
    ["done", (j.tasks_done - skipped) / n],
    ["run", (j.tasks_running_percent || 0) / 100 / n],
    ["err", j.tasks_error / n],
    ["skip", skipped / n],
  ];
}

function jobFraction(j) {
  return j.tasks_num ? (j.tasks_done - (j.tasks_skipped || 0) + (j.tasks_running_percent || 0) / 100) / j.tasks_num : 1;
}

function jobBar(j) {
  const pct = Math.floor(100 * jobFraction(j));
  return segments(jobParts(j), `${j.tasks_done}/${j.tasks_num} ${pct}%`,
    `${j.tasks_done - (j.tasks_skipped || 0)} done, ${j.tasks_running} running, ${j.tasks_error} error, ${j.tasks_skipped || 0} skipped of ${j.tasks_num}`);
}

const runningFor = (j) => (j.time_started ? (j.time_done || now()) - j.time_started : 0);

// --- columns -----------------------------------------------------------------------------

const JOB_COLUMNS = [
  { key: "id", title: "id", flex: 0.5, value: (j) => j.id },
  { key: "name", title: "name", flex: 3, value: (j) => j.name.toLowerCase() },
  { key: "user", title: "user", flex: 1, value: (j) => j.user_name, draw: (j) => j.user_name },
  { key: "state", title: "state", flex: 1.3, value: (j) => STATE_RANK.indexOf(topState(j.state)) },
  { key: "progress", title: "progress", flex: 3, value: jobFraction, draw: (j) => j.id === SYSTEM_JOB_ID
    ? h("a", { href: "/monitor/system" }, "system job: post commands, events, wakes") : jobBar(j) },
  { key: "priority", title: "priority", flex: 0.7, value: (j) => j.priority },
  { key: "running", title: "running", flex: 0.7, value: (j) => j.tasks_running, draw: (j) => j.tasks_running },
  { key: "errors", title: "errors", flex: 0.7, value: (j) => j.tasks_error, draw: (j) => j.tasks_error },
  { key: "created", title: "created", flex: 1.2, value: (j) => j.time_creation, draw: (j) => when(j.time_creation) },
  { key: "started", title: "started", flex: 1.2, value: (j) => j.time_started, draw: (j) => when(j.time_started) },
  { key: "for", title: "running for", flex: 1, value: runningFor, draw: (j) => duration(runningFor(j)) },
  { key: "done", title: "done", flex: 1.2, value: (j) => j.time_done, draw: (j) => when(j.time_done) },
  { key: "eta", title: "ETA", flex: 0.8, value: (j) => j.eta || Infinity,
    draw: (j) => (j.eta && !j.time_done ? duration(j.eta) : "") },
  { key: "host", title: "host", flex: 1, value: (j) => j.host_name, draw: (j) => j.host_name },
  { key: "menu", title: "", flex: 0.3, sortable: false, cls: "row-act",
    draw: () => h("button", { class: "row-menu", title: "actions", "aria-label": "actions" }, "⋯") },
];
const DEFAULT_COLUMNS = ["id", "name", "user", "state", "progress", "priority", "running", "errors", "started", "for", "eta", "menu"];

function shownColumns() {
  try {
    const keys = JSON.parse(localStorage.getItem("afJobsColumns"));
    if (Array.isArray(keys) && keys.length) return keys.filter((k) => JOB_COLUMNS.some((c) => c.key === k));
  } catch { /* not set or spoilt: the default */ }
  return DEFAULT_COLUMNS;
}

function sorter(sort) {
  const down = sort.startsWith("-");
  const column = JOB_COLUMNS.find((c) => c.key === (down ? sort.slice(1) : sort)) || JOB_COLUMNS[0];
  const sign = down ? -1 : 1;
  return (a, b) => {
    const x = column.value(a), y = column.value(b);
    const c = typeof x === "string" ? x.localeCompare(y) : x - y;
    return sign * c || a.id - b.id;
  };
}

// --- the view's state, in the URL --------------------------------------------------------

function viewState() {
  const p = new URLSearchParams(location.search);
  return { q: p.get("q") || "", state: p.get("state") || "", user: p.get("user") || "", sort: p.get("sort") || "id" };
}

function keepInUrl(state) {
  const p = new URLSearchParams();
  for (const k of ["q", "state", "user"]) if (state[k]) p.set(k, state[k]);
  if (state.sort && state.sort !== "id") p.set("sort", state.sort);
  const query = p.toString();
  history.replaceState(null, "", query ? `${location.pathname}?${query}` : location.pathname);
}

// --- actions on the selection -----------------------------------------------------------

const jobLine = (j) => `${j.id} ${j.name} (${j.user_name}, ${j.state})`;

function jobActions(jobs) {
  const ids = { ids: jobs.map((j) => j.id) };
  const what = jobs.length === 1 ? `job ${jobs[0].id}` : `${jobs.length} jobs`;
  const op = (type, label) => [label, () => act("jobs", { ...ids, operation: { type } }, `${label} ${what}`)];
  const param = (key, label, text, value) => [`${label}…`, async () => {
    const answer = await ask(`${label} of ${what} ${text}`, value);
    if (answer === null) return;
    if (key !== "hosts_mask" && !/^-?\d+$/.test(answer)) { toast(`${label}: '${answer}' is not a whole number`, true); return; }
    act("jobs", { ...ids, params: { [key]: key === "hosts_mask" ? answer : Number(answer) } }, label);
  }];
  const one = jobs.length === 1 ? jobs[0] : {};
  return [
    jobs.length === 1 ? ["Open", () => { location.href = `/monitor/jobs/${one.id}`; }] : null,
    op("pause", "Pause"), op("start", "Start"), op("stop", "Stop"),
    op("restart_errors", "Restart errors"), op("restart_running", "Restart running"),
    ["Restart all tasks…", async () => {
      if (await confirmed(`Restart every task of ${what}?`, jobs.map(jobLine), "Restart")) {
        act("jobs", { ...ids, operation: { type: "restart" } }, `Restart ${what}`);
      }
    }, true],
    param("priority", "Priority", "(0-250)", one.priority ?? ""),
    param("max_running_tasks", "Max running tasks", "(-1: no limit)", one.max_running_tasks ?? ""),
    param("hosts_mask", "Hosts mask", "(regular expression, empty: any)", one.hosts_mask ?? ""),
    ["Delete…", () => deleteJobs(jobs), true],
  ];
}

async function deleteJobs(jobs) {
  if (!jobs.length) return;
  const what = jobs.length === 1 ? `job ${jobs[0].id} '${jobs[0].name}'` : `these ${jobs.length} jobs`;
  if (await confirmed(`Delete ${what}? Their running tasks are stopped.`, jobs.map(jobLine), "Delete")) {
    act("jobs", { ids: jobs.map((j) => j.id), operation: { type: "delete" } }, `Delete ${jobs.length === 1 ? "job" : `${jobs.length} jobs`}`);
  }
}

function jobMenu(event, job) {
  const selected = af.table && af.table.selected.has(String(job.id)) ? af.table.selection() : [job];
  const jobs = selected.filter((j) => j.id !== SYSTEM_JOB_ID || selected.length === 1);
  menu(event, jobActions(jobs), jobs.length > 1 ? `${jobs.length} jobs selected` : `job ${job.id}`);
}

// --- the view ----------------------------------------------------------------------------

function jobsView(view) {
  const state = viewState();
  const search = h("input", { id: "filter-q", type: "search", value: state.q, placeholder: "name, or /regex/",
    title: "a part of the name, or a regular expression between slashes: /^shot_0[1-4]/", autocomplete: "off" });
  const user = h("input", { id: "filter-user", value: state.user, placeholder: "any user", list: "known-users",
    title: "names, comma separated; -name excludes (alice,bob or -render)", autocomplete: "off", size: 12 });
  const users = h("datalist", { id: "known-users" });
  const chosen = choice(state.state);
  const chips = JOB_STATES.map((s) => h("button", { type: "button", class: "chip", dataset: { state: s,
    mode: chosen.include.includes(s) ? "in" : chosen.exclude.includes(s) ? "out" : "" },
  title: `${s}: click to show only, again to hide, again for any` }, s));
  const message = h("span", { id: "filter-error", class: "error", role: "status" });
  const count = h("span", { id: "jobs-count", class: "note" });
  const actions = h("button", { id: "jobs-actions", type: "button", disabled: true }, "Selection ▾");
  const columnsButton = h("button", { id: "jobs-columns", type: "button" }, "Columns ▾");
  view.append(h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
    search, h("span", { class: "chips", id: "filter-state" }, chips), user, users, message,
    h("span", { class: "spacer" }), count, actions, columnsButton));

  const columns = () => shownColumns().map((k) => JOB_COLUMNS.find((c) => c.key === k)).filter(Boolean);
  const open = (job) => { location.href = job.id === SYSTEM_JOB_ID ? "/monitor/system" : `/monitor/jobs/${job.id}`; };
  const table = new VirtualTable(view, columns(), { id: "jobs-table", onOpen: open, onMenu: jobMenu, sort: state.sort,
    onSort: (sort) => { state.sort = sort; changed(); } });
  af.table = table;
  table.onSelect = (rows) => {
    actions.disabled = !rows.length;
    actions.textContent = rows.length ? `${rows.length} selected ▾` : "Selection ▾";
  };
  actions.addEventListener("click", (e) => {
    const rows = table.selection();
    if (rows.length) menu(e, jobActions(rows), `${rows.length} jobs selected`);
  });
  af.deleteSelection = (rows) => deleteJobs(rows.filter((j) => j.id !== SYSTEM_JOB_ID));
  af.focusSearch = () => search.focus();

  const changed = () => {
    state.q = search.value;
    state.user = user.value.trim();
    state.state = chips.filter((c) => c.dataset.mode)
      .map((c) => (c.dataset.mode === "out" ? `-${c.dataset.state}` : c.dataset.state)).join(",");
    keepInUrl(state);
    redraw();
  };
  search.addEventListener("input", changed);
  user.addEventListener("input", changed);
  for (const chip of chips) {
    chip.addEventListener("click", () => {
      chip.dataset.mode = { "": "in", in: "out", out: "" }[chip.dataset.mode || ""];
      changed();
    });
  }
  columnsButton.addEventListener("click", async () => {
    const shown = new Set(shownColumns());
    const boxes = JOB_COLUMNS.filter((c) => c.title).map((c) =>
      h("label", { class: "col-choice" }, h("input", { type: "checkbox", name: c.key, checked: shown.has(c.key) }), ` ${c.title}`));
    const form = h("div", { id: "columns-form" }, boxes);
    document.getElementById("modal-fields").after(form);
    const ok = await dialog({ text: "Columns to show (remembered in this browser)", ok: "Show" });
    form.remove();
    if (!ok) return;
    const keys = JOB_COLUMNS.filter((c) => !c.title || boxes.find((b) => b.querySelector("input").name === c.key)
      .querySelector("input").checked).map((c) => c.key);
    localStorage.setItem("afJobsColumns", JSON.stringify(keys));
    table.setColumns(columns());
    redraw();
  });

  af.wants = (change) => Boolean(change.jobs || change.jobs_deleted);
  let knownUsers = "";
  af.draw = () => {
    const filter = jobFilter(state);
    message.textContent = filter.error;
    search.classList.toggle("bad", Boolean(filter.error));
    const rows = [...af.jobs.values()].filter(filter.test).sort(sorter(state.sort))
      .map((j) => ({ ...j, _key: j.id, _cls: `s-${topState(j.state)}` }));
    table.setRows(rows);
    count.textContent = `${rows.length} of ${af.jobs.size} jobs`;
    const names = [...new Set([...af.jobs.values()].map((j) => j.user_name))].sort().join("\n");
    if (names !== knownUsers) {
      knownUsers = names;
      users.replaceChildren(...names.split("\n").filter(Boolean).map((n) => h("option", { value: n })));
    }
  };
  // times move on their own: "running for" is redrawn every second
  setInterval(() => { if (table.columns.some((c) => c.key === "for")) redraw(); }, 1000);
  af.load = async () => {
    const data = await api("GET", "/api/farm/jobs");
    af.jobs = new Map(data.jobs.map((j) => [j.id, j]));
    redraw();
  };
}

VIEWS.jobs = jobsView;
