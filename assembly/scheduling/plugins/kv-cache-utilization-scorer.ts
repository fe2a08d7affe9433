// `kv-cache-utilization-scorer` (GIE): 1 − KV-cache usage.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";

export const KV_CACHE_SCORER = "kv-cache-utilization-scorer";

export function kvCacheScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new KvCacheScorer());
}

/** The emptier the KV cache, the higher. */
export class KvCacheScorer extends Scorer {
  constructor() {
    super(KV_CACHE_SCORER);
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++) unchecked((out[k] = 1.0 - unchecked(eps[unchecked(cs.cand[k])]).kvUsage));
  }
}
