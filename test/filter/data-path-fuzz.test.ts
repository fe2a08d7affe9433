// Seeded random and mutated inference requests (bodies, paths, content types, objective/rewrite/
// conformance headers, chunking) through the real build/filter.wasm: the VM never traps and every
// outcome is well-formed — forwarded with a destination list drawn from the pool, or a local JSON error
// with one of the statuses the data path uses. EPP_FUZZ_ITERATIONS changes the count.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EnvoyProcess, VirtualClock } from "../../host/index.ts";
import type { HeaderList, LocalReply } from "../../host/index.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";
import { rng } from "../support/rng.ts";

const WASM = readFileSync(new URL("../../build/filter.wasm", import.meta.url));
const CREATED_MS = 1_795_000_000_000;
const ITERATIONS = Number(process.env.EPP_FUZZ_ITERATIONS ?? 100_000);
const POOL_HOSTS = new Set(["10.0.0.1:8000", "10.0.0.2:8000", "10.0.0.3:8000", "[fd00::1]:8000"]);
const LOCAL_STATUSES = new Set([400, 404, 413, 429, 503]);

function snapshotBytes(): Uint8Array {
  const hosts = [...POOL_HOSTS].map((h) => (h.startsWith("[") ? "fd00::1" : h.split(":")[0]!));
  const s: Snapshot = {
    generation: 1n,
    createdAtMs: CREATED_MS,
    pool: {
      namespace: "default",
      name: "pool-a",
      failureMode: "FailClose",
      strictModels: true,
      targetPorts: [8000],
    },
    endpoints: hosts.map((address, i) => ({
      podName: `pod-${i}`,
      address,
      port: 8000,
      ready: true,
      stale: i === 3,
      hasMetrics: true,
      engine: "vllm",
      metricsAgeMs: 10,
      waiting: 3 + i, // above queueThreshold everywhere: saturated, so sheddable requests are shed
      running: i,
      kvUsage: 0.2 * i,
      maxLoras: 2,
      kvBlockSize: 16,
      kvBlockCount: 1000,
      runningAdapters: i === 1 ? ["sql-lora"] : [],
      waitingAdapters: [],
    })),
    models: [
      { name: "m", criticality: "Critical", targets: [] },
      { name: "shed", criticality: "Sheddable", targets: [{ name: "m", weight: 1 }] },
      {
        name: "split",
        criticality: "Standard",
        targets: [
          { name: "m", weight: 3 },
          { name: "sql-lora", weight: 1 },
        ],
      },
    ],
    objectives: [
      { name: "low", priority: -3 },
      { name: "high", priority: 9 },
    ],
    rewrites: [{ matches: ["old"], targets: [{ model: "m", weight: 1 }] }],
    scheduler: {
      profile: "default",
      queueThreshold: 2,
      kvThreshold: 0.3,
      metricsStalenessMs: 200,
      params: {},
    },
  };
  return encodeSnapshot(s);
}

const SEEDS = [
  '{"model":"m","prompt":"hello world"}',
  '{"model":"split","messages":[{"role":"system","content":"x"},{"role":"user","content":[{"type":"text","text":"y"}]}],"stream":true}',
  '{"model":"old","input":["a","b"],"instructions":"be brief"}',
  '{"model":"shed","prompt":[1,2,3],"max_tokens":4}',
  '{"model":"unknown","prompt":"z"}',
  '{"model":"m\\u00e9\\ud83d\\ude00","prompt":"\\"quoted\\""}',
];
const ALPHABET = '{}[]":,\\ 0123456789-.eEtruefalsnl\u00e9\u0000\n\tmodelpromptmessagesstreaminput';
const PATHS = [
  "/v1/completions",
  "/v1/chat/completions",
  "/v1/embeddings",
  "/v1/responses",
  "/v1/models",
  "/x?y=1",
];
const TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "text/plain",
  "",
  "application/vnd+json",
];

function mutate(next: () => number, s: string): string {
  const chars = [...s];
  const edits = Math.floor(next() * 5);
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(next() * (chars.length + 1));
    const c = ALPHABET[Math.floor(next() * ALPHABET.length)]!;
    const op = next();
    if (op < 0.4) chars.splice(at, 1, c);
    else if (op < 0.7) chars.splice(at, 0, c);
    else chars.splice(at, 1);
  }
  return chars.join("");
}

function randomBody(next: () => number): Uint8Array {
  const r = next();
  if (r < 0.1) return Uint8Array.from({ length: Math.floor(next() * 200) }, () => Math.floor(next() * 256));
  if (r < 0.15)
    return Buffer.from(JSON.stringify({ model: "m", prompt: "p".repeat(Math.floor(next() * 6000)) }));
  if (r < 0.2) return Buffer.from("[".repeat(Math.floor(next() * 300)) + '{"model":"m"}');
  return Buffer.from(mutate(next, SEEDS[Math.floor(next() * SEEDS.length)]!));
}

function pick<T>(next: () => number, xs: readonly T[]): T {
  return xs[Math.floor(next() * xs.length)]!;
}

test(`${ITERATIONS} seeded random/mutated requests: no trap, every outcome well-formed`, async () => {
  const proc = new EnvoyProcess({ clock: new VirtualClock(BigInt(CREATED_MS) * 1_000_000n) });
  const plugin = await proc.loadPlugin(WASM, {
    vmId: "epp",
    workers: 2,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({
      pool: { namespace: "default", name: "pool-a" },
      controlToken: "tok",
      randomSeed: 3,
      maxBodyBytes: 4096,
      conformance: true,
    }),
  });
  const push = plugin.newHttpStream(
    {
      forwardRequestHeaders: () => assert.fail("control request forwarded"),
      forwardRequestData: () => {},
      forwardResponseHeaders: () => {},
      forwardResponseData: () => {},
      localReply: (r) => assert.equal(r.status, 204),
    },
    {},
  );
  push.decodeHeaders(
    [
      [":method", "POST"],
      [":path", "/epp/v1/snapshot"],
      [":authority", "gw"],
      ["authorization", "Bearer tok"],
    ],
    false,
  );
  push.decodeData(snapshotBytes(), true);
  push.destroy();

  const next = rng(2026);
  const statuses = new Map<string, number>();
  for (let i = 0; i < ITERATIONS; i++) {
    let forwarded: HeaderList | undefined;
    let reply: LocalReply | undefined;
    const s = plugin.newHttpStream(
      {
        forwardRequestHeaders: (h) => (forwarded = h),
        forwardRequestData: () => {},
        forwardResponseHeaders: () => {},
        forwardResponseData: () => {},
        localReply: (r) => (reply = r),
      },
      { worker: i % 2 },
    );
    const body = next() < 0.1 ? undefined : randomBody(next);
    const h: HeaderList = [
      [":method", body ? "POST" : "GET"],
      [":path", pick(next, PATHS)],
      [":authority", "gw"],
    ];
    const type = pick(next, TYPES);
    if (type) h.push(["content-type", type]);
    if (next() < 0.3) h.push(["x-gateway-inference-objective", pick(next, ["low", "high", "nope", ""])]);
    if (next() < 0.1) h.push(["x-gateway-model-name-rewrite", mutate(next, "forced")]);
    if (next() < 0.1)
      h.push(["test-epp-endpoint-selection", pick(next, ["10.0.0.2", "10.0.0.9", ",", "fd00::1"])]);
    if (next() < 0.2) h.push(["x-gateway-destination-endpoint", "6.6.6.6:1"]);
    if (body && next() < 0.5) h.push(["content-length", String(body.length)]);
    s.decodeHeaders(h, body === undefined);
    if (body) {
      const cut = Math.floor(next() * (body.length + 1));
      if (!reply) s.decodeData(body.subarray(0, cut), false);
      if (!reply) s.decodeData(body.subarray(cut), true);
    }
    if (forwarded && !reply) s.encodeHeaders([[":status", "200"]], true);
    s.destroy();

    assert.deepEqual(plugin.failedWorkers, [], `trap at iteration ${i}`);
    if (reply) {
      assert.ok(LOCAL_STATUSES.has(reply.status), `status ${reply.status} at ${i}`);
      const j = JSON.parse(Buffer.from(reply.body).toString()) as { error: { message: string } };
      assert.equal(typeof j.error.message, "string");
      statuses.set(String(reply.status), (statuses.get(String(reply.status)) ?? 0) + 1);
    } else {
      assert.ok(forwarded, `neither forwarded nor answered at ${i}`);
      const dest = forwarded.filter(([k]) => k === "x-gateway-destination-endpoint");
      assert.equal(dest.length, 1);
      for (const hp of dest[0]![1].split(",")) assert.ok(POOL_HOSTS.has(hp), `${hp} at ${i}`);
      statuses.set("forwarded", (statuses.get("forwarded") ?? 0) + 1);
    }
  }
  // Sanity: the corpus exercised both outcomes and several error paths.
  assert.ok((statuses.get("forwarded") ?? 0) > ITERATIONS / 10, JSON.stringify([...statuses]));
  for (const code of ["400", "404", "413", "429"])
    assert.ok(statuses.has(code), JSON.stringify([...statuses]));
  await plugin.shutdown();
});
