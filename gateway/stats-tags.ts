// The label names the filter encodes in its metric names (assembly/metrics.ts: `.label.value` pairs after the
// metric name) and the Envoy `stats_config` that turns them back into Prometheus labels. The shipped Envoy
// configurations carry exactly `statsConfigYaml()` (test/deploy/stats-tags.test.ts checks), and the local
// gateway reads them from there, so both export the same series.
import type { StatsConfig } from "../host/prometheus.ts";

/** Every label the filter writes, in no particular order (each metric has a fixed order of its own). */
export const METRIC_LABELS = [
  "model_name",
  "target_model_name",
  "objective",
  "outcome",
  "error_code",
  "endpoint",
  "reason",
  "priority",
] as const;

/**
 * One regex per label: in a `wasmcustom.` stat, cut `.label.value` (group 1) and keep `value` (group 2), where the
 * value runs to the next `.<label>.` or the end, so values may contain dots (model names, IPv4 addresses). The
 * `^wasmcustom\.` anchor lets Envoy file the extractor under that first token (TagExtractorImplBase::
 * extractRegexPrefix), so other stats never run it.
 */
export function labelRegex(label: string): string {
  const next = METRIC_LABELS.join("|");
  return `^wasmcustom\\..*?(\\.${label}\\.(.+?))(?=\\.(?:${next})\\.|$)`;
}

/** Decision time in microseconds; snapshot age in milliseconds (Envoy's default buckets suit neither). */
export const HISTOGRAM_BUCKETS = [
  {
    match: { prefix: "wasmcustom.inference_extension_scheduler_e2e_duration_microseconds" },
    buckets: [5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 50000],
  },
  {
    match: { prefix: "wasmcustom.epp_wasm_snapshot_age_milliseconds" },
    buckets: [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000],
  },
];

export function statsConfig(): StatsConfig {
  return {
    statsTags: METRIC_LABELS.map((l) => ({ tagName: l, regex: labelRegex(l) })),
    histogramBucketSettings: HISTOGRAM_BUCKETS,
  };
}

/** The `stats_config` block of the shipped Envoy bootstraps, indented by `indent` spaces. */
export function statsConfigYaml(indent = 0): string {
  const p = " ".repeat(indent);
  const lines = [`${p}stats_config:`, `${p}  stats_tags:`];
  for (const l of METRIC_LABELS) {
    lines.push(`${p}    - tag_name: ${l}`, `${p}      regex: '${labelRegex(l)}'`);
  }
  lines.push(`${p}  histogram_bucket_settings:`);
  for (const h of HISTOGRAM_BUCKETS) {
    lines.push(
      `${p}    - match: { prefix: ${h.match.prefix} }`,
      `${p}      buckets: [${h.buckets.join(", ")}]`,
    );
  }
  return lines.join("\n") + "\n";
}
