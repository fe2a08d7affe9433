// The scheduling data path of the real build/filter.wasm in the Envoy-faithful host: body buffering
// and limits, 400/404/413/429/503, objectives, model rewrite (what the upstream receives), LoRA and
// prefix affinity, the fallback list, the conformance hook and VM-local in-flight correction.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EnvoyProcess, VirtualClock } from "../../host/index.ts";
import type { HeaderList, HttpStream, LocalReply, WasmPlugin } from "../../host/index.ts";
import type { SnapshotModel, SnapshotObjective, SnapshotRewrite } from "../../sidecar/snapshot/types.ts";
import { CREATED_MS, snapshotBytesWith, type EndpointFixture } from "../support/snapshot-fixture.ts";

const WASM = readFileSync(new URL("../../build/filter.wasm", import.meta.url));
const TOKEN = "tok";
const DEST = "x-gateway-destination-endpoint";
const SERVED = "x-gateway-destination-endpoint-served";

interface SnapOpts {
  createdAtMs?: number;
  strict?: boolean;
  models?: SnapshotModel[];
  objectives?: SnapshotObjective[];
  rewrites?: SnapshotRewrite[];
  profile?: string;
}

function snapshot(generation: number, eps: EndpointFixture[], o: SnapOpts = {}): Uint8Array {
  return snapshotBytesWith({
    generation,
    createdAtMs: o.createdAtMs,
    pool: { strictModels: o.strict ?? false },
    endpoints: eps,
    models: o.models,
    objectives: o.objectives,
    rewrites: o.rewrites,
    scheduler: { profile: o.profile ?? "default" },
  });
}

const FOUR = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"].map((address) => ({ address }));

interface Outcome {
  reply?: LocalReply;
  forwarded?: HeaderList;
  body: Buffer;
  response?: HeaderList;
  stream: HttpStream;
}

function header(h: HeaderList | undefined, name: string): string | undefined {
  return h?.find(([k]) => k === name)?.[1];
}

/** One request; the stream is destroyed afterwards unless `hold` (then the caller destroys it). */
function send(
  plugin: WasmPlugin,
  opts: {
    path?: string;
    body?: string | Uint8Array;
    chunks?: number;
    headers?: HeaderList;
    worker?: number;
    hold?: boolean;
    contentLength?: boolean;
    contentType?: string;
  } = {},
): Outcome {
  const chunks: Buffer[] = [];
  const out = { body: Buffer.alloc(0) } as Outcome;
  const s = plugin.newHttpStream(
    {
      forwardRequestHeaders: (h) => (out.forwarded = h),
      forwardRequestData: (d) => chunks.push(Buffer.from(d)),
      forwardResponseHeaders: (h) => (out.response = h),
      forwardResponseData: () => {},
      localReply: (r) => (out.reply = r),
    },
    { worker: opts.worker ?? 0 },
  );
  out.stream = s;
  const body = typeof opts.body === "string" ? Buffer.from(opts.body) : opts.body;
  const h: HeaderList = [
    [":method", body ? "POST" : "GET"],
    [":path", opts.path ?? "/v1/completions"],
    [":authority", "gw"],
    [":scheme", "http"],
  ];
  if (body) {
    h.push(["content-type", opts.contentType ?? "application/json"]);
    if (opts.contentLength !== false) h.push(["content-length", String(body.length)]);
  }
  s.decodeHeaders([...h, ...(opts.headers ?? [])], body === undefined);
  if (body !== undefined) {
    const n = opts.chunks ?? 1;
    const step = Math.ceil(body.length / n);
    for (let i = 0; i < n && !out.reply; i++)
      s.decodeData(body.subarray(i * step, Math.min(body.length, (i + 1) * step)), i === n - 1);
  }
  out.body = Buffer.concat(chunks);
  if (out.forwarded && !out.reply) s.encodeHeaders([[":status", "200"]], true);
  if (!opts.hold) s.destroy();
  return out;
}

function completion(model: string, prompt = "hello", extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ model, prompt, max_tokens: 8, ...extra });
}

function first(o: Outcome): string | undefined {
  return header(o.forwarded, DEST)?.split(",")[0];
}

async function load(config: Record<string, unknown> = {}) {
  return (await loadWithProcess(config)).plugin;
}

async function loadWithProcess(config: Record<string, unknown> = {}) {
  const proc = new EnvoyProcess({ clock: new VirtualClock(BigInt(CREATED_MS) * 1_000_000n) });
  const plugin = await proc.loadPlugin(WASM, {
    vmId: "epp",
    workers: 2,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({
      pool: { namespace: "default", name: "pool-a" },
      controlToken: TOKEN,
      randomSeed: 42,
      destinationMode: "override_host",
      ...config,
    }),
  });
  return { proc, plugin };
}

function push(plugin: WasmPlugin, bytes: Uint8Array): void {
  const r = send(plugin, {
    path: "/epp/v1/snapshot",
    body: bytes,
    headers: [["authorization", `Bearer ${TOKEN}`]],
  });
  assert.equal(r.reply?.status, 204, r.reply ? Buffer.from(r.reply.body).toString() : "no reply");
}

function errorOf(o: Outcome): { status: number; type: string; code: string | null; message: string } {
  assert.ok(o.reply, "expected a local reply");
  assert.equal(header(o.reply.headers, "content-type"), "application/json");
  const j = JSON.parse(Buffer.from(o.reply.body).toString()) as {
    error: { type: string; code: string | null; message: string };
  };
  return { status: o.reply.status, ...j.error };
}

test("400 for malformed JSON, missing model and non-JSON content types, OpenAI-style", async () => {
  const plugin = await load();
  push(plugin, snapshot(1, FOUR));
  for (const body of ['{"model": "m", "prompt": ', '{"prompt": "x"}', '{"model": 7}', "[1,2]"]) {
    const e = errorOf(send(plugin, { body }));
    assert.equal(e.status, 400, body);
    assert.equal(e.type, "invalid_request_error");
  }
  for (const contentType of ["text/plain", "application/x-www-form-urlencoded"]) {
    const e = errorOf(send(plugin, { body: completion("m"), contentType }));
    assert.equal(e.status, 400);
    assert.equal(e.code, "invalid_content_type");
  }
  // JSON with parameters, and unknown paths (routed without parsing), are fine.
  assert.equal(
    send(plugin, { body: completion("m"), contentType: "application/json; charset=utf-8" }).reply,
    undefined,
  );
  assert.ok(first(send(plugin, { path: "/v1/custom", body: "not json", contentType: "text/plain" })));
  await plugin.shutdown();
});

test("413 over maxBodyBytes, by content-length and by buffered size (chunked)", async () => {
  const plugin = await load({ maxBodyBytes: 1000 });
  push(plugin, snapshot(1, FOUR));
  const big = completion("m", "x".repeat(2000));
  assert.equal(errorOf(send(plugin, { body: big })).status, 413);
  const e = errorOf(send(plugin, { body: big, chunks: 4, contentLength: false }));
  assert.equal(e.status, 413);
  assert.equal(e.code, "request_too_large");
  // Just under the limit is fine, even in pieces.
  const ok = send(plugin, { body: completion("m", "x".repeat(900)), chunks: 3, contentLength: false });
  assert.equal(ok.reply, undefined);
  assert.ok(first(ok));
  await plugin.shutdown();
});

test("unknown model: pass-through at priority 0, 404 when the pool (or the plugin config) is strict", async () => {
  const models: SnapshotModel[] = [{ name: "known", criticality: "Standard", targets: [] }];
  let plugin = await load();
  push(plugin, snapshot(1, FOUR, { models }));
  assert.equal(send(plugin, { body: completion("mystery") }).reply, undefined);
  push(plugin, snapshot(2, FOUR, { models, strict: true }));
  const e = errorOf(send(plugin, { body: completion("mystery") }));
  assert.equal(e.status, 404);
  assert.equal(e.code, "model_not_found");
  assert.equal(send(plugin, { body: completion("known") }).reply, undefined);
  await plugin.shutdown();

  plugin = await load({ strictModels: false });
  push(plugin, snapshot(1, FOUR, { models, strict: true }));
  assert.equal(send(plugin, { body: completion("mystery") }).reply, undefined, "override: lenient");
  await plugin.shutdown();
  plugin = await load({ strictModels: true });
  push(plugin, snapshot(1, FOUR, { models }));
  assert.equal(errorOf(send(plugin, { body: completion("mystery") })).status, 404, "override: strict");
  await plugin.shutdown();
});

test("priority: objective header and criticality; sheddable → 429 under saturation, critical served", async () => {
  const plugin = await load();
  const saturated = FOUR.map((e) => ({ ...e, waiting: 20, kvUsage: 0.95 }));
  push(
    plugin,
    snapshot(1, saturated, {
      models: [
        { name: "batch-model", criticality: "Sheddable", targets: [] },
        { name: "chat-model", criticality: "Critical", targets: [] },
      ],
      objectives: [
        { name: "background", priority: -5 },
        { name: "interactive", priority: 10 },
      ],
    }),
  );
  const shed = errorOf(send(plugin, { body: completion("batch-model") }));
  assert.equal(shed.status, 429);
  assert.equal(shed.code, "request_shed");
  assert.ok(first(send(plugin, { body: completion("chat-model") })), "critical is served");
  // The objective header wins over the model's criticality, both ways.
  const up = send(plugin, {
    body: completion("batch-model"),
    headers: [["x-gateway-inference-objective", "interactive"]],
  });
  assert.equal(up.reply, undefined);
  const down = send(plugin, {
    body: completion("chat-model"),
    headers: [["x-gateway-inference-objective", "background"]],
  });
  assert.equal(errorOf(down).status, 429);
  // Not saturated: sheddable requests are served.
  push(
    plugin,
    snapshot(2, FOUR, { models: [{ name: "batch-model", criticality: "Sheddable", targets: [] }] }),
  );
  assert.equal(send(plugin, { body: completion("batch-model") }).reply, undefined);
  await plugin.shutdown();
});

test("weighted rewrite 70/30 within 4σ (seeded), body rewritten, content-length fixed, model header set", async () => {
  const plugin = await load();
  push(
    plugin,
    snapshot(1, FOUR, {
      models: [
        {
          name: "llama",
          criticality: "Standard",
          targets: [
            { name: "llama-v1", weight: 70 },
            { name: "llama-v2-longer-name", weight: 30 },
          ],
        },
      ],
    }),
  );
  const n = 2000;
  let v1 = 0;
  for (let i = 0; i < n; i++) {
    const o = send(plugin, { body: completion("llama", "same text", { temperature: 0.5 }), worker: i % 2 });
    assert.equal(o.reply, undefined);
    const j = JSON.parse(o.body.toString()) as { model: string; prompt: string; temperature: number };
    assert.equal(header(o.forwarded, "content-length"), String(o.body.length));
    assert.equal(header(o.forwarded, "x-gateway-model-name"), j.model);
    assert.equal(j.prompt, "same text");
    assert.equal(j.temperature, 0.5);
    if (j.model === "llama-v1") v1++;
    else assert.equal(j.model, "llama-v2-longer-name");
  }
  const p = v1 / n;
  const sigma = Math.sqrt((0.7 * 0.3) / n);
  assert.ok(Math.abs(p - 0.7) < 4 * sigma, `share of llama-v1 ${p}`);
  await plugin.shutdown();
});

test("x-gateway-model-name-rewrite overrides rules; InferenceModelRewrite rules apply; byte-exact rest", async () => {
  const plugin = await load();
  push(
    plugin,
    snapshot(1, FOUR, {
      rewrites: [{ matches: ["old"], targets: [{ model: "new", weight: 1 }] }],
    }),
  );
  const raw = '{ "prompt" : "p\\u00e9",\n "model":"old" , "n": 1 }';
  const ruled = send(plugin, { body: raw });
  assert.equal(ruled.body.toString(), '{ "prompt" : "p\\u00e9",\n "model":"new" , "n": 1 }');
  assert.equal(header(ruled.forwarded, "content-length"), String(ruled.body.length));
  const forced = send(plugin, { body: raw, headers: [["x-gateway-model-name-rewrite", "forced/x"]] });
  assert.equal(JSON.parse(forced.body.toString()).model, "forced/x");
  assert.equal(header(forced.forwarded, "x-gateway-model-name"), "forced/x");
  // Not rewritten: the body goes through untouched.
  const same = send(plugin, { body: completion("other") });
  assert.equal(same.body.toString(), completion("other"));
  assert.equal(header(same.forwarded, "x-gateway-model-name"), "other");
  await plugin.shutdown();
});

test("LoRA: a request for an adapter prefers the pod that has it loaded", async () => {
  const plugin = await load();
  push(
    plugin,
    snapshot(1, [
      { address: "10.0.0.1", maxLoras: 1, runningAdapters: ["other-lora"] },
      { address: "10.0.0.2", maxLoras: 1, runningAdapters: ["sql-lora"] },
      { address: "10.0.0.3", maxLoras: 1, runningAdapters: ["other-lora"] },
    ]),
  );
  const counts = new Map<string, number>();
  for (let i = 0; i < 30; i++) {
    const d = first(send(plugin, { body: completion("sql-lora", `q${i}`) }))!;
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  assert.ok((counts.get("10.0.0.2:8000") ?? 0) >= 27, JSON.stringify([...counts]));
  await plugin.shutdown();
});

test("repeated long prompts with a shared prefix stick to one endpoint; different prefixes spread", async () => {
  const plugin = await load();
  push(plugin, snapshot(1, FOUR));
  const shared = "You are a helpful assistant. ".repeat(140); // ~4 KB
  const seen = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const body = JSON.stringify({
      model: "m",
      messages: [
        { role: "system", content: shared },
        { role: "user", content: `question ${i}` },
      ],
    });
    const d = first(send(plugin, { path: "/v1/chat/completions", body, worker: i % 2 }))!;
    seen.set(d, (seen.get(d) ?? 0) + 1);
  }
  const top = Math.max(...seen.values());
  assert.ok(top >= 38, `shared prefix scattered: ${JSON.stringify([...seen])}`);
  // Distinct long prompts do not all collapse onto one endpoint.
  const spread = new Set<string>();
  for (let i = 0; i < 40; i++) {
    const prompt = `${i} `.repeat(400) + shared.slice(0, 200);
    spread.add(first(send(plugin, { body: completion("m", prompt) }))!);
  }
  assert.ok(spread.size >= 3, `distinct prompts landed on ${[...spread].join(" ")}`);
  await plugin.shutdown();
});

test("affinity directory: workers publish group placements in shared data and follow each other's", async () => {
  const { proc, plugin } = await loadWithProcess();
  push(plugin, snapshot(1, FOUR));
  const directory = () =>
    new Map(
      proc.sharedData
        .keys("epp")
        .filter((k) => k.startsWith("epp.v1/default/pool-a/affinity."))
        .map((k) => [k, Buffer.from(proc.sharedData.get("epp", k)!.value)]),
    );
  const chat = (system: string, i: number) =>
    JSON.stringify({
      model: "m",
      messages: [
        { role: "system", content: system },
        { role: "user", content: `question ${i}` },
      ],
    });
  const system = (g: number) => `Group ${g} system prompt. `.repeat(120); // ~3 KB: ≥ 32 blocks
  // Worker 0 places group 0: one 16-byte entry (the key, the pod's host hash) appears under the pool's prefix.
  const p0 = first(send(plugin, { path: "/v1/chat/completions", body: chat(system(0), 0), worker: 0 }))!;
  const after0 = directory();
  assert.equal(after0.size, 1);
  const [bucket0, entry0] = [...after0][0]!;
  assert.equal(entry0.length, 16);
  // Find a group whose own placement differs from group 0's pod, then make the directory say that group
  // lives on group 0's pod (as if another worker had put it there): worker 1, which has never seen the
  // group, follows the directory instead of its own choice.
  for (let g = 1; g < 40; g++) {
    const before = new Set(directory().keys());
    const body = chat(system(g), 0);
    const pg = first(send(plugin, { path: "/v1/chat/completions", body, worker: 0 }))!;
    const bucket = [...directory().keys()].find((k) => !before.has(k));
    if (pg === p0 || bucket === undefined || bucket === bucket0) continue;
    const entry = Buffer.from(proc.sharedData.get("epp", bucket)!.value);
    entry.set(entry0.subarray(8, 16), 8); // same key, group 0's pod
    proc.sharedData.set("epp", bucket, new Uint8Array(entry), 0);
    assert.equal(
      first(send(plugin, { path: "/v1/chat/completions", body: chat(system(g), 1), worker: 1 })),
      p0,
    );
    await plugin.shutdown();
    return;
  }
  assert.fail("no group placed away from group 0's pod");
});

test("fallback list: best first, distinct pool endpoints, at most 1 + maxFallbacks; served = first", async () => {
  for (const [maxFallbacks, expected] of [
    [undefined, 4],
    [1, 2],
    [0, 1],
  ] as const) {
    const plugin = await load(maxFallbacks === undefined ? {} : { maxFallbacks });
    const pool = [...FOUR, { address: "10.0.0.5" }, { address: "fd00::9", port: 9000 }];
    push(plugin, snapshot(1, [...pool, { address: "10.0.0.6", ready: false }]));
    const o = send(plugin, { body: completion("m") });
    const list = header(o.forwarded, DEST)!.split(",");
    assert.equal(list.length, expected, header(o.forwarded, DEST));
    assert.equal(new Set(list).size, list.length);
    for (const hp of list) assert.match(hp, /^(10\.0\.0\.[1-5]:8000|\[fd00::9\]:9000)$/);
    assert.equal(header(o.response, SERVED), list[0]);
    await plugin.shutdown();
  }
});

test("conformance: test-epp-endpoint-selection restricts candidates only when enabled", async () => {
  let plugin = await load({ conformance: true });
  push(plugin, snapshot(1, FOUR));
  for (let i = 0; i < 10; i++) {
    const o = send(plugin, {
      body: completion("m"),
      headers: [["test-epp-endpoint-selection", "10.0.0.3, 10.0.0.4"]],
    });
    const list = header(o.forwarded, DEST)!.split(",");
    assert.ok(
      list.every((hp) => hp === "10.0.0.3:8000" || hp === "10.0.0.4:8000"),
      list.join(),
    );
  }
  const none = send(plugin, {
    body: completion("m"),
    headers: [["test-epp-endpoint-selection", "10.9.9.9"]],
  });
  assert.equal(errorOf(none).status, 503);
  // Body-less requests honour it too.
  const get = send(plugin, { path: "/v1/models", headers: [["test-epp-endpoint-selection", "10.0.0.2"]] });
  assert.equal(header(get.forwarded, DEST), "10.0.0.2:8000");
  await plugin.shutdown();

  plugin = await load();
  push(plugin, snapshot(1, FOUR));
  const ignored = send(plugin, {
    body: completion("m"),
    headers: [["test-epp-endpoint-selection", "10.9.9.9"]],
  });
  assert.equal(ignored.reply, undefined);
  await plugin.shutdown();
});

test("in-flight correction: a burst between snapshots spreads; a newer scrape rebases the counts", async () => {
  const plugin = await load({ conformance: true });
  push(plugin, snapshot(1, FOUR));
  const held: HttpStream[] = [];
  const counts = new Map<string, number>();
  for (let i = 0; i < 40; i++) {
    const o = send(plugin, { body: completion("m", `burst ${i}`), hold: true });
    held.push(o.stream);
    const d = first(o)!;
    counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  assert.equal(counts.size, 4);
  for (const n of counts.values()) assert.ok(n >= 7 && n <= 13, JSON.stringify([...counts]));
  for (const s of held.splice(0)) s.destroy();

  // Pin 20 open requests to 10.0.0.1.
  for (let i = 0; i < 20; i++) {
    const o = send(plugin, {
      body: completion("m", `pinned ${i}`),
      headers: [["test-epp-endpoint-selection", "10.0.0.1"]],
      hold: true,
    });
    assert.equal(first(o), "10.0.0.1:8000");
    held.push(o.stream);
  }
  const landsOnFirst = (n: number): number => {
    let hits = 0;
    for (let i = 0; i < n; i++)
      if (first(send(plugin, { body: completion("m", `probe ${i}`) })) === "10.0.0.1:8000") hits++;
    return hits;
  };
  // Scraped before the dispatches (metrics 100 ms old): they still count, 10.0.0.1 is avoided.
  push(
    plugin,
    snapshot(
      2,
      FOUR.map((e) => ({ ...e, metricsAgeMs: 100 })),
      { createdAtMs: CREATED_MS + 10 },
    ),
  );
  assert.equal(landsOnFirst(12), 0);
  // Scraped after them: the metrics already include them (here: they finished), the counts rebase.
  push(
    plugin,
    snapshot(
      3,
      FOUR.map((e) => ({ ...e, metricsAgeMs: 5 })),
      { createdAtMs: CREATED_MS + 20 },
    ),
  );
  assert.ok(landsOnFirst(40) > 0);
  for (const s of held) s.destroy();
  await plugin.shutdown();
});
