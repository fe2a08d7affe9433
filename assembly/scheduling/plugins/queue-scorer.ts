// `queue-scorer` (GIE): the shortest waiting queue scores 1, the longest 0.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { minMaxLow } from "./min-max.ts";

export const QUEUE_SCORER = "queue-scorer";

export function queueScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new QueueScorer());
}

/** Min-max over waiting requests: all equal → 1 everywhere (no signal). */
export class QueueScorer extends Scorer {
  constructor() {
    super(QUEUE_SCORER);
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++)
      unchecked((cs.work[k] = <f64>unchecked(eps[unchecked(cs.cand[k])]).waiting));
    minMaxLow(cs.work, cs.n, out);
  }
}
