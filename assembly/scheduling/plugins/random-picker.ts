// `random-picker` (GIE): uniform random order; scores are ignored.

import { CycleState } from "../types.ts";
import { Plugin, Picker } from "../framework.ts";
import { PluginSpec } from "../../snapshot/types.ts";
import { BuildContext } from "../build-context.ts";
import { readPickerParams } from "./picker-params.ts";

export const RANDOM_PICKER = "random-picker";

export function randomPickerFactory(spec: PluginSpec, ctx: BuildContext): Plugin | null {
  const p = ctx.params(spec);
  readPickerParams(p);
  return ctx.finish(p, new RandomPicker());
}

/** A partial Fisher–Yates shuffle of the candidates. */
export class RandomPicker extends Picker {
  constructor() {
    super(RANDOM_PICKER);
  }
  pick(cs: CycleState, maxN: i32, out: StaticArray<i32>): i32 {
    const n = cs.n;
    const limit = maxN < n ? maxN : n;
    let count = 0;
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
