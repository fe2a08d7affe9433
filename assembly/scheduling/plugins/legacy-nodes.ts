// The nodes of GIE v0.3's filter tree (legacy-filter-tree.ts wires them). They are not registered on
// their own: upstream's decision-tree configuration is not supported.

import { Endpoint, RequestInfo, CycleState, CRITICALITY_CRITICAL } from "../types.ts";
import { Filter, PredicateFilter } from "../framework.ts";
import { hasAdapter } from "./lora-affinity-scorer.ts";

/** Legacy root predicate: passes everything for Critical requests, nothing otherwise. */
export class CriticalRequestFilter extends Filter {
  constructor() {
    super("critical-request-filter");
  }
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    if (req.criticality != CRITICALITY_CRITICAL) cs.n = 0;
  }
}

/** Keeps endpoints with waiting < threshold (GIE `low-queue-filter`, 128). */
export class LowQueueFilter extends PredicateFilter {
  constructor(public threshold: i32) {
    super("low-queue-filter");
  }
  keep(e: Endpoint, req: RequestInfo): bool {
    return e.waiting < this.threshold;
  }
}

/** Keeps endpoints with waiting ≤ queue AND KV usage ≤ kv (GIE "has capacity for sheddable", 5 / 0.8). */
export class HasCapacityFilter extends PredicateFilter {
  constructor(
    public queue: i32,
    public kv: f64,
  ) {
    super("has-capacity-filter");
  }
  keep(e: Endpoint, req: RequestInfo): bool {
    return e.waiting <= this.queue && e.kvUsage <= this.kv;
  }
}

/** Keeps the "first bucket" of waiting: [min, min + (max−min)/n] with integer division, as GIE v0.3. */
export class LeastQueueFilter extends Filter {
  constructor() {
    super("least-queue-filter");
  }
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    const n = cs.n;
    if (n == 0) return;
    let min = i32.MAX_VALUE;
    let max = i32.MIN_VALUE;
    for (let k = 0; k < n; k++) {
      const q = unchecked(eps[unchecked(cs.cand[k])]).waiting;
      if (q < min) min = q;
      if (q > max) max = q;
    }
    const hi = min + (max - min) / n;
    let m = 0;
    for (let k = 0; k < n; k++) {
      const i = unchecked(cs.cand[k]);
      const q = unchecked(eps[i]).waiting;
      if (q >= min && q <= hi) unchecked((cs.cand[m++] = i));
    }
    cs.n = m;
  }
}

/** Keeps the "first bucket" of KV usage: [min, min + (max−min)/n]. */
export class LeastKvFilter extends Filter {
  constructor() {
    super("least-kv-cache-filter");
  }
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    const n = cs.n;
    if (n == 0) return;
    let min = f64.MAX_VALUE;
    let max = -f64.MAX_VALUE;
    for (let k = 0; k < n; k++) {
      const v = unchecked(eps[unchecked(cs.cand[k])]).kvUsage;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    const hi = min + (max - min) / <f64>n;
    let m = 0;
    for (let k = 0; k < n; k++) {
      const i = unchecked(cs.cand[k]);
      const v = unchecked(eps[i]).kvUsage;
      if (v >= min && v <= hi) unchecked((cs.cand[m++] = i));
    }
    cs.n = m;
  }
}

/**
 * GIE v0.3 LoRA soft affinity: "affinity" = adapter already running, "available" = a free adapter
 * slot (running adapters < maxLoras). Both non-empty → affinity with probability `threshold` (0.999),
 * else available; otherwise whichever is non-empty (possibly none → failure).
 */
export class LoraSoftAffinityFilter extends Filter {
  constructor(public threshold: f64) {
    super("lora-affinity-filter");
  }
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    const n = cs.n;
    let nAff = 0;
    let nAvail = 0;
    for (let k = 0; k < n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      if (hasAdapter(e.runningAdapters, req.adapter)) nAff++;
      else if (e.runningAdapters.length < e.maxLoras) nAvail++;
    }
    let wantAffinity = nAff > 0;
    if (nAff > 0 && nAvail > 0) wantAffinity = cs.rng.nextF64() < this.threshold;
    let m = 0;
    for (let k = 0; k < n; k++) {
      const i = unchecked(cs.cand[k]);
      const e = unchecked(eps[i]);
      const aff = hasAdapter(e.runningAdapters, req.adapter);
      const keep = wantAffinity ? aff : !aff && e.runningAdapters.length < e.maxLoras;
      if (keep) unchecked((cs.cand[m++] = i));
    }
    cs.n = m;
  }
}

/** Legacy `drop` node: marks the request shed (→ 429). */
export class DropRequestFilter extends Filter {
  constructor() {
    super("drop-request-filter");
  }
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    cs.shed = true;
    cs.n = 0;
  }
}

/**
 * A node of GIE v0.3's decision tree: run `filter`; on a non-empty result continue with onSuccess (or
 * onSuccessOrFailure) on the filtered set, else with onFailure (or onSuccessOrFailure) on the node's
 * *input* set. With no follow-up the node's own result stands (empty = failure).
 */
export class DecisionTreeFilter extends Filter {
  onSuccess: Filter | null = null;
  onFailure: Filter | null = null;
  onSuccessOrFailure: Filter | null = null;
  private saved: StaticArray<i32> = new StaticArray<i32>(16);

  constructor(public filter: Filter) {
    super("decision-tree-filter");
  }

  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    const n = cs.n;
    const needSave = this.onFailure != null || this.onSuccessOrFailure != null;
    if (needSave) {
      if (this.saved.length < n) {
        let c = this.saved.length;
        while (c < n) c <<= 1;
        this.saved = new StaticArray<i32>(c);
      }
      memory.copy(changetype<usize>(this.saved), changetype<usize>(cs.cand), (<usize>n) << 2);
    }
    this.filter.apply(eps, req, cs);
    if (cs.n > 0) {
      const next = this.onSuccess != null ? this.onSuccess : this.onSuccessOrFailure;
      if (next != null) next.apply(eps, req, cs);
      return;
    }
    if (cs.shed) return;
    const next = this.onFailure != null ? this.onFailure : this.onSuccessOrFailure;
    if (next == null) return;
    memory.copy(changetype<usize>(cs.cand), changetype<usize>(this.saved), (<usize>n) << 2);
    cs.n = n;
    next.apply(eps, req, cs);
  }
}
