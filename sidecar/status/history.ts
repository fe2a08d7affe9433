// The status page's memory: a bounded ring of one-second samples (15 minutes by default) of each pod's load
// and scrape health, each pool's totals and snapshot age, each Envoy target's push outcomes, and a short log
// of scheduling-config changes and refusals. It reads only SidecarState (and push counters), so the
// sidecar's loop needs no hook; sampling several times a second and keeping the maximum per second keeps
// short queue spikes that a single sample per second would miss. Memory and JSON size are bounded by the
// window, `maxPods` per pool, `maxPools` and `maxTargets`.
import type { SidecarState } from "../state.ts";
import type { DecisionGrowth } from "./envoy-stats.ts";

/** Cumulative push counts per target id, as the push counter holds them. */
export type PushCounts = Map<string, { ok: number; superseded: number; failed: number }>;

export interface StatusHistoryOptions {
  state: SidecarState;
  /** Reads the cumulative push counters (the registry's epp_sidecar_push_total); absent → no push series. */
  pushCounts?: () => Promise<PushCounts>;
  /** Reads the growth of the filter's decision counters in the Envoys since the last call; absent → none. */
  decisions?: () => Promise<DecisionGrowth>;
  /** Decision series kept (model × target × outcome, and endpoints picked). */
  maxDecisionSeries?: number;
  now?: () => number;
  /** Length of one sample (ms). */
  stepMs?: number;
  /** How much history is kept (ms). */
  windowMs?: number;
  /** How often the state is read within a step (ms). */
  sampleEveryMs?: number;
  /** Pods charted per pool (the pool totals always cover every pod). */
  maxPods?: number;
  maxPools?: number;
  maxTargets?: number;
  maxConfigEvents?: number;
}

/** Health of a pod in one step: the worst seen in it. */
export const HEALTH = { ok: 0, stale: 1, notReady: 2 } as const;

export interface HistoryView {
  stepMs: number;
  windowMs: number;
  /** End time (ms since the epoch) of each step, oldest first; every series below is aligned with it. */
  t: number[];
  pools: Array<{
    pool: string;
    /** Sums over every pod of the pool (waiting, running), the mean KV use of ready pods, and ready pods. */
    waiting: Array<number | null>;
    running: Array<number | null>;
    kvUsage: Array<number | null>;
    readyPods: Array<number | null>;
    snapshotAgeMs: Array<number | null>;
    /** Pods left out of the per-pod series (beyond maxPods); still counted in the totals. */
    podsNotCharted: number;
    pods: Array<{
      pod: string;
      endpoint: string;
      waiting: Array<number | null>;
      running: Array<number | null>;
      kvUsage: Array<number | null>;
      /** 0 ok, 1 stale metrics, 2 not ready; null: not in the snapshot. */
      health: Array<number | null>;
    }>;
  }>;
  /** Per Envoy target: pushes per step by outcome (failed = rejected, unauthorized or error). */
  pushes: Array<{
    target: string;
    pools: string[];
    ok: Array<number | null>;
    superseded: Array<number | null>;
    failed: Array<number | null>;
  }>;
  /** Scheduling-config changes and refusals, oldest first. */
  configEvents: ConfigEvent[];
  /** What the filter decided, per step, summed over the Envoys read (absent when none is configured). */
  decisions?: {
    requests: Array<{ model: string; target: string; outcome: string; v: Array<number | null> }>;
    picks: Array<{ endpoint: string; v: Array<number | null> }>;
  };
}

export interface ConfigEvent {
  atMs: number;
  scope: string;
  /** The config in force after the change ("none": the profile name only). */
  active: string;
  /** The refusal, when the change was one. */
  refusal: string | null;
}

/** One value per slot of the shared timeline; NaN where nothing was recorded. */
function series(cap: number): Float64Array {
  return new Float64Array(cap).fill(NaN);
}

interface PodSeries {
  pod: string;
  endpoint: string;
  lastSeenMs: number;
  waiting: Float64Array;
  running: Float64Array;
  kvUsage: Float64Array;
  health: Float64Array;
}

interface PoolSeries {
  lastSeenMs: number;
  waiting: Float64Array;
  running: Float64Array;
  kvUsage: Float64Array;
  readyPods: Float64Array;
  snapshotAgeMs: Float64Array;
  pods: Map<string, PodSeries>;
  podsNotCharted: number;
}

/** One counter's growth per step, keyed by its label set. */
interface CounterSeries {
  lastSeenMs: number;
  v: Float64Array;
}

interface TargetSeries {
  lastSeenMs: number;
  pools: string[];
  ok: Float64Array;
  superseded: Float64Array;
  failed: Float64Array;
}

export class StatusHistory {
  readonly stepMs: number;
  readonly windowMs: number;
  private readonly cap: number;
  private readonly now: () => number;
  private readonly maxPods: number;
  private readonly maxPools: number;
  private readonly maxTargets: number;
  private readonly maxConfigEvents: number;
  private readonly sampleEveryMs: number;
  /** End time of each slot (NaN: unused); `head` is the slot being filled. */
  private readonly times: Float64Array;
  private head = -1;
  private filled = 0;
  private readonly pools = new Map<string, PoolSeries>();
  private readonly targets = new Map<string, TargetSeries>();
  private lastCounts: PushCounts | undefined;
  private readonly configEvents: ConfigEvent[] = [];
  private lastConfig = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private countsInFlight = false;
  private decisionsInFlight = false;
  private readonly requests = new Map<string, CounterSeries>();
  private readonly picks = new Map<string, CounterSeries>();
  private readonly maxDecisionSeries: number;

  constructor(private readonly opts: StatusHistoryOptions) {
    this.stepMs = opts.stepMs ?? 1000;
    this.windowMs = opts.windowMs ?? 15 * 60_000;
    this.cap = Math.max(1, Math.ceil(this.windowMs / this.stepMs));
    this.now = opts.now ?? Date.now;
    this.maxPods = opts.maxPods ?? 32;
    this.maxPools = opts.maxPools ?? 8;
    this.maxTargets = opts.maxTargets ?? 32;
    this.maxConfigEvents = opts.maxConfigEvents ?? 50;
    this.sampleEveryMs = opts.sampleEveryMs ?? 250;
    this.maxDecisionSeries = opts.maxDecisionSeries ?? 256;
    this.times = series(this.cap);
  }

  /** Samples on a timer that does not keep the process alive. */
  start(): void {
    if (this.timer !== undefined) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), this.sampleEveryMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Folds the current state into the current step (a new step once the clock has moved past it). */
  sample(): void {
    const now = this.now();
    const stepEnd = (Math.floor(now / this.stepMs) + 1) * this.stepMs;
    const newStep = this.head < 0 || stepEnd !== this.times[this.head];
    if (newStep) this.advance(stepEnd);
    const slot = this.head;
    this.samplePools(slot, now);
    this.sampleConfig(now);
    if (newStep) {
      this.samplePushes(slot, now);
      this.sampleDecisions(slot, now);
    }
  }

  /** The history with only the steps that ended after `sinceMs` (all of it when absent). */
  view(sinceMs?: number): HistoryView {
    const slots: number[] = [];
    for (let i = this.filled - 1; i >= 0; i--) {
      const s = (this.head - i + this.cap) % this.cap;
      if (sinceMs === undefined || this.times[s]! > sinceMs) slots.push(s);
    }
    const pick = (a: Float64Array, digits = 0) => slots.map((s) => round(a[s]!, digits));
    return {
      stepMs: this.stepMs,
      windowMs: this.windowMs,
      t: slots.map((s) => this.times[s]!),
      pools: [...this.pools].map(([pool, p]) => ({
        pool,
        waiting: pick(p.waiting),
        running: pick(p.running),
        kvUsage: pick(p.kvUsage, 3),
        readyPods: pick(p.readyPods),
        snapshotAgeMs: pick(p.snapshotAgeMs),
        podsNotCharted: p.podsNotCharted,
        pods: [...p.pods.values()].map((s) => ({
          pod: s.pod,
          endpoint: s.endpoint,
          waiting: pick(s.waiting),
          running: pick(s.running),
          kvUsage: pick(s.kvUsage, 3),
          health: pick(s.health),
        })),
      })),
      pushes: [...this.targets].map(([target, s]) => ({
        target,
        pools: s.pools,
        ok: pick(s.ok),
        superseded: pick(s.superseded),
        failed: pick(s.failed),
      })),
      configEvents: [...this.configEvents],
      ...(this.opts.decisions === undefined
        ? {}
        : {
            decisions: {
              requests: [...this.requests].map(([k, s]) => {
                const [model, target, outcome] = k.split("\t");
                return { model: model!, target: target!, outcome: outcome!, v: pick(s.v) };
              }),
              picks: [...this.picks].map(([endpoint, s]) => ({ endpoint, v: pick(s.v) })),
            },
          }),
    };
  }

  /** Starts a new step: clears the slot it reuses and forgets what was not seen for a whole window. */
  private advance(stepEnd: number): void {
    this.head = (this.head + 1) % this.cap;
    this.filled = Math.min(this.cap, this.filled + 1);
    this.times[this.head] = stepEnd;
    const cutoff = stepEnd - this.windowMs;
    const clear = (...arrays: Float64Array[]) => {
      for (const a of arrays) a[this.head] = NaN;
    };
    for (const [key, p] of this.pools) {
      if (p.lastSeenMs <= cutoff) {
        this.pools.delete(key);
        continue;
      }
      clear(p.waiting, p.running, p.kvUsage, p.readyPods, p.snapshotAgeMs);
      for (const [pod, s] of p.pods) {
        if (s.lastSeenMs <= cutoff) p.pods.delete(pod);
        else clear(s.waiting, s.running, s.kvUsage, s.health);
      }
    }
    for (const [key, t] of this.targets) {
      if (t.lastSeenMs <= cutoff) this.targets.delete(key);
      else clear(t.ok, t.superseded, t.failed);
    }
    for (const store of [this.requests, this.picks])
      for (const [key, c] of store) {
        if (c.lastSeenMs <= cutoff) store.delete(key);
        else clear(c.v);
      }
  }

  private samplePools(slot: number, now: number): void {
    const { state } = this.opts;
    for (const key of state.poolKeys()) {
      const cur = state.latest(key);
      if (cur === undefined) continue;
      let p = this.pools.get(key);
      if (p === undefined) {
        if (this.pools.size >= this.maxPools) continue;
        p = {
          lastSeenMs: now,
          waiting: series(this.cap),
          running: series(this.cap),
          kvUsage: series(this.cap),
          readyPods: series(this.cap),
          snapshotAgeMs: series(this.cap),
          pods: new Map(),
          podsNotCharted: 0,
        };
        this.pools.set(key, p);
      }
      p.lastSeenMs = now;
      const { snapshot } = cur;
      let waiting = 0;
      let running = 0;
      let kv = 0;
      let ready = 0;
      let notCharted = 0;
      for (const e of snapshot.endpoints) {
        waiting += e.waiting;
        running += e.running;
        if (e.ready) {
          ready++;
          kv += e.kvUsage;
        }
        const podKey = `${e.podName} ${e.address}:${e.port}`;
        let s = p.pods.get(podKey);
        if (s === undefined) {
          if (p.pods.size >= this.maxPods) {
            notCharted++;
            continue;
          }
          s = {
            pod: e.podName,
            endpoint: e.address.includes(":") ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`,
            lastSeenMs: now,
            waiting: series(this.cap),
            running: series(this.cap),
            kvUsage: series(this.cap),
            health: series(this.cap),
          };
          p.pods.set(podKey, s);
        }
        s.lastSeenMs = now;
        const health = !e.ready ? HEALTH.notReady : e.stale ? HEALTH.stale : HEALTH.ok;
        keepMax(s.waiting, slot, e.waiting);
        keepMax(s.running, slot, e.running);
        keepMax(s.kvUsage, slot, e.kvUsage);
        keepMax(s.health, slot, health);
      }
      keepMax(p.waiting, slot, waiting);
      keepMax(p.running, slot, running);
      keepMax(p.kvUsage, slot, ready === 0 ? 0 : kv / ready);
      // Ready pods and snapshot age: the latest reading of the step, not the best.
      p.readyPods[slot] = ready;
      p.snapshotAgeMs[slot] = Math.max(0, now - snapshot.createdAtMs);
      p.podsNotCharted = notCharted;
    }
  }

  private sampleConfig(now: number): void {
    const seen = new Map<string, string>();
    for (const c of this.opts.state.configStatus()) {
      const active = c.active ? `${c.active.name} (${c.active.hash})` : "none";
      const refusal = c.rejection?.message ?? null;
      const key = `${active}\n${refusal ?? ""}`;
      seen.set(c.scope, key);
      if (this.lastConfig.get(c.scope) === key) continue;
      this.configEvents.push({ atMs: now, scope: c.scope, active, refusal });
      if (this.configEvents.length > this.maxConfigEvents) this.configEvents.shift();
    }
    this.lastConfig = seen;
  }

  /** Read at the start of a step, the counters' growth since the last reading belongs to the step that ended. */
  private samplePushes(slot: number, now: number): void {
    const read = this.opts.pushCounts;
    if (read === undefined || this.countsInFlight) return;
    const ended = (slot - 1 + this.cap) % this.cap;
    const poolsOf = new Map<string, Set<string>>();
    for (const st of this.opts.state.pushStatus()) {
      let set = poolsOf.get(st.target);
      if (set === undefined) poolsOf.set(st.target, (set = new Set()));
      set.add(st.pool);
    }
    this.countsInFlight = true;
    read()
      .then((counts) => this.recordPushes(ended, now, counts, poolsOf))
      .catch(() => undefined)
      .finally(() => (this.countsInFlight = false));
  }

  private recordPushes(
    slot: number,
    now: number,
    counts: PushCounts,
    poolsOf: Map<string, Set<string>>,
  ): void {
    const prev = this.lastCounts;
    this.lastCounts = counts;
    if (prev === undefined) return; // the first reading is the baseline
    for (const [target, c] of counts) {
      let t = this.targets.get(target);
      if (t === undefined) {
        if (this.targets.size >= this.maxTargets) continue;
        t = {
          lastSeenMs: now,
          pools: [],
          ok: series(this.cap),
          superseded: series(this.cap),
          failed: series(this.cap),
        };
        this.targets.set(target, t);
      }
      t.lastSeenMs = now;
      t.pools = [...(poolsOf.get(target) ?? [])];
      const before = prev.get(target) ?? { ok: 0, superseded: 0, failed: 0 };
      t.ok[slot] = Math.max(0, c.ok - before.ok);
      t.superseded[slot] = Math.max(0, c.superseded - before.superseded);
      t.failed[slot] = Math.max(0, c.failed - before.failed);
    }
  }

  /** Read at the start of a step like the push counts: the growth belongs to the step that ended. */
  private sampleDecisions(slot: number, now: number): void {
    const read = this.opts.decisions;
    if (read === undefined || this.decisionsInFlight) return;
    const ended = (slot - 1 + this.cap) % this.cap;
    this.decisionsInFlight = true;
    read()
      .then((d) => {
        if (d.answered === 0) return; // nothing known about this step: it stays a gap
        this.recordCounts(this.requests, ended, now, d.requests);
        this.recordCounts(this.picks, ended, now, d.picks);
      })
      .catch(() => undefined)
      .finally(() => (this.decisionsInFlight = false));
  }

  /** Every series already held gets a value for the step (0 when it did not grow), new ones up to the cap. */
  private recordCounts(
    store: Map<string, CounterSeries>,
    slot: number,
    now: number,
    growth: Map<string, number>,
  ): void {
    for (const c of store.values()) c.v[slot] = 0;
    for (const [key, n] of growth) {
      let c = store.get(key);
      if (c === undefined) {
        if (this.requests.size + this.picks.size >= this.maxDecisionSeries) continue;
        c = { lastSeenMs: now, v: series(this.cap) };
        store.set(key, c);
        c.v[slot] = 0;
      }
      c.lastSeenMs = now;
      c.v[slot] = n;
    }
  }
}

function keepMax(a: Float64Array, slot: number, v: number): void {
  const cur = a[slot]!;
  a[slot] = Number.isNaN(cur) ? v : Math.max(cur, v);
}

function round(v: number, digits: number): number | null {
  if (Number.isNaN(v)) return null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
