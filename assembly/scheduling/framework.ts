// The plugin framework, shaped like GIE's: a profile runs filters in order (stopping when no candidate
// is left), sums each scorer's clamped 0..1 score times its weight, and lets the picker order the
// survivors. Plugins are small classes overriding a few methods; they read and compact the candidate list
// in the CycleState, keep their own per-cycle scratch (reset in beginCycle) and never allocate per request
// once warm. After the pick the scheduler runs every member's afterPick (prefix index, affinity
// directory, session token).

import {
  Endpoint,
  RequestInfo,
  CycleState,
  SCHEDULE_OK,
  SCHEDULE_SHED,
  SCHEDULE_NO_CANDIDATES,
} from "./types.ts";

/** Response headers the plugins want set on the client's response (filled by afterPick hooks). */
export class ResponseHeaders {
  names: string[] = [];
  values: string[] = [];
  count: i32 = 0;

  clear(): void {
    this.count = 0;
  }

  /** Sets (or replaces) a header; the arrays only grow, so a warm request reuses their slots. */
  set(name: string, value: string): void {
    for (let k = 0; k < this.count; k++) {
      if (unchecked(this.names[k]) == name) {
        unchecked((this.values[k] = value));
        return;
      }
    }
    if (this.count < this.names.length) {
      unchecked((this.names[this.count] = name));
      unchecked((this.values[this.count] = value));
    } else {
      this.names.push(name);
      this.values.push(value);
    }
    this.count++;
  }
}

/**
 * Every plugin: its type (the config's `type`), its name (the config's `name`, defaulting to the type),
 * and the hooks around a cycle. `deps` are shared producers the plugin reads (load model, prefix index):
 * a profile that holds the plugin runs their hooks too.
 */
export class Plugin {
  name: string;
  deps: Plugin[] = [];
  constructor(public type: string) {
    this.name = type;
  }
  /** Resets this plugin's per-cycle scratch; called before the profile's filters. */
  beginCycle(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {}
  /** The request went to eps[i] (after the pick); record what the plugin learns from it. */
  afterPick(eps: Endpoint[], i: i32, req: RequestInfo, cs: CycleState, headers: ResponseHeaders): void {}
}

/** Narrows cs.cand[0..cs.n) in place. An empty result means "filter failed". */
export class Filter extends Plugin {
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {}
}

/** Writes out[k] ∈ [0, 1] for every candidate position k < cs.n; higher is better. */
export class Scorer extends Plugin {
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {}
  /** Also scores in the stale profile (the snapshot is too old for load figures); default no. */
  keepWhenStale(): bool {
    return false;
  }
}

/** Orders up to maxN candidates by cs.totals into out (endpoint indices, best first); returns how many. */
export class Picker extends Plugin {
  pick(cs: CycleState, maxN: i32, out: StaticArray<i32>): i32 {
    return 0;
  }
}

/** Admission before the profile runs: SCHEDULE_OK or SCHEDULE_SHED. */
export class SaturationDetector extends Plugin {
  admit(eps: Endpoint[], req: RequestInfo): i32 {
    return SCHEDULE_OK;
  }
  /** Is this endpoint past its limits (or without fresh metrics)? Affinity plugins let go of it. */
  endpointSaturated(e: Endpoint): bool {
    return false;
  }
  /**
   * Flow control: how many more requests the pool takes before this detector calls it saturated
   * (0 = saturated). A detector that never saturates has unbounded room.
   */
  roomLeft(eps: Endpoint[]): i32 {
    return i32.MAX_VALUE;
  }
}

/** Chooses which of the configured profiles runs (only the single-profile handler exists). */
export class ProfileHandler extends Plugin {
  primary(profileCount: i32): i32 {
    return 0;
  }
}

/** Keeps candidates for which keep() is true; shared by the simple predicate filters. */
export class PredicateFilter extends Filter {
  keep(e: Endpoint, req: RequestInfo): bool {
    return true;
  }
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    let m = 0;
    for (let k = 0, n = cs.n; k < n; k++) {
      const i = unchecked(cs.cand[k]);
      if (this.keep(unchecked(eps[i]), req)) unchecked((cs.cand[m++] = i));
    }
    cs.n = m;
  }
}

function clamp01(x: f64): f64 {
  // NaN → 0 as well: a broken scorer must not win.
  return x > 0 ? (x < 1 ? x : 1) : 0;
}

export class SchedulingProfile {
  filters: Filter[] = [];
  scorers: Scorer[] = [];
  weights: f64[] = [];
  picker: Picker;
  /** Every plugin of the profile and the producers they read, once each, in build order. */
  members: Plugin[] = [];
  picked: i32 = 0;

  constructor(
    public name: string,
    picker: Picker,
  ) {
    this.picker = picker;
    this.addMember(picker);
  }

  /** Adds p (and its producers) to the plugins whose cycle hooks run; a plugin is added once. */
  addMember(p: Plugin): void {
    for (let d = 0; d < p.deps.length; d++) this.addMember(p.deps[d]);
    if (!this.members.includes(p)) this.members.push(p);
  }

  withFilter(f: Filter): SchedulingProfile {
    this.filters.push(f);
    this.addMember(f);
    return this;
  }

  withScorer(s: Scorer, weight: f64): SchedulingProfile {
    // A zero weight would only cost time.
    if (weight > 0) {
      this.scorers.push(s);
      this.weights.push(weight);
      this.addMember(s);
    }
    return this;
  }

  /**
   * Runs one cycle over cs's current candidates. Returns SCHEDULE_OK with the ordered pick in out
   * (how many in `picked`), or an HTTP status.
   */
  run(eps: Endpoint[], req: RequestInfo, cs: CycleState, maxN: i32, out: StaticArray<i32>): i32 {
    const members = this.members;
    for (let p = 0, np = members.length; p < np; p++) unchecked(members[p]).beginCycle(eps, req, cs);
    for (let f = 0, nf = this.filters.length; f < nf; f++) {
      unchecked(this.filters[f]).apply(eps, req, cs);
      if (cs.n == 0) break;
    }
    if (cs.shed) return SCHEDULE_SHED;
    if (cs.n == 0) return SCHEDULE_NO_CANDIDATES;
    const n = cs.n;
    const totals = cs.totals;
    const scores = cs.scores;
    for (let k = 0; k < n; k++) unchecked((totals[k] = 0));
    for (let s = 0, ns = this.scorers.length; s < ns; s++) {
      const w = unchecked(this.weights[s]);
      unchecked(this.scorers[s]).score(eps, req, cs, scores);
      for (let k = 0; k < n; k++) unchecked((totals[k] += w * clamp01(unchecked(scores[k]))));
    }
    this.picked = this.picker.pick(cs, maxN, out);
    return this.picked > 0 ? SCHEDULE_OK : SCHEDULE_NO_CANDIDATES;
  }

  /** Runs every member's afterPick for the request that went to eps[i]. */
  afterPick(eps: Endpoint[], i: i32, req: RequestInfo, cs: CycleState, headers: ResponseHeaders): void {
    const members = this.members;
    for (let p = 0, np = members.length; p < np; p++)
      unchecked(members[p]).afterPick(eps, i, req, cs, headers);
  }
}
