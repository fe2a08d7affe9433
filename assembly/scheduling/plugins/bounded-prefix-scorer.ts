// `bounded-prefix-scorer` (ours): prefix-cache-scorer's match fraction, but 0 for an endpoint over the
// affinity load bound (fresh-load-producer), so a hot prefix cannot pile onto one pod.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { LoadModel, loadModelOf } from "./fresh-load-producer.ts";
import { PrefixProducer, prefixProducerOf } from "./approx-prefix-cache-producer.ts";

export const BOUNDED_PREFIX_SCORER = "bounded-prefix-scorer";

export function boundedPrefixScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  return ctx.finish(ctx.params(spec), new BoundedPrefixScorer(prefixProducerOf(ctx), loadModelOf(ctx)));
}

/** Match fraction within the load bound, else 0. */
export class BoundedPrefixScorer extends Scorer {
  constructor(
    public prefix: PrefixProducer,
    public model: LoadModel,
  ) {
    super(BOUNDED_PREFIX_SCORER);
    this.deps.push(prefix);
    this.deps.push(model);
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    const prefix = this.prefix;
    prefix.ensure(req, cs);
    this.model.ensure(eps, cs);
    for (let k = 0; k < cs.n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      unchecked((out[k] = this.model.withinBound(e, k) ? prefix.fraction(e) : 0));
    }
  }
}
