// Where each prompt group (affinity key: the hash of its leading blocks) was last placed, shared by every
// worker VM of one Envoy. Without it each worker learns placements only from its own requests, so the
// workers of one proxy split a group over several pods. The base class knows nothing (one worker, tests);
// the filter installs a proxy-wasm shared-data directory (../affinity-shared.ts).

export class AffinityDirectory {
  /** Host hash of the endpoint that last took `key`, or 0 when unknown. */
  lookup(key: u64): u64 {
    return 0;
  }
  /** Records that `key` went to the endpoint with host hash `host`. */
  record(key: u64, host: u64): void {}
}

/** In-memory directory: unit tests, and probes that simulate several workers in one module. */
export class MemoryAffinityDirectory extends AffinityDirectory {
  readonly map: Map<u64, u64> = new Map<u64, u64>();
  writes: i32 = 0;
  lookup(key: u64): u64 {
    return this.map.has(key) ? this.map.get(key) : 0;
  }
  record(key: u64, host: u64): void {
    this.map.set(key, host);
    this.writes++;
  }
}
