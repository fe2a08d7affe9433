// A plugin's scheduling view of its pool in this VM, rebuilt once per adopted snapshot: scheduler
// Endpoint objects (reused per ip:port so their prefix-index slot and cached hash survive), the model
// table for resolution, the scheduler itself (built from the snapshot's PLUGINS section, else from the
// scheduler record's profile name) and the in-flight dispatches this plugin made.

import { log, LogLevel, nowNanos, randomU64 } from "./abi/host.ts";
import * as snap from "./snapshot/types.ts";
import { Endpoint, SchedulerConfig } from "./scheduling/types.ts";
import { Scheduler } from "./scheduling/scheduler.ts";
import { ModelEntry, ModelTable, ObjectiveEntry, RewriteRule } from "./scheduling/models.ts";
import { PluginConfig, STRICT_FROM_POOL } from "./config.ts";
import { InflightSet } from "./inflight.ts";
import { SharedAffinityDirectory } from "./affinity-shared.ts";
import { SharedInflight, sharedInflightOn } from "./shared-inflight.ts";
import { markFailed, markUnreachable, recentFailure, REACH_CLEAR } from "./reachability.ts";

function schedulerConfig(s: snap.SchedulerConfig, config: PluginConfig): SchedulerConfig {
  const c = new SchedulerConfig();
  c.profile = s.profile.length > 0 ? s.profile : "default";
  c.queueThreshold = <i32>min<u32>(s.queueThreshold, <u32>i32.MAX_VALUE);
  c.kvThreshold = <f64>s.kvThreshold / 10000.0;
  c.metricsStalenessMs = s.metricsStalenessMs;
  for (let i = 0; i < s.paramKeys.length && i < s.paramValues.length; i++)
    c.setParam(s.paramKeys[i], s.paramValues[i]);
  // The fallback count belongs to this Envoy's retry policy, so the plugin config wins.
  c.setParam("maxFallbacks", <f64>config.maxFallbacks);
  return c;
}

function clampI32(v: u32): i32 {
  return v > <u32>i32.MAX_VALUE ? i32.MAX_VALUE : <i32>v;
}

function fill(e: Endpoint, s: snap.Endpoint): void {
  e.waiting = clampI32(s.waiting);
  e.running = clampI32(s.running);
  e.kvUsage = <f64>s.kvUsage / 10000.0;
  e.maxLoras = <i32>s.maxLoras;
  e.kvBlockSize = <i32>s.kvBlockSize;
  e.kvBlockCount = clampI32(s.kvBlockCount);
  e.runningAdapters = s.runningAdapters;
  e.waitingAdapters = s.waitingAdapters;
  e.ready = s.ready;
  e.stale = s.stale;
  e.metricsAgeMs = s.metricsAgeMs;
}

function weightedTargets(ts: snap.WeightedName[], names: string[], weights: u32[]): void {
  for (let i = 0; i < ts.length; i++) {
    names.push(ts[i].name);
    weights.push(ts[i].weight);
  }
}

function modelTable(s: snap.Snapshot, config: PluginConfig): ModelTable {
  const t = new ModelTable();
  for (let i = 0; i < s.models.length; i++) {
    const m = s.models[i];
    const e = new ModelEntry();
    e.name = m.name;
    e.criticality = m.criticality;
    weightedTargets(m.targets, e.targets, e.weights);
    t.models.push(e);
  }
  for (let i = 0; i < s.objectives.length; i++) {
    const o = s.objectives[i];
    const e = new ObjectiveEntry();
    e.name = o.name;
    e.hasPriority = o.hasPriority;
    e.priority = o.priority;
    t.objectives.push(e);
  }
  for (let i = 0; i < s.rewrites.length; i++) {
    const r = s.rewrites[i];
    const e = new RewriteRule();
    e.matches = r.matches;
    weightedTargets(r.targets, e.targets, e.weights);
    t.rewrites.push(e);
  }
  t.strict = config.strictModels == STRICT_FROM_POOL ? s.pool.strictModels : config.strictModels == 1;
  return t;
}

export class PoolView {
  endpoints: Endpoint[] = [];
  models: ModelTable = new ModelTable();
  readonly scheduler: Scheduler;
  readonly inflight: InflightSet = new InflightSet();
  private synced: snap.Snapshot | null = null;
  private readonly byHostPort: Map<string, Endpoint> = new Map<string, Endpoint>();
  private readonly freeSlots: i32[] = [];
  private nextSlot: i32 = 0;
  /** Stamp per sync, to find endpoints that left the snapshot (and duplicates within one). */
  private stamp: u32 = 0;
  private readonly stamps: Map<Endpoint, u32> = new Map<Endpoint, u32>();

  /** A fresh, seeded scheduler that knows no pool yet (on_configure). */
  constructor(
    seed: u64,
    private readonly config: PluginConfig,
  ) {
    this.scheduler = new Scheduler(seed);
    this.scheduler.useDirectory(new SharedAffinityDirectory(config.keyPrefix()));
  }

  /** Newest connect-failure mark in this view (0: none yet): lets a pick skip the reachability pass. */
  private lastFailureMs: u64 = 0;
  /** Some endpoint may still carry `unreachable` from an earlier pass. */
  private marksVisible: bool = false;

  /** The current endpoint with this `ip:port`, or null. */
  find(hostPort: string): Endpoint | null {
    if (!this.byHostPort.has(hostPort)) return null;
    const e = this.byHostPort.get(hostPort);
    return e.slot < 0 ? null : e;
  }

  /** A request to `e` ended in a connect failure at `nowMs` (Envoy's clock). */
  noteConnectFailure(e: Endpoint, nowMs: u64): void {
    markFailed(e, nowMs);
    if (e.failedAtMs > this.lastFailureMs) this.lastFailureMs = e.failedAtMs;
  }

  /**
   * Per pick: marks this cycle's unreachable endpoints and returns REACH_* (reachability.ts). When no
   * mark can be within the window the pass is skipped (after clearing flags a previous pass left).
   */
  reachability(nowMs: u64, windowMs: u64): i32 {
    if (!recentFailure(this.lastFailureMs, nowMs, windowMs)) {
      if (this.marksVisible) {
        const eps = this.endpoints;
        for (let i = 0; i < eps.length; i++) unchecked(eps[i]).unreachable = false;
        this.marksVisible = false;
      }
      return REACH_CLEAR;
    }
    const r = markUnreachable(this.endpoints, nowMs, windowMs);
    this.marksVisible = r != REACH_CLEAR;
    return r;
  }

  /**
   * True while the endpoints carry no scraped load (the snapshot is past staleAfterMs and the plugin
   * routes on it anyway): waiting, running and KV usage read 0 and in-flight counts every open dispatch.
   */
  staleFigures: bool = false;

  /**
   * Makes `s` the pool the scheduler sees; a no-op when it already is in the same state. `stale`:
   * keep the endpoints as listed but drop their load figures, which are too old to mean anything.
   */
  sync(s: snap.Snapshot, stale: bool = false): void {
    if (this.synced === s && this.staleFigures == stale) return;
    // Back to fresh on the same snapshot (not reached by age alone): rebuild to get the figures back.
    if (this.synced !== s || !stale) this.rebuild(s);
    this.staleFigures = stale;
    if (stale) this.dropLoadFigures();
  }

  /** Once per stale transition: only this VM's own dispatches say anything about load now. */
  private dropLoadFigures(): void {
    const eps = this.endpoints;
    for (let i = 0; i < eps.length; i++) {
      const e = eps[i];
      e.waiting = 0;
      e.running = 0;
      e.kvUsage = 0;
    }
    // Scrape time 0: every open dispatch counts, none is inside a scraped figure any more.
    this.inflight.rebase(eps, 0);
    const shared = this.inflight.shared;
    if (shared != null) shared.active = false;
  }

  private rebuild(s: snap.Snapshot): void {
    this.synced = s;
    const stamp = ++this.stamp;
    const byHostPort = this.byHostPort;
    const stamps = this.stamps;
    const next = new Array<Endpoint>();
    for (let i = 0; i < s.endpoints.length; i++) {
      const src = s.endpoints[i];
      let e: Endpoint;
      if (byHostPort.has(src.hostPort)) {
        e = byHostPort.get(src.hostPort);
        if (stamps.get(e) == stamp) continue; // duplicate ip:port in one snapshot: keep the first
      } else {
        e = new Endpoint();
        e.hostPort = src.hostPort;
        e.slot = this.freeSlots.length > 0 ? this.freeSlots.pop() : this.nextSlot++;
        byHostPort.set(src.hostPort, e);
      }
      stamps.set(e, stamp);
      fill(e, src);
      next.push(e);
    }
    // Endpoints that left: forget their prefix history and hand the slot to the next newcomer.
    const endpoints = this.endpoints;
    for (let i = 0; i < endpoints.length; i++) {
      const old = endpoints[i];
      if (old.slot < 0 || stamps.get(old) == stamp) continue;
      this.scheduler.index.removeEndpoint(old.slot);
      this.freeSlots.push(old.slot);
      old.slot = -1;
      byHostPort.delete(old.hostPort);
      stamps.delete(old);
    }
    this.endpoints = next;
    this.models = modelTable(s, this.config);
    // The control path refused configs that do not build (ingest.ts); one that fails here anyway leaves the
    // previous configuration routing.
    const sc = schedulerConfig(s.scheduler, this.config);
    const why = this.scheduler.configure(sc, s.scheduling);
    if (why.length > 0) log(LogLevel.Warn, "scheduling config not applied: " + why);
    this.scheduler.syncEndpoints(next);
    this.inflight.rebase(next, s.createdAtMs);
    this.followShared(sharedInflightOn(sc), s);
  }

  /** `sharedInflight`: publish this worker's counts for the new snapshot (shared-inflight.ts). */
  private followShared(on: bool, s: snap.Snapshot): void {
    let shared = this.inflight.shared;
    if (!on) {
      if (shared != null) shared.active = false;
      return;
    }
    if (shared == null) {
      // Tells worker VMs apart, so random even when randomSeed pins the scheduler.
      const id = randomU64() ^ (nowNanos() * 0x9e3779b97f4a7c15);
      this.inflight.shared = shared = new SharedInflight(this.config.keyPrefix(), id == 0 ? 1 : id);
    }
    shared.follow(this.endpoints, s.generation, s.createdAtMs);
  }
}
