// `legacy-filter-tree` (ours): GIE v0.3's filter tree, node for node, with its thresholds (v0.3 env
// defaults):
//
// critical? ─yes→ waiting < 128 ─yes→ LoRA soft affinity ⇒ least queue ⇒ least KV
//     │                        └no─→ least queue ⇒ LoRA soft affinity ⇒ least KV
//     └no──→ waiting ≤ 5 and KV ≤ 0.8 ─yes→ least queue ⇒ LoRA soft affinity ⇒ least KV
//                                     └no─→ drop (429)
// "⇒" continues on success or failure (a failed step passes its input on). The shipped legacy profile
// follows it with random-picker and has no admission step (always-admit-detector).

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Filter } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import {
  DecisionTreeFilter,
  CriticalRequestFilter,
  LowQueueFilter,
  HasCapacityFilter,
  LeastQueueFilter,
  LeastKvFilter,
  LoraSoftAffinityFilter,
  DropRequestFilter,
} from "./legacy-nodes.ts";

export const LEGACY_FILTER_TREE = "legacy-filter-tree";
/** QUEUING_THRESHOLD_LORA. */
export const LEGACY_QUEUEING_THRESHOLD_LORA: i32 = 128;
/** LORA_AFFINITY_THRESHOLD. */
export const LEGACY_LORA_AFFINITY_THRESHOLD: f64 = 0.999;
/** QUEUE_THRESHOLD_CRITICAL. */
export const LEGACY_QUEUE_THRESHOLD_CRITICAL: i32 = 5;
/** KV_CACHE_THRESHOLD. */
export const LEGACY_KV_CACHE_THRESHOLD: f64 = 0.8;

export function legacyFilterTreeFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  const lowQueue = p.int("queueingThresholdLora", LEGACY_QUEUEING_THRESHOLD_LORA, 0);
  const lora = p.num("loraAffinityThreshold", LEGACY_LORA_AFFINITY_THRESHOLD, 0, 1);
  const shedQueue = p.int("queueThresholdCritical", LEGACY_QUEUE_THRESHOLD_CRITICAL, 0);
  const shedKv = p.num("kvCacheThreshold", LEGACY_KV_CACHE_THRESHOLD, 0, 1);
  return ctx.finish(p, new LegacyFilterTree(lowQueue, lora, shedQueue, shedKv));
}

function chain(a: Filter, b: Filter): DecisionTreeFilter {
  const node = new DecisionTreeFilter(a);
  node.onSuccessOrFailure = b;
  return node;
}

/** The whole tree as one filter (each instance owns its nodes: they keep per-node scratch). */
export class LegacyFilterTree extends Filter {
  root: DecisionTreeFilter;

  constructor(lowQueue: i32, loraThreshold: f64, shedQueue: i32, shedKv: f64) {
    super(LEGACY_FILTER_TREE);
    const lowLatency = new DecisionTreeFilter(new LowQueueFilter(lowQueue));
    lowLatency.onSuccess = chain(
      new LoraSoftAffinityFilter(loraThreshold),
      chain(new LeastQueueFilter(), new LeastKvFilter()),
    );
    lowLatency.onFailure = chain(
      new LeastQueueFilter(),
      chain(new LoraSoftAffinityFilter(loraThreshold), new LeastKvFilter()),
    );
    const sheddable = new DecisionTreeFilter(new HasCapacityFilter(shedQueue, shedKv));
    sheddable.onSuccess = chain(
      new LeastQueueFilter(),
      chain(new LoraSoftAffinityFilter(loraThreshold), new LeastKvFilter()),
    );
    sheddable.onFailure = new DropRequestFilter();
    const root = new DecisionTreeFilter(new CriticalRequestFilter());
    root.onSuccess = lowLatency;
    root.onFailure = sheddable;
    this.root = root;
  }

  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    this.root.apply(eps, req, cs);
  }
}
