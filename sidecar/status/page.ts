// The live status page served at `/`: plain HTML, CSS and JavaScript in one string (no CDN — the network
// may be closed). It polls /status.json twice a second (after the first poll with ?since=, so only new
// history steps travel), keeps the last 15 minutes itself, and builds the tables with textContent only, so
// no value from a pod or manifest can inject markup. Charts are drawn on <canvas> by the small `draw` below:
// lines over the history window, gaps where a series has no value; each canvas records how many points it
// drew in data-points (the browser test reads it).
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>epp-wasm sidecar</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2530; background: #f6f7f9; }
  h1 { font-size: 1.3rem; margin: 0 0 .3rem; }
  h2 { font-size: 1.1rem; margin: 1.6rem 0 .4rem; }
  .meta { color: #5b6675; margin-bottom: .6rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0001; }
  th, td { padding: .35rem .6rem; border-bottom: 1px solid #e6e9ee; text-align: left; white-space: nowrap; }
  th { background: #eef1f5; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .ok { color: #137333; } .bad { color: #b3261e; font-weight: 600; } .warn { color: #9a6700; }
  .bar { display: inline-block; width: 90px; height: .7rem; background: #e6e9ee; vertical-align: middle; margin-right: .4rem; }
  .bar > span { display: block; height: 100%; background: #3a7bd5; }
  #state { font-weight: 600; }
  h3 { font-size: .95rem; margin: 1rem 0 .3rem; }
  .charts { display: flex; flex-wrap: wrap; gap: .6rem; }
  figure { margin: 0; background: #fff; box-shadow: 0 1px 2px #0001; padding: .3rem .4rem; }
  figcaption { font-size: .8rem; color: #5b6675; }
  canvas { display: block; }
  td canvas { display: inline-block; vertical-align: middle; margin-right: .3rem; }
  .note { color: #5b6675; max-width: 60rem; }
  .legend span { display: inline-block; margin-right: .8rem; font-size: .8rem; }
  .legend i { display: inline-block; width: .7rem; height: .7rem; margin-right: .25rem; vertical-align: -1px; }
</style>
</head>
<body>
<h1>epp-wasm sidecar</h1>
<div class="meta">State: <span id="state">loading…</span> · updated <span id="updated">–</span></div>
<div id="pools"></div>
<script>
"use strict";
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
const ms = (v) => v === null || v === undefined ? "–" : v < 1000 ? v + " ms" : (v / 1000).toFixed(1) + " s";
const pct = (v) => (v * 100).toFixed(0) + "%";
const COLORS = ["#3a7bd5", "#d5573a", "#2e9e5b", "#9b59b6", "#c69214", "#1abc9c", "#e84393", "#6c7a89", "#8e6e53", "#2d3436"];
const HEALTH_COLORS = ["#2e9e5b", "#e0a800", "#b3261e"];
function table(headers, rows) {
  const t = el("table"); const head = el("tr");
  for (const h of headers) head.appendChild(el("th", h));
  t.appendChild(head);
  for (const cells of rows) { const tr = el("tr"); for (const c of cells) tr.appendChild(c); t.appendChild(tr); }
  return t;
}
function kvCell(v) {
  const td = el("td"); const bar = el("span", undefined, "bar"); const fill = el("span");
  fill.style.width = Math.round(Math.min(1, Math.max(0, v)) * 100) + "%"; bar.appendChild(fill);
  td.appendChild(bar); td.appendChild(document.createTextNode((v * 100).toFixed(1) + "%")); return td;
}

// The history the page holds: one time axis, every series aligned with it, at most one window long.
const H = { t: [], stepMs: 1000, windowMs: 900000, pools: new Map(), pushes: new Map(), configEvents: [], requests: new Map(), picks: new Map() };
const POOL_FIELDS = ["waiting", "running", "kvUsage", "readyPods", "snapshotAgeMs"];
const POD_FIELDS = ["waiting", "running", "kvUsage", "health"];
const PUSH_FIELDS = ["ok", "superseded", "failed"];
function eachSeries(fn) {
  for (const p of H.pools.values()) { fn(p, POOL_FIELDS); for (const pod of p.pods.values()) fn(pod, POD_FIELDS); }
  for (const x of H.pushes.values()) fn(x, PUSH_FIELDS);
  for (const x of H.requests.values()) fn(x, ["v"]);
  for (const x of H.picks.values()) fn(x, ["v"]);
}
function absorb(store, key, src, fields, keep, extra) {
  let s = store.get(key);
  if (!s) { s = extra(); for (const f of fields) s[f] = []; store.set(key, s); }
  for (const f of fields) { const a = s[f]; while (a.length < keep) a.push(null); for (const v of src[f]) a.push(v); }
  return s;
}
function merge(h) {
  H.stepMs = h.stepMs; H.windowMs = h.windowMs; H.configEvents = h.configEvents;
  // Steps we hold that the answer repeats (the last ones may have been partial) are replaced.
  const first = h.t.length > 0 ? h.t[0] : Infinity;
  let keep = H.t.length;
  while (keep > 0 && H.t[keep - 1] >= first) keep--;
  H.t.length = keep;
  eachSeries((s, fields) => { for (const f of fields) if (s[f].length > keep) s[f].length = keep; });
  for (const v of h.t) H.t.push(v);
  for (const p of h.pools) {
    const ps = absorb(H.pools, p.pool, p, POOL_FIELDS, keep, () => ({ pods: new Map() }));
    ps.podsNotCharted = p.podsNotCharted;
    for (const pod of p.pods) absorb(ps.pods, pod.pod + " " + pod.endpoint, pod, POD_FIELDS, keep, () => ({ pod: pod.pod, endpoint: pod.endpoint }));
  }
  for (const x of h.pushes) absorb(H.pushes, x.target, x, PUSH_FIELDS, keep, () => ({})).pools = x.pools;
  if (h.decisions) {
    for (const r of h.decisions.requests) absorb(H.requests, r.model + "\t" + r.target + "\t" + r.outcome, r, ["v"], keep, () => ({ model: r.model, target: r.target, outcome: r.outcome }));
    for (const x of h.decisions.picks) absorb(H.picks, x.endpoint, x, ["v"], keep, () => ({ endpoint: x.endpoint }));
  }
  const n = H.t.length;
  const cut = Math.max(0, n - Math.ceil(H.windowMs / H.stepMs));
  if (cut > 0) H.t.splice(0, cut);
  eachSeries((s, fields) => { for (const f of fields) { const a = s[f]; while (a.length < n) a.push(null); if (cut > 0) a.splice(0, cut); } });
  // A pod with nothing left in the window is gone.
  for (const p of H.pools.values()) for (const [k, pod] of p.pods) if (pod.health.every((v) => v === null)) p.pods.delete(k);
  for (const m of [H.requests, H.picks]) for (const [k, x] of m) if (x.v.every((v) => v === null)) m.delete(k);
}

// The time the x axis spans, ending at the newest step: what the page holds (at least a minute), growing
// to the whole window, so a fresh page is not a sliver at the right edge.
function span() {
  const t = H.t, t1 = t.length > 0 ? t[t.length - 1] : Date.now();
  const len = Math.min(H.windowMs, Math.max(60000, t.length > 0 ? t1 - t[0] + H.stepMs : 0));
  return { t0: t1 - len, len };
}
// Draws lines over span() on a canvas: y from 0 to the largest value (or opts.max); gaps where a value is null.
function draw(cv, lines, opts) {
  const w = cv.width, h = cv.height, g = cv.getContext("2d");
  g.clearRect(0, 0, w, h);
  const t = H.t, { t0, len } = span();
  const axis = opts.axis === true, bottom = axis ? 12 : 1, top = axis ? 11 : 1;
  let max = opts.max || 0, points = 0;
  for (const l of lines) for (const v of l.v) if (v !== null && v > max) max = v;
  if (max <= 0) max = 1;
  const x = (i) => 1 + ((t[i] - t0) / len) * (w - 2);
  const y = (v) => h - bottom - (v / max) * (h - bottom - top);
  if (axis) { g.strokeStyle = "#e6e9ee"; g.lineWidth = 1; g.beginPath(); g.moveTo(0, y(0) + 0.5); g.lineTo(w, y(0) + 0.5); g.stroke(); }
  for (const l of lines) {
    g.strokeStyle = l.c; g.fillStyle = l.c; g.lineWidth = 1.5; g.beginPath();
    let pen = false;
    for (let i = 0; i < t.length; i++) {
      const v = l.v[i];
      if (v === null || v === undefined) { pen = false; continue; }
      if (pen) g.lineTo(x(i), y(v)); else { g.moveTo(x(i), y(v)); g.fillRect(x(i) - 1, y(v) - 1, 2, 2); }
      pen = true; points++;
    }
    g.stroke();
  }
  if (axis) {
    g.fillStyle = "#5b6675"; g.font = "10px system-ui, sans-serif";
    g.fillText((opts.fmt || String)(max), 2, 9);
    g.fillText(len >= 120000 ? "−" + Math.round(len / 60000) + " min" : "−" + Math.round(len / 1000) + " s", 2, h - 2);
    g.fillText("now", w - 20, h - 2);
  }
  cv.dataset.points = String(points);
  return cv;
}
// A strip of one colour per step: the pod's scrape health (green ok, amber stale, red not ready).
function drawHealth(cv, v) {
  const w = cv.width, h = cv.height, g = cv.getContext("2d"), t = H.t;
  g.clearRect(0, 0, w, h);
  const { t0, len } = span(), step = Math.max(1, (H.stepMs / len) * w);
  let points = 0;
  for (let i = 0; i < t.length; i++) {
    if (v[i] === null || v[i] === undefined) continue;
    g.fillStyle = HEALTH_COLORS[v[i]] || "#000"; g.fillRect(((t[i] - H.stepMs - t0) / len) * w, 0, step, h); points++;
  }
  cv.dataset.points = String(points);
  return cv;
}
function canvas(w, h, name, title) {
  const cv = el("canvas"); cv.width = w; cv.height = h; cv.dataset.chart = name; if (title) cv.title = title; return cv;
}
function figure(caption, cv) { const f = el("figure"); f.appendChild(el("figcaption", caption)); f.appendChild(cv); return f; }
function legend(items) {
  const d = el("div", undefined, "legend");
  for (const it of items) { const s = el("span"); const i = el("i"); i.style.background = it.c; s.appendChild(i); s.appendChild(document.createTextNode(it.name)); d.appendChild(s); }
  return d;
}
const sumOf = (a, b) => a.map((v, i) => (v === null && b[i] === null ? null : (v || 0) + (b[i] || 0)));

function poolCharts(p, hp) {
  const box = el("div");
  box.appendChild(el("h3", "Load over time (the page keeps " + Math.round(H.windowMs / 60000) + " min)"));
  const charts = el("div", undefined, "charts");
  if (!hp) { box.appendChild(el("p", "No history yet.", "note")); return box; }
  charts.appendChild(figure("waiting requests (all pods)", draw(canvas(260, 90, "pool-waiting"), [{ v: hp.waiting, c: COLORS[1] }], { axis: true })));
  charts.appendChild(figure("running requests (all pods)", draw(canvas(260, 90, "pool-running"), [{ v: hp.running, c: COLORS[0] }], { axis: true })));
  charts.appendChild(figure("KV cache use (mean of ready pods)", draw(canvas(260, 90, "pool-kv"), [{ v: hp.kvUsage, c: COLORS[2] }], { axis: true, max: 1, fmt: pct })));
  charts.appendChild(figure("ready pods", draw(canvas(180, 90, "pool-ready"), [{ v: hp.readyPods, c: COLORS[3] }], { axis: true })));
  charts.appendChild(figure("snapshot age", draw(canvas(180, 90, "pool-snapshot-age"), [{ v: hp.snapshotAgeMs, c: COLORS[4] }], { axis: true, fmt: ms })));
  box.appendChild(charts);
  return box;
}
const total = (a) => a.reduce((n, v) => n + (v || 0), 0);
const perStep = () => (H.stepMs === 1000 ? "per second" : "per " + ms(H.stepMs));
// The requests the Envoys counted, summed by what key() returns, over the window.
function requestTotals(key) {
  const m = new Map();
  for (const r of H.requests.values()) { const k = key(r); if (k !== null) m.set(k, (m.get(k) || 0) + total(r.v)); }
  return m;
}
// Per step, summed over the request series that pass keep(); 0 where the Envoys answered and none grew.
function requestSeries(keep) {
  const out = H.t.map(() => null);
  for (const r of H.requests.values()) r.v.forEach((v, i) => { if (v !== null) out[i] = (out[i] || 0) + (keep(r) ? v : 0); });
  return out;
}
const OUTCOME_LINES = [
  { name: "routed", c: COLORS[0], keep: (o) => o === "routed" || o === "passed" },
  { name: "shed (429)", c: COLORS[1], keep: (o) => o === "shed" },
  { name: "no endpoint (503)", c: "#b3261e", keep: (o) => o === "no_endpoint" },
  { name: "other errors (4xx, 5xx)", c: COLORS[4], keep: (o) => !["routed", "passed", "shed", "no_endpoint"].includes(o) },
];
// What the filter decided, across every pool (its counters carry no pool label), read from the Envoys' admins.
function decisions(s) {
  const box = el("div");
  box.appendChild(el("h2", "What the picker decided"));
  const r = s.requests, envoys = r.envoys || [];
  if (!r.visible) { const n = el("p", r.note, "note bad"); n.dataset.requests = "not-visible"; box.appendChild(n); }
  if (envoys.length > 0)
    box.appendChild(table(["Envoy admin read", "state", "last read"], envoys.map((e) => [
      el("td", e.url), el("td", e.ok ? "ok" : e.error, e.ok ? "ok" : "bad"),
      el("td", e.lastOkAtMs === null ? "never" : ms(Math.max(0, s.generatedAtMs - e.lastOkAtMs)) + " ago"),
    ])));
  if (H.requests.size === 0) { if (r.visible) box.appendChild(el("p", "No request counted yet.", "note")); return box; }
  const lines = OUTCOME_LINES.map((l) => ({ name: l.name, c: l.c, v: requestSeries((x) => l.keep(x.outcome)) }));
  const charts = el("div", undefined, "charts");
  charts.appendChild(figure("requests " + perStep() + " by outcome", draw(canvas(520, 120, "decision-outcomes"), lines, { axis: true })));
  charts.appendChild(figure("shed (429) and no endpoint (503) " + perStep(), draw(canvas(300, 120, "decision-errors"), lines.slice(1, 3), { axis: true })));
  box.appendChild(charts);
  box.appendChild(legend(lines));
  // Totals per model and target over the window.
  const byModel = new Map();
  for (const x of H.requests.values()) {
    const k = x.model + "\t" + x.target; let row = byModel.get(k);
    if (!row) byModel.set(k, (row = { model: x.model, target: x.target, n: {} }));
    const line = OUTCOME_LINES.find((l) => l.keep(x.outcome)).name;
    row.n[line] = (row.n[line] || 0) + total(x.v);
  }
  box.appendChild(el("h3", "Requests in the window by model"));
  const t = table(["model", "target model", ...OUTCOME_LINES.map((l) => l.name)], [...byModel.values()].map((row) => [
    el("td", row.model), el("td", row.target), ...OUTCOME_LINES.map((l) => el("td", row.n[l.name] || 0, "num")),
  ]));
  t.dataset.table = "requests-by-model";
  box.appendChild(t);
  return box;
}
// Each model's traffic split: the routed requests per target model over the window against its weights.
function trafficSplit(p) {
  const box = el("div");
  if (!p.splits || p.splits.length === 0) return box;
  box.appendChild(el("h3", "Traffic split: observed in the window against configured weights"));
  const routed = requestTotals((r) => (r.outcome === "routed" ? r.model + "\t" + r.target : null));
  const rows = [];
  for (const sp of p.splits) {
    const sumW = sp.targets.reduce((n, x) => n + x.weight, 0);
    const n = sp.targets.map((x) => routed.get(sp.model + "\t" + x.name) || 0), all = n.reduce((a, b) => a + b, 0);
    sp.targets.forEach((x, i) => rows.push([
      el("td", sp.model), el("td", x.name),
      el("td", pct(sumW > 0 ? x.weight / sumW : 1 / sp.targets.length), "num"),
      el("td", all > 0 ? pct(n[i] / all) : "–", "num"), el("td", n[i], "num"),
    ]));
  }
  const t = table(["model", "target model", "configured", "observed", "requests routed"], rows);
  t.dataset.table = "traffic-split";
  box.appendChild(t);
  return box;
}
function whereRequestsWent(s, p, hp) {
  const box = el("div");
  box.appendChild(el("h3", "Where requests went"));
  const mine = new Set(p.endpoints.map((e) => e.endpoint));
  const picked = [...H.picks.values()].filter((x) => mine.has(x.endpoint));
  if (picked.length > 0) {
    const pods = new Map(p.endpoints.map((e) => [e.endpoint, e.pod]));
    const lines = picked.map((x, i) => ({ name: pods.get(x.endpoint) + " " + x.endpoint + ": " + total(x.v), c: COLORS[i % COLORS.length], v: x.v }));
    box.appendChild(figure("picks " + perStep() + " per endpoint (the filter's counters; the legend gives the window's total)", draw(canvas(820, 140, "pod-picks"), lines, { axis: true })));
    box.appendChild(legend(lines));
  }
  if (!hp) return box;
  const pods = [...hp.pods.values()];
  const lines = pods.map((pod, i) => ({ name: pod.pod, c: COLORS[i % COLORS.length], v: sumOf(pod.waiting, pod.running) }));
  box.appendChild(figure("load per pod (running + waiting)", draw(canvas(820, 140, "pod-load"), lines, { axis: true })));
  box.appendChild(legend(lines));
  if (hp.podsNotCharted > 0) box.appendChild(el("p", hp.podsNotCharted + " more pods are not charted; the pool totals above include them.", "note"));
  return box;
}
function podHistoryCell(hp, e) {
  const td = el("td"); const pod = hp && hp.pods.get(e.pod + " " + e.endpoint);
  if (!pod) { td.textContent = "–"; return td; }
  td.appendChild(draw(canvas(110, 24, "pod-waiting", "waiting"), [{ v: pod.waiting, c: COLORS[1] }], {}));
  td.appendChild(draw(canvas(110, 24, "pod-running", "running"), [{ v: pod.running, c: COLORS[0] }], {}));
  td.appendChild(draw(canvas(110, 24, "pod-kv", "KV cache use"), [{ v: pod.kvUsage, c: COLORS[2] }], { max: 1 }));
  td.appendChild(drawHealth(canvas(110, 8, "pod-health", "scrape health: green ok, amber stale, red not ready"), pod.health));
  return td;
}
function pushHistoryCell(x) {
  const td = el("td"); const hx = H.pushes.get(x.id);
  if (!hx) { td.textContent = "–"; return td; }
  td.appendChild(draw(canvas(160, 24, "push-rate", "accepted (green) and refused or failed (red) per second"), [{ v: hx.ok, c: COLORS[2] }, { v: hx.failed, c: "#b3261e" }], {}));
  return td;
}
function render(s) {
  const state = document.getElementById("state");
  state.textContent = s.ready ? "ready" : "not ready: " + s.reasons.join("; ");
  state.className = s.ready ? "ok" : "bad";
  document.getElementById("updated").textContent = new Date(s.generatedAtMs).toLocaleTimeString();
  const root = document.getElementById("pools"); root.replaceChildren();
  if (s.config.length > 0) {
    root.appendChild(el("h2", "Scheduling config"));
    root.appendChild(table(["scope", "source", "in force", "refused"], s.config.map((c) => [
      el("td", c.scope), el("td", c.source),
      el("td", c.active ? c.active.name + " (" + c.active.hash + ")" : "none (profile name only)"),
      el("td", c.rejection ? c.rejection.message : "–", c.rejection ? "bad" : "ok"),
    ])));
    if (H.configEvents.length > 0) {
      root.appendChild(el("h3", "Config changes and refusals"));
      root.appendChild(table(["time", "scope", "in force", "refused"], H.configEvents.slice().reverse().map((ev) => [
        el("td", new Date(ev.atMs).toLocaleTimeString()), el("td", ev.scope), el("td", ev.active),
        el("td", ev.refusal || "–", ev.refusal ? "bad" : "ok"),
      ])));
    }
  }
  root.appendChild(decisions(s));
  if (s.pools.length === 0) root.appendChild(el("p", "No pool is served yet."));
  for (const p of s.pools) {
    const hp = H.pools.get(p.pool);
    root.appendChild(el("h2", "Pool " + p.pool));
    root.appendChild(el("div", "profile " + p.profile + " · generation " + p.generation + " · snapshot " + ms(p.snapshotAgeMs) + " old · " + p.bytes + " bytes", "meta"));
    root.appendChild(poolCharts(p, hp));
    root.appendChild(whereRequestsWent(s, p, hp));
    root.appendChild(trafficSplit(p));
    root.appendChild(el("h3", "Pods"));
    root.appendChild(table(["pod", "endpoint", "state", "waiting", "running", "KV cache", "adapters (running / waiting)", "metrics age", "waiting · running · KV · health"],
      p.endpoints.map((e) => [
        el("td", e.pod), el("td", e.endpoint),
        el("td", !e.ready ? "not ready" : e.stale ? "stale" : "ready", !e.ready ? "bad" : e.stale ? "warn" : "ok"),
        el("td", e.waiting, "num"), el("td", e.running, "num"), kvCell(e.kvUsage),
        el("td", (e.runningAdapters.join(", ") || "–") + " / " + (e.waitingAdapters.join(", ") || "–")),
        el("td", ms(e.metricsAgeMs), "num"), podHistoryCell(hp, e),
      ]), "endpoints"));
    root.appendChild(el("h2", "Pushes"));
    root.appendChild(table(["Envoy target", "last result", "HTTP", "last success", "acknowledged generation", "failures in a row", "error", "pushes per second"],
      p.pushes.map((x) => [
        el("td", x.target), el("td", x.outcome, x.outcome === "ok" ? "ok" : x.outcome === "pending" ? "warn" : "bad"),
        el("td", x.status ?? "–", "num"), el("td", x.lastSuccessAgoMs === null ? "never" : ms(x.lastSuccessAgoMs) + " ago"),
        el("td", x.ackedGeneration ?? "–"), el("td", x.consecutiveFailures, "num"), el("td", x.error ?? ""),
        pushHistoryCell(x),
      ])));
  }
}
async function poll() {
  try {
    // Ask again for the last two steps we hold: they may have been partial, or had their push counts added late.
    const since = H.t.length > 2 ? "?since=" + H.t[H.t.length - 3] : "";
    const r = await fetch("status.json" + since, { cache: "no-store" });
    const s = await r.json();
    if (s.history) merge(s.history);
    render(s);
  }
  catch (err) { const s = document.getElementById("state"); s.textContent = "sidecar unreachable: " + err; s.className = "bad"; }
  setTimeout(poll, 500);
}
poll();
</script>
</body>
</html>
`;
