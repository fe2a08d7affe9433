// Envoy runs every plugin with the same vm_id and code in ONE VM per worker, each plugin with its own
// root context (proxy-wasm-cpp-host getOrCreateThreadLocalWasm). The control listener's plugin and the
// data listener's plugin must share the VM (for shared data) without sharing configuration or pool state.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EnvoyProcess, VirtualClock } from "../../host/index.ts";
import type { HeaderList, LocalReply, WasmPlugin } from "../../host/index.ts";
import { CREATED_MS, snapshotBytesWith } from "../support/snapshot-fixture.ts";

const WASM = readFileSync(
  process.env.EPP_TEST_FILTER_WASM ?? new URL("../../build/filter.wasm", import.meta.url),
);
const TOKEN = "control-token";
const DEST = "x-gateway-destination-endpoint";

function snapshot(generation: number, pool: string, addresses: string[]): Uint8Array {
  return snapshotBytesWith({
    generation,
    pool: { name: pool },
    endpoints: addresses.map((address) => ({ address })),
  });
}

interface Outcome {
  reply?: LocalReply;
  forwarded?: HeaderList;
}

/** Starts a request on `worker`; the stream stays open (in flight) until `end` is called. */
function open(
  plugin: WasmPlugin,
  path: string,
  worker: number,
  extra: HeaderList = [],
  body?: Uint8Array,
): Outcome & { end(): void } {
  const out: Outcome = {};
  const s = plugin.newHttpStream(
    {
      forwardRequestHeaders: (h) => (out.forwarded = h),
      forwardRequestData: () => {},
      forwardResponseHeaders: () => {},
      forwardResponseData: () => {},
      localReply: (r) => (out.reply = r),
    },
    { worker },
  );
  s.decodeHeaders(
    [[":method", "POST"], [":path", path], [":authority", "gw"], [":scheme", "http"], ...extra],
    body === undefined,
  );
  if (body !== undefined && !out.reply) s.decodeData(body, true);
  return Object.assign(out, { end: () => s.destroy() });
}

function push(control: WasmPlugin, bytes: Uint8Array, worker = 0): number | undefined {
  const o = open(control, "/epp/v1/snapshot", worker, [["authorization", `Bearer ${TOKEN}`]], bytes);
  o.end();
  return o.reply?.status;
}

const header = (h: HeaderList | undefined, name: string) => h?.find(([k]) => k === name)?.[1];

test("data and control plugins share one VM per worker and keep their own configuration and pool state", async () => {
  const proc = new EnvoyProcess({ clock: new VirtualClock(BigInt(CREATED_MS) * 1_000_000n) });
  const common = { vmId: "epp", workers: 2, allowOnHeadersStopIteration: true };
  // The data listener: override_host with one fallback, and no control path.
  const data = await proc.loadPlugin(WASM, {
    ...common,
    name: "epp-data",
    rootId: "epp",
    configuration: JSON.stringify({
      pool: { namespace: "default", name: "pool-a" },
      destinationMode: "override_host",
      maxFallbacks: 1,
      randomSeed: 3,
    }),
  });
  // The control listener, configured last: one destination, and the token.
  let control = await proc.loadPlugin(WASM, {
    ...common,
    name: "epp-control",
    rootId: "epp",
    configuration: JSON.stringify({
      pool: { namespace: "default", name: "pool-a" },
      controlToken: TOKEN,
      destinationMode: "original_dst",
      randomSeed: 4,
    }),
  });
  const vms = (p: WasmPlugin) => (p as unknown as { vms: object[] }).vms;
  assert.equal(proc.vmCount, 2, "two workers, one VM each, shared by both plugins");
  assert.ok(vms(data).every((vm, i) => vm === vms(control)[i]));

  assert.equal(push(control, snapshot(1, "pool-a", ["10.0.0.1", "10.0.0.2"])), 204);

  // The data plugin writes its own list shape, although the control plugin configured after it.
  const first = open(data, "/v1/models", 0);
  const list = header(first.forwarded, DEST)?.split(",") ?? [];
  assert.equal(list.length, 2, `override_host list with one fallback: ${header(first.forwarded, DEST)}`);

  // The control path is not served by the data plugin: it routes like any other path.
  const spoof = open(
    data,
    "/epp/v1/snapshot",
    0,
    [["authorization", `Bearer ${TOKEN}`]],
    snapshot(9, "pool-a", ["10.9.9.9"]),
  );
  spoof.end();
  assert.equal(spoof.reply, undefined, "no local reply: not a control request on this listener");
  assert.ok(spoof.forwarded, "forwarded upstream as an ordinary request");
  assert.doesNotMatch(header(spoof.forwarded, DEST) ?? "", /10\.9\.9\.9/);

  // Reconfigure the control listener (a listener update: a new plugin, then the old one leaves).
  const next = await proc.loadPlugin(WASM, {
    ...common,
    name: "epp-control",
    rootId: "epp",
    configuration: JSON.stringify({
      pool: { namespace: "default", name: "pool-a" },
      controlToken: TOKEN,
      destinationMode: "original_dst",
      randomSeed: 5,
    }),
  });
  await control.shutdown();
  control = next;
  assert.equal(proc.vmCount, 2, "still the same two VMs");

  // The data plugin's pool state survived: the request still open on 10.0.0.x counts as in flight,
  // so the next pick on the same worker goes to the other endpoint, with the data plugin's list shape.
  const second = open(data, "/v1/models", 0);
  const list2 = header(second.forwarded, DEST)?.split(",") ?? [];
  assert.equal(list2.length, 2);
  assert.notEqual(list2[0], list[0], "the in-flight request on the first pick still counts");
  first.end();
  second.end();

  // The control plugin kept its own configuration: one destination on its (rarely used) data path.
  const viaControl = open(control, "/v1/models", 1);
  viaControl.end();
  assert.equal(header(viaControl.forwarded, DEST)?.split(",").length, 1);
  assert.equal(push(control, snapshot(2, "pool-a", ["10.0.0.3"]), 1), 204);
  const after = open(data, "/v1/models", 1);
  after.end();
  assert.equal(header(after.forwarded, DEST), "10.0.0.3:8000");

  await data.shutdown();
  await control.shutdown();
  assert.equal(proc.vmCount, 0, "the VMs go with the last plugin");
});

test("two data plugins for different pools in one VM route each to its own pool", async () => {
  const proc = new EnvoyProcess({ clock: new VirtualClock(BigInt(CREATED_MS) * 1_000_000n) });
  const load = (pool: string) =>
    proc.loadPlugin(WASM, {
      vmId: "epp",
      workers: 1,
      allowOnHeadersStopIteration: true,
      configuration: JSON.stringify({
        pool: { namespace: "default", name: pool },
        controlToken: TOKEN,
        randomSeed: 1,
      }),
    });
  const a = await load("pool-a");
  const b = await load("pool-b");
  assert.equal(proc.vmCount, 1);
  assert.equal(push(a, snapshot(1, "pool-a", ["10.0.1.1"])), 204);
  assert.equal(push(b, snapshot(1, "pool-b", ["10.0.2.1"])), 204);
  for (let i = 0; i < 3; i++) {
    const ra = open(a, "/v1/models", 0);
    const rb = open(b, "/v1/models", 0);
    ra.end();
    rb.end();
    assert.equal(header(ra.forwarded, DEST), "10.0.1.1:8000");
    assert.equal(header(rb.forwarded, DEST), "10.0.2.1:8000");
  }
  await a.shutdown();
  await b.shutdown();
});
