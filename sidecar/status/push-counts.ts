// Cumulative push outcomes per target, read from the registry's epp_sidecar_push_total counter, for the
// status history's per-target push series.
import type { Registry } from "prom-client";
import type { PushCounts } from "./history.ts";

export const PUSH_COUNTER = "epp_sidecar_push_total";

export function pushCountsFrom(registry: Registry): () => Promise<PushCounts> {
  return async () => {
    const counts: PushCounts = new Map();
    const metric = registry.getSingleMetric(PUSH_COUNTER);
    if (metric === undefined) return counts;
    for (const { labels, value } of (await metric.get()).values) {
      const target = String(labels.target ?? "");
      let c = counts.get(target);
      if (c === undefined) counts.set(target, (c = { ok: 0, superseded: 0, failed: 0 }));
      if (labels.outcome === "ok") c.ok += value;
      else if (labels.outcome === "superseded") c.superseded += value;
      else c.failed += value;
    }
    return counts;
  };
}
