// `weighted-random-picker` (GIE): A-Res (Efraimidis–Spirakis) — key = U^(1/score), the largest keys
// win, so P(first) ∝ score. Zero scores are never picked; all zero → uniform random.

import { CycleState } from "../types.ts";
import { Plugin, Picker } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { readPickerParams } from "./picker-params.ts";
import { RandomPicker } from "./random-picker.ts";

export const WEIGHTED_RANDOM_PICKER = "weighted-random-picker";

export function weightedRandomPickerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  readPickerParams(p);
  return ctx.finish(p, new WeightedRandomPicker());
}

export class WeightedRandomPicker extends Picker {
  private fallback: RandomPicker = new RandomPicker();
  constructor() {
    super(WEIGHTED_RANDOM_PICKER);
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

/**
 * Moves the maxN largest keys (cs.work) to the front of cs.cand, in descending order, and writes their
 * endpoint indices to out. Keys ≤ floor are never picked. Partial selection sort: O(n·maxN), which beats
 * a full sort for the few fallbacks we emit. Returns how many were written.
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
