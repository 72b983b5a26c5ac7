// Charts of the console's dashboard, drawn as SVG from /api/v1/history
// (lbd's in-memory history: one point per backend every step_s seconds,
// server state changes, VRRP state changes). No libraries, no inline
// script or style, so the page's CSP stays strict. Everything but
// drawCharts stays inside this function: the dashboard's own script has
// helpers of the same names.
(function () {
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 560;
const HEIGHT = 120;
const PAD = { left: 56, right: 8, top: 8, bottom: 20 };
const STATE_CLASS = { UP: "up", DOWN: "down", DRAIN: "drain", MAINT: "maint" };

function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  if (parent) parent.appendChild(e);
  return e;
}

// 1234567 -> "1.2M": axis labels that fit in PAD.left.
function short(n) {
  const units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [size, unit] of units) {
    if (n >= size) return (n / size).toFixed(n >= 10 * size ? 0 : 1) + unit;
  }
  return n >= 10 || n === 0 ? n.toFixed(0) : n.toFixed(1);
}

function clock(t) {
  const d = new Date(t * 1000);
  return d.toTimeString().slice(0, 5);
}

// The frame every chart shares: time axis from `from` to `to` (Unix s),
// VRRP changes as dashed vertical lines with the new state as tooltip.
function frame(title, from, to, max, marks) {
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img" });
  el("title", {}, svg).textContent = title;
  const x = (t) => PAD.left + ((t - from) / Math.max(1, to - from)) * (WIDTH - PAD.left - PAD.right);
  const y = (v) => HEIGHT - PAD.bottom - (v / (max || 1)) * (HEIGHT - PAD.top - PAD.bottom);
  el("line", { x1: PAD.left, y1: y(0), x2: WIDTH - PAD.right, y2: y(0), class: "axis" }, svg);
  const top = el("text", { x: PAD.left - 4, y: PAD.top + 8, class: "label end" }, svg);
  top.textContent = short(max);
  const zero = el("text", { x: PAD.left - 4, y: y(0), class: "label end" }, svg);
  zero.textContent = "0";
  // The edge labels are anchored inside the chart, not cut at its sides.
  for (const [t, anchor] of [[from, "start"], [(from + to) / 2, "mid"], [to, "end"]]) {
    const label = el("text", { x: x(t), y: HEIGHT - 4, class: `label ${anchor}` }, svg);
    label.textContent = clock(t);
  }
  for (const m of marks) {
    if (m.t < from || m.t > to) continue;
    const line = el("line", { x1: x(m.t), y1: PAD.top, x2: x(m.t), y2: y(0), class: "vrrp-mark" }, svg);
    el("title", {}, line).textContent = `${clock(m.t)} ${m.instance} ${m.state} (${m.reason})`;
  }
  return { svg, x, y };
}

// One line per series of `points` (each picks a number from a point).
function lineChart(title, points, series, from, to, marks) {
  let max = 0;
  for (const p of points) for (const s of series) max = Math.max(max, s.pick(p));
  const { svg, x, y } = frame(title, from, to, max * 1.1, marks);
  for (const s of series) {
    const d = points.map((p, i) => `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(s.pick(p)).toFixed(1)}`).join("");
    if (d) el("path", { d, class: `series ${s.cls}` }, svg);
  }
  const legend = el("text", { x: WIDTH - PAD.right, y: PAD.top + 8, class: "label end" }, svg);
  legend.textContent = series.map((s) => s.name).join(" / ");
  return svg;
}

// Server states as coloured bands from each change to the next.
function timeline(name, changes, from, to) {
  const svg = el("svg", { viewBox: `0 0 ${WIDTH} 18`, class: "timeline", role: "img" });
  el("title", {}, svg).textContent = `${name} state over time`;
  const x = (t) => PAD.left + ((Math.max(t, from) - from) / Math.max(1, to - from)) * (WIDTH - PAD.left - PAD.right);
  const label = el("text", { x: PAD.left - 4, y: 13, class: "label end" }, svg);
  label.textContent = name.split("/")[1] || name;
  changes.forEach((c, i) => {
    const end = i + 1 < changes.length ? changes[i + 1].t : to;
    const band = el("rect", { x: x(c.t), y: 2, width: Math.max(1, x(end) - x(c.t)), height: 14, class: `band ${STATE_CLASS[c.status] || "other"}` }, svg);
    el("title", {}, band).textContent = `${c.status} from ${clock(c.t)}`;
  });
  return svg;
}

// Draws every backend's charts into `container` (emptied first).
window.drawCharts = function (container, view, now) {
  container.replaceChildren();
  const marks = view.vrrp || [];
  let from = now;
  for (const points of Object.values(view.backends)) if (points.length) from = Math.min(from, points[0].t);
  if (from === now) from = now - 60 * view.step_s;
  for (const [backend, points] of Object.entries(view.backends)) {
    const card = document.createElement("section");
    card.className = "chart-card";
    card.dataset.backend = backend;
    const h = document.createElement("h3");
    h.textContent = backend;
    card.appendChild(h);
    card.appendChild(lineChart(`${backend}: connections per second`, points,
      [{ name: "conn/s", cls: "a", pick: (p) => p.connections_per_s },
       { name: "errors/s", cls: "bad", pick: (p) => p.connect_errors_per_s }], from, now, marks));
    card.appendChild(lineChart(`${backend}: bytes per second`, points,
      [{ name: "in B/s", cls: "a", pick: (p) => p.bytes_in_per_s },
       { name: "out B/s", cls: "b", pick: (p) => p.bytes_out_per_s }], from, now, marks));
    for (const [server, changes] of Object.entries(view.servers)) {
      if (server.startsWith(backend + "/")) card.appendChild(timeline(server, changes, from, now));
    }
    container.appendChild(card);
  }
  if (!container.children.length) {
    const p = document.createElement("p");
    p.textContent = "No history yet: the first points come 10 seconds after lbd starts.";
    container.appendChild(p);
  }
};
})();
