// Markdown tables and the plot for per-band results (workloads with objectives: overload, issue 22):
// one run's stages, and the seed means over several runs with issue 22's three targets checked.
import type { StageResult } from "../routing/harness.ts";
import type { RoutingRun } from "../routing/sweep.ts";
import { policyLabel } from "../routing/policies.ts";
import type { BandReport, BandRow } from "./bands.ts";
import { lineChartSvg } from "./svg.ts";

const f = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : "–");

/** Per stage: one row per band and one for all, then the fairness figures. */
export function bandMarkdown(stages: readonly StageResult[]): string {
  const withBands = stages.filter((s) => s.bands);
  if (withBands.length === 0) return "";
  const lines = [
    "",
    "Per band (TTFT from arrival, so time held in Envoy counts; queue = wait between arrival and the routing decision, served requests; rejected = answered at arrival, expired = answered after waiting):",
    "",
    "| QPS | policy | band | requests | served | goodput req/s | TTFT p50 / p90 (ms) | rejected | expired | queue p50 / p90 (ms) |",
    "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const s of withBands)
    for (const r of [...s.bands!.bands, s.bands!.all])
      lines.push(
        `| ${s.qps} | ${policyLabel(s.policy)} | ${r.band} | ${r.requests} | ${r.served} | ${f(r.goodput_rps, 1)} | ${f(r.ttft_p50_ms)} / ${f(r.ttft_p90_ms)} | ${r.rejected} | ${r.expired} | ${f(r.queue_p50_ms)} / ${f(r.queue_p90_ms)} |`,
      );
  lines.push(
    "",
    "Per fairness id (fair share: max-min over the served requests of each band and second of arrivals, given each id's demand):",
    "",
    "| QPS | policy | id | demand req/s | served req/s | fair share req/s | goodput req/s | SLO met % | queue p90 (ms) | TTFT p90 (ms) |",
    "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const s of withBands)
    for (const t of s.bands!.tenants)
      lines.push(
        `| ${s.qps} | ${policyLabel(s.policy)} | ${t.id} | ${f(t.demand_rps, 1)} | ${f(t.served_rps, 1)} | ${f(t.fair_share_rps, 1)} | ${f(t.goodput_rps, 1)} | ${f(t.attainment_percent, 1)} | ${f(t.queue_p90_ms)} | ${f(t.ttft_p90_ms)} |`,
      );
  lines.push(
    "",
    "| QPS | policy | Jain (goodput) | Jain (goodput / demand) | noisy id served / fair share |",
    "|---:|---|---:|---:|---:|",
  );
  for (const s of withBands)
    lines.push(
      `| ${s.qps} | ${policyLabel(s.policy)} | ${f(s.bands!.jain_goodput, 3)} | ${f(s.bands!.jain_attainment, 3)} | ${f(s.bands!.noisy_over_fair_share, 2)} |`,
    );
  return lines.join("\n") + "\n";
}

interface Group {
  qps: number;
  policy: string;
  seeds: number[];
  reports: BandReport[];
}

function groups(runs: readonly RoutingRun[]): Group[] {
  const out = new Map<string, Group>();
  for (const run of runs)
    for (const s of run.stages) {
      if (!s.bands) continue;
      const key = `${s.qps}\u0000${s.policy}`;
      let g = out.get(key);
      if (!g) out.set(key, (g = { qps: s.qps, policy: s.policy, seeds: [], reports: [] }));
      g.seeds.push(run.config.seed);
      g.reports.push(s.bands);
    }
  return [...out.values()].sort((a, b) => a.qps - b.qps);
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const half = (xs: readonly number[]): number => (Math.max(...xs) - Math.min(...xs)) / 2;
const ms = (xs: readonly number[], d = 0): string =>
  xs.length > 1 ? `${f(mean(xs), d)} ± ${f(half(xs), d)}` : f(mean(xs), d);

function rowOf(r: BandReport, band: string): BandRow {
  return band === "all" ? r.all : r.bands.find((b) => b.band === band)!;
}

/**
 * Seed means (± half the range) per QPS, policy and band, the fairness figures, and issue 22's targets
 * for every policy against `baseline` (shedding only): Critical p90 TTFT ratio, total goodput ratio.
 */
export function bandSummaryMarkdown(
  runs: readonly RoutingRun[],
  baseline = "default",
  critical = "critical",
): string {
  const gs = groups(runs);
  if (gs.length === 0) return "";
  const bands = [...gs[0].reports[0].bands.map((b) => b.band), "all"];
  const lines = [
    "| QPS | policy | band | TTFT p50 (ms) | TTFT p90 (ms) | goodput req/s | rejected | expired | queue p50 (ms) | queue p90 (ms) | seeds |",
    "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const g of gs)
    for (const band of bands) {
      const rs = g.reports.map((r) => rowOf(r, band));
      lines.push(
        `| ${g.qps} | ${policyLabel(g.policy)} | ${band} | ${ms(rs.map((r) => r.ttft_p50_ms))} | ${ms(rs.map((r) => r.ttft_p90_ms))} | ${ms(
          rs.map((r) => r.goodput_rps),
          1,
        )} | ${ms(rs.map((r) => r.rejected))} | ${ms(rs.map((r) => r.expired))} | ${ms(rs.map((r) => r.queue_p50_ms))} | ${ms(
          rs.map((r) => r.queue_p90_ms),
        )} | ${g.seeds.join(", ")} |`,
      );
    }
  lines.push(
    "",
    `| QPS | policy | Jain (goodput) | Jain (goodput / demand) | noisy id served / fair share | ${critical} p90 TTFT vs ${baseline} | total goodput vs ${baseline} |`,
    "|---:|---|---:|---:|---:|---:|---:|",
  );
  for (const g of gs) {
    const base = gs.find((b) => b.qps === g.qps && b.policy === baseline);
    const ratio = (pick: (r: BandReport) => number): string => {
      if (!base) return "–";
      const a = mean(g.reports.map(pick));
      const b = mean(base.reports.map(pick));
      return b > 0 ? `${f(a / b, 2)}×` : "–";
    };
    lines.push(
      `| ${g.qps} | ${policyLabel(g.policy)} | ${ms(
        g.reports.map((r) => r.jain_goodput),
        3,
      )} | ${ms(
        g.reports.map((r) => r.jain_attainment),
        3,
      )} | ${ms(
        g.reports.map((r) => r.noisy_over_fair_share),
        2,
      )} | ${ratio((r) => rowOf(r, critical).ttft_p90_ms)} | ${ratio((r) => r.all.goodput_rps)} |`,
    );
  }
  return lines.join("\n") + "\n";
}

/** TTFT CDF of one band per policy (percentile-wise mean over seeds) at the given QPS. */
export function bandCdfSvg(runs: readonly RoutingRun[], qps: number, band = "critical"): string {
  const gs = groups(runs).filter((g) => g.qps === qps);
  const seeds = [...new Set(gs.flatMap((g) => g.seeds))].sort((a, b) => a - b);
  return lineChartSvg({
    title: `${runs[0]?.workload.name ?? ""}: ${band} TTFT CDF at ${qps} QPS, mean over seeds ${seeds.join(", ")}`,
    xLabel: "TTFT incl. time held in Envoy (ms)",
    yLabel: "fraction of served requests (%)",
    series: gs.map((g) => {
      const cdfs = g.reports.map((r) => rowOf(r, band).ttft_cdf_ms);
      return {
        name: policyLabel(g.policy),
        points: cdfs[0].map((_, k) => [mean(cdfs.map((c) => c[k])), 5 * k] as [number, number]),
      };
    }),
  });
}
