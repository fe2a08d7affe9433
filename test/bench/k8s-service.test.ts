// The `k8s-service` baseline: a uniformly random pod per new connection (kube-proxy iptables), every
// request on a connection pinned to its pod, idle connections reused most recent first and dropped after
// the keep-alive timeout, and with a connection limit, waiting requests served in arrival order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../sim/index.ts";
import { k8sService } from "../../bench/routing/k8s-service.ts";
import type { RouteResult } from "../../bench/routing/policies.ts";
import type { WorkItem } from "../../bench/routing/workloads.ts";

const ITEM = { id: 0, arrivalMs: 0, messages: [], maxTokens: 1, model: "m" } satisfies WorkItem;

/** Dispatches one request and returns its route (asserting it was not made to wait). */
function send(p: ReturnType<typeof k8sService>): { pod: number; done: () => void } {
  let got: RouteResult | undefined;
  p.dispatch(ITEM, [], (r) => (got = r));
  assert.ok(got && "pod" in got && got.done, "routed at once");
  return got as { pod: number; done: () => void };
}

test("new connections spread uniformly over the pods (chi-square, seeded)", () => {
  const pods = 10;
  const n = 20_000;
  for (const seed of [1, 2, 3]) {
    const p = k8sService(pods, seed, new VirtualClock(), { connections: 0, idleTimeoutMs: 5000 });
    const counts = new Array<number>(pods).fill(0);
    // All in flight at once: every request opens its own connection.
    for (let i = 0; i < n; i++) counts[send(p).pod]++;
    assert.equal(p.stats().connections_opened, n);
    const expected = n / pods;
    const chi2 = counts.reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    // 9 degrees of freedom: P(chi2 > 27.88) = 0.001 under the uniform hypothesis.
    assert.ok(chi2 < 27.88, `seed ${seed}: chi2 ${chi2.toFixed(1)} for ${counts.join(",")}`);
  }
});

test("a connection's requests stay on its pod; the most recently released idle one is reused", () => {
  const clock = new VirtualClock();
  const p = k8sService(10, 7, clock, { connections: 0, idleTimeoutMs: 5000 });
  const a = send(p);
  const b = send(p);
  a.done();
  b.done();
  // LIFO: b's connection was released last.
  for (let i = 0; i < 50; i++) {
    const r = send(p);
    assert.equal(r.pod, b.pod);
    r.done();
  }
  assert.equal(p.stats().connections_opened, 2);
  // Two at once use both idle connections, no new one.
  const x = send(p);
  const y = send(p);
  assert.deepEqual([x.pod, y.pod], [b.pod, a.pod]);
  assert.equal(p.stats().connections_opened, 2);
});

test("a connection idle longer than the keep-alive timeout is closed and a new one opened", () => {
  const clock = new VirtualClock();
  const p = k8sService(1000, 3, clock, { connections: 0, idleTimeoutMs: 5000 });
  const a = send(p);
  a.done();
  clock.runUntil(5000);
  const b = send(p); // idle exactly 5000 ms: still open
  assert.equal(b.pod, a.pod);
  b.done();
  clock.runUntil(10_001);
  send(p);
  const s = p.stats();
  assert.deepEqual([s.connections_opened, s.connections_expired], [2, 1]);
});

test("with a connection limit, requests wait in arrival order for the next released connection", () => {
  const clock = new VirtualClock();
  const p = k8sService(10, 5, clock, { connections: 2, idleTimeoutMs: 5000 });
  const a = send(p);
  send(p);
  const order: number[] = [];
  const routes: RouteResult[] = [];
  for (const k of [1, 2]) p.dispatch(ITEM, [], (r) => (order.push(k), routes.push(r)));
  assert.deepEqual(order, []);
  a.done();
  clock.runUntil(clock.now());
  assert.deepEqual(order, [1]);
  assert.equal((routes[0] as { pod: number }).pod, a.pod, "the released connection, same pod");
  const s = p.stats();
  assert.deepEqual([s.connections_opened, s.peak_open, s.requests_waited], [2, 2, 2]);
});
