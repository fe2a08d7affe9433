// The status page's own script (runs in the browser, inlined after the chart code): it polls /status.json
// twice a second (after the first poll with ?since=, so only new history steps travel), keeps the last
// 15 minutes itself in H, and builds the tables with textContent only, so no value from a pod or manifest
// can inject markup. Charts are uPlot instances kept by browser/charts.ts (the global Charts).
export const PAGE_SCRIPT = `"use strict";
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
const ms = (v) => v === null || v === undefined ? "–" : v < 1000 ? v + " ms" : (v / 1000).toFixed(1) + " s";
const pct = (v) => (v * 100).toFixed(0) + "%";
const COLORS = ["#3a7bd5", "#d5573a", "#2e9e5b", "#9b59b6", "#c69214", "#1abc9c", "#e84393", "#6c7a89", "#8e6e53", "#2d3436"];
function table(headers, rows, name) {
  const t = el("table"); const head = el("tr");
  if (name) t.dataset.table = name;
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
  const t = H.t, to = t.length > 0 ? t[t.length - 1] : Date.now();
  const len = Math.min(H.windowMs, Math.max(60000, t.length > 0 ? to - t[0] + H.stepMs : 0));
  return { from: to - len, to };
}
// A uPlot chart (browser/charts.ts) over span(), kept across polls under key; lines are { name, c, v }.
function chart(key, name, w, h, lines, opts) {
  const { from, to } = span();
  return Charts.line(key, { name, width: w, height: h, t: H.t, from, to, unit: opts.unit, max: opts.max, spark: opts.spark, title: opts.title,
    lines: lines.map((l) => ({ label: l.name, color: l.c, values: l.v })) });
}
const spark = (key, name, title, lines, max) => chart(key, name, 110, 24, lines, { spark: true, title, max });
function figure(caption, node) { const f = el("figure"); f.appendChild(el("figcaption", caption)); f.appendChild(node); return f; }
const sumOf = (a, b) => a.map((v, i) => (v === null && b[i] === null ? null : (v || 0) + (b[i] || 0)));

function poolCharts(p, hp) {
  const box = el("div");
  box.appendChild(el("h3", "Load over time (the page keeps " + Math.round(H.windowMs / 60000) + " min)"));
  const charts = el("div", undefined, "charts");
  if (!hp) { box.appendChild(el("p", "No history yet.", "note")); return box; }
  const one = (name, w, label, v, c, opts) => chart(p.pool + " " + name, name, w, 130, [{ name: label, c, v }], opts);
  charts.appendChild(figure("waiting requests (all pods)", one("pool-waiting", 280, "waiting", hp.waiting, COLORS[1], {})));
  charts.appendChild(figure("running requests (all pods)", one("pool-running", 280, "running", hp.running, COLORS[0], {})));
  charts.appendChild(figure("KV cache use (mean of ready pods)", one("pool-kv", 280, "KV use", hp.kvUsage, COLORS[2], { max: 1, unit: "pct" })));
  charts.appendChild(figure("ready pods", one("pool-ready", 220, "ready", hp.readyPods, COLORS[3], {})));
  charts.appendChild(figure("snapshot age", one("pool-snapshot-age", 220, "age", hp.snapshotAgeMs, COLORS[4], { unit: "ms" })));
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
  if (H.requests.size === 0) {
    if (r.visible) box.appendChild(el("p", "No request counted yet.", "note"));
    box.appendChild(flowControl(r.flowControl || []));
    return box;
  }
  const lines = OUTCOME_LINES.map((l) => ({ name: l.name, c: l.c, v: requestSeries((x) => l.keep(x.outcome)) }));
  const charts = el("div", undefined, "charts");
  charts.appendChild(figure("requests " + perStep() + " by outcome", chart("decision-outcomes", "decision-outcomes", 560, 160, lines, {})));
  charts.appendChild(figure("shed (429) and no endpoint (503) " + perStep(), chart("decision-errors", "decision-errors", 340, 160, lines.slice(1, 3), {})));
  box.appendChild(charts);
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
  box.appendChild(flowControl(r.flowControl || []));
  return box;
}
// Flow control's queues, as the Envoys' gauges and counters stand at their last read (summed over Envoys).
const FLOW_OUTCOMES = ["dispatched", "expired", "rejected", "cancelled"];
function flowControl(bands) {
  const box = el("div");
  if (bands.length === 0) return box;
  box.appendChild(el("h3", "Flow control: held now, and outcomes since each Envoy started"));
  const t = table(["band priority", "held now", "bytes held", "queued", ...FLOW_OUTCOMES], bands.map((b) => [
    el("td", b.priority, "num"), el("td", b.queued, "num"), el("td", b.bytes, "num"),
    el("td", b.outcomes.queued || 0, "num"), ...FLOW_OUTCOMES.map((o) => el("td", b.outcomes[o] || 0, "num")),
  ]));
  t.dataset.table = "flow-control";
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
    const lines = picked.map((x, i) => ({ name: pods.get(x.endpoint) + " " + x.endpoint, c: COLORS[i % COLORS.length], v: x.v }));
    box.appendChild(figure("picks " + perStep() + " per endpoint (the filter's counters)", chart(p.pool + " pod-picks", "pod-picks", 860, 180, lines, {})));
    box.appendChild(el("p", "Picks in the window: " + picked.map((x) => pods.get(x.endpoint) + " " + total(x.v)).join(" · "), "note"));
  }
  if (!hp) return box;
  const pods = [...hp.pods.values()];
  const lines = pods.map((pod, i) => ({ name: pod.pod, c: COLORS[i % COLORS.length], v: sumOf(pod.waiting, pod.running) }));
  box.appendChild(figure("load per pod (running + waiting)", chart(p.pool + " pod-load", "pod-load", 860, 180, lines, {})));
  if (hp.podsNotCharted > 0) box.appendChild(el("p", hp.podsNotCharted + " more pods are not charted; the pool totals above include them.", "note"));
  return box;
}
function podHistoryCell(p, hp, e) {
  const td = el("td"); const pod = hp && hp.pods.get(e.pod + " " + e.endpoint);
  if (!pod) { td.textContent = "–"; return td; }
  const key = p.pool + " " + e.pod + " " + e.endpoint + " ", { from, to } = span();
  td.appendChild(spark(key + "waiting", "pod-waiting", "waiting", [{ name: "waiting", v: pod.waiting, c: COLORS[1] }]));
  td.appendChild(spark(key + "running", "pod-running", "running", [{ name: "running", v: pod.running, c: COLORS[0] }]));
  td.appendChild(spark(key + "kv", "pod-kv", "KV cache use", [{ name: "KV use", v: pod.kvUsage, c: COLORS[2] }], 1));
  td.appendChild(Charts.health(key + "health", { name: "pod-health", width: 110, height: 8, t: H.t, from, to, title: "scrape health: green ok, amber stale, red not ready" }, pod.health));
  return td;
}
function pushHistoryCell(p, x) {
  const td = el("td"); const hx = H.pushes.get(x.id);
  if (!hx) { td.textContent = "–"; return td; }
  td.appendChild(chart(p.pool + " " + x.id + " push-rate", "push-rate", 160, 24, [{ name: "accepted", v: hx.ok, c: COLORS[2] }, { name: "refused or failed", v: hx.failed, c: "#b3261e" }],
    { spark: true, title: "accepted (green) and refused or failed (red) per second" }));
  return td;
}
function render(s) {
  Charts.begin();
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
        el("td", ms(e.metricsAgeMs), "num"), podHistoryCell(p, hp, e),
      ]), "endpoints"));
    root.appendChild(el("h2", "Pushes"));
    root.appendChild(table(["Envoy target", "last result", "HTTP", "last success", "acknowledged generation", "failures in a row", "error", "pushes per second"],
      p.pushes.map((x) => [
        el("td", x.target), el("td", x.outcome, x.outcome === "ok" ? "ok" : x.outcome === "pending" ? "warn" : "bad"),
        el("td", x.status ?? "–", "num"), el("td", x.lastSuccessAgoMs === null ? "never" : ms(x.lastSuccessAgoMs) + " ago"),
        el("td", x.ackedGeneration ?? "–"), el("td", x.consecutiveFailures, "num"), el("td", x.error ?? ""),
        pushHistoryCell(p, x),
      ])));
  }
  Charts.end();
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
`;
