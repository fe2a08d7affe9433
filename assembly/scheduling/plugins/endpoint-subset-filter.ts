// `endpoint-subset-filter` (ours, implicit: second in every profile): GIE's conformance hook — the
// `test-epp-endpoint-selection` header, passed in only when the pool enables it, names the endpoints.

import { Endpoint, RequestInfo, CycleState } from "../types.ts";
import { Filter } from "../framework.ts";

export const ENDPOINT_SUBSET_FILTER = "endpoint-subset-filter";

/** True when hostPort names the address s[from, to) — as `ip`, `ip:port`, or `[ipv6]`/`[ipv6]:port`. */
function hostPortMatches(hostPort: string, s: string, from: i32, to: i32): bool {
  const len = to - from;
  if (len <= 0) return false;
  const hl = hostPort.length;
  let off = 0;
  // "[v6]:port" in hostPort matched by a bare "v6" entry.
  if (hl > 0 && hostPort.charCodeAt(0) == 0x5b && s.charCodeAt(from) != 0x5b) off = 1;
  if (off + len > hl) return false;
  for (let j = 0; j < len; j++) {
    if (hostPort.charCodeAt(off + j) != s.charCodeAt(from + j)) return false;
  }
  if (off + len == hl) return true;
  const next = hostPort.charCodeAt(off + len);
  return off == 1 ? next == 0x5d : next == 0x3a; // "]" after a bracketed v6, ":" before the port
}

/** True when the comma-separated list names this endpoint. */
export function subsetContains(list: string, hostPort: string): bool {
  let start = 0;
  const n = list.length;
  while (start <= n) {
    let end = start;
    while (end < n && list.charCodeAt(end) != 0x2c) end++;
    let a = start;
    let b = end;
    while (a < b && list.charCodeAt(a) == 0x20) a++;
    while (b > a && list.charCodeAt(b - 1) == 0x20) b--;
    if (hostPortMatches(hostPort, list, a, b)) return true;
    start = end + 1;
  }
  return false;
}

/**
 * GIE conformance hook: with a `test-epp-endpoint-selection: ip[,ip…]` header (only passed in when the
 * pool enables it), keeps just the listed endpoints. No header → no-op.
 */
export class EndpointSubsetFilter extends Filter {
  constructor() {
    super(ENDPOINT_SUBSET_FILTER);
  }
  apply(eps: Endpoint[], req: RequestInfo, cs: CycleState): void {
    const list = req.endpointSubset;
    if (list.length == 0) return;
    let m = 0;
    for (let k = 0, n = cs.n; k < n; k++) {
      const i = unchecked(cs.cand[k]);
      if (subsetContains(list, unchecked(eps[i]).hostPort)) unchecked((cs.cand[m++] = i));
    }
    cs.n = m;
  }
}
