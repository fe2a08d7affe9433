// The min-max normalisation the load scorers share.

/** Min-max over v: (max − v)/(max − min), so the lowest value scores 1; all equal → 1 (neutral). */
export function minMaxLow(values: StaticArray<f64>, n: i32, out: StaticArray<f64>): void {
  let min = f64.MAX_VALUE;
  let max = -f64.MAX_VALUE;
  for (let k = 0; k < n; k++) {
    const v = unchecked(values[k]);
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const span = max - min;
  for (let k = 0; k < n; k++) unchecked((out[k] = span > 0 ? (max - unchecked(values[k])) / span : 1.0));
}
