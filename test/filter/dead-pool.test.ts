// Dead pools: the real build/filter.wasm learns connect failures from what Envoy reports in on_log
// (`response.flags` UF, `upstream.address`), avoids an endpoint that failed within failedConnectWindowMs
// while others are fine, and answers 503 no_reachable_endpoint at once when every ready endpoint failed.
// The host's response.flags / response.code_details properties are checked with a puppet module.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadFilterPlugin } from "../support/filter-plugin.ts";
import type { HeaderList, HttpStream, LocalReply, WasmPlugin } from "../../host/index.ts";
import { ResponseFlag } from "../../host/types.ts";
import { loadPuppet, newEnvoy } from "../host/puppet.ts";
import { REQ, recorder } from "../host/recorder.ts";
import { snapshotBytesWith } from "../support/snapshot-fixture.ts";

const TOKEN = "s3cret-token";
const DEST = "x-gateway-destination-endpoint";
const UF = ResponseFlag.UpstreamConnectionFailure;
const URX = ResponseFlag.UpstreamRetryLimitExceeded;
const REFUSED =
  "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}";

function snapshotBytes(generation: bigint, addresses: string[], waiting: number[] = []): Uint8Array {
  return snapshotBytesWith({
    generation,
    endpoints: addresses.map((address, i) => ({ address, waiting: waiting[i] ?? 0 })),
  });
}

function header(h: HeaderList | undefined, name: string): string | undefined {
  return h?.find(([k]) => k === name)?.[1];
}

interface Outcome {
  reply?: LocalReply;
  forwarded?: HeaderList;
  stream: HttpStream;
}

function start(plugin: WasmPlugin, headers: HeaderList, body?: Uint8Array): Outcome {
  const out: Outcome = {
    stream: plugin.newHttpStream(
      {
        forwardRequestHeaders: (h: HeaderList) => (out.forwarded = h),
        forwardRequestData: () => {},
        forwardResponseHeaders: () => {},
        forwardResponseData: () => {},
        localReply: (r: LocalReply) => (out.reply = r),
      },
      { worker: 0 },
    ),
  };
  out.stream.decodeHeaders(headers, body === undefined);
  if (body !== undefined && !out.reply) out.stream.decodeData(body, true);
  return out;
}

function push(plugin: WasmPlugin, bytes: Uint8Array): number | undefined {
  const o = start(
    plugin,
    [
      [":method", "POST"],
      [":path", "/epp/v1/snapshot"],
      [":authority", "gw"],
      [":scheme", "http"],
      ["authorization", `Bearer ${TOKEN}`],
    ],
    bytes,
  );
  o.stream.destroy();
  return o.reply?.status;
}

type Attempt = { host: string; ok: boolean };

/**
 * One inference request played the way the gateway's router plays it: each attempt sets the upstream
 * host; a failed last attempt ends in the router's 503 with UF (and URX when retries ran out); a served
 * one in the upstream's 200. Returns the destination list the filter wrote, or its local reply.
 */
function request(plugin: WasmPlugin, attempts: (dest: string[]) => Attempt[]): Outcome {
  const o = begin(plugin);
  if (o.forwarded) finish(o, attempts(header(o.forwarded, DEST)!.split(",")));
  else o.stream.destroy();
  return o;
}

/** The request's headers reach the filter (it picks or replies); the upstream side comes in finish(). */
function begin(plugin: WasmPlugin): Outcome {
  return start(plugin, [
    [":method", "POST"],
    [":path", "/v1/completions"],
    [":authority", "gw"],
    [":scheme", "http"],
  ]);
}

function finish(o: Outcome, plan: Attempt[]): void {
  for (const a of plan) o.stream.setUpstreamHost(a.host, 8000);
  const last = plan[plan.length - 1]!;
  if (last.ok) {
    o.stream.setResponseInfo({ details: "via_upstream" });
    o.stream.encodeHeaders([[":status", "200"]], true);
  } else {
    o.stream.setResponseInfo({ flags: UF | (plan.length > 1 ? URX : 0), details: REFUSED });
    o.stream.encodeHeaders(
      [
        [":status", "503"],
        ["content-type", "text/plain"],
      ],
      true,
    );
  }
  o.stream.destroy();
}

const host = (hp: string) => hp.slice(0, hp.lastIndexOf(":"));
/** The pick fails to connect (no retry). */
const pickFails = (d: string[]): Attempt[] => [{ host: host(d[0]!), ok: false }];
/** The pick answers. */
const pickAnswers = (d: string[]): Attempt[] => [{ host: host(d[0]!), ok: true }];

function load(config: Record<string, unknown> = {}) {
  return loadFilterPlugin({
    controlToken: TOKEN,
    randomSeed: 1,
    destinationMode: "original_dst",
    staleAfterMs: 0,
    ...config,
  });
}

const THREE = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];

test("host: response.flags is Envoy's int64 legacy flags (0 until set, bits accumulate); code_details a string", async () => {
  const seen: Array<[string, number, string]> = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_response_headers: (g) => {
      const f = g.property("response\0flags");
      const d = g.property("response\0code_details");
      const n = f.r === 0 ? new DataView(f.data.buffer, f.data.byteOffset).getBigInt64(0, true) : -1n;
      seen.push(["headers", f.r, `${f.data.length} ${n} ${d.r} ${g.text(d.data)}`]);
      return 0;
    },
    proxy_on_log: (g) => {
      const f = g.property("response\0flags");
      const n = new DataView(f.data.buffer, f.data.byteOffset).getBigInt64(0, true);
      seen.push(["log", f.r, `${n} ${g.text(g.property("response\0code_details").data)}`]);
    },
  });
  const ok = plugin.newHttpStream(recorder());
  ok.decodeHeaders(REQ, true);
  ok.setResponseInfo({ details: "via_upstream" });
  ok.encodeHeaders([[":status", "200"]], true);
  ok.destroy();
  const failed = plugin.newHttpStream(recorder());
  failed.decodeHeaders(REQ, true);
  failed.setResponseInfo({ flags: URX });
  failed.setResponseInfo({ flags: UF, details: REFUSED });
  failed.encodeHeaders([[":status", "503"]], true);
  failed.destroy();
  assert.deepEqual(seen, [
    ["headers", 0, "8 0 0 via_upstream"],
    ["log", 0, "0 via_upstream"],
    ["headers", 0, `8 ${UF | URX} 0 ${REFUSED}`],
    ["log", 0, `${UF | URX} ${REFUSED}`],
  ]);
  assert.equal(UF | URX, 32 + 32768, "UF = bit 5, URX = bit 15 (CoreResponseFlag order)");
  await plugin.shutdown();
});

test("host: a local reply's details are response.code_details (sendLocalReply sets them first)", async () => {
  const seen: string[] = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (g) => {
      g.sendLocalResponse(429, "epp_request_shed", "");
      return 1;
    },
    proxy_on_response_headers: (g) => {
      seen.push(g.text(g.property("response\0code_details").data));
      return 0;
    },
  });
  const s = plugin.newHttpStream(recorder());
  s.decodeHeaders(REQ, true);
  s.destroy();
  assert.deepEqual(seen, ["epp_request_shed"]);
  await plugin.shutdown();
});

test("an endpoint whose connect failed is avoided for the window while others are fine; after it, it is picked again", async () => {
  const { plugin, clock } = await load();
  // 10.0.0.1 is the clear favourite by load.
  assert.equal(push(plugin, snapshotBytes(1n, THREE, [0, 20, 20])), 204);
  const first = request(plugin, pickFails);
  assert.equal(header(first.forwarded, DEST), "10.0.0.1:8000");
  for (let i = 0; i < 20; i++) {
    clock.advance(40);
    const o = request(plugin, pickAnswers);
    assert.notEqual(
      header(o.forwarded, DEST),
      "10.0.0.1:8000",
      `request ${i}: the failed endpoint is avoided`,
    );
  }
  clock.advance(200); // 1000 ms since the failure
  const after = request(plugin, pickAnswers);
  assert.equal(header(after.forwarded, DEST), "10.0.0.1:8000", "the window is over");
  await plugin.shutdown();
});

test("a success clears the mark at once: a request already in flight to the endpoint answers", async () => {
  const { plugin, clock } = await load();
  assert.equal(push(plugin, snapshotBytes(1n, THREE, [0, 50, 50])), 204);
  const r1 = begin(plugin);
  const r2 = begin(plugin);
  assert.equal(header(r1.forwarded, DEST), "10.0.0.1:8000");
  assert.equal(header(r2.forwarded, DEST), "10.0.0.1:8000");
  finish(r1, pickFails(["10.0.0.1:8000"]));
  clock.advance(10);
  assert.notEqual(header(request(plugin, pickAnswers).forwarded, DEST), "10.0.0.1:8000", "marked");
  finish(r2, pickAnswers(["10.0.0.1:8000"]));
  clock.advance(10);
  assert.equal(
    header(request(plugin, pickAnswers).forwarded, DEST),
    "10.0.0.1:8000",
    "cleared by r2's answer",
  );
  await plugin.shutdown();
});

test("every ready endpoint failed within the window: 503 no_reachable_endpoint at once, routing resumes after it", async () => {
  const { plugin, clock } = await load();
  assert.equal(push(plugin, snapshotBytes(1n, ["10.0.0.1", "10.0.0.2"], [0, 20])), 204);
  assert.equal(header(request(plugin, pickFails).forwarded, DEST), "10.0.0.1:8000");
  clock.advance(100);
  assert.equal(header(request(plugin, pickFails).forwarded, DEST), "10.0.0.2:8000", "the other one is tried");
  clock.advance(100);
  for (let i = 0; i < 5; i++) {
    const o = request(plugin, () => assert.fail("no request may be routed into a dead pool"));
    assert.equal(o.forwarded, undefined);
    assert.equal(o.reply?.status, 503);
    assert.equal(o.reply?.details, "epp_no_reachable_endpoint");
    assert.equal(header(o.reply?.headers, "retry-after"), "1");
    assert.equal(header(o.reply?.headers, "content-type"), "application/json");
    const body = JSON.parse(new TextDecoder().decode(o.reply!.body)) as {
      error: { code: string; message: string };
    };
    assert.equal(body.error.code, "no_reachable_endpoint");
    assert.match(body.error.message, /default\/pool-a.*1000 ms/);
    clock.advance(100);
  }
  // 10.0.0.1's mark is 1000 ms old now (10.0.0.2's is 900): routing resumes on it.
  clock.advance(300);
  const back = request(plugin, pickAnswers);
  assert.equal(header(back.forwarded, DEST), "10.0.0.1:8000");
  await plugin.shutdown();
});

test("override_host: the retries that passed over list entries mark them, the served one answered", async () => {
  const { plugin } = await load({ destinationMode: "override_host", maxFallbacks: 3 });
  assert.equal(push(plugin, snapshotBytes(1n, THREE, [0, 10, 20])), 204);
  let list: string[] = [];
  const o = request(plugin, (d) => {
    list = d;
    // The pick refused, the first fallback answered.
    return [
      { host: host(d[0]!), ok: false },
      { host: host(d[1]!), ok: true },
    ];
  });
  assert.ok(o.forwarded);
  for (let i = 0; i < 5; i++) {
    const next = request(plugin, pickAnswers);
    const d = header(next.forwarded, DEST)!.split(",");
    assert.ok(!d.includes(list[0]!), `request ${i}: the passed-over ${list[0]} is neither pick nor fallback`);
  }
  await plugin.shutdown();
});

test("override_host: a request whose every attempt failed (UF+URX) marks every entry it tried", async () => {
  const { plugin } = await load({ destinationMode: "override_host", maxFallbacks: 1 });
  assert.equal(push(plugin, snapshotBytes(1n, ["10.0.0.1", "10.0.0.2"], [0, 20])), 204);
  request(plugin, (d) => d.map((hp) => ({ host: host(hp), ok: false })));
  const o = request(plugin, () => assert.fail("not routed"));
  assert.equal(o.reply?.status, 503);
  assert.equal(o.reply?.details, "epp_no_reachable_endpoint");
  await plugin.shutdown();
});

test("failedConnectWindowMs 0 turns it off; a negative or huge value is refused", async () => {
  const { plugin } = await load({ failedConnectWindowMs: 0 });
  assert.equal(push(plugin, snapshotBytes(1n, ["10.0.0.1"])), 204);
  request(plugin, pickFails);
  assert.equal(header(request(plugin, pickFails).forwarded, DEST), "10.0.0.1:8000", "still routed");
  await plugin.shutdown();
  for (const bad of [-1, 1.5, 3_600_001, "1000"]) {
    await assert.rejects(load({ failedConnectWindowMs: bad }), `failedConnectWindowMs ${bad}`);
  }
});
