// `rendezvous-affinity-scorer` (ours): highest-random-weight hashing of the prompt's leading blocks over
// the candidates within the load bound. Every VM that sees the same endpoints computes the same winner
// without sharing state, so a prefix lands on one pod even before any local index has seen it. The
// winner scores 1, the runner-up RENDEZVOUS_SECOND, others 0; short prompts score 0 everywhere.
// It defers to the local prefix index: when a candidate within the bound is known to hold the whole key
// prefix, everyone scores 0 (a rendezvous winner other than the actual holder would split the vote).
// With the shared affinity directory, a group placed by another worker follows that worker.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, Scorer, ResponseHeaders } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { mix64 } from "../rng.ts";
import { AffinityDirectory } from "../affinity-directory.ts";
import { LoadModel, loadModelOf } from "./fresh-load-producer.ts";
import { PrefixProducer, prefixProducerOf } from "./approx-prefix-cache-producer.ts";

export const RENDEZVOUS_SCORER = "rendezvous-affinity-scorer";

/** Leading blocks that form the key (16 × 64 B ≈ 256 tokens): a shared system prompt, not the user's tail. */
export const AFFINITY_BLOCKS: i32 = 16;
/** Prompts with fewer blocks (32 × 64 B ≈ 512 tokens) are cheap to re-prefill: no affinity. */
export const AFFINITY_MIN_BLOCKS: i32 = 32;
/** Score of the rendezvous runner-up, so the first fallback is stable across VMs too. */
export const RENDEZVOUS_SECOND: f64 = 0.5;

/** `affinityPlacement` values, in the order of PLACEMENT_NAMES. */
export const PLACEMENT_AUTO: i32 = 0;
/** Hash over every pod within the load bound: independent Envoys agree without sharing state. */
export const PLACEMENT_HASH: i32 = 1;
/** Hash over the pods within the bound at or below the mean KV usage: new groups fill emptier pods. */
export const PLACEMENT_BALANCED: i32 = 2;
export const PLACEMENT_NAMES: string[] = ["auto", "hash", "balanced"];
/** auto: balanced while the sidecar reports at most this many Envoys for the pool (`envoyReplicas`). */
export const BALANCED_MAX_REPLICAS: f64 = 1;

/** auto → balanced with one Envoy, hash with several; hash and balanced stay. */
export function resolvePlacement(placement: i32, envoyReplicas: f64): i32 {
  if (placement == PLACEMENT_HASH || placement == PLACEMENT_BALANCED) return placement;
  return envoyReplicas <= BALANCED_MAX_REPLICAS ? PLACEMENT_BALANCED : PLACEMENT_HASH;
}

export function rendezvousScorerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  const s = new RendezvousAffinityScorer(loadModelOf(ctx));
  s.blocks = p.int("affinityBlocks", AFFINITY_BLOCKS, 1, 256);
  s.minBlocks = p.int("affinityMinBlocks", AFFINITY_MIN_BLOCKS, 0);
  if (p.bool("affinityDirectory", true)) s.directory = ctx.directory;
  s.placement = resolvePlacement(
    p.oneOf("affinityPlacement", PLACEMENT_NAMES, PLACEMENT_AUTO),
    ctx.envoyReplicas,
  );
  s.usePrefix(prefixProducerOf(ctx));
  return ctx.finish(p, s);
}

/** The rendezvous key of a request: the chained hash of its first min(blocks, hashCount) blocks. */
export function affinityKey(req: RequestInfo, blocks: i32): u64 {
  const h = req.hashes;
  if (h == null) return 0;
  let n = req.hashCount < h.length ? req.hashCount : h.length;
  if (n > blocks) n = blocks;
  return n > 0 ? unchecked(h[n - 1]) : 0;
}

export class RendezvousAffinityScorer extends Scorer {
  blocks: i32 = AFFINITY_BLOCKS;
  minBlocks: i32 = AFFINITY_MIN_BLOCKS;
  /** The local prefix index to defer to (null: never defer). */
  prefix: PrefixProducer | null = null;
  /** Placements shared by the workers of one Envoy; a known holder within the bound wins outright. */
  directory: AffinityDirectory | null = null;
  /** PLACEMENT_HASH or PLACEMENT_BALANCED (auto is resolved when built). */
  placement: i32 = PLACEMENT_HASH;
  /** This cycle's key (0: none) and the directory's holder for it (0: unknown), for afterPick. */
  private key: u64 = 0;
  private holder: u64 = 0;

  constructor(public model: LoadModel) {
    super(RENDEZVOUS_SCORER);
    this.deps.push(model);
  }

  usePrefix(prefix: PrefixProducer): void {
    this.prefix = prefix;
    this.deps.push(prefix);
  }

  beginCycle(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    this.key = 0;
    this.holder = 0;
  }

  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    const n = cs.n;
    for (let k = 0; k < n; k++) unchecked((out[k] = 0));
    if (req.hashCount < this.minBlocks) return;
    const key = affinityKey(req, this.blocks);
    if (key == 0) return;
    const model = this.model;
    model.ensure(eps, cs);
    // The directory learns every placement (afterPick publishes a new or moved one) but speaks only
    // where this VM's own index knows no holder.
    const dir = this.directory;
    let holder: u64 = 0;
    if (dir != null) {
      holder = dir.lookup(key);
      this.key = key;
      this.holder = holder;
    }
    const prefix = this.prefix;
    if (prefix != null && this.knownHolder(prefix, eps, req, cs)) return;
    if (holder != 0) {
      for (let k = 0; k < n; k++) {
        const e = unchecked(eps[unchecked(cs.cand[k])]);
        if (e.hostHash() == holder && model.withinBound(e, k)) {
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
      if (e.kvUsage > kvCut || !model.withinBound(e, k)) continue;
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

  /** Publishes the group's placement when it is new or moved, so the other workers follow it. */
  afterPick(eps: Endpoint[], i: i32, req: RequestInfo, cs: CycleState, headers: ResponseHeaders): void {
    const dir = this.directory;
    const e = unchecked(eps[i]);
    if (dir != null && this.key != 0 && this.holder != e.hostHash()) dir.record(this.key, e.hostHash());
  }

  /** Does the local index know a within-bound candidate holding all of the key's leading blocks? */
  private knownHolder(prefix: PrefixProducer, eps: Endpoint[], req: RequestInfo, cs: CycleState): bool {
    prefix.ensure(req, cs);
    const need = prefix.blocks < this.blocks ? prefix.blocks : this.blocks;
    if (need <= 0) return false;
    for (let k = 0, n = cs.n; k < n; k++) {
      const e = unchecked(eps[unchecked(cs.cand[k])]);
      if (e.slot < 0 || e.slot >= prefix.match.length) continue;
      if (unchecked(prefix.match[e.slot]) >= need && this.model.withinBound(e, k)) return true;
    }
    return false;
  }
}
