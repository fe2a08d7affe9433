// Runs the scheduler for one request and states the outcome in the Decision: the ordered destination list
// (best first, then fallbacks) for x-gateway-destination-endpoint, or a 429 / 503 reply. After a pick it runs
// the post-pick hooks (prefix index, affinity directory) and records the dispatch in the VM-local in-flight
// set, so the next pick already sees it. It never touches the stream: filter.ts applies the Decision.

import { getHeader, HeaderMap, nowNanos } from "./abi/host.ts";
import { RequestInfo, SCHEDULE_OK, SCHEDULE_SHED } from "./scheduling/types.ts";
import { Dispatch } from "./inflight.ts";
import { Decision } from "./decision.ts";
import { config, plugin } from "./plugins.ts";
import { REACH_NONE } from "./reachability.ts";
import { notePoolSaturation } from "./flow-control/metrics.ts";

export const DESTINATION_HEADER = "x-gateway-destination-endpoint";
/** Flow control's fairness id (GIE), and llm-d's name for it; absent = "". */
export const FAIRNESS_HEADER = "x-gateway-inference-fairness-id";
export const LLMD_FAIRNESS_HEADER = "x-llm-d-inference-fairness-id";

/**
 * Longest fairness id the queue keeps, in UTF-8 bytes. The queue holds one copy per id with items
 * waiting (ids leave with their last item, so distinct ids ≤ held requests ≤ the band's maxRequests);
 * the cap bounds each copy, so a client spraying long random ids holds at most maxRequests × this.
 */
export const MAX_FAIRNESS_ID_BYTES: i32 = 256;

function fairnessId(): string {
  let v = getHeader(HeaderMap.Request, FAIRNESS_HEADER);
  if (v == null) v = getHeader(HeaderMap.Request, LLMD_FAIRNESS_HEADER);
  return v == null ? "" : v;
}

/**
 * Flow control (issue 22), at arrival: true when the request must wait — others already wait on this
 * worker, or the pool has no room left (flow.ts). A request admitted here has taken its unit of room.
 */
function mustWait(): bool {
  const flow = plugin.flow;
  if (!flow.on || plugin.pool.staleFigures) return false;
  if (flow.queue.count > 0) return true;
  const pool = plugin.pool;
  const headroom = pool.scheduler.built.detector.roomLeft(pool.endpoints);
  notePoolSaturation(headroom <= 0);
  return flow.reserve(headroom, 1) < 1;
}

/**
 * Picks endpoints for `req` into `out` (route, or a reply; under flow control possibly a hold). `d`
 * receives the dispatch (finish it at stream end). `admitted`: flow control dispatches a held request,
 * which has its room already, so neither the queue nor the saturation detector is asked again.
 */
export function pick(req: RequestInfo, d: Dispatch, out: Decision, admitted: bool = false): void {
  // `sharedInflight`: the other workers' in-flight counts count for this pick only (shared-inflight.ts).
  const shared = plugin.pool.inflight.shared;
  if (shared == null) return pickHere(req, d, out, admitted);
  if (!plugin.pool.staleFigures) shared.add(plugin.pool.endpoints);
  pickHere(req, d, out, admitted);
  shared.remove();
  if (shared.dirty) shared.publish(plugin.pool.endpoints);
}

function pickHere(req: RequestInfo, d: Dispatch, out: Decision, admitted: bool): void {
  const pool = plugin.pool;
  const eps = pool.endpoints;
  const scheduler = pool.scheduler;
  const nowMs = nowNanos() / 1_000_000;
  const window = config.failedConnectWindowMs;
  if (window > 0 && pool.reachability(nowMs, window) == REACH_NONE) {
    // Every ready endpoint refused connects just now: answer at once rather than feed a dead pool.
    out.error(
      503,
      "every ready endpoint in pool " +
        config.poolNamespace +
        "/" +
        config.poolName +
        " failed to connect within the last " +
        window.toString() +
        " ms",
      "service_unavailable",
      "no_reachable_endpoint",
    );
    out.withHeader("retry-after", "1");
    return;
  }
  let fairness = "";
  if (!admitted) {
    plugin.flow.follow(plugin.snapshots.cached);
    if (plugin.flow.on) {
      // Only flow control reads the id; an over-long one is refused rather than cut (two ids that
      // share a prefix must not become one tenant), whether or not this request would wait.
      fairness = fairnessId();
      if (String.UTF8.byteLength(fairness) > MAX_FAIRNESS_ID_BYTES) {
        out.error(
          400,
          FAIRNESS_HEADER + " is longer than " + MAX_FAIRNESS_ID_BYTES.toString() + " bytes",
          "invalid_request_error",
          "invalid_fairness_id",
        );
        return;
      }
    }
    if (mustWait()) {
      out.hold(req.priority, fairness);
      return;
    }
  }
  const status = scheduler.schedule(eps, req, pool.staleFigures, !admitted);
  if (status == SCHEDULE_SHED) {
    out.error(
      429,
      "the inference pool is saturated and this request is sheddable; retry later",
      "rate_limit_exceeded",
      "request_shed",
    );
    return;
  }
  if (status != SCHEDULE_OK || scheduler.resultCount == 0) {
    const why =
      req.endpointSubset.length > 0
        ? "no ready endpoint matches test-epp-endpoint-selection"
        : "no ready endpoint in pool " + config.poolNamespace + "/" + config.poolName;
    out.error(503, why, "service_unavailable", "no_ready_endpoint");
    return;
  }
  const first = scheduler.result[0];
  // For the prefix metrics: read before onPicked adds this prompt to the index.
  const prefix = scheduler.built.prefix;
  if (prefix.ready) {
    out.promptBlocks = prefix.blocks;
    out.matchedBlocks = prefix.matched(eps[first]);
  }
  scheduler.onPicked(eps, first, req);
  pool.inflight.record(d, eps[first], req.promptTokens, nowMs);
  const list = scheduler.destinationList(eps);
  d.destinations = list;
  out.route(list, eps[first].hostPort);
  const extra = scheduler.responseHeaders;
  for (let k = 0; k < extra.count; k++) {
    out.responseNames.push(unchecked(extra.names[k]));
    out.responseValues.push(unchecked(extra.values[k]));
  }
}
