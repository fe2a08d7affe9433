// The scheduler a filter VM keeps: the profiles built from the snapshot's scheduling config (its PLUGINS
// section, or the built-in config the SCHEDULER record names), the VM's prefix index, and reusable cycle
// scratch. schedule() admits (saturation detector), runs the primary profile (or the stale one) and
// leaves the ordered endpoint list (best first, up to 1 + maxFallbacks) in `result`; onPicked() records
// the dispatch and runs the profile's post-pick hooks, which may ask for response headers.

import { Endpoint, RequestInfo, SchedulerConfig, CycleState, SCHEDULE_OK } from "./types.ts";
import { SchedulingProfile, ResponseHeaders } from "./framework.ts";
import { SchedulingSpec } from "../snapshot/types.ts";
import { buildFromSpec, BuildEnv, BuiltScheduling } from "./build.ts";
import { builtinSpecFor } from "./builtin.ts";
import { PrefixIndex } from "../prefix/index.ts";
import { AffinityDirectory } from "./affinity-directory.ts";

/** Fallbacks after the pick in x-gateway-destination-endpoint (runtime param `maxFallbacks`). */
export const DEFAULT_MAX_FALLBACKS: i32 = 3;

export class Scheduler {
  index: PrefixIndex;
  cs: CycleState;
  config: SchedulerConfig;
  /** The PLUGINS section in force; null = the built-in config `config.profile` names. */
  spec: SchedulingSpec | null = null;
  built!: BuiltScheduling;
  /** The primary profile (the built config's). */
  profile!: SchedulingProfile;
  maxResults: i32 = 1 + DEFAULT_MAX_FALLBACKS;
  /** Endpoint indices of the last successful schedule(), best first. */
  result: StaticArray<i32> = new StaticArray<i32>(1 + DEFAULT_MAX_FALLBACKS);
  resultCount: i32 = 0;
  /** Response headers the last onPicked() asked for (session token); cleared by schedule(). */
  responseHeaders: ResponseHeaders = new ResponseHeaders();
  /** Shared placements (set by the filter before the first snapshot; null: this VM's view only). */
  directory: AffinityDirectory | null = null;
  /** The profile the last schedule() ran, whose members' afterPick hooks onPicked() runs. */
  private ran!: SchedulingProfile;

  constructor(seed: u64, config: SchedulerConfig = new SchedulerConfig(), slots: i32 = 16) {
    this.index = new PrefixIndex(slots > 0 ? slots : 1);
    this.cs = new CycleState(seed);
    this.config = config.clone();
    // The built-in configs always build.
    this.built = buildFromSpec(builtinSpecFor(this.config), this.env(this.config)).built!;
    this.profile = this.built.primary;
    this.ran = this.profile;
    this.applyLimits();
  }

  private env(cfg: SchedulerConfig): BuildEnv {
    const env = new BuildEnv(this.index);
    env.directory = this.directory;
    env.envoyReplicas = cfg.param("envoyReplicas", 1);
    return env;
  }

  /**
   * Adopts a snapshot's scheduler record and PLUGINS section (null: none, the built-in config applies).
   * Rebuilds only when either changed (the section by its CRC). Returns "" or the build error, in which
   * case the previous configuration stays in force.
   */
  configure(cfg: SchedulerConfig, spec: SchedulingSpec | null = null): string {
    const sameSpec = spec == null ? this.spec == null : this.spec != null && this.spec!.crc == spec.crc;
    if (sameSpec && cfg.sameAs(this.config)) return "";
    const res = buildFromSpec(spec != null ? spec : builtinSpecFor(cfg), this.env(cfg));
    if (res.built == null) return res.error;
    this.config = cfg.clone();
    this.spec = spec;
    this.install(res.built!);
    this.applyLimits();
    return "";
  }

  /** Installs the shared directory and rebuilds the profiles with it. */
  useDirectory(directory: AffinityDirectory): void {
    this.directory = directory;
    const spec = this.spec;
    const res = buildFromSpec(spec != null ? spec : builtinSpecFor(this.config), this.env(this.config));
    if (res.built != null) this.install(res.built!);
  }

  private install(built: BuiltScheduling): void {
    this.built = built;
    this.profile = built.primary;
    this.ran = built.primary;
  }

  /** The request headers the plugins read; RequestInfo.pluginHeaderValues holds their values by index. */
  wantedRequestHeaders(): string[] {
    return this.built.headers;
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
   * and sets each slot's LRU capacity (approx-prefix-cache-producer: from KV geometry with autoTune).
   * The filter must call index.removeEndpoint(slot) when it gives a slot to a different pod.
   */
  syncEndpoints(eps: Endpoint[]): void {
    let maxSlot = -1;
    for (let i = 0; i < eps.length; i++) if (eps[i].slot > maxSlot) maxSlot = eps[i].slot;
    this.index.ensureEndpoints(maxSlot + 1);
    this.cs.ensure(eps.length, maxSlot + 1);
    const prefix = this.built.prefix;
    for (let i = 0; i < eps.length; i++) {
      const cap = prefix.capacityFor(eps[i]);
      if (cap >= 0) this.index.setCapacity(eps[i].slot, cap);
    }
  }

  /**
   * Picks endpoints for a request. Returns SCHEDULE_OK (result/resultCount filled), SCHEDULE_SHED (429)
   * or SCHEDULE_NO_CANDIDATES (503). `stale`: the endpoints carry no load figures (PoolView
   * staleFigures), so nothing is shed and the stale profile balances by this VM's in-flight counts.
   * `admit` false: flow control has already admitted the request (its dispatch), so the detector is skipped.
   */
  schedule(eps: Endpoint[], req: RequestInfo, stale: bool = false, admit: bool = true): i32 {
    this.resultCount = 0;
    this.responseHeaders.clear();
    const n = eps.length;
    // Cheap guard so a caller that forgot syncEndpoints() cannot index out of bounds.
    if (this.cs.cand.length < n) this.syncEndpoints(eps);
    const built = this.built;
    if (!stale && admit) {
      const a = built.detector.admit(eps, req);
      if (a != SCHEDULE_OK) return a;
    }
    const profile = stale ? built.stale : built.primary;
    this.ran = profile;
    this.cs.begin(n);
    const status = profile.run(eps, req, this.cs, this.maxResults, this.result);
    if (status == SCHEDULE_OK) this.resultCount = profile.picked;
    return status;
  }

  /** Records that the request went to eps[i]: in-flight counts grow, then the profile's post-pick hooks. */
  onPicked(eps: Endpoint[], i: i32, req: RequestInfo): void {
    if (i < 0 || i >= eps.length) return;
    const e = eps[i];
    e.inflightRequests++;
    e.inflightPromptTokens += req.promptTokens;
    this.ran.afterPick(eps, i, req, this.cs, this.responseHeaders);
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
