// Plugins of our `default` profile, beyond GIE's: load corrected by what this VM dispatched since the
// snapshot's scrape, prefix affinity that independent VMs agree on (rendezvous hashing, bounded by
// load) next to the local prefix index, and KV headroom for the request's size. Every tunable is here.

import { Endpoint, RequestInfo, CycleState } from "./types.ts";
import { Scorer } from "./framework.ts";
import { minMaxLow, ensurePrefixMatch, prefixFraction } from "./scorers.ts";
import { mix64 } from "./rng.ts";
import { PrefixIndex } from "../prefix/index.ts";
import { AffinityDirectory } from "./affinity-directory.ts";

// ---- constants (each overridable by a scheduler param of the same name in camelCase) -----------

/** Weight of a running request in the load figure: it costs decode steps, but unlike a queued request
 *  it no longer delays a new request's prefill. (param `runningLoadWeight`) */
export const RUNNING_LOAD_WEIGHT: f64 = 0.2;
/** Prompt tokens dispatched since the scrape that count as one queued request (≈ one 4K-token
 *  prefill). (param `tokensPerLoadUnit`) */
export const TOKENS_PER_LOAD_UNIT: f64 = 4096;
/** Affinity is honoured while an endpoint's load ≤ mean·(1+ε) + slack: ε keeps hot prefixes from
 *  piling onto one pod (bounded-load consistent hashing). (param `affinityEpsilon`) */
export const AFFINITY_EPSILON: f64 = 0.25;
/** Absolute slack in the bound: roughly what a pod admits into its running batch within one scrape
 *  interval without queueing, so a hot prefix is not scattered by the first few requests of a burst
 *  and near-idle pools (mean ≈ 0) keep affinity. (param `affinitySlack`) */
export const AFFINITY_SLACK: f64 = 8;
/** No affinity for an endpoint whose waiting + in-flight exceeds this: a cache hit does not pay for a
 *  pathologically long queue. It must sit well above the queues every pod has past the knee: at 32,
 *  shared-prefix at 250 QPS switched affinity off on all pods at once, and with 4 Envoy workers each
 *  worker then spilled a group to a different pod (prefix hits 97% → 60%, 383 preemptions, p90 NTPOT
 *  193–197 ms vs gie-default's 103–107). At 128: 80–82 ms, 96–97% hits (3 seeds); with 1 worker and on
 *  every other workload the results stay within 0.6 ms. The relative load bound above is what keeps a
 *  hot pod from piling up. (param `affinityMaxQueue`) */
export const AFFINITY_MAX_QUEUE: f64 = 128;
/** Leading blocks that form the rendezvous key (16 × 64 B ≈ 256 tokens): long enough to identify a
 *  shared system prompt / conversation, short enough that the user's own tail doesn't change it.
 *  (param `affinityBlocks`) */
export const AFFINITY_BLOCKS: i32 = 16;
/** Prompts with fewer blocks get no rendezvous affinity (32 × 64 B = 2 KB ≈ 512 tokens). Re-prefilling a
 *  prompt that short costs little (≈ 15 ms on the H100 preset, 0.03 ms/token), while for a prompt no pod
 *  holds yet (every unique prompt) the rendezvous bonus is a hash-random pick that outvotes load and
 *  LoRA affinity. On multi-lora (ShareGPT lengths, median ≈ 130 tokens) p90 E2E at 10 QPS went from
 *  +107 ± 42 ms against gie-default to −123 ± 28 ms (paired, 10 seeds; LoRA weight 3 alone: +58 ± 54).
 *  Shared prefixes long enough to be worth a hit (shared-prefix: ≈ 260 blocks) are unaffected.
 *  (param `affinityMinBlocks`) */
export const AFFINITY_MIN_BLOCKS: i32 = 32;
/** Score of the rendezvous runner-up, so the first fallback is stable across VMs too. */
export const RENDEZVOUS_SECOND: f64 = 0.5;

/** Where a prompt group no VM has placed yet goes (param `affinityPlacement`; AUTO when absent). */
export const PLACEMENT_AUTO: i32 = 0;
/** Hash over every pod within the load bound: independent Envoys agree on it without sharing state. */
export const PLACEMENT_HASH: i32 = 1;
/**
 * Hash over the pods within the bound whose KV-cache usage is at or below the pool mean. KV usage grows
 * with the groups a pod already holds, so new groups fill the emptier pods instead of landing
 * binomially (12–18 groups per pod on shared-prefix, 150 groups × 10 pods). With one Envoy this closes
 * the gap to gie-default's greedy placement below the knee (p90 NTPOT 13.7 vs 13.9 ms at 100 QPS, 21.4
 * vs 21.1 at 150; plain hashing 14.3 / 23.0; 3 seeds), and the shared affinity directory keeps the
 * Envoy's workers in agreement. It is not for several Envoys: the set moves with every snapshot, so
 * replicas that see a group's first requests at different moments pick different pods (2 replicas × 2
 * workers: 21.9–23.6 ms at 100 QPS against 18.9–20.7 with plain hashing).
 */
export const PLACEMENT_BALANCED: i32 = 2;
/** AUTO: balanced while the sidecar reports at most this many Envoys for the pool (param `envoyReplicas`). */
export const BALANCED_MAX_REPLICAS: f64 = 1;

/** Profile weights (params `queueWeight`, `kvWeight`, `prefixWeight`, `affinityWeight`,
 *  `loraWeight`). A known cached prefix (prefix 5) outweighs load + KV (5): on shared-prefix a miss
 *  re-prefills a 4K-token system prompt, which costs more than the queue gap the load term sees, and
 *  the load bound still switches affinity off before a pod gets hot (prefix 3 lost 2 points of hit
 *  rate to gie-default and trailed it below the knee). Rendezvous only speaks when the local index
 *  knows no holder (see RendezvousAffinityScorer), so its weight just has to beat load noise.
 *  LoRA 3: the scorer's steps (adapter running 1, room to load it 0.8) are 0.2 apart, so at weight 1
 *  any load difference won and requests went to pods that had to load (and, at max_loras 4, evict)
 *  their adapter; at 3 a running adapter is worth 0.6, a fifth of the load term's range. On
 *  multi-lora (10 pods, 32 adapters) p90 NTPOT at 45 / 60 QPS fell from 29 / 62 ms to 12 / 12 ms
 *  (10 seeds), equal to oracle; weight 5 gained < 0.5 ms more at 45–60 QPS and gave back p90 E2E at
 *  10 QPS. Requests without an adapter score 1 everywhere, so nothing else moves. */
export const DEFAULT_QUEUE_WEIGHT: f64 = 3;
export const DEFAULT_KV_WEIGHT: f64 = 2;
export const DEFAULT_PREFIX_WEIGHT: f64 = 5;
export const DEFAULT_AFFINITY_WEIGHT: f64 = 2;
export const DEFAULT_LORA_WEIGHT: f64 = 3;

/** Load model shared by the default profile's scorers; one per profile. */
export class LoadModel {
  runningWeight: f64 = RUNNING_LOAD_WEIGHT;
  tokensPerUnit: f64 = TOKENS_PER_LOAD_UNIT;
  epsilon: f64 = AFFINITY_EPSILON;
  slack: f64 = AFFINITY_SLACK;
  maxQueue: f64 = AFFINITY_MAX_QUEUE;

  /** waiting + in-flight + runningWeight·running + in-flight prompt tokens / tokensPerUnit. */
  loadOf(e: Endpoint): f64 {
    return (
      <f64>(e.waiting + e.inflightRequests) +
      this.runningWeight * <f64>e.running +
      <f64>e.inflightPromptTokens / this.tokensPerUnit
    );
  }

  /** Fills cs.load and cs.loadMean once per cycle. */
  ensure(eps: Endpoint[], cs: CycleState): void {
    if (cs.loadReady) return;
    cs.loadReady = true;
    let sum = 0.0;
    for (let k = 0, n = cs.n; k < n; k++) {
      const l = this.loadOf(unchecked(eps[unchecked(cs.cand[k])]));
      unchecked((cs.load[k] = l));
      sum += l;
    }
    cs.loadMean = cs.n > 0 ? sum / <f64>cs.n : 0;
    cs.loadBound = cs.loadMean * (1 + this.epsilon) + this.slack;
  }

  /** May candidate k keep affinity? (load bound) */
  @inline withinBound(e: Endpoint, k: i32, cs: CycleState): bool {
    return unchecked(cs.load[k]) <= cs.loadBound && <f64>(e.waiting + e.inflightRequests) <= this.maxQueue;
  }
}

/** `fresh-load-scorer`: min-max over the corrected load; least loaded scores 1, all equal → 1. */
export class FreshLoadScorer extends Scorer {
  constructor(public model: LoadModel) {
    super("fresh-load-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    this.model.ensure(eps, cs);
    minMaxLow(cs.load, cs.n, out);
  }
}

/**
 * `kv-headroom-scorer`: free KV blocks left after this request and what this VM sent since the scrape,
 * as a fraction of all blocks: ((1−usage)·blocks − ⌈(promptTokens + inflightTokens)/blockSize⌉)/blocks.
 * Unknown block geometry → 1 − usage.
 */
export class KvHeadroomScorer extends Scorer {
  constructor() {
    super("kv-headroom-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      const free = 1.0 - e.kvUsage;
      if (e.kvBlockCount <= 0 || e.kvBlockSize <= 0) {
        unchecked((out[k] = free));
        continue;
      }
      const blocks = <f64>e.kvBlockCount;
      // Float ceil: an integer division per endpoint costs more than the rest of this loop.
      const need = Math.ceil(<f64>(req.promptTokens + e.inflightPromptTokens) / <f64>e.kvBlockSize);
      unchecked((out[k] = (free * blocks - need) / blocks));
    }
  }
}

/** `bounded-prefix-scorer`: the local prefix index's match fraction, 0 where the load bound is exceeded. */
export class BoundedPrefixScorer extends Scorer {
  constructor(
    public index: PrefixIndex,
    public model: LoadModel,
  ) {
    super("bounded-prefix-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    ensurePrefixMatch(this.index, req, cs);
    this.model.ensure(eps, cs);
    for (let k = 0; k < cs.n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      unchecked((out[k] = this.model.withinBound(e, k, cs) ? prefixFraction(e, cs) : 0));
    }
  }
}

/** The rendezvous key of a request: the chained hash of its first min(blocks, AFFINITY_BLOCKS) blocks. */
export function affinityKey(req: RequestInfo, blocks: i32): u64 {
  const h = req.hashes;
  if (h == null) return 0;
  let n = req.hashCount < h.length ? req.hashCount : h.length;
  if (n > blocks) n = blocks;
  return n > 0 ? unchecked(h[n - 1]) : 0;
}

/**
 * `rendezvous-affinity-scorer`: highest-random-weight hashing of the prompt's leading blocks over the
 * candidates within the load bound. Every VM that sees the same endpoints computes the same winner
 * without sharing state, so a prefix lands on one pod even before any local index has seen it. The
 * winner scores 1, the runner-up RENDEZVOUS_SECOND, others 0; prompts shorter than AFFINITY_MIN_BLOCKS
 * blocks score 0.
 * With `index` set it defers to the local index: when a candidate within the bound is known to hold
 * the whole key prefix, everyone scores 0 — otherwise a rendezvous winner that differs from the pod
 * actually holding the prefix splits the vote and sends requests to a cold pod (measured: −2 points of
 * prefix hits on shared-prefix with one VM).
 */
export class RendezvousAffinityScorer extends Scorer {
  blocks: i32 = AFFINITY_BLOCKS;
  minBlocks: i32 = AFFINITY_MIN_BLOCKS;
  index: PrefixIndex | null = null;
  /** Placements shared by the workers of one Envoy; a known holder within the bound wins outright. */
  directory: AffinityDirectory | null = null;
  /** PLACEMENT_HASH or PLACEMENT_BALANCED (AUTO is resolved when the profile is built). */
  placement: i32 = PLACEMENT_HASH;
  constructor(public model: LoadModel) {
    super("rendezvous-affinity-scorer");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    const n = cs.n;
    for (let k = 0; k < n; k++) unchecked((out[k] = 0));
    if (req.hashCount < this.minBlocks) return;
    const key = affinityKey(req, this.blocks);
    if (key == 0) return;
    this.model.ensure(eps, cs);
    // The directory learns every placement (onPicked publishes a new or moved one) but speaks only
    // where this VM's own index knows no holder: a worker that has routed the group follows its index,
    // one that has not follows the other workers instead of a hash.
    const dir = this.directory;
    let holder: u64 = 0;
    if (dir != null) {
      holder = dir.lookup(key);
      cs.affinityKey = key;
      cs.affinityHolder = holder;
    }
    const index = this.index;
    if (index != null && this.knownHolder(index, eps, req, cs)) return;
    if (holder != 0) {
      for (let k = 0; k < n; k++) {
        const e = unchecked(eps[unchecked(cs.cand[k])]);
        if (e.hostHash() == holder && this.model.withinBound(e, k, cs)) {
          unchecked((out[k] = 1));
          return;
        }
      }
    }
    // Balanced placement: only pods at or below the mean KV usage (never empty: the least used qualifies).
    let kvCut = 2.0;
    if (this.placement == PLACEMENT_BALANCED) {
      let sum = 0.0;
      for (let k = 0; k < n; k++) sum += unchecked(eps[unchecked(cs.cand[k])]).kvUsage;
      kvCut = sum / <f64>n;
    }
    let best = -1;
    let second = -1;
    let bestW: u64 = 0;
    let secondW: u64 = 0;
    for (let k = 0; k < n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      if (e.kvUsage > kvCut || !this.model.withinBound(e, k, cs)) continue;
      const w = mix64(key ^ e.hostHash());
      if (best < 0 || w > bestW) {
        second = best;
        secondW = bestW;
        best = k;
        bestW = w;
      } else if (second < 0 || w > secondW) {
        second = k;
        secondW = w;
      }
    }
    if (best >= 0) unchecked((out[best] = 1));
    if (second >= 0) unchecked((out[second] = RENDEZVOUS_SECOND));
  }

  /** Does the local index know a within-bound candidate holding all of the key's leading blocks? */
  private knownHolder(index: PrefixIndex, eps: Endpoint[], req: RequestInfo, cs: CycleState): bool {
    ensurePrefixMatch(index, req, cs);
    const need = cs.prefixBlocks < this.blocks ? cs.prefixBlocks : this.blocks;
    if (need <= 0) return false;
    for (let k = 0, n = cs.n; k < n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      if (e.slot < 0 || e.slot >= cs.prefixMatch.length) continue;
      if (unchecked(cs.prefixMatch[e.slot]) >= need && this.model.withinBound(e, k, cs)) return true;
    }
    return false;
  }
}
