// The real build/filter.wasm driven through the Envoy-faithful host: configuration, the control path
// and the minimal data path (destination header, least-loaded pick, failure modes, staleness).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EnvoyProcess, PluginConfigError, VirtualClock } from "../../host/index.ts";
import type { HeaderList, LocalReply, WasmPlugin } from "../../host/index.ts";
import { CREATED_MS, snapshotBytesWith, type EndpointFixture } from "../support/snapshot-fixture.ts";

const WASM = readFileSync(new URL("../../build/filter.wasm", import.meta.url));
const TOKEN = "s3cret-token";
const DEST = "x-gateway-destination-endpoint";

function snapshotBytes(
  generation: bigint,
  endpoints: EndpointFixture[],
  opts: { pool?: string; createdAtMs?: number } = {},
): Uint8Array {
  return snapshotBytesWith({
    generation,
    endpoints,
    createdAtMs: opts.createdAtMs,
    pool: { name: opts.pool ?? "pool-a" },
  });
}

interface Outcome {
  reply?: LocalReply;
  forwarded?: HeaderList;
  response?: HeaderList;
}

function header(h: HeaderList | undefined, name: string): string | undefined {
  return h?.find(([k]) => k === name)?.[1];
}

function headerCount(h: HeaderList | undefined, name: string): number {
  return h?.filter(([k]) => k === name).length ?? 0;
}

/** One request through one worker: headers (+ optional body), then a 200 response if forwarded. */
function send(plugin: WasmPlugin, headers: HeaderList, body?: Uint8Array, worker = 0): Outcome {
  const out: Outcome = {};
  const s = plugin.newHttpStream(
    {
      forwardRequestHeaders: (h) => (out.forwarded = h),
      forwardRequestData: () => {},
      forwardResponseHeaders: (h) => (out.response = h),
      forwardResponseData: () => {},
      localReply: (r) => (out.reply = r),
    },
    { worker },
  );
  s.decodeHeaders(headers, body === undefined);
  if (body !== undefined && !out.reply) s.decodeData(body, true);
  if (out.forwarded && !out.reply) s.encodeHeaders([[":status", "200"]], true);
  s.destroy();
  return out;
}

function push(
  plugin: WasmPlugin,
  bytes: Uint8Array | undefined,
  opts: { method?: string; token?: string | null; worker?: number; path?: string } = {},
): Outcome {
  const h: HeaderList = [
    [":method", opts.method ?? "POST"],
    [":path", opts.path ?? "/epp/v1/snapshot?from=test"],
    [":authority", "gw"],
    [":scheme", "http"],
  ];
  if (opts.token !== null) h.push(["authorization", `Bearer ${opts.token ?? TOKEN}`]);
  return send(plugin, h, bytes, opts.worker ?? 0);
}

function inference(plugin: WasmPlugin, worker = 0, extra: HeaderList = []): Outcome {
  return send(
    plugin,
    [[":method", "POST"], [":path", "/v1/completions"], [":authority", "gw"], [":scheme", "http"], ...extra],
    undefined,
    worker,
  );
}

async function load(
  config: Record<string, unknown> = {},
  clock = new VirtualClock(BigInt(CREATED_MS) * 1_000_000n),
  environment?: Record<string, string>,
) {
  const proc = new EnvoyProcess({ clock });
  const plugin = await proc.loadPlugin(WASM, {
    vmId: "epp",
    workers: 2,
    // As in the Envoy config: the filter must see the control request's body before routing.
    allowOnHeadersStopIteration: true,
    environment,
    configuration: JSON.stringify({
      pool: { namespace: "default", name: "pool-a" },
      ...(config.controlTokenEnv === undefined ? { controlToken: TOKEN } : {}),
      randomSeed: 1,
      destinationMode: "override_host",
      ...config,
    }),
  });
  return { proc, plugin, clock };
}

function errorJson(r: LocalReply | undefined): {
  error: { message: string; type: string; code: string; param: null };
} {
  assert.ok(r, "expected a local reply");
  assert.equal(header(r.headers, "content-type"), "application/json");
  return JSON.parse(Buffer.from(r.body).toString("utf8"));
}

test("loads with its Envoy imports and configures on the canary and every worker", async () => {
  const { plugin } = await load();
  assert.deepEqual(plugin.failedWorkers, []);
  await plugin.shutdown();
  assert.deepEqual(plugin.failedWorkers, [], "root on_done/on_delete must not trap");
});

for (const [name, cfg, field] of [
  [
    "fallbacks through ORIGINAL_DST",
    { pool: { namespace: "a", name: "b" }, destinationMode: "original_dst", maxFallbacks: 3 },
    "maxFallbacks",
  ],
  ["empty controlToken", { pool: { namespace: "a", name: "b" }, controlToken: "" }, "controlToken"],
  ["missing pool", { controlToken: "t" }, "pool"],
  [
    "bad failureMode",
    { pool: { namespace: "a", name: "b" }, controlToken: "t", failureMode: "Sometimes" },
    "failureMode",
  ],
  [
    "negative staleAfterMs",
    { pool: { namespace: "a", name: "b" }, controlToken: "t", staleAfterMs: -1 },
    "staleAfterMs",
  ],
] as const) {
  test(`invalid plugin config is rejected: ${name}`, async () => {
    const logs: string[] = [];
    const proc = new EnvoyProcess({ log: (e) => e.level >= 4 && logs.push(e.message) });
    await assert.rejects(
      proc.loadPlugin(WASM, { vmId: "epp", configuration: JSON.stringify(cfg) }),
      PluginConfigError,
    );
    assert.ok(
      logs.some((m) => m.includes(field)),
      `no error log naming ${field}: ${logs.join(" | ")}`,
    );
  });
}

test("malformed JSON config is rejected without a trap", async () => {
  const proc = new EnvoyProcess();
  await assert.rejects(
    proc.loadPlugin(WASM, { vmId: "epp", configuration: '{"pool": {"namespace": "a",' }),
    PluginConfigError,
  );
});

test("controlTokenEnv reads the token from the VM environment; unset or clashing settings are rejected", async () => {
  const { plugin } = await load({ controlTokenEnv: "EPP_CONTROL_TOKEN" }, undefined, {
    EPP_CONTROL_TOKEN: "from-env",
  });
  const g = snapshotBytes(7n, [{ address: "10.0.0.1" }]);
  assert.equal(push(plugin, g).reply?.status, 401, "the inline test token is not configured");
  assert.equal(push(plugin, g, { token: "from-env" }).reply?.status, 204);
  await plugin.shutdown();

  await assert.rejects(load({ controlTokenEnv: "EPP_CONTROL_TOKEN" }, undefined, {}), PluginConfigError);
  await assert.rejects(load({ controlTokenEnv: "X", controlToken: "y" }), PluginConfigError);
});

test("control path: 405, 401, 400, 204, idempotent 204, 409 — never forwarded", async () => {
  const { plugin } = await load();
  const g1 = snapshotBytes(100n, [{ address: "10.0.0.1" }]);

  const get = push(plugin, undefined, { method: "GET" });
  assert.equal(get.reply?.status, 405);
  assert.equal(get.forwarded, undefined);

  assert.equal(push(plugin, g1, { token: null }).reply?.status, 401);
  assert.equal(push(plugin, g1, { token: "wrong" }).reply?.status, 401);
  assert.equal(push(plugin, g1, { token: TOKEN + "x" }).reply?.status, 401);

  const headerOnly = push(plugin, undefined);
  assert.equal(headerOnly.reply?.status, 400);

  const corrupt = new Uint8Array(g1); // a copy (the encoder may return a Buffer, whose slice is a view)
  corrupt[corrupt.length - 1]! ^= 0xff;
  const bad = push(plugin, corrupt);
  assert.equal(bad.reply?.status, 400);
  assert.match(errorJson(bad.reply).error.message, /checksum/);
  assert.equal(bad.forwarded, undefined);

  const wrongPool = push(plugin, snapshotBytes(100n, [{ address: "10.0.0.1" }], { pool: "pool-b" }));
  assert.equal(wrongPool.reply?.status, 400);
  assert.match(errorJson(wrongPool.reply).error.message, /pool-b/);

  const ok = push(plugin, g1);
  assert.equal(ok.reply?.status, 204, ok.reply && Buffer.from(ok.reply.body).toString("utf8"));
  assert.equal(header(ok.reply?.headers, "x-epp-snapshot-generation"), "100");
  assert.equal(ok.forwarded, undefined);

  const again = push(plugin, g1, { worker: 1 });
  assert.equal(again.reply?.status, 204, "same generation and checksum is an idempotent retry");

  const sameGenOtherContent = push(plugin, snapshotBytes(100n, [{ address: "10.0.0.2" }]));
  assert.equal(sameGenOtherContent.reply?.status, 409);
  const older = push(plugin, snapshotBytes(99n, [{ address: "10.0.0.1" }]));
  assert.equal(older.reply?.status, 409);
  assert.equal(header(older.reply?.headers, "x-epp-snapshot-generation"), "100");

  assert.equal(push(plugin, snapshotBytes(101n, [{ address: "10.0.0.3" }])).reply?.status, 204);
  await plugin.shutdown();
});

test("data path: spoofed destination replaced, least-loaded pick, served header, on every worker", async () => {
  const { plugin } = await load();
  assert.equal(
    push(
      plugin,
      snapshotBytes(1n, [
        { address: "10.0.0.1", waiting: 3, running: 2 },
        { address: "fd00::7", port: 9000, waiting: 0, running: 1 },
        { address: "10.0.0.3", waiting: 0, running: 0, ready: false },
        { address: "10.0.0.4", waiting: 0, running: 0, stale: true },
      ]),
    ).reply?.status,
    204,
  );
  for (const worker of [0, 1]) {
    const r = inference(plugin, worker, [[DEST, "6.6.6.6:666"]]);
    assert.equal(r.reply, undefined);
    // Best first, then fallbacks (not-ready and stale endpoints never appear).
    assert.equal(header(r.forwarded, DEST), "[fd00::7]:9000,10.0.0.1:8000");
    assert.equal(headerCount(r.forwarded, DEST), 1, "the spoofed value must not survive");
    assert.equal(header(r.response, "x-gateway-destination-endpoint-served"), "[fd00::7]:9000");
  }
  // A newer snapshot is picked up through shared data by the worker that did not receive it.
  push(
    plugin,
    snapshotBytes(2n, [
      { address: "10.0.0.1", waiting: 0 },
      { address: "fd00::7", port: 9000, waiting: 9 },
    ]),
  );
  assert.equal(header(inference(plugin, 1).forwarded, DEST)?.split(",")[0], "10.0.0.1:8000");
  await plugin.shutdown();
});

test("ties are broken at random across the tied endpoints (seeded)", async () => {
  const { plugin } = await load();
  push(
    plugin,
    snapshotBytes(1n, [
      { address: "10.0.0.1" },
      { address: "10.0.0.2" },
      { address: "10.0.0.3", waiting: 1 },
    ]),
  );
  const seen = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const d = header(inference(plugin, i % 2).forwarded, DEST)!.split(",")[0]!;
    seen.set(d, (seen.get(d) ?? 0) + 1);
  }
  assert.deepEqual([...seen.keys()].sort(), ["10.0.0.1:8000", "10.0.0.2:8000"]);
  for (const n of seen.values()) assert.ok(n > 60, `skewed tie-break: ${[...seen.entries()].join(" ")}`);
  await plugin.shutdown();
});

test("no ready endpoint → 503 with an OpenAI-style error", async () => {
  const { plugin } = await load();
  push(plugin, snapshotBytes(1n, [{ address: "10.0.0.1", ready: false }]));
  const r = inference(plugin);
  assert.equal(r.reply?.status, 503);
  const body = errorJson(r.reply);
  assert.equal(body.error.code, "no_ready_endpoint");
  assert.equal(body.error.param, null);
  await plugin.shutdown();
});

test("no snapshot: FailClose → 503, FailOpen → continue without a destination (spoof still stripped)", async () => {
  const closed = await load();
  const r = inference(closed.plugin, 0, [[DEST, "6.6.6.6:666"]]);
  assert.equal(r.reply?.status, 503);
  assert.equal(errorJson(r.reply).error.code, "no_snapshot");
  await closed.plugin.shutdown();

  const open = await load({ failureMode: "FailOpen" });
  const o = inference(open.plugin, 0, [[DEST, "6.6.6.6:666"]]);
  assert.equal(o.reply, undefined);
  assert.ok(o.forwarded);
  assert.equal(header(o.forwarded, DEST), undefined);
  assert.equal(header(o.response, "x-gateway-destination-endpoint-served"), undefined);
  await open.plugin.shutdown();
});

test("staleMode fail: a stale snapshot (older than staleAfterMs) follows the failure mode; 0 disables staleness", async () => {
  const { plugin, clock } = await load({ staleAfterMs: 1000, staleMode: "fail" });
  push(plugin, snapshotBytes(1n, [{ address: "10.0.0.1" }]));
  clock.advance(1000);
  assert.equal(header(inference(plugin).forwarded, DEST), "10.0.0.1:8000");
  clock.advance(1);
  const r = inference(plugin);
  assert.equal(r.reply?.status, 503);
  assert.equal(errorJson(r.reply).error.code, "stale_snapshot");
  await plugin.shutdown();

  const never = await load({ staleAfterMs: 0 });
  push(never.plugin, snapshotBytes(1n, [{ address: "10.0.0.1" }]));
  never.clock.advance(10 * 3600 * 1000);
  assert.equal(header(inference(never.plugin).forwarded, DEST), "10.0.0.1:8000");
  await never.plugin.shutdown();
});

test("control path body over controlMaxBytes → 413", async () => {
  const { plugin } = await load({ controlMaxBytes: 64 });
  assert.equal(push(plugin, snapshotBytes(1n, [{ address: "10.0.0.1" }])).reply?.status, 413);
  await plugin.shutdown();
});

test("a torn table/version pair never moves a VM back to an older generation", async () => {
  const { proc, plugin } = await load();
  push(plugin, snapshotBytes(5n, [{ address: "10.0.0.5" }]));
  assert.equal(header(inference(plugin, 1).forwarded, DEST), "10.0.0.5:8000");
  // Another push's version landed with an older push's table: the version says 6, the table is 3.
  // Version key: generation u64, crc u32, storedAtMs u64 (snapshot-cache.ts).
  const version = new Uint8Array(20);
  new DataView(version.buffer).setBigUint64(0, 6n, true);
  new DataView(version.buffer).setBigUint64(12, BigInt(CREATED_MS), true);
  proc.sharedData.set("epp", "epp.v1/default/pool-a/table", snapshotBytes(3n, [{ address: "10.0.0.3" }]));
  proc.sharedData.set("epp", "epp.v1/default/pool-a/version", version);
  assert.equal(header(inference(plugin, 1).forwarded, DEST), "10.0.0.5:8000");
  // The next consistent pair is adopted.
  const seven = snapshotBytes(7n, [{ address: "10.0.0.7" }]);
  new DataView(version.buffer).setBigUint64(0, 7n, true);
  new DataView(version.buffer).setUint32(
    8,
    new DataView(seven.buffer, seven.byteOffset).getUint32(12, true),
    true,
  );
  proc.sharedData.set("epp", "epp.v1/default/pool-a/table", seven);
  proc.sharedData.set("epp", "epp.v1/default/pool-a/version", version);
  assert.equal(header(inference(plugin, 1).forwarded, DEST), "10.0.0.7:8000");
  await plugin.shutdown();
});

/** One inference request with a JSON body, optional trailers, and a response the test shapes. */
function sendWithTrailers(
  plugin: WasmPlugin,
  body: string,
  opts: { trailers?: HeaderList; upstream?: { address: string; port: number }; response?: HeaderList },
): Outcome & { forwardedTrailers?: HeaderList; bodyChunks: number } {
  const out: Outcome & { forwardedTrailers?: HeaderList; bodyChunks: number } = { bodyChunks: 0 };
  const s = plugin.newHttpStream(
    {
      forwardRequestHeaders: (h) => (out.forwarded = h),
      forwardRequestData: () => out.bodyChunks++,
      forwardRequestTrailers: (t) => (out.forwardedTrailers = t),
      forwardResponseHeaders: (h) => (out.response = h),
      forwardResponseData: () => {},
      localReply: (r) => (out.reply = r),
    },
    { worker: 0 },
  );
  s.decodeHeaders(
    [
      [":method", "POST"],
      [":path", "/v1/completions"],
      [":authority", "gw"],
      [":scheme", "http"],
      ["content-type", "application/json"],
    ],
    false,
  );
  const bytes = new TextEncoder().encode(body);
  if (opts.trailers) {
    s.decodeData(bytes, false);
    s.decodeTrailers(opts.trailers);
  } else s.decodeData(bytes, true);
  if (out.forwarded && !out.reply) {
    if (opts.upstream) s.setUpstreamHost(opts.upstream.address, opts.upstream.port);
    s.encodeHeaders([[":status", "200"], ...(opts.response ?? [])], true);
  }
  s.destroy();
  return out;
}

test("a body followed by trailers is routed at the trailers (on_request_body never sees end_of_stream)", async () => {
  const { plugin } = await load();
  assert.equal(push(plugin, snapshotBytes(1n, [{ address: "10.0.0.1" }])).reply?.status, 204);
  const o = sendWithTrailers(plugin, '{"model":"m","prompt":"hi"}', { trailers: [["x-checksum", "abc"]] });
  assert.equal(o.reply, undefined);
  assert.equal(header(o.forwarded, DEST), "10.0.0.1:8000", "the destination is set before the headers go");
  assert.deepEqual(o.forwardedTrailers, [["x-checksum", "abc"]]);
  const bad = sendWithTrailers(plugin, '{"model":', { trailers: [["x-checksum", "abc"]] });
  assert.equal(bad.reply?.status, 400, "a bad body is still answered when trailers end the request");
  await plugin.shutdown();
});

test("served header: replaces an upstream copy and names the upstream.address of the attempt that answered", async () => {
  const { plugin } = await load();
  assert.equal(
    push(plugin, snapshotBytes(1n, [{ address: "10.0.0.1" }, { address: "10.0.0.2" }])).reply?.status,
    204,
  );
  const o = sendWithTrailers(plugin, '{"model":"m","prompt":"hi"}', {
    upstream: { address: "10.0.0.2", port: 8000 },
    response: [["x-gateway-destination-endpoint-served", "1.2.3.4:1"]],
  });
  assert.equal(headerCount(o.response, "x-gateway-destination-endpoint-served"), 1);
  assert.equal(header(o.response, "x-gateway-destination-endpoint-served"), "10.0.0.2:8000");
  // Without an upstream host (no property), the first destination stands in.
  const first = sendWithTrailers(plugin, '{"model":"m","prompt":"hi"}', {});
  assert.equal(
    header(first.response, "x-gateway-destination-endpoint-served"),
    header(first.forwarded, DEST)?.split(",")[0],
  );
  await plugin.shutdown();
});

test("staleness is judged on this Envoy's clock: a snapshot dated ahead is refused past the skew, and ages from its arrival", async () => {
  // staleMode fail makes the age visible as a 503.
  const { plugin, clock } = await load({ staleAfterMs: 1000, maxClockSkewMs: 1000, staleMode: "fail" });
  const hourAhead = push(
    plugin,
    snapshotBytes(1n, [{ address: "10.0.0.1" }], { createdAtMs: CREATED_MS + 3_600_000 }),
  );
  assert.equal(hourAhead.reply?.status, 400);
  assert.equal(errorJson(hourAhead.reply).error.code, "future_snapshot");
  assert.match(errorJson(hourAhead.reply).error.message, /3600000 ms ahead/);
  const maxAhead = push(
    plugin,
    snapshotBytes(1n, [{ address: "10.0.0.1" }], { createdAtMs: Number.MAX_SAFE_INTEGER }),
  );
  assert.equal(maxAhead.reply?.status, 400);
  // Within the skew it is accepted, but it ages from its arrival, not from its (future) date.
  assert.equal(
    push(plugin, snapshotBytes(2n, [{ address: "10.0.0.2" }], { createdAtMs: CREATED_MS + 900 })).reply
      ?.status,
    204,
  );
  clock.advance(1000);
  assert.equal(header(inference(plugin, 1).forwarded, DEST), "10.0.0.2:8000");
  clock.advance(1);
  assert.equal(inference(plugin, 1).reply?.status, 503, "stale 1001 ms after it arrived");
  // A sidecar clock behind ours makes a snapshot older, but by at most the skew.
  clock.advance(10_000);
  const now = CREATED_MS + 11_001;
  assert.equal(
    push(plugin, snapshotBytes(3n, [{ address: "10.0.0.3" }], { createdAtMs: now - 60_000 })).reply?.status,
    204,
  );
  // 60 s behind counts as the skew (1 s): fresh now, stale one millisecond later.
  assert.equal(header(inference(plugin).forwarded, DEST), "10.0.0.3:8000");
  clock.advance(1);
  assert.equal(inference(plugin).reply?.status, 503);
  await plugin.shutdown();
});

test("a poisoned generation (2^64-1) holds the control path for at most 500 ms; then the real sidecar takes over", async () => {
  const { plugin, clock } = await load();
  assert.equal(push(plugin, snapshotBytes(100n, [{ address: "10.0.0.1" }])).reply?.status, 204);
  const max = 2n ** 64n - 1n;
  assert.equal(push(plugin, snapshotBytes(max, [{ address: "10.6.6.6" }])).reply?.status, 204);
  assert.equal(header(inference(plugin, 1).forwarded, DEST), "10.6.6.6:8000");
  clock.advance(100);
  const held = push(plugin, snapshotBytes(101n, [{ address: "10.0.0.1" }]));
  assert.equal(held.reply?.status, 409);
  assert.equal(header(held.reply?.headers, "x-epp-snapshot-generation"), max.toString());
  clock.advance(400);
  const back = push(plugin, snapshotBytes(102n, [{ address: "10.0.0.1" }]));
  assert.equal(back.reply?.status, 204, "the poisoned snapshot went unrefreshed for 500 ms");
  // Every worker follows the reset (its generation is lower, but it was stored later).
  assert.equal(header(inference(plugin, 0).forwarded, DEST), "10.0.0.1:8000");
  assert.equal(header(inference(plugin, 1).forwarded, DEST), "10.0.0.1:8000");
  // While the real sidecar keeps pushing, an older generation is still refused.
  clock.advance(50);
  assert.equal(push(plugin, snapshotBytes(103n, [{ address: "10.0.0.1" }])).reply?.status, 204);
  clock.advance(50);
  assert.equal(push(plugin, snapshotBytes(90n, [{ address: "10.0.0.9" }])).reply?.status, 409);
  await plugin.shutdown();
});

test("control token hygiene: a duplicated authorization header is refused; two tokens work during a rotation", async () => {
  const { plugin } = await load({ controlToken: ["old-token", "new-token"] });
  const g = snapshotBytes(1n, [{ address: "10.0.0.1" }]);
  const twice = send(
    plugin,
    [
      [":method", "POST"],
      [":path", "/epp/v1/snapshot"],
      [":authority", "gw"],
      ["authorization", "Bearer new-token"],
      ["authorization", "Bearer wrong"],
    ],
    g,
  );
  assert.equal(twice.reply?.status, 401);
  assert.match(errorJson(twice.reply).error.message, /more than one authorization header/);
  assert.equal(push(plugin, g, { token: "old-token" }).reply?.status, 204);
  assert.equal(
    push(plugin, snapshotBytes(2n, [{ address: "10.0.0.1" }]), { token: "new-token" }).reply?.status,
    204,
  );
  assert.equal(
    push(plugin, snapshotBytes(3n, [{ address: "10.0.0.1" }]), { token: "s3cret-token" }).reply?.status,
    401,
  );
  await plugin.shutdown();

  const env = await load({ controlTokenEnv: "EPP_CONTROL_TOKEN" }, undefined, {
    EPP_CONTROL_TOKEN: "a-token,b-token",
  });
  assert.equal(push(env.plugin, g, { token: "b-token" }).reply?.status, 204);
  await env.plugin.shutdown();
});

test("a non-default controlPath: the control path moves there, and the default path is an ordinary request", async () => {
  // README filter configuration: controlPath (default /epp/v1/snapshot), a path without a query.
  const { plugin } = await load({ controlPath: "/internal/epp-push" });
  const path = "/internal/epp-push?from=test";
  assert.equal(
    push(plugin, undefined, { path, method: "GET" }).reply?.status,
    405,
    "control semantics there",
  );
  assert.equal(push(plugin, undefined, { path, token: "wrong" }).reply?.status, 401);
  const stored = push(plugin, snapshotBytes(5n, [{ address: "10.0.0.5" }]), { path, worker: 1 });
  assert.equal(stored.reply?.status, 204, stored.reply && Buffer.from(stored.reply.body).toString("utf8"));
  assert.equal(header(stored.reply?.headers, "x-epp-snapshot-generation"), "5");
  // The default path is no longer the control path: a push there is not stored (and gets no 204).
  const elsewhere = push(plugin, snapshotBytes(6n, [{ address: "10.0.0.6" }]));
  assert.notEqual(elsewhere.reply?.status, 204);
  assert.equal(header(elsewhere.reply?.headers, "x-epp-snapshot-generation"), undefined);
  // Both workers route from the snapshot pushed to the configured path.
  for (const worker of [0, 1])
    assert.equal(header(inference(plugin, worker).forwarded, DEST), "10.0.0.5:8000");
  await plugin.shutdown();

  for (const bad of ["internal/epp-push", "/internal/epp-push?x=1", ""])
    await assert.rejects(load({ controlPath: bad }), PluginConfigError, `controlPath ${JSON.stringify(bad)}`);
});
