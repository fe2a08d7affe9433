// `fresh-load-scorer` (ours): the least corrected load (fresh-load-producer) scores 1.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { minMaxLow } from "./min-max.ts";
import { LoadModel, loadModelOf } from "./fresh-load-producer.ts";

export const FRESH_LOAD_SCORER = "fresh-load-scorer";

export function freshLoadScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new FreshLoadScorer(loadModelOf(ctx)));
}

/** Min-max over the corrected load; all equal → 1. */
export class FreshLoadScorer extends Scorer {
  constructor(public model: LoadModel) {
    super(FRESH_LOAD_SCORER);
    this.deps.push(model);
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    this.model.ensure(eps, cs);
    minMaxLow(this.model.load, cs.n, out);
  }
}
