// `approx-prefix-cache-producer` (GIE's name): the VM's approximate prefix index as a shared component.
// Once per cycle it matches the request's block hashes against the index (what prefix-cache-scorer,
// bounded-prefix-scorer and rendezvous-affinity-scorer read); after the pick it records the prompt's
// blocks under the chosen endpoint. As in GIE, a prefix-cache-scorer's parameters configure it when the
// config does not list it; every scheduler has one (the stale profile reads it too).

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Plugin, ResponseHeaders } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { Params } from "../params.ts";
import { PrefixIndex, DEFAULT_LRU_CAPACITY } from "../../prefix/index.ts";
import { BLOCK_SIZE, DEFAULT_MAX_BLOCKS } from "../../prefix/blocks.ts";

export const PREFIX_PRODUCER = "approx-prefix-cache-producer";
/** GIE's characters-per-token estimate: blockSizeTokens 16 ↔ our 64-character hash blocks. */
const CHARS_PER_TOKEN: i32 = 4;
const BLOCK_TOKENS: i32 = BLOCK_SIZE / CHARS_PER_TOKEN;

/** Parameters shared with prefix-cache-scorer (GIE forwards the scorer's to the producer). */
export class PrefixParams {
  autoTune: bool = true;
  maxBlocks: i32 = DEFAULT_MAX_BLOCKS;
  lruCapacity: i32 = DEFAULT_LRU_CAPACITY;
}

/** Reads (and so validates) the prefix parameters from p. */
export function readPrefixParams(p: Params): PrefixParams {
  const o = new PrefixParams();
  o.autoTune = p.bool("autoTune", true);
  // The filter hashes fixed 64-character blocks while reading the body, so only 16 tokens is honoured.
  p.int("blockSizeTokens", BLOCK_TOKENS, BLOCK_TOKENS, BLOCK_TOKENS);
  o.maxBlocks = p.int("maxPrefixBlocksToMatch", DEFAULT_MAX_BLOCKS, 1, DEFAULT_MAX_BLOCKS);
  const tokens = p.int("maxPrefixTokensToMatch", 0, 0);
  if (tokens > 0) o.maxBlocks = max(1, min(DEFAULT_MAX_BLOCKS, tokens / BLOCK_TOKENS));
  o.lruCapacity = p.int("lruCapacityPerServer", DEFAULT_LRU_CAPACITY, 1);
  return o;
}

export function prefixProducerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  const o = readPrefixParams(p);
  const producer = new PrefixProducer(ctx.index, o);
  const built = ctx.finish(p, producer);
  if (built != null) ctx.setShared(PREFIX_PRODUCER, producer);
  return built;
}

/** The scheduler's prefix producer: the configured one, else defaults. */
export function prefixProducerOf(ctx: BuildContext): PrefixProducer {
  const s = ctx.shared(PREFIX_PRODUCER);
  if (s != null) return changetype<PrefixProducer>(s);
  const producer = new PrefixProducer(ctx.index, new PrefixParams());
  ctx.setShared(PREFIX_PRODUCER, producer);
  return producer;
}

/** Matches the prompt against the index once per cycle; feeds the index after the pick. */
export class PrefixProducer extends Plugin {
  /** Per-slot matched leading blocks, valid when `ready`. */
  match: StaticArray<i32> = new StaticArray<i32>(16);
  blocks: i32 = 0;
  ready: bool = false;

  constructor(
    public index: PrefixIndex,
    public params: PrefixParams = new PrefixParams(),
  ) {
    super(PREFIX_PRODUCER);
  }

  beginCycle(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    this.ready = false;
  }

  /** Fills `match` (by slot) from the index, once per cycle. */
  ensure(req: RequestInfo, cs: CycleState): void {
    if (this.ready) return;
    this.ready = true;
    const h = req.hashes;
    if (h == null || req.hashCount <= 0) {
      this.blocks = 0;
      return;
    }
    let n = req.hashCount < h.length ? req.hashCount : h.length;
    if (n > this.params.maxBlocks) n = this.params.maxBlocks;
    this.blocks = n;
    if (this.match.length < cs.slots) {
      let c = this.match.length;
      while (c < cs.slots) c <<= 1;
      this.match = new StaticArray<i32>(c);
    }
    this.index.match(h, n, this.match);
  }

  /** Matched leading blocks / prompt blocks for e (0 when its slot is outside the index). */
  @inline fraction(e: Endpoint): f64 {
    if (this.blocks == 0 || e.slot < 0 || e.slot >= this.match.length) return 0;
    return <f64>unchecked(this.match[e.slot]) / <f64>this.blocks;
  }

  /** Leading blocks the index holds for e (0 outside the index). */
  @inline matched(e: Endpoint): i32 {
    if (e.slot < 0 || e.slot >= this.match.length) return 0;
    return unchecked(this.match[e.slot]);
  }

  afterPick(eps: Endpoint[], i: i32, req: RequestInfo, cs: CycleState, headers: ResponseHeaders): void {
    const h = req.hashes;
    if (h == null || req.hashCount <= 0) return;
    const e = unchecked(eps[i]);
    if (e.slot >= this.index.maxEndpoints) this.index.ensureEndpoints(e.slot + 1);
    const n = req.hashCount < this.params.maxBlocks ? req.hashCount : this.params.maxBlocks;
    this.index.add(h, n, e.slot);
  }

  /** LRU capacity (blocks) for e: from its KV geometry with autoTune, else lruCapacityPerServer; −1 = leave. */
  capacityFor(e: Endpoint): i32 {
    if (this.params.autoTune && e.kvBlockCount > 0 && e.kvBlockSize > 0) {
      const chars = <i64>e.kvBlockCount * <i64>e.kvBlockSize * CHARS_PER_TOKEN;
      const blocks = chars / BLOCK_SIZE;
      return blocks > i32.MAX_VALUE ? i32.MAX_VALUE : <i32>blocks;
    }
    return this.params.lruCapacity != DEFAULT_LRU_CAPACITY ? this.params.lruCapacity : -1;
  }
}
