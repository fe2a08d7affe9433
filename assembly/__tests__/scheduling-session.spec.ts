// session-affinity-scorer (llm-d's encoded_endpoint_header strategy): the token names the endpoint
// (base64 of ip:port); a request carrying it goes back there unless that endpoint is gone, not ready or
// saturated, and every response carries the token of the endpoint that took the request.
import { Endpoint, RequestInfo, SchedulerConfig, SCHEDULE_OK } from "../scheduling/types";
import { Scheduler } from "../scheduling/scheduler";
import { queuedPool } from "./scheduling-pool";
import { SpecWriter } from "../scheduling/builtin";
import { encodeBase64 } from "../scheduling/plugins/session-affinity-scorer";

const pool = queuedPool;

/** queue-scorer 1 + session-affinity-scorer 10 (a pin: above every other weight together). */
function scheduler(header: string = ""): Scheduler {
  const w = new SpecWriter().plugin("queue-scorer").plugin("session-affinity-scorer");
  if (header.length > 0) w.str("encodedEndpointHeaderConfig.header", header);
  const spec = w.profile("p").entry("queue-scorer", 1).entry("session-affinity-scorer", 10).spec;
  spec.crc = 1;
  const s = new Scheduler(1, new SchedulerConfig(), 8);
  expect(s.configure(new SchedulerConfig(), spec)).toBe("");
  return s;
}

/** Schedules a request carrying `token` (""= none), records the pick; returns the endpoint index. */
function route(s: Scheduler, eps: Endpoint[], token: string): i32 {
  const req = new RequestInfo();
  if (token.length > 0) req.pluginHeaderValues = [token];
  s.syncEndpoints(eps);
  expect(s.schedule(eps, req)).toBe(SCHEDULE_OK);
  s.onPicked(eps, s.result[0], req);
  return s.result[0];
}

function tokenHeader(s: Scheduler): string {
  const h = s.responseHeaders;
  for (let k = 0; k < h.count; k++) if (h.names[k] == "x-session-token") return h.values[k];
  return "";
}

describe("session-affinity-scorer", () => {
  it("asks the director for the x-session-token request header", () => {
    expect(scheduler().wantedRequestHeaders().join(",")).toBe("x-session-token");
    expect(scheduler("X-My-Session ").wantedRequestHeaders().join(",")).toBe(
      "x-my-session",
      "trimmed, lower-cased",
    );
  });
  it("encodes the endpoint as base64 of ip:port (llm-d encodes namespace/name the same way)", () => {
    expect(encodeBase64("10.0.0.3:8000")).toBe("MTAuMC4wLjM6ODAwMA==");
    expect(encodeBase64("[fd00::1]:8000")).toBe("W2ZkMDA6OjFdOjgwMDA=");
  });
  it("a session returns to its endpoint over a shorter queue elsewhere", () => {
    const s = scheduler();
    const eps = pool(6);
    expect(route(s, eps, "")).toBe(0, "no token: the shortest queue");
    expect(tokenHeader(s)).toBe(encodeBase64("10.0.0.0:8000"), "the response carries the pick's token");
    for (let turn = 0; turn < 5; turn++) {
      expect(route(s, eps, encodeBase64("10.0.0.3:8000"))).toBe(3, "five turns, one endpoint");
      expect(tokenHeader(s)).toBe(encodeBase64("10.0.0.3:8000"));
    }
  });
  it("moves once when its endpoint is gone, not ready or saturated, then sticks to the new one", () => {
    const s = scheduler();
    const token3 = encodeBase64("10.0.0.3:8000");
    const eps = pool(6);
    eps[3].ready = false;
    const moved = route(s, eps, token3);
    expect(moved).toBe(0, "not ready: back to the queue scorer's choice");
    const next = tokenHeader(s);
    expect(next).toBe(encodeBase64("10.0.0.0:8000"), "the new token names the new endpoint");
    eps[3].ready = true;
    eps[0].waiting = 4; // the new endpoint is no longer the shortest queue, but the session stays
    expect(route(s, eps, next)).toBe(0, "sticks to the new endpoint");
    eps[0].waiting = 9; // past the utilization-detector's queue limit (5): saturated
    expect(route(s, eps, next)).toBe(1, "saturated: the session moves to the shortest queue");
    const gone = pool(3); // 10.0.0.3 is not in the pool any more
    expect(route(s, gone, token3)).toBe(0, "gone: no preference");
  });
  it("a token that does not decode, or names no endpoint, expresses no preference", () => {
    const s = scheduler();
    const eps = pool(4);
    expect(route(s, eps, "not base64!")).toBe(0);
    expect(route(s, eps, encodeBase64("10.9.9.9:8000"))).toBe(0);
  });
  it("the header name is a parameter", () => {
    const s = scheduler("x-my-session");
    const eps = pool(4);
    expect(route(s, eps, encodeBase64("10.0.0.2:8000"))).toBe(2);
    expect(s.responseHeaders.names[0]).toBe("x-my-session");
  });
});
