// `max-score-picker` (GIE): highest total first; equal totals in a random order per cycle.

import { CycleState } from "../types.ts";
import { Plugin, Picker } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { mix64 } from "../rng.ts";
import { readPickerParams } from "./picker-params.ts";

export const MAX_SCORE_PICKER = "max-score-picker";

export function maxScorePickerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  readPickerParams(p);
  return ctx.finish(p, new MaxScorePicker());
}

/**
 * Ties are ordered by a per-cycle random key, which is what GIE's shuffle-then-stable-sort amounts to.
 * One pass keeping the best maxN in a small sorted buffer: most candidates cost one comparison.
 */
export class MaxScorePicker extends Picker {
  private top: StaticArray<i32> = new StaticArray<i32>(8);
  constructor() {
    super(MAX_SCORE_PICKER);
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
