// Snapshot generations: strictly increasing, also across sidecar restarts. A generation is the wall
// clock in microsecond-sized slots (ms × 1000 + counter), so a restarted sidecar starts above anything its
// predecessor sent unless it pushed more than 1000 snapshots per millisecond or the clock went back
// across the restart. Within one process the value never goes backwards, even if the clock does.

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
    this.last = fromClock > this.last ? fromClock : this.last + 1n;
    return this.last;
  }

  /** Raises the floor so the next generation is above `g` (after an Envoy says ours is not newer). */
  observe(g: bigint): void {
    if (g > this.last) this.last = g;
  }

  peek(): bigint {
    return this.last;
  }
}
