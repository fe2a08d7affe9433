// Inputs and outputs of the scheduler. The filter fills these from the decoded snapshot and the parsed
// request; nothing here imports the proxy-wasm SDK, so the scheduler is unit-testable in as-pect.

import { Rng, hashString } from "./rng.ts";

/** InferenceModel criticality, numbered as in the snapshot's model record. */
export const CRITICALITY_UNSET: u8 = 0;
export const CRITICALITY_CRITICAL: u8 = 1;
export const CRITICALITY_STANDARD: u8 = 2;
export const CRITICALITY_SHEDDABLE: u8 = 3;

/** Outcome of a scheduling cycle; non-zero values are the HTTP status the filter answers with. */
export const SCHEDULE_OK: i32 = 0;
export const SCHEDULE_SHED: i32 = 429;
export const SCHEDULE_NO_CANDIDATES: i32 = 503;

/** One model-server endpoint as the scheduler sees it. */
export class Endpoint {
  /** Stable slot of this endpoint in the VM (prefix-index slot); the filter maps ip:port → slot. */
  slot: i32 = 0;
  /** `ip:port` (IPv6 as `[addr]:port`), the form written into x-gateway-destination-endpoint. */
  hostPort: string = "";
  waiting: i32 = 0;
  running: i32 = 0;
  /** KV-cache usage 0..1. */
  kvUsage: f64 = 0;
  /** Adapter slots (`max_lora`); 0 = unknown or LoRA disabled. */
  maxLoras: i32 = 0;
  /** Tokens per KV block; 0 = unknown. */
  kvBlockSize: i32 = 0;
  /** KV blocks on the GPU; 0 = unknown. */
  kvBlockCount: i32 = 0;
  runningAdapters: string[] = [];
  waitingAdapters: string[] = [];
  ready: bool = true;
  /** The sidecar marks endpoints whose metrics are too old or failing. */
  stale: bool = false;
  /** Age of the metrics when the snapshot was taken; u32.MAX_VALUE = never scraped. */
  metricsAgeMs: u32 = 0;
  // VM-local, always fresh: what this VM dispatched to the endpoint since the snapshot's scrape time.
  inflightRequests: i32 = 0;
  inflightPromptTokens: i32 = 0;
  /** VM-local: when (Envoy's clock, ms) a request here last ended in a connect failure; 0 = none since. */
  failedAtMs: u64 = 0;
  /** Set per cycle (reachability.ts): that failure is within the window, so prefer other endpoints. */
  unreachable: bool = false;

  private hostHashCache: u64 = 0;

  /** Hash of hostPort for rendezvous hashing, computed once per endpoint object. */
  @inline hostHash(): u64 {
    if (this.hostHashCache == 0) this.hostHashCache = hashString(this.hostPort) | 1;
    return this.hostHashCache;
  }

  /** Forget the cached hash (call after changing hostPort on a reused object). */
  resetHostHash(): void {
    this.hostHashCache = 0;
  }
}

/** What the scheduler needs to know about one request. */
export class RequestInfo {
  /** Model after resolution/rewrite (the name the model server sees). */
  targetModel: string = "";
  /** LoRA adapter to look for in running/waiting adapters; "" = no adapter preference. */
  adapter: string = "";
  /** Objective priority; < 0 is sheddable under saturation. */
  priority: i32 = 0;
  /** InferenceModel criticality (legacy profile). */
  criticality: u8 = CRITICALITY_UNSET;
  promptBytes: i32 = 0;
  /** Estimate (≈ bytes / 4, as GIE). */
  promptTokens: i32 = 0;
  /** Chained block hashes of the prompt (assembly/prefix/blocks.ts); null = none. */
  hashes: StaticArray<u64> | null = null;
  hashCount: i32 = 0;
  stream: bool = false;
  /** Raw `test-epp-endpoint-selection` header (conformance), "" when absent or not enabled. */
  endpointSubset: string = "";
  /**
   * Values of the request headers the scheduler's plugins asked for, aligned by index with
   * Scheduler.wantedRequestHeaders() ("" = absent). The director fills it; missing entries read as "".
   */
  pluginHeaderValues: string[] = [];

  /** The value of wanted request header `slot`, "" when absent. */
  @inline pluginHeader(slot: i32): string {
    return slot >= 0 && slot < this.pluginHeaderValues.length ? unchecked(this.pluginHeaderValues[slot]) : "";
  }

  reset(): void {
    this.targetModel = "";
    this.adapter = "";
    this.priority = 0;
    this.criticality = CRITICALITY_UNSET;
    this.promptBytes = 0;
    this.promptTokens = 0;
    this.hashes = null;
    this.hashCount = 0;
    this.stream = false;
    this.endpointSubset = "";
    this.pluginHeaderValues.length = 0;
  }
}

/** The snapshot's scheduler record. */
export class SchedulerConfig {
  profile: string = "default";
  /** Saturation: no fresh endpoint has waiting ≤ queueThreshold… */
  queueThreshold: i32 = 5;
  /** …and KV usage ≤ kvThreshold (0..1). */
  kvThreshold: f64 = 0.8;
  /** Metrics older than this are not fresh. */
  metricsStalenessMs: u32 = 200;
  paramKeys: string[] = [];
  paramValues: f64[] = [];

  setParam(key: string, value: f64): SchedulerConfig {
    for (let i = 0; i < this.paramKeys.length; i++) {
      if (this.paramKeys[i] == key) {
        this.paramValues[i] = value;
        return this;
      }
    }
    this.paramKeys.push(key);
    this.paramValues.push(value);
    return this;
  }

  param(key: string, fallback: f64): f64 {
    for (let i = 0; i < this.paramKeys.length; i++) {
      if (this.paramKeys[i] == key) return this.paramValues[i];
    }
    return fallback;
  }

  /** Equal when a profile built from one would be built the same from the other. */
  sameAs(o: SchedulerConfig): bool {
    if (this.profile != o.profile || this.queueThreshold != o.queueThreshold) return false;
    if (this.kvThreshold != o.kvThreshold || this.metricsStalenessMs != o.metricsStalenessMs) return false;
    if (this.paramKeys.length != o.paramKeys.length) return false;
    for (let i = 0; i < this.paramKeys.length; i++) {
      if (o.param(this.paramKeys[i], NaN) != this.paramValues[i]) return false;
    }
    return true;
  }

  clone(): SchedulerConfig {
    const c = new SchedulerConfig();
    c.profile = this.profile;
    c.queueThreshold = this.queueThreshold;
    c.kvThreshold = this.kvThreshold;
    c.metricsStalenessMs = this.metricsStalenessMs;
    for (let i = 0; i < this.paramKeys.length; i++) c.setParam(this.paramKeys[i], this.paramValues[i]);
    return c;
  }
}

/** An endpoint (index into the endpoints array) with its weighted total score. */
export class ScoredEndpoint {
  index: i32 = -1;
  score: f64 = 0;
}

/**
 * Per-cycle scratch every profile uses, reused across requests. Candidates are indices into the endpoints
 * array, compacted in place by filters; arrays grow geometrically and are never shrunk, so a warm
 * scheduler allocates nothing per request. Plugin-specific scratch lives in the plugins (beginCycle).
 */
export class CycleState {
  cand: StaticArray<i32> = new StaticArray<i32>(16);
  n: i32 = 0;
  /** Σ weight·score per candidate position. */
  totals: StaticArray<f64> = new StaticArray<f64>(16);
  /** One scorer's scores per candidate position. */
  scores: StaticArray<f64> = new StaticArray<f64>(16);
  /** Per-candidate scratch a scorer or picker may use within its own call (min-max inputs, random keys). */
  work: StaticArray<f64> = new StaticArray<f64>(16);
  /** Set by a filter that decided to drop the request (legacy tree) → 429. */
  shed: bool = false;
  /** Endpoint slots below this exist (plugins size per-slot scratch from it). */
  slots: i32 = 16;
  rng: Rng;

  constructor(seed: u64) {
    this.rng = new Rng(seed);
  }

  /** Makes room for `count` candidates and slots below `slots`. */
  ensure(count: i32, slots: i32): void {
    if (this.cand.length < count) {
      let c = this.cand.length;
      while (c < count) c <<= 1;
      this.cand = new StaticArray<i32>(c);
      this.totals = new StaticArray<f64>(c);
      this.scores = new StaticArray<f64>(c);
      this.work = new StaticArray<f64>(c);
    }
    if (slots > this.slots) this.slots = slots;
  }

  /** Candidates := every endpoint. */
  begin(count: i32): void {
    for (let i = 0; i < count; i++) unchecked((this.cand[i] = i));
    this.n = count;
    this.shed = false;
  }
}
