// Flow control's metrics under GIE's names where GIE has them (pkg/epp/metrics: flow control queue size,
// bytes, queue duration, pool saturation), labelled by band priority the way assembly/metrics.ts labels
// (`.priority.<p>` in the name, cut out by stats_tags). Envoy keeps one stat per name in the process,
// so the queue gauges move by deltas: every worker's queue adds to the same gauge. Priorities come from
// the snapshot's objectives (plus 0), so the label set is bounded.

import {
  defineMetric,
  incrementMetric,
  METRIC_COUNTER,
  METRIC_GAUGE,
  METRIC_HISTOGRAM,
  recordMetric,
} from "../abi/metrics.ts";

export const QUEUE_SIZE = "inference_extension_flow_control_queue_size";
export const QUEUE_BYTES = "inference_extension_flow_control_queue_bytes";
/** GIE's is in seconds; proxy-wasm records integers, so ours is in milliseconds. */
export const QUEUE_DURATION = "inference_extension_flow_control_request_queue_duration_milliseconds";
/** 1 while the pool has no room for another request (the detector's view), else 0. */
export const POOL_SATURATION = "inference_extension_flow_control_pool_saturation";
/** Ours: what happened to requests in the queue, by band and outcome. */
export const FLOW_REQUESTS = "epp_wasm_flow_control_requests_total";

export const FLOW_QUEUED: i32 = 0;
export const FLOW_DISPATCHED: i32 = 1;
export const FLOW_EXPIRED: i32 = 2;
export const FLOW_REJECTED: i32 = 3;
export const FLOW_CANCELLED: i32 = 4;
const OUTCOMES: string[] = ["queued", "dispatched", "expired", "rejected", "cancelled"];
const SIZE: i32 = 0;
const BYTES: i32 = 1;
const DURATION: i32 = 2;
const IDS: i32 = 3 + 5;

const byPriority = new Map<i32, StaticArray<u32>>();
let saturationId: u32 = 0;

function ids(priority: i32): StaticArray<u32> {
  if (byPriority.has(priority)) return byPriority.get(priority);
  const label = ".priority." + priority.toString();
  const a = new StaticArray<u32>(IDS);
  unchecked((a[SIZE] = defineMetric(METRIC_GAUGE, QUEUE_SIZE + label)));
  unchecked((a[BYTES] = defineMetric(METRIC_GAUGE, QUEUE_BYTES + label)));
  unchecked((a[DURATION] = defineMetric(METRIC_HISTOGRAM, QUEUE_DURATION + label)));
  for (let o = 0; o < OUTCOMES.length; o++)
    unchecked((a[3 + o] = defineMetric(METRIC_COUNTER, FLOW_REQUESTS + label + ".outcome." + OUTCOMES[o])));
  byPriority.set(priority, a);
  return a;
}

/** A request entered the queue of `priority` with `bytes`. */
export function noteQueued(priority: i32, bytes: f64): void {
  const a = ids(priority);
  incrementMetric(unchecked(a[3 + FLOW_QUEUED]), 1);
  incrementMetric(unchecked(a[SIZE]), 1);
  if (bytes >= 1) incrementMetric(unchecked(a[BYTES]), <i64>bytes);
}

/** A request refused at arrival (a limit): counted, never queued. */
export function noteRefused(priority: i32): void {
  incrementMetric(unchecked(ids(priority)[3 + FLOW_REJECTED]), 1);
}

/** A queued request left (`outcome` FLOW_*) after `waitedMs`. */
export function noteLeft(priority: i32, bytes: f64, outcome: i32, waitedMs: u64): void {
  const a = ids(priority);
  if (outcome >= 0 && outcome < OUTCOMES.length) incrementMetric(unchecked(a[3 + outcome]), 1);
  incrementMetric(unchecked(a[SIZE]), -1);
  if (bytes >= 1) incrementMetric(unchecked(a[BYTES]), -(<i64>bytes));
  if (outcome != FLOW_CANCELLED) recordMetric(unchecked(a[DURATION]), waitedMs);
}

export function notePoolSaturation(saturated: bool): void {
  if (saturationId == 0) saturationId = defineMetric(METRIC_GAUGE, POOL_SATURATION);
  recordMetric(saturationId, saturated ? 1 : 0);
}
