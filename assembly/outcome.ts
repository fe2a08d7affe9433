// What a finished request says about its endpoints' reachability (on_log). Envoy reports only the
// final outcome: `response.flags` (StreamInfo legacyResponseFlags, int64) with UF when the last attempt
// could not connect, and `upstream.address` = that last attempt's host. So:
//   UF set          → the served (last attempted) host failed to connect;
//   otherwise       → the served host connected, which clears its mark;
//   served ≠ picked → under override_host the retries walked the destination list, so every entry
//                     before the served one was tried and reset before any response (connect failure
//                     or reset-before-request, the shipped retry_on): those are marked too.
// The success path (served == picked, no UF) allocates no string.

import { getPropertyEncoded, nowNanos } from "./abi/host.ts";
import { Dispatch } from "./inflight.ts";
import { plugin } from "./plugins.ts";
import { markAnswered, FLAG_UPSTREAM_CONNECTION_FAILURE } from "./reachability.ts";
import { Endpoint } from "./scheduling/types.ts";

const RESPONSE_FLAGS = String.UTF8.encode("response\0flags");

/** `response.flags` as Envoy serializes it (int64, 8 bytes little-endian); 0 when absent. */
function responseFlags(): u64 {
  const v = getPropertyEncoded(RESPONSE_FLAGS);
  if (v == null || v.byteLength != 8) return 0;
  return load<u64>(changetype<usize>(v));
}

/** Marks the destination-list entries before `served` as failed (the retries passed over them). */
function markPassedOver(list: string, served: string, nowMs: u64): void {
  const pool = plugin.pool;
  let start = 0;
  while (start < list.length) {
    let end = list.indexOf(",", start);
    if (end < 0) end = list.length;
    const entry = list.substring(start, end);
    if (entry == served) return;
    const e = pool.find(entry);
    if (e != null) pool.noteConnectFailure(e, nowMs);
    start = end + 1;
  }
}

/** The endpoint `served` names: the picked one without a lookup when they match. */
function servedEndpoint(d: Dispatch, picked: string, served: string): Endpoint | null {
  const e = d.endpoint;
  if (served == picked && e != null && e.slot >= 0) return e;
  return plugin.pool.find(served);
}

/** Call from on_log, before finishDispatch (which forgets the picked endpoint). */
export function noteOutcome(picked: string, served: string | null, d: Dispatch): void {
  const flags = responseFlags();
  const failed = (flags & FLAG_UPSTREAM_CONNECTION_FAILURE) != 0;
  // No response headers passed (e.g. the client left first): nothing is known about the host.
  if (served == null) return;
  const nowMs = nowNanos() / 1_000_000;
  const list = d.destinations;
  if (served != picked && list != null) markPassedOver(list, served, nowMs);
  const e = servedEndpoint(d, picked, served);
  if (e == null) return;
  if (failed) plugin.pool.noteConnectFailure(e, nowMs);
  else if (e.failedAtMs != 0) markAnswered(e);
}
