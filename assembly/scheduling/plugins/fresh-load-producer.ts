// `fresh-load-producer` (ours): the load model our default profile's scorers share. Per cycle, each
// candidate's load corrected by what this VM dispatched since the snapshot's scrape, their mean, and the
// bound under which an endpoint may keep prefix affinity (bounded-load consistent hashing). Read by
// fresh-load-scorer, bounded-prefix-scorer and rendezvous-affinity-scorer; one with defaults is created
// when the config does not list it. Why each default: docs/benchmarks.md ("default profile tunables").

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";

export const LOAD_PRODUCER = "fresh-load-producer";

/** A running request costs decode steps but no longer delays a new prefill. */
export const RUNNING_LOAD_WEIGHT: f64 = 0.2;
/** Prompt tokens dispatched since the scrape that count as one queued request (≈ one 4K prefill). */
export const TOKENS_PER_LOAD_UNIT: f64 = 4096;
/** Affinity holds while load ≤ mean·(1+ε) + slack: ε keeps hot prefixes from piling onto one pod. */
export const AFFINITY_EPSILON: f64 = 0.25;
/** Roughly what a pod admits into its batch within one scrape without queueing. */
export const AFFINITY_SLACK: f64 = 8;
/** No affinity past this many waiting + in-flight requests (see docs/benchmarks.md for why 128). */
export const AFFINITY_MAX_QUEUE: f64 = 128;
/**
 * Scale the running and in-flight-token terms by the pool's mean KV size over the endpoint's own, so a
 * pod with a tenth of the KV (a smaller or slower accelerator) counts its batch as ten times fuller.
 * In a uniform pool every factor is exactly 1 and nothing changes (docs/benchmarks.md, heterogeneous).
 */
export const CAPACITY_SCALED_LOAD: bool = true;

export function loadProducerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  const m = new LoadModel();
  m.runningWeight = p.num("runningLoadWeight", RUNNING_LOAD_WEIGHT, 0);
  m.tokensPerUnit = p.num("tokensPerLoadUnit", TOKENS_PER_LOAD_UNIT, 1);
  m.epsilon = p.num("affinityEpsilon", AFFINITY_EPSILON, 0);
  m.slack = p.num("affinitySlack", AFFINITY_SLACK, 0);
  m.maxQueue = p.num("affinityMaxQueue", AFFINITY_MAX_QUEUE, 0);
  m.capacityScaled = p.bool("capacityScaledLoad", CAPACITY_SCALED_LOAD);
  const built = ctx.finish(p, m);
  if (built != null) ctx.setShared(LOAD_PRODUCER, m);
  return built;
}

/** The configured load model, else one with defaults (shared by every reader of one build). */
export function loadModelOf(ctx: BuildContext): LoadModel {
  const s = ctx.shared(LOAD_PRODUCER);
  if (s != null) return changetype<LoadModel>(s);
  const m = new LoadModel();
  ctx.setShared(LOAD_PRODUCER, m);
  return m;
}

/** Corrected load per candidate, computed once per cycle by the first reader. */
export class LoadModel extends Plugin {
  runningWeight: f64 = RUNNING_LOAD_WEIGHT;
  tokensPerUnit: f64 = TOKENS_PER_LOAD_UNIT;
  epsilon: f64 = AFFINITY_EPSILON;
  slack: f64 = AFFINITY_SLACK;
  maxQueue: f64 = AFFINITY_MAX_QUEUE;
  capacityScaled: bool = CAPACITY_SCALED_LOAD;
  /** Per-candidate load, valid when `ready`. */
  load: StaticArray<f64> = new StaticArray<f64>(16);
  mean: f64 = 0;
  /** Affinity load bound, mean·(1+ε) + slack. */
  bound: f64 = 0;
  ready: bool = false;

  constructor() {
    super(LOAD_PRODUCER);
  }

  beginCycle(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    this.ready = false;
  }

  /** waiting + in-flight + runningWeight·running·scale + in-flight prompt tokens / tokensPerUnit·scale
   *  (summed in this order, so a scale of exactly 1 gives the unscaled figure bit for bit). */
  loadOf(e: Endpoint, scale: f64 = 1.0): f64 {
    return (
      <f64>(e.waiting + e.inflightRequests) +
      this.runningWeight * <f64>e.running * scale +
      (<f64>e.inflightPromptTokens / this.tokensPerUnit) * scale
    );
  }

  /** Mean KV block count of the candidates that report one (0 when none or when scaling is off). */
  private meanBlocks(eps: Endpoint[], cs: CycleState): f64 {
    if (!this.capacityScaled) return 0;
    let sum = 0.0;
    let known = 0;
    for (let k = 0, n = cs.n; k < n; k++) {
      const b = unchecked(eps[unchecked(cs.cand[k])]).kvBlockCount;
      if (b > 0) {
        sum += <f64>b;
        known++;
      }
    }
    return known > 0 ? sum / <f64>known : 0;
  }

  /** Fills load, mean and bound once per cycle. */
  ensure(eps: Endpoint[], cs: CycleState): void {
    if (this.ready) return;
    this.ready = true;
    if (this.load.length < cs.n) {
      let c = this.load.length;
      while (c < cs.n) c <<= 1;
      this.load = new StaticArray<f64>(c);
    }
    const load = this.load;
    const mb = this.meanBlocks(eps, cs);
    let sum = 0.0;
    for (let k = 0, n = cs.n; k < n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      const l = this.loadOf(e, mb > 0 && e.kvBlockCount > 0 ? mb / <f64>e.kvBlockCount : 1.0);
      unchecked((load[k] = l));
      sum += l;
    }
    this.mean = cs.n > 0 ? sum / <f64>cs.n : 0;
    this.bound = this.mean * (1 + this.epsilon) + this.slack;
  }

  /** May candidate k keep affinity? (load bound and absolute queue cap) */
  @inline withinBound(e: Endpoint, k: i32): bool {
    return unchecked(this.load[k]) <= this.bound && <f64>(e.waiting + e.inflightRequests) <= this.maxQueue;
  }
}
