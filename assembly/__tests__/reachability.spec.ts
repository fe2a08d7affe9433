// Connect-failure marks (assembly/reachability.ts) and how the ready filter treats unreachable endpoints.
import { Endpoint, RequestInfo, CycleState } from "../scheduling/types";
import { ReadyFilter } from "../scheduling/filters";
import {
  markFailed,
  markAnswered,
  markUnreachable,
  recentFailure,
  REACH_CLEAR,
  REACH_SOME,
  REACH_NONE,
  FLAG_UPSTREAM_CONNECTION_FAILURE,
} from "../reachability";

function pool(n: i32): Endpoint[] {
  const eps = new Array<Endpoint>();
  for (let i = 0; i < n; i++) {
    const e = new Endpoint();
    e.slot = i;
    e.hostPort = "10.0.0." + i.toString() + ":8000";
    eps.push(e);
  }
  return eps;
}

function kept(eps: Endpoint[], req: RequestInfo): string {
  const cs = new CycleState(1);
  cs.ensure(eps.length, eps.length);
  cs.begin(eps.length);
  new ReadyFilter().apply(eps, req, cs);
  const out = new Array<string>();
  for (let k = 0; k < cs.n; k++) out.push(cs.cand[k].toString());
  return out.join(",");
}

describe("reachability marks", () => {
  it("UF is bit 5 of response.flags (CoreResponseFlag::UpstreamConnectionFailure = 5)", () => {
    expect(FLAG_UPSTREAM_CONNECTION_FAILURE).toBe(32);
  });

  it("a mark counts for the window only; a clock that stepped back counts as recent", () => {
    expect(recentFailure(0, 5000, 1000)).toBe(false, "no mark");
    expect(recentFailure(5000, 5999, 1000)).toBe(true, "999 ms later");
    expect(recentFailure(5000, 6000, 1000)).toBe(false, "window over");
    expect(recentFailure(5000, 4000, 1000)).toBe(true, "clock went back");
    expect(recentFailure(5000, 5000, 0)).toBe(false, "window 0 = off");
  });

  it("markFailed never stores 0 (the 'no mark' value); markAnswered clears", () => {
    const e = new Endpoint();
    markFailed(e, 0);
    expect(e.failedAtMs).toBe(1);
    markAnswered(e);
    expect(e.failedAtMs).toBe(0);
  });

  it("classifies the pool: clear, some unreachable, every ready endpoint unreachable", () => {
    const eps = pool(3);
    expect(markUnreachable(eps, 10_000, 1000)).toBe(REACH_CLEAR);
    markFailed(eps[0], 9_500);
    expect(markUnreachable(eps, 10_000, 1000)).toBe(REACH_SOME);
    expect(eps[0].unreachable).toBe(true);
    markFailed(eps[1], 9_900);
    eps[2].ready = false; // a not-ready endpoint is no way out
    expect(markUnreachable(eps, 10_000, 1000)).toBe(REACH_NONE);
    expect(markUnreachable(eps, 10_600, 1000)).toBe(REACH_SOME, "endpoint 0's mark ran out");
    expect(eps[0].unreachable).toBe(false);
    expect(markUnreachable(eps, 11_000, 1000)).toBe(REACH_CLEAR, "both ran out");
  });

  it("nothing ready at all is not REACH_NONE (the scheduler's own 503 applies)", () => {
    const eps = pool(2);
    eps[0].ready = false;
    eps[1].ready = false;
    markFailed(eps[0], 10_000);
    expect(markUnreachable(eps, 10_000, 1000)).toBe(REACH_SOME);
  });
});

describe("ready filter with unreachable endpoints", () => {
  it("drops unreachable endpoints while a reachable one is ready", () => {
    const eps = pool(3);
    eps[1].unreachable = true;
    expect(kept(eps, new RequestInfo())).toBe("0,2");
  });

  it("keeps them when every ready one is unreachable", () => {
    const eps = pool(2);
    eps[0].unreachable = true;
    eps[1].unreachable = true;
    expect(kept(eps, new RequestInfo())).toBe("0,1");
  });

  it("a reachable but not-ready endpoint does not make the others drop", () => {
    const eps = pool(2);
    eps[0].unreachable = true;
    eps[1].ready = false;
    expect(kept(eps, new RequestInfo())).toBe("0");
  });

  it("reachability comes before freshness: a stale reachable endpoint beats a fresh unreachable one", () => {
    const eps = pool(2);
    eps[0].unreachable = true;
    eps[1].stale = true;
    expect(kept(eps, new RequestInfo())).toBe("1");
  });

  it("a conformance subset request keeps unreachable endpoints (it names its own)", () => {
    const eps = pool(2);
    eps[0].unreachable = true;
    const r = new RequestInfo();
    r.endpointSubset = "10.0.0.0";
    expect(kept(eps, r)).toBe("0,1");
  });
});
