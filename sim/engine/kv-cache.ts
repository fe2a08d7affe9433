// KV block pool with a hash-chained prefix cache, shaped like vLLM V1's BlockPool:
// - every block is either referenced (refCount > 0) or on the free queue;
// - the free queue is LRU: released blocks go to the tail, allocation evicts from the head;
// - a full prompt block carries its chain hash; while it sits unreferenced on the free queue it
//   can still be hit (and is pulled back out), until allocation evicts it.
// kv_cache_usage = 1 − free/total, so idle cached blocks do not count as used.
const NONE = -1;

export class BlockPool {
  readonly numBlocks: number;
  readonly blockSize: number;
  private readonly refCount: Int32Array;
  private readonly hashOf: Float64Array;
  private readonly prev: Int32Array;
  private readonly next: Int32Array;
  private readonly onFreeQueue: Uint8Array;
  private head = NONE;
  private tail = NONE;
  private free = 0;
  private readonly cache = new Map<number, number>();

  constructor(numBlocks: number, blockSize: number) {
    this.numBlocks = numBlocks;
    this.blockSize = blockSize;
    this.refCount = new Int32Array(numBlocks);
    this.hashOf = new Float64Array(numBlocks).fill(NaN);
    this.prev = new Int32Array(numBlocks);
    this.next = new Int32Array(numBlocks);
    this.onFreeQueue = new Uint8Array(numBlocks);
    for (let b = 0; b < numBlocks; b++) this.pushTail(b);
  }

  get freeBlocks(): number {
    return this.free;
  }

  get usedBlocks(): number {
    return this.numBlocks - this.free;
  }

  usage(): number {
    return 1 - this.free / this.numBlocks;
  }

  /** Take the least recently freed block (evicting its cached hash), or -1 if none is free. */
  allocate(): number {
    const b = this.head;
    if (b === NONE) return NONE;
    this.unlink(b);
    const h = this.hashOf[b];
    if (h === h) {
      if (this.cache.get(h) === b) this.cache.delete(h);
      this.hashOf[b] = NaN;
    }
    this.refCount[b] = 1;
    return b;
  }

  /** The cached block holding `hash`, or -1. */
  lookup(hash: number): number {
    return this.cache.get(hash) ?? NONE;
  }

  isFree(block: number): boolean {
    return this.onFreeQueue[block] === 1;
  }

  /** Take a reference on a cached block found by lookup(). */
  touch(block: number): void {
    if (this.onFreeQueue[block]) this.unlink(block);
    this.refCount[block]++;
  }

  release(block: number): void {
    if (--this.refCount[block] === 0) this.pushTail(block);
    else if (this.refCount[block] < 0) throw new Error(`block ${block} released twice`);
  }

  /** Publish a now-full block under its chain hash (first writer wins, as in vLLM). */
  register(block: number, hash: number): void {
    if (this.hashOf[block] === this.hashOf[block]) return;
    if (this.cache.has(hash)) return;
    this.hashOf[block] = hash;
    this.cache.set(hash, block);
  }

  get cachedBlocks(): number {
    return this.cache.size;
  }

  /** Throws unless free-queue membership, counts and references agree. For tests. */
  checkInvariants(): void {
    let n = 0;
    for (let b = this.head; b !== NONE; b = this.next[b]) {
      if (!this.onFreeQueue[b] || this.refCount[b] !== 0) throw new Error(`free block ${b} is referenced`);
      if (++n > this.numBlocks) throw new Error("free queue has a cycle");
    }
    if (n !== this.free) throw new Error(`free count ${this.free} but queue holds ${n}`);
    for (let b = 0; b < this.numBlocks; b++) {
      if (!this.onFreeQueue[b] && this.refCount[b] <= 0) throw new Error(`block ${b} leaked`);
    }
    for (const [h, b] of this.cache)
      if (this.hashOf[b] !== h) throw new Error(`cache entry for block ${b} is stale`);
  }

  private pushTail(b: number): void {
    this.prev[b] = this.tail;
    this.next[b] = NONE;
    if (this.tail === NONE) this.head = b;
    else this.next[this.tail] = b;
    this.tail = b;
    this.onFreeQueue[b] = 1;
    this.free++;
  }

  private unlink(b: number): void {
    const p = this.prev[b];
    const n = this.next[b];
    if (p === NONE) this.head = n;
    else this.next[p] = n;
    if (n === NONE) this.tail = p;
    else this.prev[n] = p;
    this.onFreeQueue[b] = 0;
    this.free--;
  }
}

/** Hash of block `index` given its parent's hash; 53-bit so it is an exact Map key. */
export function chainHash(parent: number, tokens: ArrayLike<number>, start: number, end: number): number {
  let h1 = (parent % 4294967296) ^ 0x811c9dc5;
  let h2 = Math.floor(parent / 4294967296) ^ 0x9747b28c;
  for (let i = start; i < end; i++) {
    const t = tokens[i];
    h1 = Math.imul(h1 ^ t, 0x01000193);
    h2 = Math.imul(h2 ^ t, 0x5bd1e995);
    h2 ^= h2 >>> 15;
  }
  return (h1 >>> 0) * 2097152 + ((h2 >>> 0) >>> 11);
}

/** Chain hashes of every full block of `tokens`; `salt` separates adapters (and unique prompts). */
export function blockHashes(tokens: ArrayLike<number>, blockSize: number, salt: number): number[] {
  const out: number[] = [];
  let parent = salt;
  for (let start = 0; start + blockSize <= tokens.length; start += blockSize) {
    parent = chainHash(parent, tokens, start, start + blockSize);
    out.push(parent);
  }
  return out;
}
