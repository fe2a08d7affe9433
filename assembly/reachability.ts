// Connect failures this VM saw, per endpoint: the request outcomes Envoy reports in on_log mark an
// endpoint failed (response flag UF) or clear it (it answered). Before each pick the marks younger than
// failedConnectWindowMs make endpoints unreachable: the ready filter avoids them while another ready
// endpoint is fine, and when none is, the filter answers 503 at once instead of feeding a dead pool.
// Only final outcomes are visible: a connect failure that a retry recovered from leaves no flag, so it
// is inferred from the destination list instead (the retries took the entries before the served one).

import { Endpoint } from "./scheduling/types.ts";

/**
 * Bits of Envoy's `response.flags` (StreamInfo::legacyResponseFlags: bit N = CoreResponseFlag N,
 * envoy/stream_info/stream_info.h). UF = UpstreamConnectionFailure (5): the last attempt could not connect.
 */
export const FLAG_UPSTREAM_CONNECTION_FAILURE: u64 = 1 << 5;

/** No endpoint is marked: nothing to avoid. */
export const REACH_CLEAR: i32 = 0;
/** Some ready endpoints are marked, others are fine: the ready filter avoids the marked ones. */
export const REACH_SOME: i32 = 1;
/** Every ready endpoint failed within the window (and at least one is ready). */
export const REACH_NONE: i32 = 2;

export function markFailed(e: Endpoint, nowMs: u64): void {
  e.failedAtMs = nowMs > 0 ? nowMs : 1;
}

export function markAnswered(e: Endpoint): void {
  e.failedAtMs = 0;
}

/** Whether a mark set at `failedAtMs` still counts at `nowMs` (a clock that stepped back counts as recent). */
export function recentFailure(failedAtMs: u64, nowMs: u64, windowMs: u64): bool {
  if (failedAtMs == 0 || windowMs == 0) return false;
  return nowMs < failedAtMs || nowMs - failedAtMs < windowMs;
}

/**
 * Sets `unreachable` on every endpoint for this cycle and says whether any ready endpoint is left.
 * O(endpoints), no allocation.
 */
export function markUnreachable(eps: Endpoint[], nowMs: u64, windowMs: u64): i32 {
  let ready = 0;
  let reachable = 0;
  let marked = 0;
  for (let i = 0; i < eps.length; i++) {
    const e = unchecked(eps[i]);
    const u = recentFailure(e.failedAtMs, nowMs, windowMs);
    e.unreachable = u;
    if (u) marked++;
    if (!e.ready) continue;
    ready++;
    if (!u) reachable++;
  }
  if (marked == 0) return REACH_CLEAR;
  return ready > 0 && reachable == 0 ? REACH_NONE : REACH_SOME;
}
