// Saturation detection and admission, GIE v1.0 semantics: the pool is saturated when no endpoint
// with fresh metrics has room (waiting ≤ queueThreshold and KV usage ≤ kvThreshold); an empty pool is
// saturated. Only sheddable requests (priority < 0) are refused, with 429.

import { Endpoint, RequestInfo, SchedulerConfig, SCHEDULE_OK, SCHEDULE_SHED } from "./types.ts";

/** Fresh = ready, not marked stale, and metrics no older than the staleness threshold. */
export function isFresh(e: Endpoint, cfg: SchedulerConfig): bool {
  return e.ready && !e.stale && e.metricsAgeMs <= cfg.metricsStalenessMs;
}

export function hasRoom(e: Endpoint, cfg: SchedulerConfig): bool {
  return e.waiting <= cfg.queueThreshold && e.kvUsage <= cfg.kvThreshold;
}

export function isSaturated(eps: Endpoint[], cfg: SchedulerConfig): bool {
  for (let i = 0, n = eps.length; i < n; i++) {
    const e = unchecked(eps[i]);
    if (isFresh(e, cfg) && hasRoom(e, cfg)) return false;
  }
  return true;
}

/** Sheddable: a negative objective priority. Priority ≥ 0 (incl. Critical) is never shed. */
export function isSheddable(req: RequestInfo): bool {
  return req.priority < 0;
}

/** SCHEDULE_OK, or SCHEDULE_SHED when the request is sheddable and the pool saturated. */
export function admit(eps: Endpoint[], req: RequestInfo, cfg: SchedulerConfig): i32 {
  if (!isSheddable(req)) return SCHEDULE_OK;
  return isSaturated(eps, cfg) ? SCHEDULE_SHED : SCHEDULE_OK;
}
