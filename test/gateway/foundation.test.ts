// The foundation, end to end: the real build/filter.wasm in the host behind the local gateway, two plain
// HTTP upstreams, and snapshots pushed through the control path.
import { test, before, after } from "node:test";
import http from "node:http";
import assert from "node:assert/strict";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";
import { startUpstream, type TestUpstream } from "../support/upstreams.ts";
import { withDeadline } from "../support/deadline.ts";

const TOKEN = "test-token";
const POOL = { namespace: "default", name: "pool-a" };

function snapshot(
  generation: bigint,
  eps: Array<{ port: number; waiting: number; running: number }>,
): Snapshot {
  return {
    generation,
    createdAtMs: Date.now(),
    pool: { ...POOL, failureMode: "FailClose", strictModels: false, targetPorts: [8000] },
    endpoints: eps.map((e, i) => ({
      podName: `pod-${i}`,
      address: "127.0.0.1",
      port: e.port,
      ready: true,
      stale: false,
      hasMetrics: true,
      engine: "vllm",
      metricsAgeMs: 10,
      waiting: e.waiting,
      running: e.running,
      kvUsage: 0.1,
      maxLoras: 0,
      kvBlockSize: 16,
      kvBlockCount: 1000,
      runningAdapters: [],
      waitingAdapters: [],
    })),
    models: [],
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
}

// ORIGINAL_DST parses the header as ONE ip:port, so the filter must write exactly one (no fallbacks);
// override_host takes the pick plus fallbacks and needs the cluster's endpoint set.
const ORIGINAL_DST = { destinationMode: "original_dst", maxFallbacks: 0 };
const OVERRIDE_HOST = { destinationMode: "override_host", maxFallbacks: 3 };

async function startGateway(
  failureMode: "FailOpen" | "FailClose",
  defaultUpstreams: string[] = [],
  overrideHostEndpoints?: string[],
) {
  const gw = new Gateway(
    normalizeConfig({
      listeners: [
        { name: "data", address: "127.0.0.1", port: 0 },
        { name: "control", address: "127.0.0.1", port: 0 },
      ],
      wasm: "build/filter.wasm",
      workers: 2,
      defaultUpstreams,
      ...(overrideHostEndpoints
        ? { cluster: { type: "override_host", endpoints: overrideHostEndpoints } }
        : {}),
      pluginConfig: {
        pool: POOL,
        controlToken: TOKEN,
        failureMode,
        staleAfterMs: 60_000,
        randomSeed: 7,
        ...(overrideHostEndpoints ? OVERRIDE_HOST : ORIGINAL_DST),
      },
    }),
  );
  await gw.start();
  const base = (name: string) => `http://127.0.0.1:${gw.listener(name).port}`;
  return { gw, data: base("data"), control: base("control") };
}

async function push(controlUrl: string, bytes: Uint8Array, token = TOKEN): Promise<Response> {
  return fetch(`${controlUrl}/epp/v1/snapshot`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/octet-stream" },
    body: new Uint8Array(bytes),
  });
}

async function sendMany(url: string, n: number, headers: Record<string, string> = {}) {
  const counts = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/v1/models`, { headers });
    const key = res.status === 200 ? (res.headers.get("x-upstream") ?? "?") : `status-${res.status}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    await res.arrayBuffer();
  }
  return counts;
}

let a: TestUpstream;
let b: TestUpstream;

before(async () => {
  a = await startUpstream("a");
  b = await startUpstream("b");
});

after(async () => {
  await a.close();
  await b.close();
});

test("routes to the least-loaded endpoint, follows newer snapshots, ignores corrupt ones and spoofed headers", async () => {
  const { gw, data, control } = await startGateway("FailClose");
  try {
    let res = await push(
      control,
      encodeSnapshot(
        snapshot(10n, [
          { port: a.port, waiting: 0, running: 1 },
          { port: b.port, waiting: 5, running: 9 },
        ]),
      ),
    );
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("x-epp-snapshot-generation"), "10");

    assert.deepEqual(await sendMany(data, 10), new Map([["a", 10]]));

    // A newer snapshot makes b the least loaded.
    res = await push(
      control,
      encodeSnapshot(
        snapshot(11n, [
          { port: a.port, waiting: 7, running: 9 },
          { port: b.port, waiting: 0, running: 0 },
        ]),
      ),
    );
    assert.equal(res.status, 204);
    assert.deepEqual(await sendMany(data, 10), new Map([["b", 10]]));

    // Corrupt snapshot: rejected, traffic unaffected.
    const corrupt = encodeSnapshot(snapshot(12n, [{ port: a.port, waiting: 0, running: 0 }]));
    corrupt[corrupt.length - 1] = corrupt[corrupt.length - 1]! ^ 0xff;
    res = await push(control, corrupt);
    assert.equal(res.status, 400);
    assert.deepEqual(await sendMany(data, 5), new Map([["b", 5]]));

    // An older generation is refused with 409 while the stored one is under 500 ms old (after that a
    // restarted sidecar's may take over), so it follows a fresh push of the same routing state.
    res = await push(
      control,
      encodeSnapshot(
        snapshot(12n, [
          { port: a.port, waiting: 7, running: 9 },
          { port: b.port, waiting: 0, running: 0 },
        ]),
      ),
    );
    assert.equal(res.status, 204);
    res = await push(control, encodeSnapshot(snapshot(9n, [{ port: a.port, waiting: 0, running: 0 }])));
    assert.equal(res.status, 409);

    // Wrong token → 401; the control request never reaches an upstream.
    const before = a.seen.length + b.seen.length;
    res = await push(
      control,
      encodeSnapshot(snapshot(13n, [{ port: a.port, waiting: 0, running: 0 }])),
      "nope",
    );
    assert.equal(res.status, 401);
    assert.equal(a.seen.length + b.seen.length, before);

    // A spoofed destination header still goes where the filter decides.
    assert.deepEqual(
      await sendMany(data, 5, { "x-gateway-destination-endpoint": a.address }),
      new Map([["b", 5]]),
    );
    const last = b.seen.at(-1)!;
    // ORIGINAL_DST: exactly one ip:port (Envoy parses the whole value as one address).
    assert.equal(last.headers["x-gateway-destination-endpoint"], b.address);
    assert.equal(gw.stats.get("original_dst_host_invalid"), 0);

    // The response names the endpoint that served it.
    const served = await fetch(`${data}/v1/models`);
    assert.equal(served.headers.get("x-gateway-destination-endpoint-served"), b.address);
    await served.arrayBuffer();
  } finally {
    await gw.stop();
  }
});

test("override_host: the header carries the pick then its fallbacks; the served header names the pick", async () => {
  const { gw, data, control } = await startGateway("FailClose", [], [a.address, b.address]);
  try {
    const snap = snapshot(3n, [
      { port: a.port, waiting: 6, running: 9 },
      { port: b.port, waiting: 0, running: 0 },
    ]);
    assert.equal((await push(control, encodeSnapshot(snap))).status, 204);
    assert.deepEqual(await sendMany(data, 5), new Map([["b", 5]]));
    // Best first, then the other pod as the fallback a retry would take.
    assert.equal(b.seen.at(-1)!.headers["x-gateway-destination-endpoint"], `${b.address},${a.address}`);
    const served = await fetch(`${data}/v1/models`);
    assert.equal(served.headers.get("x-gateway-destination-endpoint-served"), b.address);
    await served.arrayBuffer();
    assert.equal(gw.stats.get("override_host_selected"), 6);
    assert.equal(gw.stats.get("override_host_fallback"), 0);
  } finally {
    await gw.stop();
  }
});

test("a chunked body ending in trailers is routed; body, trailers and non-ASCII header bytes reach the pod", async () => {
  const { gw, data, control } = await startGateway("FailClose");
  try {
    const snap = snapshot(4n, [{ port: a.port, waiting: 0, running: 0 }]);
    assert.equal((await push(control, encodeSnapshot(snap))).status, 204);
    const seen = a.seen.length;
    const { status, upstream } = await withDeadline(
      new Promise<{ status: number; upstream: string }>((resolve, reject) => {
        const req = http.request(`${data}/v1/completions`, {
          method: "POST",
          // UTF-8 bytes of "café" (Node writes header strings as latin1): they must reach the pod unchanged.
          headers: { "content-type": "application/json", trailer: "x-checksum", "x-note": "cafÃ©" },
        });
        req.on("response", (res) => {
          res.resume();
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, upstream: String(res.headers["x-upstream"]) }),
          );
        });
        req.on("error", reject);
        req.write('{"model":"m",');
        req.write('"prompt":"hi","max_tokens":1}');
        req.addTrailers({ "x-checksum": "abc" });
        req.end();
      }),
      10_000,
      "the chunked request's response",
    );
    assert.equal(status, 200);
    assert.equal(upstream, "a");
    assert.equal(a.seen.length, seen + 1);
    assert.equal(a.seen.at(-1)!.body, '{"model":"m","prompt":"hi","max_tokens":1}');
    assert.deepEqual(a.seen.at(-1)!.trailers, { "x-checksum": "abc" });
    assert.equal(a.seen.at(-1)!.headers["x-note"], "cafÃ©");
  } finally {
    await gw.stop();
  }
});

test("without a snapshot FailClose answers 503 with an OpenAI-style error", async () => {
  const { gw, data } = await startGateway("FailClose", [`http://${a.address}`]);
  try {
    const seenBefore = a.seen.length;
    const res = await fetch(`${data}/v1/models`);
    assert.equal(res.status, 503);
    const body = (await res.json()) as { error: { message: string } };
    assert.equal(typeof body.error.message, "string");
    assert.equal(a.seen.length, seenBefore, "FailClose must not fall back to the default upstream");
  } finally {
    await gw.stop();
  }
});

test("without a snapshot FailOpen passes through to the default upstream", async () => {
  const { gw, data } = await startGateway("FailOpen", [`http://${a.address}`]);
  try {
    const counts = await sendMany(data, 3);
    assert.deepEqual(counts, new Map([["a", 3]]));
  } finally {
    await gw.stop();
  }
});

test("no ready endpoint gives 503", async () => {
  const { gw, data, control } = await startGateway("FailClose");
  try {
    const snap = snapshot(5n, [{ port: a.port, waiting: 0, running: 0 }]);
    snap.endpoints[0]!.ready = false;
    assert.equal((await push(control, encodeSnapshot(snap))).status, 204);
    const res = await fetch(`${data}/v1/models`);
    assert.equal(res.status, 503);
    await res.arrayBuffer();
  } finally {
    await gw.stop();
  }
});
