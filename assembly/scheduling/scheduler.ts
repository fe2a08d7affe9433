// The scheduler a filter VM keeps: one profile built from the snapshot's scheduler record, the VM's
// prefix index, and reusable cycle scratch. schedule() admits, runs the profile and leaves the ordered
// endpoint list (best first, up to 1 + maxFallbacks) in `result`; onPicked() records the dispatch.

import { Endpoint, RequestInfo, SchedulerConfig, CycleState, SCHEDULE_OK } from "./types.ts";
import { SchedulingProfile } from "./framework.ts";
import { buildProfile, buildStaleProfile, isLegacy } from "./profiles.ts";
import { admit } from "./saturation.ts";
import { PrefixIndex } from "../prefix/index.ts";
import { AffinityDirectory } from "./affinity-directory.ts";
import { BLOCK_SIZE } from "../prefix/blocks.ts";

/** Fallbacks after the pick in x-gateway-destination-endpoint (param `maxFallbacks`). */
export const DEFAULT_MAX_FALLBACKS: i32 = 3;
/** GIE's characters-per-token estimate, for sizing the prefix LRU from KV geometry. */
const CHARS_PER_TOKEN: i32 = 4;

export class Scheduler {
  index: PrefixIndex;
  cs: CycleState;
  config: SchedulerConfig;
  profile: SchedulingProfile;
  /** Least request + prefix affinity for a pool without load figures; built on first use. */
  staleProfile: SchedulingProfile | null = null;
  maxResults: i32 = 1 + DEFAULT_MAX_FALLBACKS;
  /** Endpoint indices of the last successful schedule(), best first. */
  result: StaticArray<i32> = new StaticArray<i32>(1 + DEFAULT_MAX_FALLBACKS);
  resultCount: i32 = 0;
  /** Shared placements (set by the filter before the first snapshot; null: this VM's view only). */
  directory: AffinityDirectory | null = null;

  constructor(seed: u64, config: SchedulerConfig = new SchedulerConfig(), slots: i32 = 16) {
    const index = new PrefixIndex(slots > 0 ? slots : 1);
    const cfg = config.clone();
    this.index = index;
    this.cs = new CycleState(seed);
    this.config = cfg;
    this.profile = buildProfile(cfg, index);
    this.applyLimits();
  }

  /** Adopts a snapshot's scheduler record; rebuilds the profile only when it changed. */
  configure(cfg: SchedulerConfig): void {
    if (cfg.sameAs(this.config)) return;
    this.config = cfg.clone();
    this.profile = buildProfile(this.config, this.index, this.directory);
    this.staleProfile = null;
    this.applyLimits();
  }

  /** Installs the shared directory and rebuilds the profile with it. */
  useDirectory(directory: AffinityDirectory): void {
    this.directory = directory;
    this.profile = buildProfile(this.config, this.index, directory);
    this.staleProfile = null;
  }

  private applyLimits(): void {
    let f = <i32>this.config.param("maxFallbacks", <f64>DEFAULT_MAX_FALLBACKS);
    if (f < 0) f = 0;
    if (f > 64) f = 64;
    this.maxResults = 1 + f;
    if (this.result.length < this.maxResults) this.result = new StaticArray<i32>(this.maxResults);
  }

  /**
   * Call when a new snapshot's endpoints are in place: sizes scratch and the prefix index for the slots
   * and sets each slot's LRU capacity from its KV geometry (blocks × tokens/block × 4 chars ÷ 64).
   * The filter must call index.removeEndpoint(slot) when it gives a slot to a different pod.
   */
  syncEndpoints(eps: Endpoint[]): void {
    let maxSlot = -1;
    for (let i = 0; i < eps.length; i++) if (eps[i].slot > maxSlot) maxSlot = eps[i].slot;
    this.index.ensureEndpoints(maxSlot + 1);
    this.cs.ensure(eps.length, maxSlot + 1);
    for (let i = 0; i < eps.length; i++) {
      const e = eps[i];
      if (e.kvBlockCount > 0 && e.kvBlockSize > 0) {
        const chars = <i64>e.kvBlockCount * <i64>e.kvBlockSize * CHARS_PER_TOKEN;
        const blocks = chars / BLOCK_SIZE;
        this.index.setCapacity(e.slot, blocks > i32.MAX_VALUE ? i32.MAX_VALUE : <i32>blocks);
      }
    }
  }

  /**
   * Picks endpoints for a request. Returns SCHEDULE_OK (result/resultCount filled), SCHEDULE_SHED (429)
   * or SCHEDULE_NO_CANDIDATES (503). `stale`: the endpoints carry no load figures (PoolView
   * staleFigures), so nothing is shed and the stale profile balances by this VM's in-flight counts.
   */
  schedule(eps: Endpoint[], req: RequestInfo, stale: bool = false): i32 {
    this.resultCount = 0;
    const n = eps.length;
    // Cheap guard so a caller that forgot syncEndpoints() cannot index out of bounds.
    if (this.cs.cand.length < n) this.syncEndpoints(eps);
    if (!stale && !isLegacy(this.config)) {
      const a = admit(eps, req, this.config);
      if (a != SCHEDULE_OK) return a;
    }
    let profile = this.profile;
    if (stale) {
      if (this.staleProfile == null)
        this.staleProfile = buildStaleProfile(this.config, this.index, this.directory);
      profile = this.staleProfile!;
    }
    this.cs.begin(n);
    const status = profile.run(eps, req, this.cs, this.maxResults, this.result);
    if (status == SCHEDULE_OK) this.resultCount = profile.picked;
    return status;
  }

  /** Records that the request went to eps[i]: prefix index learns its blocks, in-flight counts grow. */
  onPicked(eps: Endpoint[], i: i32, req: RequestInfo): void {
    if (i < 0 || i >= eps.length) return;
    const e = eps[i];
    const h = req.hashes;
    if (h != null && req.hashCount > 0) {
      if (e.slot >= this.index.maxEndpoints) this.index.ensureEndpoints(e.slot + 1);
      this.index.add(h, req.hashCount, e.slot);
    }
    e.inflightRequests++;
    e.inflightPromptTokens += req.promptTokens;
    // Publish the group's placement when it is new or moved, so the other workers follow it.
    const dir = this.directory;
    const cs = this.cs;
    if (dir != null && cs.affinityKey != 0 && cs.affinityHolder != e.hostHash())
      dir.record(cs.affinityKey, e.hostHash());
  }

  /** `ip:port,ip:port,…` of the last result, best first (allocates; for the filter's header). */
  destinationList(eps: Endpoint[]): string {
    let s = "";
    for (let k = 0; k < this.resultCount; k++) {
      if (k > 0) s += ",";
      s += eps[this.result[k]].hostPort;
    }
    return s;
  }
}
