// Pickers: order up to maxN candidates by cs.totals into out (endpoint indices, best first). The first
// is the pick; the rest are Envoy's fallbacks in x-gateway-destination-endpoint. Selection is a partial
// selection sort (O(n·maxN)), which beats a full sort for the few fallbacks we emit.

import { CycleState } from "./types.ts";
import { Picker } from "./framework.ts";
import { mix64 } from "./rng.ts";

/**
 * Moves the maxN largest keys (cs.work) to the front of cs.cand, in descending order, and writes their
 * endpoint indices to out. Keys ≤ floor are never picked. Returns how many were written.
 */
function selectTop(cs: CycleState, maxN: i32, out: StaticArray<i32>, floor: f64): i32 {
  const n = cs.n;
  const keys = cs.work;
  const limit = maxN < n ? (maxN < out.length ? maxN : out.length) : n < out.length ? n : out.length;
  let count = 0;
  for (let r = 0; r < limit; r++) {
    let best = -1;
    let bestKey = floor;
    for (let k = r; k < n; k++) {
      const v = unchecked(keys[k]);
      if (v > bestKey) {
        bestKey = v;
        best = k;
      }
    }
    if (best < 0) break;
    // Swap into position r so later rounds skip it.
    const c = unchecked(cs.cand[best]);
    unchecked((cs.cand[best] = cs.cand[r]));
    unchecked((cs.cand[r] = c));
    unchecked((keys[best] = keys[r]));
    unchecked((keys[r] = bestKey));
    const t = unchecked(cs.totals[best]);
    unchecked((cs.totals[best] = cs.totals[r]));
    unchecked((cs.totals[r] = t));
    unchecked((out[count++] = c));
  }
  return count;
}

/**
 * `max-score-picker`: highest total first; equal totals are ordered by a per-cycle random key, which is
 * what GIE's shuffle-then-stable-sort amounts to. One pass keeping the best maxN in a small sorted
 * buffer: most candidates cost one comparison against the current maxN-th.
 */
export class MaxScorePicker extends Picker {
  private top: StaticArray<i32> = new StaticArray<i32>(8);
  constructor() {
    super("max-score-picker");
  }
  pick(cs: CycleState, maxN: i32, out: StaticArray<i32>): i32 {
    const n = cs.n;
    let k = maxN < n ? maxN : n;
    if (k > out.length) k = out.length;
    if (k <= 0) return 0;
    if (this.top.length < k) this.top = new StaticArray<i32>(k);
    const top = this.top;
    const totals = cs.totals;
    // Tie keys are a keyed hash of the position: a fresh random permutation of the ties per cycle,
    // computed only when two totals are equal.
    const salt = cs.rng.nextU64();
    let cnt = 0;
    for (let p = 0; p < n; p++) {
      const t = unchecked(totals[p]);
      if (cnt == k) {
        const last = unchecked(top[k - 1]);
        const lt = unchecked(totals[last]);
        if (t < lt || (t == lt && mix64(salt ^ (<u64>p)) <= mix64(salt ^ (<u64>last)))) continue;
        cnt--;
      }
      // Insert p, shifting worse entries down.
      let j = cnt;
      while (j > 0) {
        const q = unchecked(top[j - 1]);
        const qt = unchecked(totals[q]);
        if (qt > t || (qt == t && mix64(salt ^ (<u64>q)) > mix64(salt ^ (<u64>p)))) break;
        unchecked((top[j] = q));
        j--;
      }
      unchecked((top[j] = p));
      cnt++;
    }
    for (let j = 0; j < cnt; j++) unchecked((out[j] = cs.cand[unchecked(top[j])]));
    return cnt;
  }
}

/** `random-picker`: uniform order, scores ignored. */
export class RandomPicker extends Picker {
  constructor() {
    super("random-picker");
  }
  pick(cs: CycleState, maxN: i32, out: StaticArray<i32>): i32 {
    const n = cs.n;
    const limit = maxN < n ? maxN : n;
    let count = 0;
    // Partial Fisher–Yates.
    for (let r = 0; r < limit && count < out.length; r++) {
      const j = r + cs.rng.nextBelow(n - r);
      const c = unchecked(cs.cand[j]);
      unchecked((cs.cand[j] = cs.cand[r]));
      unchecked((cs.cand[r] = c));
      unchecked((out[count++] = c));
    }
    return count;
  }
}

/**
 * `weighted-random-picker`: A-Res (Efraimidis–Spirakis) — key = U^(1/score), the largest keys win, so
 * P(first) ∝ score. Zero scores are never picked; all zero → uniform random.
 */
export class WeightedRandomPicker extends Picker {
  private fallback: RandomPicker = new RandomPicker();
  constructor() {
    super("weighted-random-picker");
  }
  pick(cs: CycleState, maxN: i32, out: StaticArray<i32>): i32 {
    const n = cs.n;
    let positive = 0;
    for (let k = 0; k < n; k++) {
      const s = unchecked(cs.totals[k]);
      if (s > 0) {
        positive++;
        // log form of U^(1/s): ln(U)/s, monotone in the key; U in (0, 1].
        const u = 1.0 - cs.rng.nextF64();
        unchecked((cs.work[k] = Math.log(u) / s));
      } else unchecked((cs.work[k] = -Infinity));
    }
    if (positive == 0) return this.fallback.pick(cs, maxN, out);
    return selectTop(cs, maxN, out, -Infinity);
  }
}
