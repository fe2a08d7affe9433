// The real build/filter.wasm past staleAfterMs (staleMode route: routes on the last snapshot's ready
// endpoints by this worker's in-flight counts; staleMode fail: the old 503) and the health path that a
// readiness probe on the Envoy pod asks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadFilterPlugin } from "../support/filter-plugin.ts";
import type { HeaderList, HttpStream, LocalReply, WasmPlugin } from "../../host/index.ts";
import { snapshotBytesWith, type EndpointFixture } from "../support/snapshot-fixture.ts";

const TOKEN = "s3cret-token";
const DEST = "x-gateway-destination-endpoint";
const STATE = "x-epp-snapshot-state";
const STALE_AFTER_MS = 1000;

function snapshotBytes(generation: bigint, endpoints: EndpointFixture[]): Uint8Array {
  return snapshotBytesWith({ generation, endpoints });
}

interface Outcome {
  reply?: LocalReply;
  forwarded?: HeaderList;
  response?: HeaderList;
  stream: HttpStream;
}

function header(h: HeaderList | undefined, name: string): string | undefined {
  return h?.find(([k]) => k === name)?.[1];
}

/** Starts a request; `open` leaves it in flight (the caller ends it with finish()). */
function send(plugin: WasmPlugin, headers: HeaderList, body?: Uint8Array, open = false): Outcome {
  const cbs = {
    forwardRequestHeaders: (h: HeaderList) => (out.forwarded = h),
    forwardRequestData: () => {},
    forwardResponseHeaders: (h: HeaderList) => (out.response = h),
    forwardResponseData: () => {},
    localReply: (r: LocalReply) => (out.reply = r),
  };
  const out: Outcome = { stream: plugin.newHttpStream(cbs, { worker: 0 }) };
  out.stream.decodeHeaders(headers, body === undefined);
  if (body !== undefined && !out.reply) out.stream.decodeData(body, true);
  if (out.forwarded && !out.reply) out.stream.encodeHeaders([[":status", "200"]], true);
  if (!open) out.stream.destroy();
  return out;
}

function push(plugin: WasmPlugin, bytes: Uint8Array): number | undefined {
  const h: HeaderList = [
    [":method", "POST"],
    [":path", "/epp/v1/snapshot"],
    [":authority", "gw"],
    [":scheme", "http"],
    ["authorization", `Bearer ${TOKEN}`],
  ];
  return send(plugin, h, bytes).reply?.status;
}

function inference(plugin: WasmPlugin, open = false): Outcome {
  return send(
    plugin,
    [
      [":method", "POST"],
      [":path", "/v1/completions"],
      [":authority", "gw"],
      [":scheme", "http"],
    ],
    undefined,
    open,
  );
}

function health(plugin: WasmPlugin, path = "/epp/healthz"): { status: number; body: Record<string, string> } {
  const o = send(plugin, [
    [":method", "GET"],
    [":path", path],
    [":authority", "10.1.2.3:8081"],
    [":scheme", "http"],
  ]);
  assert.ok(o.reply, "the health path is answered locally");
  assert.equal(header(o.reply.headers, "content-type"), "application/json");
  return {
    status: o.reply.status,
    body: JSON.parse(new TextDecoder().decode(o.reply.body)) as Record<string, string>,
  };
}

function load(config: Record<string, unknown> = {}) {
  return loadFilterPlugin({
    controlToken: TOKEN,
    randomSeed: 1,
    destinationMode: "original_dst",
    staleAfterMs: STALE_AFTER_MS,
    debugHeaders: true,
    ...config,
  });
}

const FOUR: EndpointFixture[] = [
  // Old figures that would send everything to 10.0.0.1 if they still counted.
  { address: "10.0.0.1", waiting: 0, running: 0 },
  { address: "10.0.0.2", waiting: 50, running: 60, kvUsage: 0.9 },
  { address: "10.0.0.3", waiting: 50, running: 60, kvUsage: 0.9 },
  { address: "10.0.0.4", waiting: 0, ready: false },
];

test("staleMode route (default): past staleAfterMs requests still route, spread by this worker's in-flight counts", async () => {
  const { plugin, clock } = await load();
  assert.equal(push(plugin, snapshotBytes(1n, FOUR)), 204);
  const fresh = inference(plugin);
  assert.equal(header(fresh.forwarded, DEST), "10.0.0.1:8000", "fresh: the scraped figures decide");
  assert.equal(header(fresh.response, STATE), "fresh");

  clock.advance(STALE_AFTER_MS + 1);
  const open: Outcome[] = [];
  for (let i = 0; i < 9; i++) open.push(inference(plugin, true));
  const counts = new Map<string, number>();
  for (const o of open) {
    assert.equal(o.reply, undefined, "never failed for staleness");
    const d = header(o.forwarded, DEST)!;
    counts.set(d, (counts.get(d) ?? 0) + 1);
    assert.equal(header(o.response, STATE), "stale");
  }
  // Least request over the ready endpoints: 3 each; the not-ready one is never picked.
  assert.deepEqual([...counts.entries()].sort(), [
    ["10.0.0.1:8000", 3],
    ["10.0.0.2:8000", 3],
    ["10.0.0.3:8000", 3],
  ]);
  // Ending the requests on 10.0.0.2 makes it the least loaded.
  for (const o of open) if (header(o.forwarded, DEST) === "10.0.0.2:8000") o.stream.destroy();
  const next = inference(plugin, true);
  assert.equal(header(next.forwarded, DEST), "10.0.0.2:8000");
  for (const o of [...open, next]) o.stream.destroy();

  // A new snapshot is fresh again and its figures count again.
  assert.equal(push(plugin, snapshotBytes(2n, FOUR)), 204);
  const back = inference(plugin);
  assert.equal(header(back.forwarded, DEST), "10.0.0.1:8000");
  assert.equal(header(back.response, STATE), "fresh");
  await plugin.shutdown();
});

test("staleMode route: 60 s of virtual time without a sidecar under steady requests has zero failures", async () => {
  const { plugin, clock } = await load({ staleAfterMs: 5000 });
  assert.equal(push(plugin, snapshotBytes(1n, FOUR)), 204);
  let failures = 0;
  let stale = 0;
  const open: Outcome[] = [];
  for (let ms = 0; ms < 60_000; ms += 20) {
    clock.advance(20);
    const o = inference(plugin, true);
    if (o.reply || !o.forwarded) failures++;
    if (header(o.response, STATE) === "stale") stale++;
    open.push(o);
    // Each request lasts about 200 ms.
    if (open.length > 10) open.shift()!.stream.destroy();
  }
  for (const o of open) o.stream.destroy();
  assert.equal(failures, 0);
  assert.equal(stale, (60_000 - 5000) / 20, "every request after 5 s was routed on the stale snapshot");
  await plugin.shutdown();
});

test("staleMode fail keeps the old behaviour: 503 stale_snapshot, or pass-through with FailOpen", async () => {
  const closed = await load({ staleMode: "fail" });
  assert.equal(push(closed.plugin, snapshotBytes(1n, FOUR)), 204);
  closed.clock.advance(STALE_AFTER_MS);
  assert.equal(header(inference(closed.plugin).forwarded, DEST), "10.0.0.1:8000");
  closed.clock.advance(1);
  const r = inference(closed.plugin);
  assert.equal(r.reply?.status, 503);
  const err = JSON.parse(new TextDecoder().decode(r.reply?.body)) as { error: { code: string } };
  assert.equal(err.error.code, "stale_snapshot");
  await closed.plugin.shutdown();

  const open = await load({ staleMode: "fail", failureMode: "FailOpen" });
  assert.equal(push(open.plugin, snapshotBytes(1n, FOUR)), 204);
  open.clock.advance(STALE_AFTER_MS + 1);
  const o = inference(open.plugin);
  assert.equal(o.reply, undefined);
  assert.equal(header(o.forwarded, DEST), undefined, "passed through without a pick");
  assert.equal(header(o.response, STATE), undefined);
  await open.plugin.shutdown();
});

test("no snapshot at all still follows failureMode, whatever staleMode says", async () => {
  const { plugin } = await load({ staleMode: "route" });
  const r = inference(plugin);
  assert.equal(r.reply?.status, 503);
  assert.match(new TextDecoder().decode(r.reply?.body), /no_snapshot/);
  await plugin.shutdown();
});

test("without debugHeaders no snapshot-state header is added", async () => {
  const { plugin } = await load({ debugHeaders: false });
  assert.equal(push(plugin, snapshotBytes(1n, FOUR)), 204);
  const o = inference(plugin);
  assert.ok(o.forwarded);
  assert.equal(header(o.response, STATE), undefined);
  await plugin.shutdown();
});

test("healthPath: 503 before the first snapshot, 200 with one (fresh, or stale under staleMode route)", async () => {
  const { plugin, clock } = await load({ healthPath: "/epp/healthz" });
  const before = health(plugin);
  assert.equal(before.status, 503);
  assert.equal(before.body.reason, "no_snapshot");
  assert.equal(before.body.pool, "default/pool-a");
  assert.equal(push(plugin, snapshotBytes(7n, FOUR)), 204);
  assert.deepEqual(health(plugin).body, {
    status: "ready",
    snapshot: "fresh",
    pool: "default/pool-a",
    generation: "7",
  });
  assert.equal(health(plugin, "/epp/healthz?probe=1").status, 200, "a query does not matter");
  clock.advance(STALE_AFTER_MS + 1);
  const stale = health(plugin);
  assert.equal(stale.status, 200);
  assert.equal(stale.body.snapshot, "stale");
  await plugin.shutdown();

  const strict = await load({ healthPath: "/epp/healthz", staleMode: "fail" });
  assert.equal(push(strict.plugin, snapshotBytes(1n, FOUR)), 204);
  assert.equal(health(strict.plugin).status, 200);
  strict.clock.advance(STALE_AFTER_MS + 1);
  const h = health(strict.plugin);
  assert.equal(h.status, 503);
  assert.equal(h.body.reason, "stale_snapshot");
  await strict.plugin.shutdown();
});

test("without healthPath the path routes like any other request", async () => {
  const { plugin } = await load();
  assert.equal(push(plugin, snapshotBytes(1n, FOUR)), 204);
  const o = send(plugin, [
    [":method", "GET"],
    [":path", "/epp/healthz"],
    [":authority", "gw"],
    [":scheme", "http"],
  ]);
  assert.equal(o.reply, undefined);
  assert.equal(header(o.forwarded, DEST), "10.0.0.1:8000");
  await plugin.shutdown();
});
