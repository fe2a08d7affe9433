// The status page's history ring: one step per second holding the worst of its samples, aligned series,
// bounded by the window, the pod/pool/target caps and the config-event cap; ?since= returns only newer
// steps; /status.json keeps every field it had and adds `history` and `requests`.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Counter, Registry } from "prom-client";
import { HEALTH, StatusHistory, type PushCounts } from "../../sidecar/status/history.ts";
import { pushCountsFrom } from "../../sidecar/status/push-counts.ts";
import { statusView, NO_REQUEST_DATA } from "../../sidecar/status/status-json.ts";
import { createSidecarServer, listen } from "../../sidecar/server.ts";
import type { PublishedSnapshot, SidecarState } from "../../sidecar/state.ts";
import type { ConfigStatus } from "../../sidecar/scheduling-config/registry.ts";
import type { TargetStatus } from "../../sidecar/publisher/publisher.ts";
import { snapshotWith, type EndpointFixture } from "../support/snapshot-fixture.ts";

class FakeState implements SidecarState {
  pools = new Map<string, PublishedSnapshot>();
  config: ConfigStatus[] = [];
  pushes: TargetStatus[] = [];
  set(pool: string, endpoints: EndpointFixture[], createdAtMs = 0): void {
    this.pools.set(pool, { snapshot: snapshotWith({ endpoints, createdAtMs }), bytes: new Uint8Array(10) });
  }
  readiness() {
    return { ready: true, reasons: [] };
  }
  poolKeys() {
    return [...this.pools.keys()];
  }
  latest(key: string) {
    return this.pools.get(key);
  }
  pushStatus() {
    return this.pushes;
  }
  configStatus() {
    return this.config;
  }
}

function setup(over: Partial<ConstructorParameters<typeof StatusHistory>[0]> = {}) {
  const state = new FakeState();
  const clock = { t: 1_000_000 };
  const history = new StatusHistory({ state, now: () => clock.t, ...over });
  return { state, clock, history };
}

test("a step keeps the largest load and the worst health seen in it; series align with the time axis", () => {
  const { state, clock, history } = setup();
  state.set("default/a", [{ address: "10.0.0.1", waiting: 1, running: 2, kvUsage: 0.25 }], 999_000);
  history.sample();
  clock.t += 300;
  state.set(
    "default/a",
    [{ address: "10.0.0.1", waiting: 4, running: 1, kvUsage: 0.5, stale: true }],
    999_000,
  );
  history.sample();
  clock.t += 300;
  state.set("default/a", [{ address: "10.0.0.1", waiting: 0, running: 0, kvUsage: 0.1 }], 999_000);
  history.sample();
  const v = history.view();
  assert.deepEqual(v.t, [1_001_000]);
  const pool = v.pools[0]!;
  assert.equal(pool.pool, "default/a");
  assert.deepEqual(pool.waiting, [4]);
  assert.deepEqual(pool.running, [2]);
  assert.deepEqual(pool.kvUsage, [0.5]);
  assert.deepEqual(pool.readyPods, [1]);
  assert.deepEqual(pool.snapshotAgeMs, [1600]);
  const pod = pool.pods[0]!;
  assert.equal(pod.pod, "pod-0");
  assert.equal(pod.endpoint, "10.0.0.1:8000");
  assert.deepEqual(pod.waiting, [4]);
  assert.deepEqual(pod.health, [HEALTH.stale]);

  // The next step starts fresh; a pod missing from a step has null there.
  clock.t += 1000;
  state.set("default/a", [{ address: "10.0.0.2", ready: false }]);
  history.sample();
  const w = history.view();
  assert.deepEqual(w.t, [1_001_000, 1_002_000]);
  assert.deepEqual(w.pools[0]!.pods[0]!.waiting, [4, null]);
  assert.deepEqual(w.pools[0]!.pods[1]!.health, [null, HEALTH.notReady]);
  assert.deepEqual(w.pools[0]!.kvUsage, [0.5, 0]); // no ready pod: mean 0
  for (const s of [w.pools[0]!, ...w.pools[0]!.pods])
    for (const [k, a] of Object.entries(s)) if (Array.isArray(a)) assert.equal(a.length, w.t.length, k);
});

test("the ring holds one window: older steps, and pods and pools gone for a window, are dropped", () => {
  const { state, clock, history } = setup({ windowMs: 10_000 });
  state.set("default/a", [{ address: "10.0.0.1" }, { address: "10.0.0.2" }]);
  state.set("default/b", [{ address: "10.0.1.1" }]);
  for (let i = 0; i < 35; i++) {
    if (i === 20) {
      state.set("default/a", [{ address: "10.0.0.1", waiting: i }]);
      state.pools.delete("default/b");
    }
    history.sample();
    clock.t += 1000;
  }
  const v = history.view();
  assert.equal(v.t.length, 10);
  assert.equal(v.t[0], 1_026_000);
  assert.equal(v.t[9], 1_035_000);
  assert.deepEqual(
    v.pools.map((p) => p.pool),
    ["default/a"],
  );
  assert.deepEqual(
    v.pools[0]!.pods.map((p) => p.endpoint),
    ["10.0.0.1:8000"],
  );
  assert.deepEqual(v.pools[0]!.pods[0]!.waiting, Array(10).fill(20));
});

test("pods past maxPods are counted, not charted; pools past maxPools are left out", () => {
  const { state, history } = setup({ maxPods: 2, maxPools: 1 });
  state.set(
    "default/a",
    [1, 2, 3, 4, 5].map((i) => ({ address: `10.0.0.${i}`, waiting: i })),
  );
  state.set("default/b", [{ address: "10.0.1.1" }]);
  history.sample();
  const v = history.view();
  assert.equal(v.pools.length, 1);
  assert.equal(v.pools[0]!.pods.length, 2);
  assert.equal(v.pools[0]!.podsNotCharted, 3);
  assert.deepEqual(v.pools[0]!.waiting, [15]); // totals cover every pod
});

test("?since returns only the steps that ended after it", () => {
  const { state, clock, history } = setup();
  state.set("default/a", [{ address: "10.0.0.1" }]);
  for (let i = 0; i < 5; i++) {
    history.sample();
    clock.t += 1000;
  }
  const all = history.view();
  const tail = history.view(all.t[2]);
  assert.deepEqual(tail.t, all.t.slice(3));
  assert.equal(tail.pools[0]!.pods[0]!.waiting.length, 2);
  assert.equal(history.view(all.t[4]).t.length, 0);
});

test("push counts become per-step deltas on the step that ended, per target, with its pools", async () => {
  const counts: PushCounts = new Map();
  const { state, clock, history } = setup({ pushCounts: async () => new Map(counts) });
  state.set("default/a", [{ address: "10.0.0.1" }]);
  state.pushes = [{ target: "static:e1", url: "http://e1", pool: "default/a", consecutiveFailures: 0 }];
  const settle = () => new Promise((r) => setImmediate(r));
  counts.set("static:e1", { ok: 5, superseded: 0, failed: 1 });
  history.sample(); // baseline
  await settle();
  counts.set("static:e1", { ok: 25, superseded: 1, failed: 1 });
  clock.t += 1000;
  history.sample();
  await settle();
  counts.set("static:e1", { ok: 30, superseded: 1, failed: 4 });
  clock.t += 1000;
  history.sample();
  await settle();
  const v = history.view();
  assert.equal(v.pushes.length, 1);
  const p = v.pushes[0]!;
  assert.equal(p.target, "static:e1");
  assert.deepEqual(p.pools, ["default/a"]);
  assert.deepEqual(p.ok, [20, 5, null]);
  assert.deepEqual(p.superseded, [1, 0, null]);
  assert.deepEqual(p.failed, [0, 3, null]);
});

test("push counts are read from epp_sidecar_push_total: ok, superseded, everything else failed", async () => {
  const registry = new Registry();
  const c = new Counter({
    name: "epp_sidecar_push_total",
    help: "h",
    labelNames: ["target", "outcome"],
    registers: [registry],
  });
  c.inc({ target: "t1", outcome: "ok" }, 3);
  c.inc({ target: "t1", outcome: "rejected" }, 2);
  c.inc({ target: "t1", outcome: "error" }, 1);
  c.inc({ target: "t2", outcome: "superseded" }, 4);
  const counts = await pushCountsFrom(registry)();
  assert.deepEqual(counts.get("t1"), { ok: 3, superseded: 0, failed: 3 });
  assert.deepEqual(counts.get("t2"), { ok: 0, superseded: 4, failed: 0 });
  assert.equal((await pushCountsFrom(new Registry())()).size, 0);
});

test("config changes and refusals are logged once each, at most maxConfigEvents", () => {
  const { state, clock, history } = setup({ maxConfigEvents: 3 });
  const cfg = (hash: string, refusal?: string): ConfigStatus => ({
    scope: "sidecar",
    source: "file x.yaml",
    active: { name: "x", hash, source: "file" },
    rejection: refusal ? ({ message: refusal } as ConfigStatus["rejection"]) : null,
  });
  state.config = [cfg("aa")];
  history.sample();
  history.sample();
  assert.deepEqual(history.view().configEvents, [
    { atMs: clock.t, scope: "sidecar", active: "x (aa)", refusal: null },
  ]);
  state.config = [cfg("aa", "unknown plugin type foo")];
  history.sample();
  assert.equal(history.view().configEvents[1]!.refusal, "unknown plugin type foo");
  for (const h of ["b", "c", "d"]) {
    state.config = [cfg(h)];
    history.sample();
  }
  const ev = history.view().configEvents;
  assert.equal(ev.length, 3);
  assert.deepEqual(
    ev.map((e) => e.active),
    ["x (b)", "x (c)", "x (d)"],
  );
});

test("status.json stays bounded: a full window of a 200-pod pool is under 1 MB", () => {
  const { state, clock, history } = setup();
  const endpoints = Array.from({ length: 200 }, (_, i) => ({
    address: `10.1.${i >> 8}.${i & 255}`,
    waiting: i % 7,
    running: i % 13,
    kvUsage: (i % 100) / 100,
  }));
  state.set("default/a", endpoints);
  for (let i = 0; i < 15 * 60 + 30; i++) {
    history.sample();
    clock.t += 1000;
  }
  const view = statusView(state, clock.t, history);
  assert.equal(view.history!.t.length, 900);
  assert.equal(view.history!.pools[0]!.pods.length, 32);
  assert.equal(view.history!.pools[0]!.podsNotCharted, 168);
  const size = JSON.stringify(view).length;
  assert.ok(size < 1_000_000, `status.json is ${size} bytes`);
});

test("/status.json keeps its fields, adds history and requests, and honours ?since", async () => {
  const state = new FakeState();
  state.set("default/a", [{ address: "10.0.0.1", waiting: 2 }], Date.now());
  state.pushes = [
    { target: "static:e1", url: "http://e1", pool: "default/a", consecutiveFailures: 0, lastOutcome: "ok" },
  ];
  const server = createSidecarServer({ state, registry: new Registry() });
  const addr = await listen(server, 0, "127.0.0.1");
  try {
    const base = `http://127.0.0.1:${addr.port}/status.json`;
    const s = (await (await fetch(base)).json()) as ReturnType<typeof statusView>;
    for (const k of ["generatedAtMs", "ready", "reasons", "config", "pools"]) assert.ok(k in s, k);
    const pool = s.pools[0]!;
    for (const k of ["pool", "generation", "snapshotAgeMs", "bytes", "profile", "endpoints", "pushes"])
      assert.ok(k in pool, k);
    assert.equal(pool.endpoints[0]!.waiting, 2);
    assert.equal(pool.pushes[0]!.target, "http://e1");
    assert.equal(pool.pushes[0]!.id, "static:e1");
    assert.deepEqual(s.requests, { visible: false, note: NO_REQUEST_DATA, envoys: [], flowControl: [] });
    assert.ok(s.history!.t.length >= 1);
    assert.deepEqual(s.history!.pools[0]!.pods[0]!.waiting.at(-1), 2);
    const since = s.history!.t.at(-1)!;
    const later = (await (await fetch(`${base}?since=${since}`)).json()) as typeof s;
    // The server samples once a second, so a sample may land between the two fetches: only newer ones come back.
    assert.ok(later.history!.t.length <= 1, `at most the one sample taken since: ${later.history!.t.length}`);
    assert.ok(
      later.history!.t.every((t) => t > since),
      "only samples after ?since",
    );
  } finally {
    await new Promise((r) => server.close(r));
  }
});
