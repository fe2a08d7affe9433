// A plugin's in-flight accounting in this VM: what it dispatched that the current snapshot's metrics cannot
// know yet. A dispatch counts against its endpoint while the request is open AND it was dispatched at
// or after the endpoint's scrape time (snapshot createdAtMs − metricsAgeMs); earlier dispatches are
// already inside the scraped waiting/running numbers. On every new snapshot the counts are rebuilt
// from the open dispatches (O(open requests), once per snapshot), so they never drift.

import { Endpoint } from "./scheduling/types.ts";
import { NEVER_SCRAPED } from "./snapshot/types.ts";
import { SharedInflight } from "./shared-inflight.ts";

export class Dispatch {
  endpoint: Endpoint | null = null;
  atMs: u64 = 0;
  tokens: i32 = 0;
  /** Currently included in endpoint.inflight*. */
  counted: bool = false;
  /** The set it is open in (each plugin has its own). */
  set: InflightSet | null = null;
  /** The destination list written for it (the header's value), to tell which entries retries used. */
  destinations: string | null = null;
}

function uncount(d: Dispatch): void {
  const e = d.endpoint;
  if (e == null || !d.counted) return;
  d.counted = false;
  e.inflightRequests = max(0, e.inflightRequests - 1);
  e.inflightPromptTokens = max(0, e.inflightPromptTokens - d.tokens);
}

/** The request ended (on_log / on_delete); idempotent. */
export function finishDispatch(d: Dispatch): void {
  if (d.endpoint == null) return;
  const was = d.counted;
  uncount(d);
  d.endpoint = null;
  const set = d.set;
  if (set != null) {
    set.open.delete(d);
    // The other workers see the completion now, not at this worker's next pick.
    const shared = set.shared;
    if (was && shared != null) shared.publish(set.live);
  }
  d.set = null;
}

/** Scrape time of an endpoint's metrics in the snapshot's clock; 0 = never scraped (count everything). */
export function scrapeTimeMs(createdAtMs: u64, metricsAgeMs: u32): u64 {
  if (metricsAgeMs == NEVER_SCRAPED) return 0;
  const age = <u64>metricsAgeMs;
  return age >= createdAtMs ? 0 : createdAtMs - age;
}

export class InflightSet {
  readonly open: Set<Dispatch> = new Set<Dispatch>();
  /** `sharedInflight`: where this worker publishes its counts for the others (null: not shared). */
  shared: SharedInflight | null = null;
  /** The endpoints of the last rebase, in pool order (what a published record lists). */
  live: Endpoint[] = [];

  /** Records a dispatch the scheduler already counted (Scheduler.onPicked increments the endpoint). */
  record(d: Dispatch, e: Endpoint, tokens: i32, nowMs: u64): void {
    d.endpoint = e;
    d.atMs = nowMs;
    d.tokens = tokens;
    d.counted = true;
    d.set = this;
    this.open.add(d);
    const shared = this.shared;
    if (shared != null) shared.dirty = true;
  }

  /**
   * Rebuilds in-flight counts for a new snapshot. `live` holds the endpoint objects of the new snapshot;
   * open dispatches to endpoints no longer in it (slot −1) stay open but uncounted.
   */
  rebase(live: Endpoint[], createdAtMs: u64): void {
    this.live = live;
    for (let i = 0; i < live.length; i++) {
      live[i].inflightRequests = 0;
      live[i].inflightPromptTokens = 0;
    }
    if (this.open.size == 0) return;
    const ds = this.open.values();
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i];
      d.counted = false;
      const e = d.endpoint;
      // The pool marks endpoints that left the snapshot with slot −1.
      if (e == null || e.slot < 0) continue;
      if (d.atMs >= scrapeTimeMs(createdAtMs, <u32>e.metricsAgeMs)) {
        d.counted = true;
        e.inflightRequests++;
        e.inflightPromptTokens += d.tokens;
      }
    }
  }

  get size(): i32 {
    return this.open.size;
  }
}
