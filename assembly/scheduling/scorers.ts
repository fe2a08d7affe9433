// GIE's scorers. Each writes out[k] in [0, 1] for candidate position k (higher = better); the
// framework clamps and weights them.

import { Endpoint, RequestInfo, CycleState } from "./types.ts";
import { Scorer } from "./framework.ts";
import { hasAdapter } from "./filters.ts";
import { PrefixIndex } from "../prefix/index.ts";

/** Min-max over v: (max − v)/(max − min), so the lowest value scores 1; all equal → 1 (neutral). */
export function minMaxLow(values: StaticArray<f64>, n: i32, out: StaticArray<f64>): void {
  let min = f64.MAX_VALUE;
  let max = -f64.MAX_VALUE;
  for (let k = 0; k < n; k++) {
    const v = unchecked(values[k]);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const span = max - min;
  for (let k = 0; k < n; k++) unchecked((out[k] = span > 0 ? (max - unchecked(values[k])) / span : 1.0));
}

/** `queue-scorer`: shortest waiting queue scores 1, longest 0. */
export class QueueScorer extends Scorer {
  constructor() {
    super("queue-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++)
      unchecked((cs.work[k] = <f64>unchecked(eps[unchecked(cs.cand[k])]).waiting));
    minMaxLow(cs.work, cs.n, out);
  }
}

/** `running-requests-size-scorer`: fewest running requests scores 1. */
export class RunningRequestsScorer extends Scorer {
  constructor() {
    super("running-requests-size-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++)
      unchecked((cs.work[k] = <f64>unchecked(eps[unchecked(cs.cand[k])]).running));
    minMaxLow(cs.work, cs.n, out);
  }
}

/** `kv-cache-utilization-scorer`: 1 − KV usage. */
export class KvCacheScorer extends Scorer {
  constructor() {
    super("kv-cache-utilization-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++) unchecked((out[k] = 1.0 - unchecked(eps[unchecked(cs.cand[k])]).kvUsage));
  }
}

/**
 * `lora-affinity-scorer`: 1 adapter running; 0.8 room to load it (running + waiting adapters <
 * maxLoras); 0.6 adapter waiting; else 0. No adapter in the request → 1 everywhere (neutral).
 */
export class LoraAffinityScorer extends Scorer {
  constructor() {
    super("lora-affinity-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    const a = req.adapter;
    for (let k = 0; k < cs.n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      let s = 0.0;
      if (a.length == 0 || hasAdapter(e.runningAdapters, a)) s = 1.0;
      else if (e.runningAdapters.length + e.waitingAdapters.length < e.maxLoras) s = 0.8;
      else if (hasAdapter(e.waitingAdapters, a)) s = 0.6;
      unchecked((out[k] = s));
    }
  }
}

/** `inflight-load-scorer`: fewest requests dispatched by this VM since the scrape scores 1. */
export class InflightLoadScorer extends Scorer {
  constructor() {
    super("inflight-load-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++) {
      unchecked((cs.work[k] = <f64>unchecked(eps[unchecked(cs.cand[k])]).inflightRequests));
    }
    minMaxLow(cs.work, cs.n, out);
  }
}

/** Fills cs.prefixMatch (by slot) from the index once per cycle. */
export function ensurePrefixMatch(index: PrefixIndex, req: RequestInfo, cs: CycleState): void {
  if (cs.prefixReady) return;
  cs.prefixReady = true;
  const h = req.hashes;
  if (h == null || req.hashCount <= 0) {
    cs.prefixBlocks = 0;
    return;
  }
  cs.prefixBlocks = req.hashCount < h.length ? req.hashCount : h.length;
  index.match(h, cs.prefixBlocks, cs.prefixMatch);
}

/** Matched leading blocks / total blocks for endpoint e (0 when the slot is outside the index). */
export function prefixFraction(e: Endpoint, cs: CycleState): f64 {
  if (cs.prefixBlocks == 0 || e.slot < 0 || e.slot >= cs.prefixMatch.length) return 0;
  return <f64>unchecked(cs.prefixMatch[e.slot]) / <f64>cs.prefixBlocks;
}

/** `prefix-cache-scorer`: leading prompt blocks this VM last sent to the endpoint / prompt blocks. */
export class PrefixCacheScorer extends Scorer {
  constructor(public index: PrefixIndex) {
    super("prefix-cache-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    ensurePrefixMatch(this.index, req, cs);
    for (let k = 0; k < cs.n; k++)
      unchecked((out[k] = prefixFraction(unchecked(eps[unchecked(cs.cand[k])]), cs)));
  }
}
