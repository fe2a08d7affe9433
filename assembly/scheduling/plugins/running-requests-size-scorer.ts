// `running-requests-size-scorer` (GIE): the fewest running requests scores 1.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { minMaxLow } from "./min-max.ts";

export const RUNNING_REQUESTS_SCORER = "running-requests-size-scorer";

export function runningRequestsScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new RunningRequestsScorer());
}

/** Min-max over running requests. */
export class RunningRequestsScorer extends Scorer {
  constructor() {
    super(RUNNING_REQUESTS_SCORER);
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++)
      unchecked((cs.work[k] = <f64>unchecked(eps[unchecked(cs.cand[k])]).running));
    minMaxLow(cs.work, cs.n, out);
  }
}
