// Turns a routing run into its artifacts: the JSON, a Markdown table, and SVG + PNG plots
// (goodput, p90 TTFT and p90 NTPOT vs QPS — the headline three — then p90 E2E, throughput, TTFT CDF at the knee).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RoutingRun } from "../routing/sweep.ts";
import type { StageResult } from "../routing/harness.ts";
import { policyLabel } from "../routing/policies.ts";
import { lineChartSvg, type Series } from "./svg.ts";
import { svgToPng } from "./png.ts";
import { bandMarkdown } from "./band-tables.ts";

/**
 * The knee: the highest QPS at which the first policy still serves ≥ 90% of its requests within
 * the SLOs (goodput / throughput); the lowest QPS when none does.
 */
function kneeQps(run: RoutingRun): number {
  const first = run.config.policies[0];
  let knee = run.config.qps[0];
  for (const s of run.stages) {
    if (s.policy !== first) continue;
    const t = s.summary.successes.throughput;
    if (t.requests_per_sec > 0 && t.goodput_requests_per_sec >= 0.9 * t.requests_per_sec)
      knee = Math.max(knee, s.qps);
  }
  return knee;
}

const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "–");

function markdownTable(run: RoutingRun): string {
  const c = run.config;
  const lines = [
    `### ${run.workload.name} — ${c.pods} × ${c.preset}, seed ${c.seed}, ${c.duration_s} s per stage (warm-up ${c.warmup_s} s, cool-down ${c.cooldown_s} s excluded), scrape ${c.scrape_interval_ms} ms + push delay ${c.push_delay_ms} ms${(c.workers ?? 1) > 1 ? `, ${c.workers} filter workers` : ""}${(c.replicas ?? 1) > 1 ? `, ${c.replicas} Envoy replicas` : ""}`,
    "",
    run.workload.description,
    "",
    `Goodput: requests per second served within both SLOs, TTFT ≤ ${c.slo.ttft_ms} ms and TPOT ≤ ${c.slo.tpot_ms} ms (\`--slo-ttft-ms\`, \`--slo-tpot-ms\`); SLO met % is over every measured request, refused ones included; "missed" counts the requests that failed only TTFT, only TPOT, or both.`,
    "",
    `Baselines: \`k8s-service\` is a Kubernetes Service (kube-proxy iptables: a uniformly random pod per new connection, kept for the connection's life) behind a client with ${c.service_client?.connections ? `${c.service_client.connections}` : "unlimited"} keep-alive connections (idle ones closed after ${c.service_client?.idle_timeout_ms ?? 5000} ms, reused most recent first); \`round-robin\` is an ideal per-request balancer.`,
    "",
    "| QPS | policy | goodput req/s | SLO met % | TTFT p90 (ms) | NTPOT p90 (ms) | missed TTFT / TPOT / both | req/s | out tok/s | TTFT p50 (ms) | TPOT p50 / p90 (ms) | ITL p90 (ms) | NTPOT p50 (ms) | E2E p50 / p90 / p99 (ms) | prefix hit % | 429 / 503 | preempt | max pod share |",
    "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const s of run.stages) {
    const u = s.summary.successes;
    const l = u.latency;
    const fl = s.summary.failures.by_label;
    const slo = s.summary.slo;
    lines.push(
      `| ${s.qps} | ${policyLabel(s.policy)} | ${f(u.throughput.goodput_requests_per_sec)} | ${f(slo.attainment_percent)} | ${f(l.time_to_first_token.p90, 0)} | ${f(l.normalized_time_per_output_token.p90)} | ${slo.missed_ttft_only} / ${slo.missed_tpot_only} / ${slo.missed_both} | ${f(u.throughput.requests_per_sec)} | ${f(u.throughput.output_tokens_per_sec, 0)} | ${f(l.time_to_first_token.p50, 0)} | ${f(l.time_per_output_token.p50)} / ${f(l.time_per_output_token.p90)} | ${f(l.inter_token_latency.p90)} | ${f(l.normalized_time_per_output_token.p50)} | ${f(l.request_latency.p50, 0)} / ${f(l.request_latency.p90, 0)} / ${f(l.request_latency.p99, 0)} | ${f(s.summary.kv_cache_hit_percent)} | ${fl["429"] ?? 0} / ${fl["503"] ?? 0} | ${s.summary.preemptions} | ${f(100 * Math.max(0, ...s.summary.pod_request_share))}% |`,
    );
  }
  return lines.join("\n") + "\n" + bandMarkdown(run.stages);
}

function byPolicy(run: RoutingRun, y: (s: StageResult) => number): Series[] {
  return run.config.policies.map((p) => ({
    name: policyLabel(p),
    points: run.stages.filter((s) => s.policy === p).map((s) => [s.qps, y(s)] as [number, number]),
  }));
}

function plots(run: RoutingRun): Record<string, string> {
  const w = run.workload.name;
  const knee = kneeQps(run);
  const c = run.config;
  return {
    goodput: lineChartSvg({
      title: `${w}: goodput vs QPS (TTFT ≤ ${c.slo.ttft_ms} ms, TPOT ≤ ${c.slo.tpot_ms} ms)`,
      xLabel: "offered QPS",
      yLabel: "goodput (requests / s within the SLOs)",
      series: byPolicy(run, (s) => s.summary.successes.throughput.goodput_requests_per_sec),
    }),
    "ttft-p90": lineChartSvg({
      title: `${w}: p90 TTFT vs QPS`,
      xLabel: "offered QPS",
      yLabel: "p90 time to first token (ms)",
      series: byPolicy(run, (s) => s.summary.successes.latency.time_to_first_token.p90),
    }),
    "ntpot-p90": lineChartSvg({
      title: `${w}: p90 NTPOT vs QPS`,
      xLabel: "offered QPS",
      yLabel: "p90 normalized time per output token (ms)",
      series: byPolicy(run, (s) => s.summary.successes.latency.normalized_time_per_output_token.p90),
    }),
    "e2e-p90": lineChartSvg({
      title: `${w}: p90 E2E latency vs QPS`,
      xLabel: "offered QPS",
      yLabel: "p90 request latency (ms)",
      series: byPolicy(run, (s) => s.summary.successes.latency.request_latency.p90),
    }),
    throughput: lineChartSvg({
      title: `${w}: output token throughput vs QPS`,
      xLabel: "offered QPS",
      yLabel: "output tokens / s",
      series: byPolicy(run, (s) => s.summary.successes.throughput.output_tokens_per_sec),
    }),
    "ttft-cdf": lineChartSvg({
      title: `${w}: TTFT CDF at ${knee} QPS (knee)`,
      xLabel: "TTFT (ms)",
      yLabel: "fraction of requests (%)",
      series: run.stages
        .filter((s) => s.qps === knee)
        .map((s) => ({
          name: policyLabel(s.policy),
          points: s.ttft_cdf_ms.map((t, p) => [t, p] as [number, number]),
        })),
    }),
  };
}

/** Writes <base>.json, <base>.md and <base>-<plot>.svg/.png into dir; returns the paths. */
export async function writeRoutingReport(run: RoutingRun, dir: string, png = true): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const base = join(dir, `routing-${run.workload.name}-seed${run.config.seed}`);
  const files = [`${base}.json`, `${base}.md`];
  writeFileSync(files[0], JSON.stringify(run, null, 2) + "\n");
  writeFileSync(files[1], markdownTable(run));
  for (const [name, svg] of Object.entries(plots(run))) {
    writeFileSync(`${base}-${name}.svg`, svg);
    files.push(`${base}-${name}.svg`);
    if (png) {
      writeFileSync(`${base}-${name}.png`, await svgToPng(svg));
      files.push(`${base}-${name}.png`);
    }
  }
  return files;
}
