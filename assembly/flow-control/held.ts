// What a held request keeps for its dispatch: the director's RequestInfo is per-VM scratch, reused by
// the next request, so a held one takes a copy (its prompt's block hashes included).

import { RequestInfo } from "../scheduling/types.ts";

export function copyRequest(r: RequestInfo): RequestInfo {
  const c = new RequestInfo();
  c.targetModel = r.targetModel;
  c.adapter = r.adapter;
  c.priority = r.priority;
  c.criticality = r.criticality;
  c.promptBytes = r.promptBytes;
  c.promptTokens = r.promptTokens;
  const h = r.hashes;
  const n = h == null ? 0 : min(r.hashCount, h.length);
  if (h != null && n > 0) {
    const copy = new StaticArray<u64>(n);
    for (let i = 0; i < n; i++) unchecked((copy[i] = h[i]));
    c.hashes = copy;
    c.hashCount = n;
  }
  c.stream = r.stream;
  c.endpointSubset = r.endpointSubset;
  c.pluginHeaderValues = r.pluginHeaderValues.slice(0);
  return c;
}
