// `ready-filter` (ours, implicit: first in every profile): drops endpoints that are not ready, prefers
// ones without a recent connect failure, and ones whose metrics are not stale.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Filter } from "../framework.ts";

export const READY_FILTER = "ready-filter";

/**
 * Keeps ready endpoints whose metrics are not stale; when every ready endpoint is stale, keeps them
 * all (old metrics beat refusing the request). No ready endpoint → empty → 503. Before that, ready
 * endpoints with a recent connect failure (unreachable) drop out while any ready one has none; a
 * conformance subset request keeps them (it names its endpoints itself).
 */
export class ReadyFilter extends Filter {
  constructor() {
    super(READY_FILTER);
  }
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    let ready = 0;
    let reachable = 0;
    for (let k = 0, n = cs.n; k < n; k++) {
      const i = unchecked(cs.cand[k]);
      const e = unchecked(eps[i]);
      if (!e.ready) continue;
      unchecked((cs.cand[ready++] = i));
      if (!e.unreachable) reachable++;
    }
    if (reachable > 0 && reachable < ready && req.endpointSubset.length == 0) {
      let m = 0;
      for (let k = 0; k < ready; k++) {
        const i = unchecked(cs.cand[k]);
        if (!unchecked(eps[i]).unreachable) unchecked((cs.cand[m++] = i));
      }
      ready = m;
    }
    let fresh = 0;
    for (let k = 0; k < ready; k++) if (!unchecked(eps[unchecked(cs.cand[k])]).stale) fresh++;
    cs.n = ready;
    if (fresh == 0 || fresh == ready) return;
    let m = 0;
    for (let k = 0; k < ready; k++) {
      const i = unchecked(cs.cand[k]);
      if (!unchecked(eps[i]).stale) unchecked((cs.cand[m++] = i));
    }
    cs.n = m;
  }
}
