// Runs the scheduler for one request and applies its decision to the stream: the ordered destination
// list (best first, then fallbacks) in x-gateway-destination-endpoint, or a 429 / 503 local reply.
// Records the dispatch (prefix index + VM-local in-flight) so the next pick already sees it.

import { clearRouteCache, HeaderMap, nowNanos, replaceHeader } from "./abi/host.ts";
import { RequestInfo, SCHEDULE_OK, SCHEDULE_SHED } from "./scheduling/types.ts";
import { Dispatch } from "./inflight.ts";
import { sendError } from "./replies.ts";
import { config, plugin } from "./plugins.ts";
import { REACH_NONE } from "./reachability.ts";

export const DESTINATION_HEADER = "x-gateway-destination-endpoint";

/**
 * Picks endpoints for `req`. Returns the first (served) `ip:port`, or null after replying locally.
 * `d` receives the dispatch record (finish it when the stream ends).
 */
export function pickAndRoute(req: RequestInfo, d: Dispatch): string | null {
  const pool = plugin.pool;
  const eps = pool.endpoints;
  const scheduler = pool.scheduler;
  const nowMs = nowNanos() / 1_000_000;
  const window = config.failedConnectWindowMs;
  if (window > 0 && pool.reachability(nowMs, window) == REACH_NONE) {
    // Every ready endpoint refused connects just now: answer at once rather than feed a dead pool.
    sendError(
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
      ["retry-after"],
      ["1"],
    );
    return null;
  }
  const status = scheduler.schedule(eps, req, pool.staleFigures);
  if (status == SCHEDULE_SHED) {
    sendError(
      429,
      "the inference pool is saturated and this request is sheddable; retry later",
      "rate_limit_exceeded",
      "request_shed",
    );
    return null;
  }
  if (status != SCHEDULE_OK || scheduler.resultCount == 0) {
    const why =
      req.endpointSubset.length > 0
        ? "no ready endpoint matches test-epp-endpoint-selection"
        : "no ready endpoint in pool " + config.poolNamespace + "/" + config.poolName;
    sendError(503, why, "service_unavailable", "no_ready_endpoint");
    return null;
  }
  const first = scheduler.result[0];
  scheduler.onPicked(eps, first, req);
  pool.inflight.record(d, eps[first], req.promptTokens, nowMs);
  const list = scheduler.destinationList(eps);
  d.destinations = list;
  replaceHeader(HeaderMap.Request, DESTINATION_HEADER, list);
  clearRouteCache();
  return eps[first].hostPort;
}
