// `kv-headroom-scorer` (ours): KV blocks left free after this request and what this VM sent since the
// scrape, as a fraction of all blocks.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";

export const KV_HEADROOM_SCORER = "kv-headroom-scorer";

export function kvHeadroomScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new KvHeadroomScorer());
}

/** ((1−usage)·blocks − ⌈(promptTokens + inflightTokens)/blockSize⌉)/blocks; unknown geometry → 1 − usage. */
export class KvHeadroomScorer extends Scorer {
  constructor() {
    super(KV_HEADROOM_SCORER);
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      const free = 1.0 - e.kvUsage;
      if (e.kvBlockCount <= 0 || e.kvBlockSize <= 0) {
        unchecked((out[k] = free));
        continue;
      }
      const blocks = <f64>e.kvBlockCount;
      // Float ceil: an integer division per endpoint costs more than the rest of this loop.
      const need = Math.ceil(<f64>(req.promptTokens + e.inflightPromptTokens) / <f64>e.kvBlockSize);
      unchecked((out[k] = (free * blocks - need) / blocks));
    }
  }
}
