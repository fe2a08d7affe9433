// `utilization-detector` (GIE's name, GIE v1.0's admission rule): the pool is saturated when no endpoint
// with fresh metrics is within both limits (waiting ≤ queue limit and KV usage ≤ KV limit); an empty
// pool is saturated. Only sheddable requests (priority < 0) are refused, with 429. The limits carry
// GIE v1.5's headroom: queueDepthThreshold·(1+headroom) and min(1, kvCacheUtilThreshold·(1+headroom)).
// GIE v1.5 averages a per-endpoint utilisation instead; docs/scheduling.md explains why we keep this rule.

import { Endpoint, RequestInfo, SCHEDULE_OK, SCHEDULE_SHED } from "../types.ts";
import { Plugin, SaturationDetector } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";

export const UTILIZATION_DETECTOR = "utilization-detector";
export const DEFAULT_QUEUE_DEPTH: i32 = 5;
export const DEFAULT_KV_UTIL: f64 = 0.8;
export const DEFAULT_STALENESS_MS: f64 = 200;

export function utilizationDetectorFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  // Lenient bounds: the sidecar enforces upstream's (queue > 0, KV in (0, 1]); the record's own
  // thresholds, mapped here for snapshots without PLUGINS, were never range-checked.
  const queue = p.int("queueDepthThreshold", DEFAULT_QUEUE_DEPTH, 0);
  const kv = p.num("kvCacheUtilThreshold", DEFAULT_KV_UTIL, 0);
  const staleMs = p.num("metricsStalenessThreshold", DEFAULT_STALENESS_MS, 0, <f64>u32.MAX_VALUE);
  const headroom = p.num("headroom", 0, 0);
  return ctx.finish(p, new UtilizationDetector(queue, kv, <u32>staleMs, headroom));
}

export class UtilizationDetector extends SaturationDetector {
  readonly queueLimit: f64;
  readonly kvLimit: f64;

  constructor(
    public queueDepth: i32 = DEFAULT_QUEUE_DEPTH,
    public kvUtil: f64 = DEFAULT_KV_UTIL,
    public stalenessMs: u32 = <u32>DEFAULT_STALENESS_MS,
    public headroom: f64 = 0,
  ) {
    super(UTILIZATION_DETECTOR);
    this.queueLimit = <f64>queueDepth * (1 + headroom);
    const kvLimit = kvUtil * (1 + headroom);
    this.kvLimit = kvLimit < 1 ? kvLimit : 1;
  }

  /** Fresh = ready, not marked stale, and metrics no older than the staleness threshold. */
  @inline isFresh(e: Endpoint): bool {
    return e.ready && !e.stale && e.metricsAgeMs <= this.stalenessMs;
  }

  @inline hasRoom(e: Endpoint): bool {
    return <f64>e.waiting <= this.queueLimit && e.kvUsage <= this.kvLimit;
  }

  isSaturated(eps: Endpoint[]): bool {
    for (let i = 0, n = eps.length; i < n; i++) {
      const e = unchecked(eps[i]);
      if (this.isFresh(e) && this.hasRoom(e)) return false;
    }
    return true;
  }

  /** Sheddable (priority < 0) and saturated → 429; priority ≥ 0 is never shed. */
  admit(eps: Endpoint[], req: RequestInfo): i32 {
    if (req.priority >= 0) return SCHEDULE_OK;
    return this.isSaturated(eps) ? SCHEDULE_SHED : SCHEDULE_OK;
  }

  /**
   * Per fresh endpoint within the KV limit: the requests its queue takes before passing the queue limit
   * (an endpoint at the limit still admits one, as isSaturated counts it). 0 exactly when saturated.
   */
  roomLeft(eps: Endpoint[]): i32 {
    let room: i64 = 0;
    const limit = <i64>Math.floor(this.queueLimit);
    for (let i = 0, n = eps.length; i < n; i++) {
      const e = unchecked(eps[i]);
      if (!this.isFresh(e) || e.kvUsage > this.kvLimit) continue;
      const r = limit - <i64>e.waiting + 1;
      if (r > 0) room += r;
    }
    return <i32>min<i64>(room, <i64>i32.MAX_VALUE);
  }

  endpointSaturated(e: Endpoint): bool {
    return !this.isFresh(e) || !this.hasRoom(e);
  }
}
