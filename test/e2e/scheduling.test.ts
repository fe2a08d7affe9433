// Inference-aware scheduling end to end: the official openai client → the local gateway running the real
// build/filter.wasm → simulated vLLM pods. Snapshots are pushed through the control path with hand-set
// metrics, so every decision below is deterministic given the seed.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import type { Snapshot, SnapshotEndpoint, SnapshotModel } from "../../sidecar/snapshot/types.ts";
import { startSimCluster, type SimCluster } from "../../sim/index.ts";
import { startUpstream, type TestUpstream } from "../support/upstreams.ts";

const TOKEN = "e2e-token";
const POOL = { namespace: "default", name: "pool-a" };
const BASE = "meta-llama/Llama-3.1-8B-Instruct";
const SERVED = "x-gateway-destination-endpoint-served";

let sims: SimCluster;
let outsider: TestUpstream;
let gw: Gateway;
let data = "";
let control = "";
let generation = 0;
let client: OpenAI;

type EpOverride = Partial<SnapshotEndpoint>;

/** Pushes a snapshot of the sim pods with per-pod metric overrides. */
async function pushPool(overrides: EpOverride[] = [], models: SnapshotModel[] = []): Promise<void> {
  const s: Snapshot = {
    generation: BigInt(++generation),
    createdAtMs: Date.now(),
    pool: { ...POOL, failureMode: "FailClose", strictModels: false, targetPorts: [8000] },
    endpoints: sims.pods.map((p, i) => ({
      podName: p.podName,
      address: "127.0.0.1",
      port: p.port,
      ready: true,
      stale: false,
      hasMetrics: true,
      engine: "vllm",
      metricsAgeMs: 10,
      waiting: 0,
      running: 0,
      kvUsage: 0.1,
      maxLoras: 2,
      kvBlockSize: 16,
      kvBlockCount: 512,
      runningAdapters: [],
      waitingAdapters: [],
      ...overrides[i],
    })),
    models,
    objectives: [],
    rewrites: [],
    scheduler: {
      profile: "default",
      queueThreshold: 5,
      kvThreshold: 0.8,
      metricsStalenessMs: 200,
      params: {},
    },
  };
  const res = await fetch(`${control}/epp/v1/snapshot`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/octet-stream" },
    body: new Uint8Array(encodeSnapshot(s)),
  });
  assert.equal(res.status, 204, await res.text());
}

/** The pod that answered, checked against the served-endpoint header. */
function podOf(response: Response): string {
  const pod = response.headers.get("x-inference-pod");
  assert.ok(pod, "answered by a pool pod");
  const p = sims.pods.find((x) => x.podName === pod);
  assert.ok(p, `unknown pod ${pod}`);
  assert.equal(response.headers.get(SERVED), `127.0.0.1:${p.port}`);
  return pod;
}

function tally(names: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const n of names) m.set(n, (m.get(n) ?? 0) + 1);
  return m;
}

before(async () => {
  sims = await startSimCluster({
    pods: 3,
    basePort: 0,
    preset: "fast",
    timeScale: 4,
    loraModules: ["sql-lora", "tweet-lora"],
    seed: 5,
  });
  outsider = await startUpstream("outsider");
  gw = new Gateway(
    normalizeConfig({
      listeners: [
        { name: "data", address: "127.0.0.1", port: 0 },
        { name: "control", address: "127.0.0.1", port: 0 },
      ],
      wasm: "build/filter.wasm",
      workers: 2,
      // Never used while a snapshot is present: the filter always names a pool endpoint.
      defaultUpstreams: [`http://${outsider.address}`],
      pluginConfig: {
        pool: POOL,
        controlToken: TOKEN,
        failureMode: "FailClose",
        staleAfterMs: 60_000,
        randomSeed: 11,
      },
    }),
  );
  await gw.start();
  data = `http://127.0.0.1:${gw.listener("data").port}`;
  control = `http://127.0.0.1:${gw.listener("control").port}`;
  client = new OpenAI({ baseURL: `${data}/v1`, apiKey: "unused", maxRetries: 0 });
});

after(async () => {
  await gw?.stop();
  await sims?.close();
  await outsider?.close();
});

test("streaming and non-streaming requests reach only pool pods; served header names the pod", async () => {
  await pushPool();
  const pods: string[] = [];
  for (let i = 0; i < 6; i++) {
    const { data: c, response } = await client.completions
      .create({ model: BASE, prompt: `hello ${i}`, max_tokens: 3 })
      .withResponse();
    assert.equal(c.model, BASE);
    pods.push(podOf(response));
    const { data: stream, response: r2 } = await client.chat.completions
      .create({ model: BASE, messages: [{ role: "user", content: `hi ${i}` }], max_tokens: 3, stream: true })
      .withResponse();
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
    assert.ok(text.length > 0);
    pods.push(podOf(r2));
  }
  assert.equal(outsider.seen.length, 0);
  const models = await fetch(`${data}/v1/models`);
  assert.equal(models.status, 200);
  podOf(models);
  await models.arrayBuffer();
});

test("a LoRA request prefers the pod with the adapter loaded", async () => {
  await pushPool([
    { runningAdapters: ["tweet-lora"], maxLoras: 1 },
    { runningAdapters: ["sql-lora"], maxLoras: 1 },
    { runningAdapters: ["tweet-lora"], maxLoras: 1 },
  ]);
  const pods: string[] = [];
  for (let i = 0; i < 10; i++) {
    const { response } = await client.completions
      .create({ model: "sql-lora", prompt: `select ${i}`, max_tokens: 2 })
      .withResponse();
    pods.push(podOf(response));
  }
  assert.deepEqual([...tally(pods)], [[sims.pods[1]!.podName, 10]]);
});

test("repeated long prompts with a shared prefix stick to one pod while load allows", async () => {
  await pushPool();
  const system = "You are a careful SQL assistant. Answer briefly. ".repeat(60); // ~3 KB
  const pods: string[] = [];
  for (let i = 0; i < 12; i++) {
    const { data: stream, response } = await client.chat.completions
      .create({
        model: BASE,
        messages: [
          { role: "system", content: system },
          { role: "user", content: `question number ${i}` },
        ],
        max_tokens: 2,
        stream: i % 2 === 0,
      })
      .withResponse();
    if (Symbol.asyncIterator in stream) for await (const _ of stream);
    pods.push(podOf(response));
  }
  const top = Math.max(...tally(pods).values());
  assert.ok(top >= 11, `scattered: ${JSON.stringify([...tally(pods)])}`);
});

test("sheddable requests get 429 under saturation while critical ones are served", async () => {
  const models: SnapshotModel[] = [
    { name: "batch", criticality: "Sheddable", targets: [{ name: BASE, weight: 1 }] },
    { name: "chat", criticality: "Critical", targets: [{ name: BASE, weight: 1 }] },
  ];
  await pushPool(
    sims.pods.map(() => ({ waiting: 30, kvUsage: 0.95 })),
    models,
  );
  await assert.rejects(
    client.completions.create({ model: "batch", prompt: "later", max_tokens: 2 }),
    (err: unknown) => err instanceof OpenAI.APIError && err.status === 429,
  );
  const { data: c, response } = await client.completions
    .create({ model: "chat", prompt: "now", max_tokens: 2 })
    .withResponse();
  assert.equal(c.model, BASE, "the served model is the rewrite target");
  podOf(response);
});

test("a 70/30 rewrite split lands within 4σ", async () => {
  await pushPool(
    [],
    [
      {
        name: "assistant",
        criticality: "Standard",
        targets: [
          { name: BASE, weight: 70 },
          { name: "tweet-lora", weight: 30 },
        ],
      },
    ],
  );
  const n = 240;
  const served: string[] = [];
  for (let batch = 0; batch < n / 8; batch++) {
    const res = await Promise.all(
      Array.from({ length: 8 }, (_, k) =>
        client.completions.create({ model: "assistant", prompt: `p${batch}-${k}`, max_tokens: 1 }),
      ),
    );
    for (const c of res) served.push(c.model);
  }
  const share = served.filter((m) => m === BASE).length / n;
  assert.equal(served.filter((m) => m !== BASE && m !== "tweet-lora").length, 0);
  assert.ok(Math.abs(share - 0.7) < 4 * Math.sqrt(0.21 / n), `base share ${share}`);
});

test("malformed bodies get 400 with an OpenAI-style error and never reach a pod", async () => {
  await pushPool();
  for (const body of ['{"model":', '{"prompt":"no model"}']) {
    const res = await fetch(`${data}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("x-inference-pod"), null);
    const j = (await res.json()) as { error: { type: string } };
    assert.equal(j.error.type, "invalid_request_error");
  }
  await assert.rejects(
    client.chat.completions.create({ model: "", messages: [{ role: "user", content: "x" }] }),
    (err: unknown) => err instanceof OpenAI.APIError && err.status === 400,
  );
});

// Anthropic Messages through the gateway with a plain HTTP client (no Anthropic client in our dependencies).
test("/v1/messages: the model is resolved and rewritten, and a shared system prompt sticks to one pod", async () => {
  await pushPool(
    [],
    [{ name: "claude-alias", criticality: "Standard", targets: [{ name: BASE, weight: 1 }] }],
  );
  const system = [{ type: "text", text: "You are a careful SQL assistant. Answer briefly. ".repeat(60) }];
  const pods: string[] = [];
  for (let i = 0; i < 12; i++) {
    const res = await fetch(`${data}/v1/messages`, {
      method: "POST",
      headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
      body: JSON.stringify({
        model: "claude-alias",
        max_tokens: 2,
        system,
        messages: [{ role: "user", content: [{ type: "text", text: `question number ${i}` }] }],
      }),
    });
    const reply = (await res.json()) as { type?: string; model?: string; content?: unknown[] };
    assert.equal(res.status, 200, JSON.stringify(reply));
    assert.equal(reply.type, "message");
    assert.equal(reply.model, BASE, "the pod saw the rewrite target");
    pods.push(podOf(res));
  }
  const top = Math.max(...tally(pods).values());
  assert.ok(top >= 11, `scattered: ${JSON.stringify([...tally(pods)])}`);
  const unknown = await fetch(`${data}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ max_tokens: 2, messages: [{ role: "user", content: "hi" }] }),
  });
  assert.equal(unknown.status, 400, "no model: refused before any pod");
  // The filter's own replies on /v1/messages are in Anthropic's error shape (issue 24).
  assert.deepEqual(await unknown.json(), {
    type: "error",
    error: { type: "invalid_request_error", message: '"model" is required' },
  });
  // Decided from the path alone, before any body: Anthropic-shaped as well.
  const text = await fetch(`${data}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: "hello",
  });
  assert.equal(text.status, 400);
  const body = (await text.json()) as { type?: string; error?: { type?: string } };
  assert.equal(body.type, "error");
  assert.equal(body.error?.type, "invalid_request_error");
});
