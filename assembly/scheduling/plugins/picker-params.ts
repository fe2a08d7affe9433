// What every picker accepts: GIE's `maxNumOfEndpoints`. The number of endpoints written is the filter's
// (1 + maxFallbacks, bounded by its destinationMode), so the value is validated and otherwise unused.

import { Params } from "../params.ts";

export function readPickerParams(p: Params): void {
  p.int("maxNumOfEndpoints", 1, 1);
}
