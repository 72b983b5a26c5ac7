// The console's dashboard: reads /api/v1/status every 2 s and draws it;
// admins' buttons post server actions to the same API with the session's
// CSRF token. Every value goes in with textContent, never as HTML.
"use strict";

const REFRESH_MS = 2000;
const csrf = document.querySelector('meta[name="lbd-csrf"]').content;
const role = document.querySelector('meta[name="lbd-role"]').content;
const isAdmin = role === "admin";
let shape = "";

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function badgeClass(word) {
  switch (word) {
    case "UP": case "MASTER": case "OPEN": return "badge ok";
    case "DRAIN": case "BACKUP": case "INIT": return "badge warn";
    case "MAINT": case "STOP": return "badge info";
    default: return "badge bad";
  }
}

function ago(seconds) {
  const s = Number(seconds) || 0;
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min";
  if (s < 86400) return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  return Math.floor(s / 86400) + " d " + Math.floor((s % 86400) / 3600) + " h";
}

function showError(text) {
  const e = document.getElementById("error");
  e.textContent = text;
  e.hidden = !text;
}

function drawVrrp(node) {
  document.getElementById("node-name").textContent = node.hostname;
  document.title = node.hostname + " - lbd appliance";
  const state = document.getElementById("vrrp-state");
  const first = node.vrrp[0];
  state.textContent = first ? first.state : "no VRRP";
  state.className = first ? badgeClass(first.state) : "badge info";
  const body = document.querySelector("#vrrp tbody");
  body.replaceChildren();
  if (node.vrrp.length === 0) {
    const tr = el("tr");
    const td = el("td", "No VRRP instance is configured on this node.", "muted");
    td.colSpan = 6;
    tr.append(td);
    body.append(tr);
  }
  for (const v of node.vrrp) {
    const tr = el("tr");
    tr.dataset.instance = v.instance;
    tr.append(el("td", v.instance + " (" + v.interface + ", VRID " + v.vrid + ")"));
    const st = el("td");
    st.append(el("span", v.state, badgeClass(v.state)));
    tr.append(st);
    tr.append(el("td", v.priority + " / " + v.configured_priority));
    tr.append(el("td", v.virtual_ips.join(", ")));
    tr.append(el("td", v.transitions));
    tr.append(el("td", ago(v.for_s) + " ago: " + v.reason));
    body.append(tr);
  }
}

function serverRow(s) {
  const tr = el("tr");
  tr.dataset.server = s.backend + "/" + s.server;
  tr.append(el("td", s.server + (s.backup ? " (backup)" : ""), "name"));
  tr.append(el("td", s.address, "address"));
  const st = el("td", null, "state-cell");
  st.append(el("span", s.status, "state " + badgeClass(s.status)));
  tr.append(st);
  tr.append(el("td", null, "admin"));
  tr.append(el("td", null, "weight"));
  tr.append(el("td", null, "active"));
  tr.append(el("td", null, "total"));
  tr.append(el("td", null, "check"));
  tr.append(el("td", null, "for"));
  const actions = el("td", null, "actions");
  if (isAdmin) {
    for (const action of ["ready", "drain", "maint"]) {
      const b = el("button", action);
      b.type = "button";
      b.dataset.action = action;
      b.addEventListener("click", () => act(tr.dataset.server, action));
      actions.append(b);
    }
  }
  tr.append(actions);
  return tr;
}

function fillRow(tr, s) {
  const state = tr.querySelector(".state");
  state.textContent = s.status;
  state.className = "state " + badgeClass(s.status);
  tr.querySelector(".admin").textContent = s.admin + (s.agent_admin !== "ready" ? " (agent: " + s.agent_admin + ")" : "");
  tr.querySelector(".weight").textContent = s.weight === s.config_weight ? s.weight : s.weight + " (config " + s.config_weight + ")";
  tr.querySelector(".active").textContent = s.active + (s.maxconn ? " / " + s.maxconn : "");
  tr.querySelector(".total").textContent = s.total;
  tr.querySelector(".check").textContent = s.last_check;
  tr.querySelector(".for").textContent = ago(s.for_s);
  for (const b of tr.querySelectorAll("button[data-action]")) {
    b.disabled = b.dataset.action === s.admin;
  }
}

function drawServices(status) {
  const body = document.querySelector("#services tbody");
  const servedBy = {};
  for (const f of status.frontends) {
    for (const b of f.backends) (servedBy[b] = servedBy[b] || []).push(f);
  }
  const now = JSON.stringify(status.backends.map(b => [b.backend, b.servers.map(s => s.server)]));
  if (now !== shape) {
    shape = now;
    body.replaceChildren();
    if (status.backends.length === 0) {
      const tr = el("tr");
      const td = el("td", "No service is configured yet: add frontends and backends to lbd's config.", "muted");
      td.colSpan = 10;
      tr.append(td);
      body.append(tr);
    }
    for (const b of status.backends) {
      const head = el("tr", null, "group");
      head.dataset.backend = b.backend;
      const th = el("th");
      th.colSpan = 10;
      head.append(th);
      body.append(head);
      for (const s of b.servers) body.append(serverRow(s));
    }
  }
  for (const b of status.backends) {
    const th = body.querySelector('tr.group[data-backend="' + CSS.escape(b.backend) + '"] th');
    if (th) {
      const fronts = (servedBy[b.backend] || []).map(f => f.frontend + " " + f.bind.join(", ") + " " + f.status);
      th.textContent = b.backend + " - " + b.balance + ", " + b.usable + " of " + b.servers.length + " servers usable" +
        (fronts.length ? " - frontend " + fronts.join("; ") : "");
    }
    for (const s of b.servers) {
      const tr = body.querySelector('tr[data-server="' + CSS.escape(s.backend + "/" + s.server) + '"]');
      if (tr) fillRow(tr, s);
    }
  }
}

async function refresh() {
  try {
    const r = await fetch("/api/v1/status", { headers: { "Accept": "application/json" } });
    if (r.status === 401) {
      window.location.assign("/login");
      return;
    }
    if (!r.ok) throw new Error("status: HTTP " + r.status);
    const status = await r.json();
    drawVrrp(status.node);
    drawServices(status);
    document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
  } catch (e) {
    document.getElementById("updated").textContent = "not updated: " + e.message;
  }
}

async function act(server, action) {
  const slash = server.indexOf("/");
  const path = "/api/v1/servers/" + encodeURIComponent(server.slice(0, slash)) + "/" + encodeURIComponent(server.slice(slash + 1));
  try {
    const r = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ state: action }),
    });
    if (r.ok) {
      showError("");
    } else {
      let text = "HTTP " + r.status;
      try {
        const e = await r.json();
        text = e.error + (e.fix ? " - " + e.fix : "");
      } catch (_) { /* not JSON: keep the status */ }
      showError(server + " " + action + " refused: " + text);
    }
  } catch (e) {
    showError(server + " " + action + " failed: " + e.message);
  }
  refresh();
}

// The charts change every 10 s (lbd's history step): fetched that often.
async function refreshCharts() {
  try {
    const r = await fetch("/api/v1/history", { headers: { "Accept": "application/json" } });
    if (!r.ok) return;
    drawCharts(document.getElementById("charts"), await r.json(), Date.now() / 1000);
  } catch (_) { /* the status line already says when lbd cannot be reached */ }
}

if (!isAdmin) document.body.classList.add("read-only");
refresh();
setInterval(refresh, REFRESH_MS);
refreshCharts();
setInterval(refreshCharts, 10000);
