// Envoy's Wasm metrics (source/extensions/common/wasm/context.cc Context::defineMetric and friends): a
// define returns a VM-local id whose low two bits are the type; Envoy names the stat `wasmcustom.<name>`,
// one stat per name in the process, whichever VM or plugin defines it. 0 is never a valid id, so it
// stands for "not defined" and every update through it is skipped.

import { proxy_define_metric, proxy_increment_metric, proxy_record_metric } from "./imports.ts";

export const METRIC_COUNTER: u32 = 0;
export const METRIC_GAUGE: u32 = 1;
export const METRIC_HISTOGRAM: u32 = 2;

const idOut = memory.data(4);

/** Defines (or re-defines: a new id for the same stat) `name`; 0 when the host refuses. */
export function defineMetric(type: u32, name: string): u32 {
  const bytes = String.UTF8.encode(name);
  store<u32>(idOut, 0);
  if (proxy_define_metric(type, changetype<usize>(bytes), bytes.byteLength, idOut) != 0) return 0;
  return load<u32>(idOut);
}

/** Adds `delta` to a counter (Envoy refuses delta ≤ 0 for counters) or a gauge. */
export function incrementMetric(id: u32, delta: i64): void {
  if (id != 0) proxy_increment_metric(id, delta);
}

/** Records a histogram sample, sets a gauge, or adds to a counter. */
export function recordMetric(id: u32, value: u64): void {
  if (id != 0) proxy_record_metric(id, value);
}
