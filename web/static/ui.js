// Afanasy monitor, the page's parts that know nothing of the farm: elements, bars, times,
// the page's own dialogs and menus, toasts, and the virtual table with sorting, selection
// and keyboard use. Plain classic script (its functions are globals monitor.js uses).
"use strict";

// --- elements ----------------------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const clamp = (x, lo, hi) => Math.max(lo, Math.min(hi, x));

function bar(percent, label, cls) {
  const p = clamp(Math.round(percent || 0), 0, 100);
  return h("div", { class: `bar ${cls || ""}`, title: label || `${p}%` },
    h("div", { class: "fill", style: `width:${p}%` }), h("span", {}, label || `${p}%`));
}

// A bar of parts side by side, each [class, fraction of the whole]: done, running (their
// percents counted), error, skipped. data-progress is the filled fraction (done + running).
function segments(parts, label, title) {
  let left = 0;
  const fills = [];
  for (const [cls, fraction] of parts) {
    const w = clamp(fraction * 100, 0, 100 - left);
    if (w <= 0) continue;
    fills.push(h("div", { class: `seg ${cls}`, style: `left:${left.toFixed(2)}%;width:${w.toFixed(2)}%` }));
    left += w;
  }
  const filled = parts.filter(([c]) => c === "done" || c === "run").reduce((s, [, f]) => s + f, 0);
  return h("div", { class: "bar", title: title || label, dataset: { progress: filled.toFixed(4) } },
    fills, h("span", {}, label));
}

// --- times -------------------------------------------------------------------------------

function duration(sec) {
  if (!(sec > 0)) return "";
  sec = Math.round(sec);
  const d = Math.floor(sec / 86400), hh = Math.floor((sec % 86400) / 3600);
  const m = Math.floor((sec % 3600) / 60), s = sec % 60;
  const two = (n) => String(n).padStart(2, "0");
  if (d) return `${d}d ${two(hh)}h`;
  if (hh) return `${hh}h ${two(m)}m`;
  if (m) return `${m}m ${two(s)}s`;
  return `${s}s`;
}

function when(ts) {
  if (!ts) return "";
  const d = new Date(ts * 1000);
  const today = new Date().toDateString() === d.toDateString();
  return today ? d.toLocaleTimeString([], { hour12: false })
    : d.toLocaleString([], { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false });
}

const now = () => Date.now() / 1000;

// --- toasts ------------------------------------------------------------------------------

function toast(text, error) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.className = error ? "toast error" : "toast";
  el.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { el.hidden = true; }, error ? 8000 : 3000);
}

// --- the page's own dialogs (never window.prompt/confirm) ----------------------------------
// One <dialog>: modal, Escape cancels (the browser's own cancel), focus stays inside.

function dialog({ text, items = [], fields = [], ok = "OK", danger = false }) {
  const box = document.getElementById("modal");
  document.getElementById("modal-text").textContent = text;
  const list = document.getElementById("modal-list");
  const shown = items.slice(0, 12);
  list.replaceChildren(...shown.map((t) => h("li", {}, t)),
    ...(items.length > shown.length ? [h("li", { class: "note" }, `and ${items.length - shown.length} more`)] : []));
  list.hidden = !items.length;
  const form = document.getElementById("modal-fields");
  const inputs = fields.map((f) => h("input", { name: f.name, value: f.value ?? "", type: f.type || "text",
    placeholder: f.placeholder || "", autocomplete: "off" }));
  form.replaceChildren(...fields.map((f, i) => h("label", {}, f.label, inputs[i])));
  const okButton = document.getElementById("modal-ok");
  okButton.textContent = ok;
  okButton.className = danger ? "danger" : "primary";
  return new Promise((resolve) => {
    const done = (answer) => {
      box.onclose = null;
      if (box.open) box.close();
      box.hidden = true;
      resolve(answer);
    };
    const accept = () => done(fields.length ? Object.fromEntries(inputs.map((i) => [i.name, i.value.trim()])) : true);
    okButton.onclick = accept;
    document.getElementById("modal-cancel").onclick = () => done(null);
    form.onsubmit = (e) => { e.preventDefault(); accept(); };
    box.onclose = () => done(null); // Escape
    box.hidden = false;
    box.showModal();
    (inputs[0] || (danger ? document.getElementById("modal-cancel") : okButton)).focus();
    if (inputs[0]) inputs[0].select();
  });
}

const confirmed = (text, items = [], ok = "Confirm") => dialog({ text, items, ok, danger: true }).then(Boolean);

async function ask(text, value, placeholder) {
  const answer = await dialog({ text, fields: [{ name: "v", label: "", value, placeholder }] });
  return answer ? answer.v : null;
}

// --- menus, kept on screen ---------------------------------------------------------------

function menu(event, items, title) {
  event.preventDefault();
  event.stopPropagation();
  const el = document.getElementById("menu");
  el.replaceChildren(...(title ? [h("div", { class: "menu-title" }, title)] : []),
    ...items.filter(Boolean).map(([label, run, danger]) =>
      h("button", { class: danger ? "danger" : "", onclick: () => { closeMenu(); run(); } }, label)));
  el.hidden = false;
  let x = event.clientX, y = event.clientY;
  if (!x && !y && event.target && event.target.getBoundingClientRect) { // from the keyboard
    const r = event.target.getBoundingClientRect();
    x = r.left; y = r.bottom;
  }
  const w = el.offsetWidth, hh = el.offsetHeight;
  x = clamp(x, 4, Math.max(4, innerWidth - w - 4));
  y = y + hh > innerHeight - 4 ? Math.max(4, y - hh) : y;
  el.style.left = `${x}px`;
  el.style.top = `${y}px`;
  menu.opener = document.activeElement;
  const first = el.querySelector("button");
  if (first) first.focus({ preventScroll: true });
}

function closeMenu() {
  const el = document.getElementById("menu");
  if (el.hidden) return false;
  el.hidden = true;
  if (menu.opener && menu.opener.focus) menu.opener.focus({ preventScroll: true });
  return true;
}

document.addEventListener("click", (e) => {
  if (!e.target.closest || !e.target.closest("#menu")) closeMenu();
});
document.addEventListener("keydown", (e) => {
  const el = document.getElementById("menu");
  if (!el || el.hidden) return;
  const buttons = [...el.querySelectorAll("button")];
  const at = buttons.indexOf(document.activeElement);
  if (e.key === "Escape") { closeMenu(); e.preventDefault(); e.stopImmediatePropagation(); }
  else if (e.key === "ArrowDown" || e.key === "ArrowUp") {
    const step = e.key === "ArrowDown" ? 1 : -1;
    buttons[(at + step + buttons.length) % buttons.length].focus();
    e.preventDefault(); e.stopImmediatePropagation();
  }
}, true);

// --- a table that draws only the rows in view (thousands of jobs or renders) ---------------
// Rows are keyed: a redraw moves and patches the row elements already on screen (only the
// cells whose content changed are replaced), so a click that starts on a row ends on the
// same element even while live changes flow, and the browser keeps hover and focus.
// Selection: click opens (and selects), Ctrl/Cmd-click toggles, Shift-click selects a range;
// the keyboard moves a cursor (arrows, Shift extends), Space toggles, Enter opens.

function cellSignature(value) {
  return value instanceof Node ? value.outerHTML ?? value.textContent : String(value ?? "");
}

class VirtualTable {
  constructor(parent, columns, { rowHeight = 26, onOpen, onMenu, onSort, sort, id } = {}) {
    this.rowHeight = rowHeight;
    this.onOpen = onOpen;
    this.onMenu = onMenu;
    this.onSort = onSort;
    this.sort = sort || "";
    this.rows = [];
    this.index = new Map(); // key -> position in rows
    this.byKey = new Map(); // key -> row (data), for the delegated events
    this.drawn = new Map(); // key -> row element on screen
    this.selected = new Set();
    this.cursor = null;
    this.anchor = null;
    this.head = h("div", { class: "vt-head" });
    this.body = h("div", { class: "vt-body", tabindex: "0" });
    this.spacer = h("div", { class: "vt-spacer" });
    this.body.append(this.spacer);
    this.el = h("div", { class: "vt", id: id || undefined }, this.head, this.body);
    parent.append(this.el);
    this.setColumns(columns);
    this.body.addEventListener("scroll", () => this.draw());
    this.head.addEventListener("click", (e) => {
      const cell = e.target.closest(".vt-cell");
      const column = cell && this.columns.find((c) => c.key === cell.dataset.col);
      if (!column || column.sortable === false || !this.onSort) return;
      this.sort = this.sort === column.key ? `-${column.key}` : column.key;
      this.onSort(this.sort);
      this.drawHead();
    });
    const rowOf = (event) => {
      const el = event.target.closest(".vt-row");
      return el ? this.byKey.get(el.dataset.key) : undefined;
    };
    this.body.addEventListener("click", (e) => {
      const row = rowOf(e);
      if (!row) return;
      const key = String(row._key);
      if (e.target.closest(".row-menu")) { // the visible action button (phones)
        if (!this.selected.has(key)) this.selectOnly(key);
        if (this.onMenu) this.onMenu(e, row);
        return;
      }
      if (e.target.closest("a")) return;
      if (e.shiftKey) this.selectRange(this.anchor ?? key, key);
      else if (e.ctrlKey || e.metaKey) this.toggle(key);
      else {
        this.selectOnly(key);
        if (this.onOpen) this.onOpen(row, e);
      }
    });
    this.body.addEventListener("contextmenu", (e) => {
      const row = rowOf(e);
      if (!row || !this.onMenu) return;
      if (!this.selected.has(String(row._key))) this.selectOnly(String(row._key));
      this.onMenu(e, row);
    });
  }

  setColumns(columns) {
    this.columns = columns;
    for (const el of this.drawn.values()) el.remove();
    this.drawn.clear();
    this.drawHead();
    this.draw();
  }

  drawHead() {
    const [key, down] = this.sort.startsWith("-") ? [this.sort.slice(1), true] : [this.sort, false];
    this.head.replaceChildren(...this.columns.map((c) => h("div", {
      class: `vt-cell ${c.cls || ""} ${c.sortable === false ? "" : "sortable"}`,
      style: `flex:${c.flex || 1}`, dataset: { col: c.key }, title: c.sortable === false ? c.title : `sort by ${c.title}`,
      "aria-sort": c.key === key ? (down ? "descending" : "ascending") : undefined,
    }, c.title, c.key === key ? (down ? " ▼" : " ▲") : "")));
  }

  setRows(rows) {
    this.rows = rows;
    this.byKey = new Map(rows.map((r) => [String(r._key), r]));
    this.index = new Map(rows.map((r, i) => [String(r._key), i]));
    for (const key of this.selected) if (!this.byKey.has(key)) this.selected.delete(key);
    this.draw();
  }

  selection() {
    return this.rows.filter((r) => this.selected.has(String(r._key)));
  }

  changed() {
    this.draw();
    if (this.onSelect) this.onSelect(this.selection());
  }

  selectOnly(key) {
    this.selected = new Set(key === null ? [] : [key]);
    this.cursor = this.anchor = key;
    this.changed();
  }

  toggle(key) {
    if (this.selected.has(key)) this.selected.delete(key);
    else this.selected.add(key);
    this.cursor = this.anchor = key;
    this.changed();
  }

  selectRange(from, to) {
    const a = this.index.get(from) ?? this.index.get(to), b = this.index.get(to);
    if (b === undefined) return;
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    this.selected = new Set(this.rows.slice(lo, hi + 1).map((r) => String(r._key)));
    this.anchor = from;
    this.cursor = to;
    this.changed();
  }

  selectAll() {
    this.selected = new Set(this.rows.map((r) => String(r._key)));
    this.changed();
  }

  moveCursor(step, extend) {
    if (!this.rows.length) return;
    const at = this.index.get(this.cursor ?? "");
    const next = clamp(at === undefined ? (step > 0 ? 0 : this.rows.length - 1) : at + step, 0, this.rows.length - 1);
    const key = String(this.rows[next]._key);
    if (extend) this.selectRange(this.anchor ?? key, key);
    else this.selectOnly(key);
    this.reveal(next);
  }

  reveal(i) {
    const top = i * this.rowHeight, body = this.body;
    if (top < body.scrollTop) body.scrollTop = top;
    else if (top + this.rowHeight > body.scrollTop + body.clientHeight) {
      body.scrollTop = top + this.rowHeight - body.clientHeight;
    }
    this.draw();
  }

  /** The keys of the table's keyboard use; true when the key was the table's. */
  key(e) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      this.moveCursor(e.key === "ArrowDown" ? 1 : -1, e.shiftKey);
    } else if (e.key === "PageDown" || e.key === "PageUp") {
      const page = Math.max(1, Math.floor(this.body.clientHeight / this.rowHeight) - 1);
      this.moveCursor(e.key === "PageDown" ? page : -page, e.shiftKey);
    } else if (e.key === "Home" || e.key === "End") {
      this.moveCursor(e.key === "Home" ? -this.rows.length : this.rows.length, e.shiftKey);
    } else if (e.key === " " && this.cursor !== null) {
      this.toggle(this.cursor);
    } else if (e.key === "Enter" && this.cursor !== null && this.byKey.has(this.cursor)) {
      if (this.onOpen) this.onOpen(this.byKey.get(this.cursor), e);
    } else if ((e.key === "a" || e.key === "A") && (e.ctrlKey || e.metaKey)) {
      this.selectAll();
    } else if (e.key === "Escape" && this.selected.size) {
      this.selectOnly(null);
    } else if ((e.key === "ContextMenu" || (e.key === "F10" && e.shiftKey)) && this.onMenu && this.selected.size) {
      const el = this.drawn.get(this.cursor) || this.body;
      this.onMenu({ preventDefault() {}, stopPropagation() {}, target: el, clientX: 0, clientY: 0 }, this.byKey.get(this.cursor) || this.selection()[0]);
    } else {
      return false;
    }
    return true;
  }

  rowElement(key) {
    const el = h("div", { class: "vt-row", dataset: { key } },
      this.columns.map((c) => h("div", { class: `vt-cell ${c.cls || ""}`, style: `flex:${c.flex || 1}`, dataset: { col: c.key } })));
    el.style.height = `${this.rowHeight}px`;
    return el;
  }

  patch(el, row, index) {
    const top = `${index * this.rowHeight}px`;
    if (el.style.top !== top) el.style.top = top;
    const key = String(row._key);
    const cls = `vt-row ${row._cls || ""}${this.selected.has(key) ? " sel" : ""}${this.cursor === key ? " cur" : ""}`.trim();
    if (el.className !== cls) {
      el.className = cls;
      el.setAttribute("aria-selected", this.selected.has(key) ? "true" : "false");
    }
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
    this.el.dataset.selected = String(this.selected.size);
  }
}

// --- the shortcuts overlay (?) -----------------------------------------------------------

const SHORTCUTS = [
  ["↑ ↓, PgUp PgDn, Home End", "move (Shift: extend the selection)"],
  ["click", "open (and select)"], ["Ctrl/⌘-click", "add to or take from the selection"],
  ["Shift-click", "select a range"], ["Space", "select or unselect the row"],
  ["Ctrl/⌘-A", "select all rows shown"], ["Enter", "open"],
  ["Delete", "delete the selection (asks first)"], ["Shift-F10, Menu key", "actions of the selection"],
  ["/", "search"], ["Escape", "close a menu or dialog, clear the selection"], ["?", "this help"],
];

function shortcuts() {
  const box = document.getElementById("help");
  if (!box.open) {
    box.replaceChildren(h("h2", {}, "Keyboard"),
      h("table", {}, SHORTCUTS.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v)))),
      h("form", { method: "dialog" }, h("button", {}, "Close")));
    box.showModal();
  }
}

function typing(e) {
  const t = e.target;
  return t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName));
}
