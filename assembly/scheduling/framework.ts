// The plugin framework, shaped like GIE's: a profile runs filters in order (stopping when no candidate
// is left), sums each scorer's clamped 0..1 score times its weight, and lets the picker order the
// survivors. Plugins are small classes overriding one method; they read and compact the candidate list
// in the CycleState and never allocate per request.

import {
  Endpoint,
  RequestInfo,
  CycleState,
  SCHEDULE_OK,
  SCHEDULE_SHED,
  SCHEDULE_NO_CANDIDATES,
} from "./types.ts";

/** Narrows cs.cand[0..cs.n) in place. An empty result means "filter failed". */
export class Filter {
  constructor(public type: string) {}
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {}
}

/** Writes out[k] ∈ [0, 1] for every candidate position k < cs.n; higher is better. */
export class Scorer {
  constructor(public type: string) {}
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {}
}

/** Orders up to maxN candidates by cs.totals into out (endpoint indices, best first); returns how many. */
export class Picker {
  constructor(public type: string) {}
  pick(cs: CycleState, maxN: i32, out: StaticArray<i32>): i32 {
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

  constructor(
    public name: string,
    picker: Picker,
  ) {
    this.picker = picker;
  }

  withFilter(f: Filter): SchedulingProfile {
    this.filters.push(f);
    return this;
  }

  withScorer(s: Scorer, weight: f64): SchedulingProfile {
    // A zero weight would only cost time.
    if (weight > 0) {
      this.scorers.push(s);
      this.weights.push(weight);
    }
    return this;
  }

  /**
   * Runs one cycle over cs's current candidates. Returns SCHEDULE_OK with the ordered pick in out
   * (count in cs.n afterwards is untouched; the return of pick is in `picked`), or an HTTP status.
   */
  run(eps: Endpoint[], req: RequestInfo, cs: CycleState, maxN: i32, out: StaticArray<i32>): i32 {
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

  picked: i32 = 0;
}
