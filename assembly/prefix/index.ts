// Approximate prefix-cache index (GIE's indexer, rebuilt allocation-light): for each endpoint an
// LRU of the block hashes it was last sent, plus a reverse map hash → endpoints holding it.
//
// Storage is struct-of-arrays over one entry pool; an entry is one (hash, endpoint) pair and sits
// on two doubly linked lists: its endpoint's LRU list and its hash's holder list. Two open-addressing
// tables (linear probing, backward-shift deletion, load ≤ 1/2) find entries: (hash, endpoint) → entry,
// and hash → {first holder, holder count}. Everything grows geometrically; nothing is allocated per
// request once warm.
//
// Endpoints are small integer slots [0, maxEndpoints) that the caller maps from ip:port.
// Differences from GIE, on purpose:
//  - add() inserts hashes last-to-first, so the leading blocks are the most recently used and are
//    evicted last (a match needs them first);
//  - an endpoint's match is the longest *contiguous* leading run it holds;
//  - a global entry limit bounds memory per VM: when reached, the adding endpoint's own LRU tail is
//    recycled, or else another endpoint's (round robin).

export const DEFAULT_LRU_CAPACITY: i32 = 31250;
export const DEFAULT_MAX_ENTRIES: i32 = 1 << 20;

const NONE: i32 = -1;

function mixHash(h: u64): u64 {
  return h ^ (h >> 29) ^ (h >> 43);
}

// A random-looking 64-bit key per endpoint slot, XORed into holder-set fingerprints. It is an
// invertible mix (splitmix64's finaliser over an odd multiple), so a fingerprint difference that
// is a single endpoint's key can be turned back into the endpoint.
const KEY_G: u64 = 0x9e3779b97f4a7c15;
const KEY_D: u64 = 0x632be59bd9b4e019;
const KEY_M1: u64 = 0xbf58476d1ce4e5b9;
const KEY_M2: u64 = 0x94d049bb133111eb;

function endpointKey(e: i32): u64 {
  let z = <u64>e * KEY_G + KEY_D;
  z = (z ^ (z >> 30)) * KEY_M1;
  z = (z ^ (z >> 27)) * KEY_M2;
  return z ^ (z >> 31);
}

/** Multiplicative inverse of an odd number modulo 2^64 (Newton: each step doubles the correct bits). */
function inverseOdd(a: u64): u64 {
  let x = a;
  for (let k = 0; k < 6; k++) x *= 2 - a * x;
  return x;
}

const INV_G = inverseOdd(KEY_G);
const INV_M1 = inverseOdd(KEY_M1);
const INV_M2 = inverseOdd(KEY_M2);

function unXorShift(y: u64, shift: u64): u64 {
  let x = y;
  for (let t: u64 = 0; t < 64; t += shift) x = y ^ (x >> shift);
  return x;
}

/** The endpoint whose key is k, or -1 when k is no endpoint's key below `limit`. */
function endpointOfKey(k: u64, limit: i32): i32 {
  let z = unXorShift(k, 31) * INV_M2;
  z = unXorShift(z, 27) * INV_M1;
  z = (unXorShift(z, 30) - KEY_D) * INV_G;
  return z < <u64>limit ? <i32>z : -1;
}

function mixPair(h: u64, e: i32): u64 {
  return mixHash(h) ^ (<u64>e * 0x9e3779b97f4a7c15);
}

function grownI32(a: StaticArray<i32>, n: i32, fill: i32): StaticArray<i32> {
  const b = new StaticArray<i32>(n);
  memory.copy(changetype<usize>(b), changetype<usize>(a), (<usize>a.length) << 2);
  for (let i = a.length; i < n; i++) unchecked((b[i] = fill));
  return b;
}

export class PrefixIndex {
  /** Endpoint slots [0, maxEndpoints); grow with ensureEndpoints. */
  maxEndpoints: i32;
  maxEntries: i32;

  // Entry pool: one 32-byte record per entry, so following a list or checking a slot touches one
  // cache line: +0 hash u64, +8 endpoint i32 (NONE when free), +12/+16 LRU prev/next,
  // +20/+24 holder-list prev/next.
  private pool: StaticArray<u64>;
  private poolCap: i32;
  private used: i32 = 0; // high-water mark of the pool
  private freeHead: i32 = NONE;
  /** Live (hash, endpoint) entries. */
  size: i32 = 0;

  // (hash, endpoint) → entry + 1 (0 = empty slot).
  private pairSlots: StaticArray<i32>;
  private pairMask: i32;

  // hash → first holder entry + 1 (0 = empty), and holder count.
  private holdKeys: StaticArray<u64>;
  private holdHead: StaticArray<i32>;
  private holdCount: StaticArray<i32>;
  // XOR of endpointKey over the holders: lets match() see "same holders as the running set" in O(1).
  private holdFp: StaticArray<u64>;
  private holdMask: i32;
  /** Distinct hashes held by at least one endpoint. */
  distinctHashes: i32 = 0;

  // Per endpoint.
  private epHead: StaticArray<i32>; // most recently used
  private epTail: StaticArray<i32>; // least recently used
  private epSize: StaticArray<i32>;
  private epCap: StaticArray<i32>;
  private victim: i32 = 0;

  // match() scratch: endpoints still extending their run.
  private active: StaticArray<i32>;

  constructor(maxEndpoints: i32, maxEntries: i32 = DEFAULT_MAX_ENTRIES, initialEntries: i32 = 1024) {
    this.maxEndpoints = maxEndpoints;
    this.maxEntries = maxEntries;
    let n = 16; // power of two, so table masks work
    while (n < initialEntries) n <<= 1;
    this.pool = new StaticArray<u64>(n * 4);
    this.poolCap = n;
    this.pairSlots = new StaticArray<i32>(n * 2);
    this.pairMask = n * 2 - 1;
    this.holdKeys = new StaticArray<u64>(n * 2);
    this.holdHead = new StaticArray<i32>(n * 2);
    this.holdCount = new StaticArray<i32>(n * 2);
    this.holdFp = new StaticArray<u64>(n * 2);
    this.holdMask = n * 2 - 1;
    this.epHead = new StaticArray<i32>(maxEndpoints);
    this.epTail = new StaticArray<i32>(maxEndpoints);
    this.epSize = new StaticArray<i32>(maxEndpoints);
    this.epCap = new StaticArray<i32>(maxEndpoints);
    this.active = new StaticArray<i32>(maxEndpoints);
    for (let e = 0; e < maxEndpoints; e++) {
      unchecked((this.epHead[e] = NONE));
      unchecked((this.epTail[e] = NONE));
      unchecked((this.epCap[e] = DEFAULT_LRU_CAPACITY));
    }
  }

  // ---- public API -------------------------------------------------------------------------

  /** LRU capacity (blocks) of an endpoint, e.g. from its KV-cache block count; evicts if shrinking. */
  setCapacity(e: i32, cap: i32): void {
    if (e < 0 || e >= this.maxEndpoints) return;
    unchecked((this.epCap[e] = cap < 0 ? 0 : cap));
    while (unchecked(this.epSize[e]) > unchecked(this.epCap[e])) this.removeEntry(unchecked(this.epTail[e]));
  }

  /** Makes room for endpoint slots [0, n), keeping what the index knows. */
  ensureEndpoints(n: i32): void {
    if (n <= this.maxEndpoints) return;
    this.epHead = grownI32(this.epHead, n, NONE);
    this.epTail = grownI32(this.epTail, n, NONE);
    this.epSize = grownI32(this.epSize, n, 0);
    this.epCap = grownI32(this.epCap, n, DEFAULT_LRU_CAPACITY);
    this.active = grownI32(this.active, n, 0);
    this.maxEndpoints = n;
  }

  capacityOf(e: i32): i32 {
    return e >= 0 && e < this.maxEndpoints ? unchecked(this.epCap[e]) : 0;
  }

  sizeOf(e: i32): i32 {
    return e >= 0 && e < this.maxEndpoints ? unchecked(this.epSize[e]) : 0;
  }

  /** Forgets everything about an endpoint (pod gone) and restores the default capacity of its slot. */
  removeEndpoint(e: i32): void {
    if (e < 0 || e >= this.maxEndpoints) return;
    while (unchecked(this.epTail[e]) != NONE) this.removeEntry(unchecked(this.epTail[e]));
    unchecked((this.epCap[e] = DEFAULT_LRU_CAPACITY));
  }

  /** Records that endpoint `e` was sent a request whose prompt has block hashes hashes[0..n). */
  add(hashes: StaticArray<u64>, n: i32, e: i32): void {
    if (e < 0 || e >= this.maxEndpoints) return;
    if (n > hashes.length) n = hashes.length;
    for (let i = n - 1; i >= 0; i--) this.touch(unchecked(hashes[i]), e);
  }

  /** True when endpoint `e` holds hash `h`. */
  holds(h: u64, e: i32): bool {
    return this.pairFind(h, e) != NONE;
  }

  /** How many endpoints hold hash `h`. */
  holderCount(h: u64): i32 {
    const s = this.holdFind(h);
    return s < 0 ? 0 : unchecked(this.holdCount[s]);
  }

  /**
   * out[e] = number of leading blocks of hashes[0..n) that endpoint e holds contiguously, for every
   * e < maxEndpoints (out is cleared first). Stops at the first block no still-matching endpoint
   * holds. Returns the longest match (0..n).
   *
   * The running set A (endpoints holding every block so far) usually stays the same from block to
   * block, because requests add whole prefixes. When the block's holder count and XOR fingerprint
   * equal A's, the holders are A (wrong only with probability ~2^-64) and the step costs O(1);
   * otherwise A is intersected with the holders, probing whichever side is smaller.
   */
  match(hashes: StaticArray<u64>, n: i32, out: StaticArray<i32>): i32 {
    const m = this.maxEndpoints < out.length ? this.maxEndpoints : out.length;
    memory.fill(changetype<usize>(out), 0, (<usize>m) << 2);
    if (n > hashes.length) n = hashes.length;
    if (n <= 0) return 0;
    const IN_A: i32 = -1; // out[e] while e is in A
    const KEPT: i32 = -2; // out[e] while e is confirmed for the current block
    const active = this.active;
    let nActive = 0;
    let fpA: u64 = 0;
    let s = this.holdFind(unchecked(hashes[0]));
    if (s < 0) return 0;
    for (let ent = unchecked(this.holdHead[s]) - 1; ent != NONE; ent = this.holdNextOf(ent)) {
      const e = this.eEpOf(ent);
      if (e >= m) continue;
      unchecked((out[e] = IN_A));
      unchecked((active[nActive++] = e));
      fpA ^= endpointKey(e);
    }
    let i = 1;
    for (; i < n; i++) {
      const h = unchecked(hashes[i]);
      s = this.holdFind(h);
      if (s < 0) break;
      const count = unchecked(this.holdCount[s]);
      if (count == nActive && unchecked(this.holdFp[s]) == fpA) continue;
      if (count == nActive - 1) {
        // Typical when one endpoint's copy of the chain ends here: the fingerprints then differ by
        // exactly that endpoint's key.
        const gone = endpointOfKey(fpA ^ unchecked(this.holdFp[s]), m);
        if (gone >= 0 && unchecked(out[gone]) == IN_A && this.pairFind(h, gone) == NONE) {
          for (let k = 0; k < nActive; k++) {
            if (unchecked(active[k]) == gone) {
              unchecked((active[k] = active[nActive - 1]));
              break;
            }
          }
          nActive--;
          unchecked((out[gone] = i));
          fpA ^= endpointKey(gone);
          if (nActive == 0) break;
          continue;
        }
      }
      let next = 0;
      if (nActive <= count) {
        for (let k = 0; k < nActive; k++) {
          const e = unchecked(active[k]);
          if (this.pairFind(h, e) != NONE) unchecked((active[next++] = e));
          else {
            unchecked((out[e] = i));
            fpA ^= endpointKey(e);
          }
        }
      } else {
        for (let ent = unchecked(this.holdHead[s]) - 1; ent != NONE; ent = this.holdNextOf(ent)) {
          const e = this.eEpOf(ent);
          if (e < m && unchecked(out[e]) == IN_A) unchecked((out[e] = KEPT));
        }
        for (let k = 0; k < nActive; k++) {
          const e = unchecked(active[k]);
          if (unchecked(out[e]) == KEPT) {
            unchecked((out[e] = IN_A));
            unchecked((active[next++] = e));
          } else {
            unchecked((out[e] = i));
            fpA ^= endpointKey(e);
          }
        }
      }
      nActive = next;
      if (nActive == 0) break;
    }
    // Endpoints still in A matched blocks 0..i-1; if A emptied at block i, its last members had i.
    for (let k = 0; k < nActive; k++) unchecked((out[unchecked(active[k])] = i));
    return i;
  }

  // ---- entries ------------------------------------------------------------------------------

  private touch(h: u64, e: i32): void {
    let ent = this.pairFind(h, e);
    if (ent != NONE) {
      if (unchecked(this.epHead[e]) != ent) {
        this.lruUnlink(ent);
        this.lruPushFront(ent, e);
      }
      return;
    }
    const cap = unchecked(this.epCap[e]);
    if (cap == 0) return;
    if (unchecked(this.epSize[e]) >= cap) this.removeEntry(unchecked(this.epTail[e]));
    else if (this.size >= this.maxEntries) this.evictForSpace(e);
    ent = this.allocEntry();
    this.setEHash(ent, h);
    this.setEEp(ent, e);
    this.size++;
    this.pairInsert(ent);
    this.holdAdd(ent);
    this.lruPushFront(ent, e);
    unchecked((this.epSize[e] += 1));
  }

  private evictForSpace(e: i32): void {
    if (unchecked(this.epTail[e]) != NONE) {
      this.removeEntry(unchecked(this.epTail[e]));
      return;
    }
    for (let k = 0; k < this.maxEndpoints; k++) {
      const v = this.victim;
      this.victim = v + 1 == this.maxEndpoints ? 0 : v + 1;
      if (unchecked(this.epTail[v]) != NONE) {
        this.removeEntry(unchecked(this.epTail[v]));
        return;
      }
    }
  }

  private removeEntry(ent: i32): void {
    const e = this.eEpOf(ent);
    this.lruUnlink(ent);
    unchecked((this.epSize[e] -= 1));
    this.pairDelete(ent);
    this.holdRemove(ent);
    this.setEEp(ent, NONE);
    this.setLruNext(ent, this.freeHead);
    this.freeHead = ent;
    this.size--;
  }

  private allocEntry(): i32 {
    if (this.freeHead != NONE) {
      const ent = this.freeHead;
      this.freeHead = this.lruNextOf(ent);
      return ent;
    }
    if (this.used == this.poolCap) this.growEntries();
    return this.used++;
  }

  private growEntries(): void {
    const n = this.poolCap * 2;
    const grown = new StaticArray<u64>(n * 4);
    memory.copy(changetype<usize>(grown), changetype<usize>(this.pool), (<usize>this.poolCap) << 5);
    this.pool = grown;
    this.poolCap = n;
    // Both tables keep load ≤ 1/2 of the pool size.
    this.rehashPairs(n * 2);
    this.rehashHolders(n * 2);
  }

  // ---- entry record fields --------------------------------------------------------------------

  @inline private eHashOf(ent: i32): u64 {
    return load<u64>(changetype<usize>(this.pool) + ((<usize>ent) << 5), 0);
  }

  @inline private setEHash(ent: i32, v: u64): void {
    store<u64>(changetype<usize>(this.pool) + ((<usize>ent) << 5), v, 0);
  }

  @inline private eEpOf(ent: i32): i32 {
    return load<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), 8);
  }

  @inline private setEEp(ent: i32, v: i32): void {
    store<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), v, 8);
  }

  @inline private lruPrevOf(ent: i32): i32 {
    return load<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), 12);
  }

  @inline private setLruPrev(ent: i32, v: i32): void {
    store<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), v, 12);
  }

  @inline private lruNextOf(ent: i32): i32 {
    return load<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), 16);
  }

  @inline private setLruNext(ent: i32, v: i32): void {
    store<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), v, 16);
  }

  @inline private holdPrevOf(ent: i32): i32 {
    return load<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), 20);
  }

  @inline private setHoldPrev(ent: i32, v: i32): void {
    store<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), v, 20);
  }

  @inline private holdNextOf(ent: i32): i32 {
    return load<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), 24);
  }

  @inline private setHoldNext(ent: i32, v: i32): void {
    store<i32>(changetype<usize>(this.pool) + ((<usize>ent) << 5), v, 24);
  }

  // ---- per-endpoint LRU lists --------------------------------------------------------------------

  private lruPushFront(ent: i32, e: i32): void {
    const head = unchecked(this.epHead[e]);
    this.setLruPrev(ent, NONE);
    this.setLruNext(ent, head);
    if (head != NONE) this.setLruPrev(head, ent);
    else unchecked((this.epTail[e] = ent));
    unchecked((this.epHead[e] = ent));
  }

  private lruUnlink(ent: i32): void {
    const e = this.eEpOf(ent);
    const p = this.lruPrevOf(ent);
    const q = this.lruNextOf(ent);
    if (p != NONE) this.setLruNext(p, q);
    else unchecked((this.epHead[e] = q));
    if (q != NONE) this.setLruPrev(q, p);
    else unchecked((this.epTail[e] = p));
  }

  // ---- (hash, endpoint) table -------------------------------------------------------------------

  @inline private pairHome(ent: i32): i32 {
    return (<i32>mixPair(this.eHashOf(ent), this.eEpOf(ent))) & this.pairMask;
  }

  private pairFind(h: u64, e: i32): i32 {
    const mask = this.pairMask;
    let s = (<i32>mixPair(h, e)) & mask;
    while (true) {
      const v = unchecked(this.pairSlots[s]);
      if (v == 0) return NONE;
      const ent = v - 1;
      if (this.eHashOf(ent) == h && this.eEpOf(ent) == e) return ent;
      s = (s + 1) & mask;
    }
  }

  private pairInsert(ent: i32): void {
    const mask = this.pairMask;
    let s = this.pairHome(ent);
    while (unchecked(this.pairSlots[s]) != 0) s = (s + 1) & mask;
    unchecked((this.pairSlots[s] = ent + 1));
  }

  private pairDelete(ent: i32): void {
    const mask = this.pairMask;
    let i = this.pairHome(ent);
    while (unchecked(this.pairSlots[i]) != ent + 1) i = (i + 1) & mask;
    let j = i;
    while (true) {
      j = (j + 1) & mask;
      const v = unchecked(this.pairSlots[j]);
      if (v == 0) break;
      const k = this.pairHome(v - 1);
      // Move j back into the hole at i unless its home lies cyclically in (i, j].
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (!stays) {
        unchecked((this.pairSlots[i] = v));
        i = j;
      }
    }
    unchecked((this.pairSlots[i] = 0));
  }

  private rehashPairs(slots: i32): void {
    this.pairSlots = new StaticArray<i32>(slots);
    this.pairMask = slots - 1;
    for (let ent = 0; ent < this.used; ent++) {
      if (this.eEpOf(ent) != NONE) this.pairInsert(ent);
    }
  }

  // ---- hash → holders table -------------------------------------------------------------------

  private holdFind(h: u64): i32 {
    const mask = this.holdMask;
    let s = (<i32>mixHash(h)) & mask;
    while (true) {
      if (unchecked(this.holdHead[s]) == 0) return -1;
      if (unchecked(this.holdKeys[s]) == h) return s;
      s = (s + 1) & mask;
    }
  }

  private holdAdd(ent: i32): void {
    const h = this.eHashOf(ent);
    const mask = this.holdMask;
    let s = (<i32>mixHash(h)) & mask;
    while (true) {
      const head = unchecked(this.holdHead[s]);
      if (head == 0) {
        unchecked((this.holdKeys[s] = h));
        unchecked((this.holdCount[s] = 0));
        unchecked((this.holdFp[s] = 0));
        this.distinctHashes++;
        break;
      }
      if (unchecked(this.holdKeys[s]) == h) break;
      s = (s + 1) & mask;
    }
    const first = unchecked(this.holdHead[s]) - 1;
    this.setHoldPrev(ent, NONE);
    this.setHoldNext(ent, first);
    if (first != NONE) this.setHoldPrev(first, ent);
    unchecked((this.holdHead[s] = ent + 1));
    unchecked((this.holdCount[s] += 1));
    unchecked((this.holdFp[s] ^= endpointKey(this.eEpOf(ent))));
  }

  private holdRemove(ent: i32): void {
    const s = this.holdFind(this.eHashOf(ent));
    const p = this.holdPrevOf(ent);
    const q = this.holdNextOf(ent);
    if (p != NONE) this.setHoldNext(p, q);
    else unchecked((this.holdHead[s] = q + 1));
    if (q != NONE) this.setHoldPrev(q, p);
    unchecked((this.holdFp[s] ^= endpointKey(this.eEpOf(ent))));
    const left = unchecked(this.holdCount[s]) - 1;
    unchecked((this.holdCount[s] = left));
    if (left == 0) this.holdDeleteSlot(s);
  }

  private holdDeleteSlot(at: i32): void {
    const mask = this.holdMask;
    let i = at;
    let j = i;
    while (true) {
      j = (j + 1) & mask;
      if (unchecked(this.holdHead[j]) == 0) break;
      const k = (<i32>mixHash(unchecked(this.holdKeys[j]))) & mask;
      const stays = i <= j ? i < k && k <= j : i < k || k <= j;
      if (!stays) {
        unchecked((this.holdKeys[i] = this.holdKeys[j]));
        unchecked((this.holdHead[i] = this.holdHead[j]));
        unchecked((this.holdCount[i] = this.holdCount[j]));
        unchecked((this.holdFp[i] = this.holdFp[j]));
        i = j;
      }
    }
    unchecked((this.holdHead[i] = 0));
    unchecked((this.holdCount[i] = 0));
    this.distinctHashes--;
  }

  private rehashHolders(slots: i32): void {
    const keys = this.holdKeys;
    const heads = this.holdHead;
    const counts = this.holdCount;
    const fps = this.holdFp;
    this.holdKeys = new StaticArray<u64>(slots);
    this.holdHead = new StaticArray<i32>(slots);
    this.holdCount = new StaticArray<i32>(slots);
    this.holdFp = new StaticArray<u64>(slots);
    this.holdMask = slots - 1;
    const mask = this.holdMask;
    for (let t = 0; t < heads.length; t++) {
      const head = unchecked(heads[t]);
      if (head == 0) continue;
      const h = unchecked(keys[t]);
      let s = (<i32>mixHash(h)) & mask;
      while (unchecked(this.holdHead[s]) != 0) s = (s + 1) & mask;
      unchecked((this.holdKeys[s] = h));
      unchecked((this.holdHead[s] = head));
      unchecked((this.holdCount[s] = unchecked(counts[t])));
      unchecked((this.holdFp[s] = unchecked(fps[t])));
    }
  }
}
