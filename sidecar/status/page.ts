// The live status page served at `/`: plain HTML, CSS and JavaScript in one string (no CDN — the network
// may be closed). It polls /status.json twice a second and builds the tables with textContent only, so no
// value from a pod or manifest can inject markup.
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
  }
  if (s.pools.length === 0) root.appendChild(el("p", "No pool is served yet."));
  for (const p of s.pools) {
    root.appendChild(el("h2", "Pool " + p.pool));
    root.appendChild(el("div", "profile " + p.profile + " · generation " + p.generation + " · snapshot " + ms(p.snapshotAgeMs) + " old · " + p.bytes + " bytes", "meta"));
    root.appendChild(table(["pod", "endpoint", "state", "waiting", "running", "KV cache", "adapters (running / waiting)", "metrics age"],
      p.endpoints.map((e) => [
        el("td", e.pod), el("td", e.endpoint),
        el("td", !e.ready ? "not ready" : e.stale ? "stale" : "ready", !e.ready ? "bad" : e.stale ? "warn" : "ok"),
        el("td", e.waiting, "num"), el("td", e.running, "num"), kvCell(e.kvUsage),
        el("td", (e.runningAdapters.join(", ") || "–") + " / " + (e.waitingAdapters.join(", ") || "–")),
        el("td", ms(e.metricsAgeMs), "num"),
      ]), "endpoints"));
    root.appendChild(el("h2", "Pushes"));
    root.appendChild(table(["Envoy target", "last result", "HTTP", "last success", "acknowledged generation", "failures in a row", "error"],
      p.pushes.map((x) => [
        el("td", x.target), el("td", x.outcome, x.outcome === "ok" ? "ok" : x.outcome === "pending" ? "warn" : "bad"),
        el("td", x.status ?? "–", "num"), el("td", x.lastSuccessAgoMs === null ? "never" : ms(x.lastSuccessAgoMs) + " ago"),
        el("td", x.ackedGeneration ?? "–"), el("td", x.consecutiveFailures, "num"), el("td", x.error ?? ""),
      ])));
  }
}
async function poll() {
  try { const r = await fetch("status.json", { cache: "no-store" }); render(await r.json()); }
  catch (err) { const s = document.getElementById("state"); s.textContent = "sidecar unreachable: " + err; s.className = "bad"; }
  setTimeout(poll, 500);
}
poll();
</script>
</body>
</html>
`;
