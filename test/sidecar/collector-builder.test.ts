import { test } from "node:test";
import assert from "node:assert/strict";
import { buildSnapshot, poolViewFromInventory } from "../../sidecar/snapshot/builder.ts";
import { scrapeConfigFromInventory, scrapeTargets } from "../../sidecar/collector/targets.ts";
import type { PoolInventory } from "../../sidecar/inventory/types.ts";
import type { MetricsSource, PoolView } from "../../sidecar/snapshot/builder.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import { decodeSnapshot } from "../../sidecar/snapshot/decoder.ts";
import { ENGINE_MAPPINGS, mappingMetricNames } from "../../sidecar/collector/engines.ts";

const pool: PoolView = {
  namespace: "ml",
  name: "qwen",
  failureMode: "FailOpen",
  targetPorts: [8000],
  endpoints: [
    { podName: "p0", address: "10.0.0.1", port: 8000, ready: true },
    { podName: "p1", address: "fd00::2", port: 8000, ready: true, engine: "sglang" },
    { podName: "p2", address: "10.0.0.3", port: 8000, ready: false },
    { podName: "p0-dup", address: "10.0.0.1", port: 8000, ready: true },
  ],
  objectives: [{ name: "batch", priority: -1 }],
  scheduler: { profile: "gie-default" },
};

const metrics = {
  waiting: 4,
  running: 2,
  kvUsage: 0.33333,
  maxLoras: 2,
  kvBlockSize: 16,
  kvBlockCount: 100,
  runningAdapters: ["a", "x".repeat(2000)],
  waitingAdapters: [],
};

const source: MetricsSource = {
  state: (key) =>
    key === "10.0.0.1:8000"
      ? { metrics }
      : key === "fd00::2:8000"
        ? { metrics: { ...metrics, waiting: 9 } }
        : undefined,
  freshness: (key, now) =>
    key === "10.0.0.1:8000"
      ? { ageMs: now - 999_990, stale: false }
      : key === "fd00::2:8000"
        ? { ageMs: 5000, stale: true }
        : { stale: true },
};

test("builder: scrape targets only for ready endpoints, IPv6 bracketed, engine mapping per pod", () => {
  const t = scrapeTargets(pool, { metricsPath: "/m", defaultEngine: "vllm", metricsNameFilter: false });
  assert.deepEqual(
    t.map((x) => [x.key, x.url, x.mapping.engine]),
    [
      ["10.0.0.1:8000", "http://10.0.0.1:8000/m", "vllm"],
      ["fd00::2:8000", "http://[fd00::2]:8000/m", "sglang"],
    ],
  );
  assert.equal(
    scrapeTargets(pool, { metricsPort: 9090, metricsNameFilter: false })[0]!.url,
    "http://10.0.0.1:9090/metrics",
  );
  assert.equal(
    scrapeTargets(pool, { mappings: { vllm: ENGINE_MAPPINGS.sglang } })[0]!.mapping.engine,
    "sglang",
  );
});

test("builder: scrape URLs ask for the mapping's metrics only (name[]), unless turned off", () => {
  const [vllm, sglang] = scrapeTargets(pool);
  const names = (url: string) => new URL(url).searchParams.getAll("name[]");
  assert.equal(new URL(vllm!.url).pathname, "/metrics");
  // Every metric the mapping reads, fallbacks included (the server cannot know which one it has).
  for (const [t, engine] of [
    [vllm!, "vllm"],
    [sglang!, "sglang"],
  ] as const)
    assert.deepEqual(names(t.url).sort(), [...mappingMetricNames(ENGINE_MAPPINGS[engine])].sort());
  assert.ok(names(vllm!.url).includes("vllm:gpu_cache_usage_perc"), "the fallback name too");
  assert.ok(vllm!.url.includes("name%5B%5D=vllm%3Anum_requests_waiting"), "brackets and colons escaped");
  const withQuery = scrapeTargets(pool, { metricsPath: "/m?x=1" })[0]!.url;
  assert.match(withQuery, /^http:\/\/10\.0\.0\.1:8000\/m\?x=1&name%5B%5D=/);
});

test("builder: combines inventory and collector state into an encodable snapshot", () => {
  const s = buildSnapshot(pool, source, { generation: 42n, nowMs: 1_000_000 });
  assert.equal(s.endpoints.length, 3, "duplicate address:port dropped");
  const [p0, p1, p2] = s.endpoints;
  assert.deepEqual(
    { ...p0, runningAdapters: p0!.runningAdapters },
    {
      podName: "p0",
      address: "10.0.0.1",
      port: 8000,
      ready: true,
      stale: false,
      hasMetrics: true,
      engine: "vllm",
      metricsAgeMs: 10,
      waiting: 4,
      running: 2,
      kvUsage: 0.33333,
      maxLoras: 2,
      kvBlockSize: 16,
      kvBlockCount: 100,
      runningAdapters: ["a"],
      waitingAdapters: [],
    },
  );
  assert.equal(p1!.stale, true);
  assert.equal(p1!.engine, "sglang");
  assert.equal(p1!.metricsAgeMs, 5000);
  assert.equal(p2!.hasMetrics, false);
  assert.equal(p2!.stale, true);
  assert.equal(p2!.metricsAgeMs, null);
  assert.deepEqual(s.scheduler, {
    profile: "gie-default",
    queueThreshold: 5,
    kvThreshold: 0.8,
    metricsStalenessMs: 200,
    params: {},
  });
  const back = decodeSnapshot(encodeSnapshot(s));
  assert.equal(back.endpoints[0]!.kvUsage, 0.3333);
  assert.deepEqual(back.objectives, [{ name: "batch", priority: -1 }]);
  assert.equal(back.pool.failureMode, "FailOpen");
});

test("builder: adapts the inventory's PoolInventory and its annotations", () => {
  const inv: PoolInventory = {
    pool: {
      namespace: "ml",
      name: "qwen",
      apiGroup: "inference.networking.k8s.io",
      apiVersion: "v1",
      selector: { app: "qwen" },
      targetPorts: [8000],
      failureMode: "FailClose",
      annotations: {
        engine: "sglang",
        metricsPort: 9400,
        metricsPath: "/stats",
        metricsNameFilter: false,
        strictModels: true,
      },
    },
    endpoints: [{ podName: "p0", address: "10.0.0.1", port: 8000, ready: true, labels: {} }],
    models: [],
    objectives: [],
    rewrites: [],
  };
  const view = poolViewFromInventory(inv, { profile: "legacy" });
  const cfg = scrapeConfigFromInventory(inv, { metricsPath: "/metrics" });
  assert.deepEqual(
    scrapeTargets(view, cfg).map((t) => [t.url, t.mapping.engine]),
    [["http://10.0.0.1:9400/stats", "sglang"]],
  );
  const s = buildSnapshot(view, source, {
    generation: 1n,
    nowMs: 1_000_000,
    defaultEngine: cfg.defaultEngine,
  });
  assert.equal(s.pool.strictModels, true);
  assert.equal(s.endpoints[0]!.engine, "sglang");
  assert.equal(s.scheduler.profile, "legacy");
});
