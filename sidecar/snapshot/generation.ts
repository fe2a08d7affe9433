// Snapshot generations: strictly increasing, also across sidecar restarts. A generation is the wall
// clock in microsecond-sized slots (ms × 1000 + counter), so a restarted sidecar starts above anything its
// predecessor sent unless it pushed more than 1000 snapshots per millisecond or the clock went back
// across the restart. Within one process the value never goes backwards, even if the clock does.
// A generation an Envoy reports is followed only when a real sidecar could have made it (at most
// FOLLOW_AHEAD_MS ahead of our clock): a pushed 2^64−1 must not drag us past the u64 range. The filter
// lets a lower generation in once the stored one goes unrefreshed (control.ts GENERATION_HOLD_MS).

/** How far ahead of our clock a peer sidecar's generation may be and still be followed. */
export const FOLLOW_AHEAD_MS = 60_000;
const U64_MAX = 2n ** 64n - 1n;

export class GenerationClock {
  private last: bigint;

  constructor(
    private readonly nowMs: () => number = Date.now,
    /** Lower bound, e.g. the generation an Envoy reported (x-epp-snapshot-generation on 409). */
    floor: bigint = 0n,
  ) {
    this.last = floor;
  }

  next(): bigint {
    const fromClock = BigInt(Math.floor(this.nowMs())) * 1000n;
    const next = fromClock > this.last ? fromClock : this.last + 1n;
    // Unreachable while observe() is bounded; a generation outside u64 would brick every push.
    this.last = next > U64_MAX ? fromClock : next;
    return this.last;
  }

  /** The highest generation a real sidecar could produce now (FOLLOW_AHEAD_MS ahead of our clock). */
  plausibleLimit(): bigint {
    return (BigInt(Math.floor(this.nowMs())) + BigInt(FOLLOW_AHEAD_MS)) * 1000n + 999n;
  }

  /**
   * Raises the floor so the next generation is above `g` (after an Envoy says ours is not newer).
   * Returns false, and ignores `g`, when no real sidecar could have made it.
   */
  observe(g: bigint): boolean {
    if (g > this.plausibleLimit()) return false;
    if (g > this.last) this.last = g;
    return true;
  }

  peek(): bigint {
    return this.last;
  }
}
