// deploy/grafana/epp-wasm.json: it parses, every query names a metric the code emits (the sidecar's
// registry, or the filter's metric names in assembly/metrics.ts, which Envoy exports from its `wasmcustom`
// namespace), and no datasource is pinned to a UID: every panel uses the dashboard's datasource variable,
// so the file imports into any Grafana.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SidecarMetrics } from "../../sidecar/metrics.ts";

const repoRoot = join(import.meta.dirname, "..", "..");
const dashboard = JSON.parse(
  readFileSync(join(repoRoot, "deploy/grafana/epp-wasm.json"), "utf8"),
) as Dashboard;

interface Target {
  expr?: string;
}
interface Panel {
  type: string;
  title: string;
  datasource?: unknown;
  targets?: Target[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; query: unknown; datasource?: unknown }> };
}

/** Series names Prometheus sees for a metric of the given type (histograms expand to three). */
function seriesNames(name: string, histogram: boolean): string[] {
  return histogram ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
}

async function sidecarSeries(): Promise<Set<string>> {
  const m = new SidecarMetrics();
  const names = new Set<string>();
  for (const metric of await m.registry.getMetricsAsJSON())
    for (const n of seriesNames(metric.name, String(metric.type) === "histogram")) names.add(n);
  return names;
}

/**
 * The filter's metrics: the string constants of assembly/metrics.ts, histograms being those passed to
 * defineMetric(METRIC_HISTOGRAM, …). Envoy exports `wasmcustom.<name>` as `<name>` (counters unchanged,
 * histograms as _bucket/_sum/_count), with the labels cut out of the name by the shipped stats_tags.
 */
function filterSeries(): Set<string> {
  const src = readFileSync(join(repoRoot, "assembly/metrics.ts"), "utf8");
  const histograms = new Set(
    [...src.matchAll(/defineMetric\(\s*METRIC_HISTOGRAM\s*,\s*([A-Z_]+)/g)].map((m) => m[1]!),
  );
  const names = new Set<string>();
  for (const [, constant, name] of src.matchAll(
    /export const ([A-Z_]+) = "((?:inference|epp_wasm)_[a-z0-9_]+)";/g,
  ))
    for (const n of seriesNames(name!, histograms.has(constant!))) names.add(n);
  return names;
}

/** Metric names a PromQL expression selects: identifiers followed by a selector or range, plus our prefixes. */
function metricsIn(expr: string): Set<string> {
  const bare = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const names = new Set<string>();
  for (const m of bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{[]/g)) names.add(m[1]!);
  for (const m of bare.matchAll(/\b((?:inference|epp)_[a-z0-9_]+)\b/g)) names.add(m[1]!);
  return names;
}

function queries(): Array<{ where: string; expr: string }> {
  const out: Array<{ where: string; expr: string }> = [];
  for (const p of dashboard.panels)
    for (const t of p.targets ?? []) if (t.expr !== undefined) out.push({ where: p.title, expr: t.expr });
  for (const v of dashboard.templating.list)
    if (v.type === "query") {
      const q = typeof v.query === "string" ? v.query : (v.query as { query: string }).query;
      out.push({ where: `variable ${v.name}`, expr: q.replace(/^label_values\((\w+),.*$/, "$1{}") });
    }
  return out;
}

test("every query names a metric the sidecar or the filter emits", async () => {
  const known = new Set([...(await sidecarSeries()), ...filterSeries()]);
  assert.ok(known.has("inference_objective_request_total"), "the filter's metric names were found");
  const qs = queries();
  assert.ok(qs.length >= 20, `only ${qs.length} queries`);
  const used = new Set<string>();
  for (const { where, expr } of qs) {
    const names = metricsIn(expr);
    assert.ok(names.size > 0, `${where}: no metric in ${expr}`);
    for (const n of names) {
      assert.ok(known.has(n), `${where}: ${n} is not a metric the code emits`);
      used.add(n);
    }
  }
  // Both halves are on the dashboard.
  assert.ok([...used].some((n) => n.startsWith("epp_sidecar_")));
  assert.ok(used.has("inference_extension_scheduler_e2e_duration_microseconds_bucket"));
});

test("no datasource is pinned: every panel and query uses the ${datasource} variable", () => {
  const vars = dashboard.templating.list.filter((v) => v.type === "datasource").map((v) => v.name);
  assert.deepEqual(vars, ["datasource"]);
  const seen: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}[${i}]`));
    if (node === null || typeof node !== "object") return;
    for (const [k, v] of Object.entries(node)) {
      if (k === "datasource") {
        seen.push(path);
        const uid = typeof v === "string" ? v : (v as { uid?: unknown }).uid;
        assert.equal(uid, "${datasource}", `${path}.datasource is pinned to ${JSON.stringify(v)}`);
      }
      walk(v, `${path}.${k}`);
    }
  };
  walk(dashboard, "$");
  assert.ok(!("__inputs" in dashboard), "no import-time datasource inputs");
  for (const p of dashboard.panels.filter((x) => x.type !== "row"))
    assert.ok(p.datasource !== undefined, `panel ${p.title} has no datasource`);
  assert.ok(seen.length > dashboard.panels.length);
});

test("metricsIn finds selectors and our names, not label values or functions", () => {
  assert.deepEqual(
    [...metricsIn('sum by (le) (rate(epp_sidecar_push_total{outcome="inference_x{"}[5m])) / up[1m]')],
    ["epp_sidecar_push_total", "up"],
  );
});
