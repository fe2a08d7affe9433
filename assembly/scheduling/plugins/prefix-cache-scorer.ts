// `prefix-cache-scorer` (GIE): leading prompt blocks this VM last sent to the endpoint / prompt blocks,
// from the approximate prefix index (approx-prefix-cache-producer). Its parameters are the producer's:
// when the config lists no producer, the first prefix-cache-scorer's parameters configure it (as GIE).

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { PrefixProducer, prefixProducerOf, readPrefixParams } from "./approx-prefix-cache-producer.ts";

export const PREFIX_CACHE_SCORER = "prefix-cache-scorer";

export function prefixCacheScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  readPrefixParams(p); // validated here; applied by the producer (BuildContext.sharedFrom)
  return ctx.finish(p, new PrefixCacheScorer(prefixProducerOf(ctx)));
}

/** Match fraction per endpoint; a prompt shorter than one block scores 0 everywhere. */
export class PrefixCacheScorer extends Scorer {
  constructor(public prefix: PrefixProducer) {
    super(PREFIX_CACHE_SCORER);
    this.deps.push(prefix);
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    const prefix = this.prefix;
    prefix.ensure(req, cs);
    for (let k = 0; k < cs.n; k++)
      unchecked((out[k] = prefix.fraction(unchecked(eps[unchecked(cs.cand[k])]))));
  }
}
