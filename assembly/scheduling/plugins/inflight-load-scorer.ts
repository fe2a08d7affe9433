// `inflight-load-scorer` (ours): the fewest requests this VM dispatched since the scrape scores 1. Always
// fresh, unlike the scraped queue; useful when scrapes are slow.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { minMaxLow } from "./min-max.ts";

export const INFLIGHT_LOAD_SCORER = "inflight-load-scorer";

export function inflightLoadScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new InflightLoadScorer());
}

/** Min-max over this VM's in-flight requests per endpoint. */
export class InflightLoadScorer extends Scorer {
  constructor() {
    super(INFLIGHT_LOAD_SCORER);
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++) {
      unchecked((cs.work[k] = <f64>unchecked(eps[unchecked(cs.cand[k])]).inflightRequests));
    }
    minMaxLow(cs.work, cs.n, out);
  }
}
