// GIE v0.3's filter tree, node for node, with its thresholds (v0.3 env defaults):
//
// critical? ─yes→ waiting < 128 ─yes→ LoRA soft affinity ⇒ least queue ⇒ least KV
//     │                        └no─→ least queue ⇒ LoRA soft affinity ⇒ least KV
//     └no──→ waiting ≤ 5 and KV ≤ 0.8 ─yes→ least queue ⇒ LoRA soft affinity ⇒ least KV
//                                     └no─→ drop (429)
// then a uniform random pick. "⇒" continues on success or failure (a failed step passes its input on).

import { SchedulerConfig } from "./types.ts";
import { Filter } from "./framework.ts";
import {
  DecisionTreeFilter,
  CriticalRequestFilter,
  LowQueueFilter,
  HasCapacityFilter,
  LeastQueueFilter,
  LeastKvFilter,
  LoraSoftAffinityFilter,
  DropRequestFilter,
} from "./filters.ts";

/** KV_CACHE_THRESHOLD (param `kvCacheThreshold`). */
export const LEGACY_KV_CACHE_THRESHOLD: f64 = 0.8;
/** QUEUE_THRESHOLD_CRITICAL (param `queueThresholdCritical`). */
export const LEGACY_QUEUE_THRESHOLD_CRITICAL: f64 = 5;
/** QUEUING_THRESHOLD_LORA (param `queueingThresholdLora`). */
export const LEGACY_QUEUEING_THRESHOLD_LORA: f64 = 128;
/** LORA_AFFINITY_THRESHOLD (param `loraAffinityThreshold`). */
export const LEGACY_LORA_AFFINITY_THRESHOLD: f64 = 0.999;

function chain(a: Filter, b: Filter): DecisionTreeFilter {
  const node = new DecisionTreeFilter(a);
  node.onSuccessOrFailure = b;
  return node;
}

/** Builds the tree's root node (a fresh instance: nodes keep per-node scratch). */
export function legacyTree(cfg: SchedulerConfig): Filter {
  const loraThreshold = cfg.param("loraAffinityThreshold", LEGACY_LORA_AFFINITY_THRESHOLD);
  const lowQueue = <i32>cfg.param("queueingThresholdLora", LEGACY_QUEUEING_THRESHOLD_LORA);
  const shedQueue = <i32>cfg.param("queueThresholdCritical", LEGACY_QUEUE_THRESHOLD_CRITICAL);
  const shedKv = cfg.param("kvCacheThreshold", LEGACY_KV_CACHE_THRESHOLD);

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
  return root;
}
