// Minimal endpoint choice for the foundation: among ready, non-stale endpoints the least
// (waiting + running), ties broken uniformly at random. O(endpoints), no allocation.
// (assembly/scheduling/ replaces this with the real scheduler.)

import { Endpoint } from "./snapshot/types.ts";
import { randomBelow } from "./random.ts";

export function pickLeastLoaded(endpoints: Endpoint[]): Endpoint | null {
  let best: Endpoint | null = null;
  let bestLoad: u64 = 0;
  let ties: u32 = 0;
  for (let i = 0, n = endpoints.length; i < n; i++) {
    const e = unchecked(endpoints[i]);
    if (!e.ready || e.stale) continue;
    const load = <u64>e.waiting + <u64>e.running;
    if (best == null || load < bestLoad) {
      best = e;
      bestLoad = load;
      ties = 1;
    } else if (load == bestLoad) {
      // Reservoir sampling over the tied endpoints: each ends up chosen with probability 1/ties.
      ties++;
      if (randomBelow(ties) == 0) best = e;
    }
  }
  return best;
}
