// `lora-affinity-scorer` (GIE): prefers endpoints that already run the request's adapter, then ones with
// room to load it, then ones where it is waiting.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";

export const LORA_AFFINITY_SCORER = "lora-affinity-scorer";

export function loraAffinityScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new LoraAffinityScorer());
}

export function hasAdapter(list: string[], adapter: string): bool {
  for (let i = 0, n = list.length; i < n; i++) {
    if (unchecked(list[i]) == adapter) return true;
  }
  return false;
}

/**
 * 1 adapter running; 0.8 room to load it (running + waiting adapters < maxLoras); 0.6 adapter waiting;
 * else 0. No adapter in the request → 1 everywhere (neutral).
 */
export class LoraAffinityScorer extends Scorer {
  constructor() {
    super(LORA_AFFINITY_SCORER);
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    const a = req.adapter;
    for (let k = 0; k < cs.n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      let s = 0.0;
      if (a.length == 0 || hasAdapter(e.runningAdapters, a)) s = 1.0;
      else if (e.runningAdapters.length + e.waitingAdapters.length < e.maxLoras) s = 0.8;
      else if (hasAdapter(e.waitingAdapters, a)) s = 0.6;
      unchecked((out[k] = s));
    }
  }
}
