// The summary table of docs/benchmarks.md, built from bench:routing JSON runs (never typed by hand):
// for every workload and QPS found, each policy's p90 TTFT, p90 NTPOT and goodput as the mean over the
// seeds with half the range as spread, plus one goodput-vs-QPS plot per workload (mean over seeds).
//
//   npm run bench:summary -- --in bench-output/summary [--out docs/img] [--policies a,b] [--no-png]
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { lineChartSvg } from "../report/svg.ts";
import { svgToPng } from "../report/png.ts";
import { bandCdfSvg, bandSummaryMarkdown } from "../report/band-tables.ts";
import { policyLabel } from "./policies.ts";
import type { RoutingRun } from "./sweep.ts";
import type { StageResult } from "./harness.ts";

/** Mean and half the range of one metric over seeds. */
export interface Spread {
  mean: number;
  half: number;
  n: number;
}

export interface SummaryRow {
  workload: string;
  qps: number;
  policy: string;
  seeds: number[];
  ttftP90: Spread;
  ntpotP90: Spread;
  goodput: Spread;
}

export function spread(xs: number[]): Spread {
  if (xs.length === 0) return { mean: NaN, half: NaN, n: 0 };
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return { mean, half: (Math.max(...xs) - Math.min(...xs)) / 2, n: xs.length };
}

const metric = {
  ttft: (s: StageResult) => s.summary.successes.latency.time_to_first_token.p90,
  ntpot: (s: StageResult) => s.summary.successes.latency.normalized_time_per_output_token.p90,
  goodput: (s: StageResult) => s.summary.successes.throughput.goodput_requests_per_sec,
};

/** Rows in input order: workload (first seen), QPS ascending, policy in the runs' order. */
export function summarize(runs: RoutingRun[], policies?: string[]): SummaryRow[] {
  const groups = new Map<
    string,
    { workload: string; qps: number; policy: string; stages: [number, StageResult][] }
  >();
  const order = new Map<string, number>();
  for (const run of runs) {
    const w = run.workload.name;
    if (!order.has(w)) order.set(w, order.size);
    for (const s of run.stages) {
      if (policies && !policies.includes(s.policy)) continue;
      const key = `${w}\u0000${s.qps}\u0000${s.policy}`;
      let g = groups.get(key);
      if (!g) groups.set(key, (g = { workload: w, qps: s.qps, policy: s.policy, stages: [] }));
      g.stages.push([run.config.seed, s]);
    }
  }
  const polOrder = (p: string): number => {
    const i = (policies ?? runs[0]?.config.policies ?? []).indexOf(p);
    return i < 0 ? 1e9 : i;
  };
  return [...groups.values()]
    .sort(
      (a, b) =>
        order.get(a.workload)! - order.get(b.workload)! ||
        a.qps - b.qps ||
        polOrder(a.policy) - polOrder(b.policy),
    )
    .map((g) => {
      const st = g.stages.sort((a, b) => a[0] - b[0]);
      const of = (f: (s: StageResult) => number): Spread => spread(st.map(([, s]) => f(s)));
      return {
        workload: g.workload,
        qps: g.qps,
        policy: g.policy,
        seeds: st.map(([seed]) => seed),
        ttftP90: of(metric.ttft),
        ntpotP90: of(metric.ntpot),
        goodput: of(metric.goodput),
      };
    });
}

function fmt(s: Spread, digits: number): string {
  if (s.n === 0) return "—";
  const m = s.mean.toFixed(digits);
  return s.n > 1 ? `${m} ± ${s.half.toFixed(digits)}` : m;
}

/** The markdown table: one row per workload × QPS × policy. */
export function summaryMarkdown(rows: SummaryRow[]): string {
  const lines = [
    "| workload | QPS | policy | goodput req/s | p90 TTFT ms | p90 NTPOT ms | seeds |",
    "|---|---:|---|---:|---:|---:|---|",
  ];
  for (const r of rows)
    lines.push(
      `| ${r.workload} | ${r.qps} | ${policyLabel(r.policy)} | ${fmt(r.goodput, 1)} | ${fmt(r.ttftP90, 0)} | ${fmt(r.ntpotP90, 1)} | ${r.seeds.join(", ")} |`,
    );
  return lines.join("\n") + "\n";
}

/** One goodput-vs-QPS chart per workload (seed means). */
export function goodputCharts(rows: SummaryRow[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of [...new Set(rows.map((r) => r.workload))]) {
    const mine = rows.filter((r) => r.workload === w);
    const seeds = [...new Set(mine.flatMap((r) => r.seeds))].sort((a, b) => a - b);
    out[w] = lineChartSvg({
      title: `${w}: goodput vs QPS, mean over seeds ${seeds.join(", ")}`,
      xLabel: "offered load (QPS)",
      yLabel: "goodput (requests / s within the SLOs)",
      series: [...new Set(mine.map((r) => r.policy))].map((p) => ({
        name: policyLabel(p),
        points: mine.filter((r) => r.policy === p).map((r) => [r.qps, r.goodput.mean] as [number, number]),
      })),
    });
  }
  return out;
}

export function readRuns(dir: string): RoutingRun[] {
  return readdirSync(dir)
    .filter((f) => /^routing-.+-seed\d+\.json$/.test(f))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as RoutingRun);
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({
    options: {
      in: { type: "string", default: "bench-output/summary" },
      out: { type: "string" },
      policies: { type: "string" },
      workloads: { type: "string" },
      "no-png": { type: "boolean", default: false },
    },
  });
  const wanted = a.workloads?.split(",");
  const runs = readRuns(a.in!).filter((r) => !wanted || wanted.includes(r.workload.name));
  if (wanted) runs.sort((x, y) => wanted.indexOf(x.workload.name) - wanted.indexOf(y.workload.name));
  const rows = summarize(runs, a.policies?.split(","));
  const md = summaryMarkdown(rows);
  process.stdout.write(md);
  if (!a.out) return;
  mkdirSync(a.out, { recursive: true });
  writeFileSync(join(a.out, "routing-summary.md"), md);
  for (const [w, svg] of Object.entries(goodputCharts(rows))) {
    const base = join(a.out, `routing-summary-${w}-goodput`);
    writeFileSync(`${base}.svg`, svg);
    if (!a["no-png"]) writeFileSync(`${base}.png`, await svgToPng(svg));
  }
  // Workloads with objectives (overload): the per-band table and the Critical TTFT CDF per QPS.
  for (const w of [...new Set(runs.map((r) => r.workload.name))]) {
    const mine = runs
      .filter((r) => r.workload.name === w)
      .map((r) => ({
        ...r,
        stages: r.stages.filter((s) => !a.policies || a.policies.split(",").includes(s.policy)),
      }));
    const bandMd = bandSummaryMarkdown(mine);
    if (!bandMd) continue;
    process.stdout.write(`\n${w}, per band:\n\n${bandMd}`);
    writeFileSync(join(a.out, `routing-summary-${w}-bands.md`), bandMd);
    for (const qps of [...new Set(mine.flatMap((r) => r.stages.map((s) => s.qps)))]) {
      const svg = bandCdfSvg(mine, qps);
      const base = join(a.out, `routing-summary-${w}-${qps}-critical-ttft-cdf`);
      writeFileSync(`${base}.svg`, svg);
      if (!a["no-png"]) writeFileSync(`${base}.png`, await svgToPng(svg));
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
