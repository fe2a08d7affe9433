// Kubernetes resource quantities ("10Gi", "500M", "1k", "1e3", "1.5Gi") as EndpointPickerConfig files write
// flowControl limits (upstream decodes them as k8s.io/apimachinery resource.Quantity and takes Value(), the
// value rounded up to a whole number). Exact: the digits are scaled with bigint, so "1.5Gi" is 1610612736.
// @kubernetes/client-node has a quantityToScalar, but not as public API, and it refuses "1.5Gi".

const BINARY: Record<string, bigint> = { Ki: 1n, Mi: 2n, Gi: 3n, Ti: 4n, Pi: 5n, Ei: 6n };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, "": 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|[numkMGTPE]?)$/;

/** The quantity's value rounded up to an integer (a YAML number is taken as is), or undefined if malformed. */
export function quantityValue(v: unknown): bigint | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? BigInt(Math.ceil(v)) : undefined;
  if (typeof v !== "string") return undefined;
  const m = QUANTITY.exec(v);
  if (m === null) return undefined;
  const [, sign, whole = "", frac = "", suffix = ""] = m;
  if (whole === "" && frac === "") return undefined;
  // value = digits × 10^(exp10 − frac.length) × 1024^exp1024
  let digits = BigInt(whole + frac);
  let exp10 = -frac.length;
  if (suffix in BINARY) digits *= 1024n ** BINARY[suffix]!;
  else if (suffix.length > 1)
    exp10 += Number(suffix.slice(1)); // e3, E-2 (a lone E is exa)
  else exp10 += DECIMAL[suffix]!;
  if (exp10 > 30 || exp10 < -60) return undefined; // far outside any limit a caller accepts
  let value: bigint;
  if (exp10 >= 0) value = digits * 10n ** BigInt(exp10);
  else {
    const div = 10n ** BigInt(-exp10);
    value = digits / div + (digits % div === 0n ? 0n : 1n);
  }
  return sign === "-" ? -value : value;
}
