// The server this page talks to, in the header: which afserver is active and since when, the
// standbys connected to its PostgreSQL store, or that this one is a standby and which is
// active; and a store that cannot write. Read from /api/farm/stat on load, on every
// reconnect of the live stream and every 30 s (a takeover changes it without any job change).
"use strict";

(() => {
  const el = document.getElementById("af-server");
  if (!el) return;

  const since = (t) => {
    const d = new Date(t * 1000);
    return d.toDateString() === new Date().toDateString() ? d.toLocaleTimeString() : d.toLocaleString();
  };

  function describe(store) {
    const server = store.server || {};
    const parts = [];
    if (server.backend === "postgresql") {
      const standbys = (server.standbys || []).map((s) => s.server);
      parts.push(`active: ${server.name} since ${since(server.active_since)}`);
      parts.push(standbys.length ? `standby: ${standbys.join(", ")}` : "no standby");
    } else if (server.name) {
      parts.push(server.name);
    }
    if (store.state && store.state !== "ok") parts.push(`store DEGRADED: ${store.error || store.state}`);
    return parts.join(" · ");
  }

  async function show() {
    try {
      const stat = await api("GET", "/api/farm/stat");
      const store = (stat.scheduler || {}).store || {};
      el.textContent = describe(store);
      el.className = store.state && store.state !== "ok" ? "server warn" : "server";
      el.title = `${el.textContent}\n(the afserver this page talks to; afcmd stat says the same)`;
    } catch (err) {
      // A standby refuses with "standby, active is afserver@host:port (since …)".
      el.textContent = err.message;
      el.title = err.message;
      el.className = "server warn";
    }
  }

  show();
  setInterval(show, 30000);
  const live = document.getElementById("af-live");
  if (live) {
    new MutationObserver(() => { if (live.classList.contains("on")) show(); })
      .observe(live, { attributes: true, attributeFilter: ["class"] });
  }
})();
