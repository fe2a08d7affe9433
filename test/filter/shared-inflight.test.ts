// `sharedInflight`: worker VMs with one vm_id share their in-flight counts through shared data
// (assembly/shared-inflight.ts). Endpoint A is idle and B has 3 waiting; worker 0 keeps 3 requests open on
// A, so A's load (3 + their prompt tokens) is just above B's, which only worker 0 knows unless shared.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { HeaderList, LocalReply, WasmPlugin } from "../../host/index.ts";
import { loadFilterPlugin } from "../support/filter-plugin.ts";
import { CREATED_MS, snapshotBytesWith } from "../support/snapshot-fixture.ts";

const TOKEN = "control-token";
const A = "10.0.0.1:8000";
const B = "10.0.0.2:8000";
const PREFIX = "epp.v1/default/pool-a/";

function snapshot(generation: number, waiting: [number, number], shared: boolean, createdAtMs = CREATED_MS) {
  return snapshotBytesWith({
    generation,
    createdAtMs,
    endpoints: [
      { address: "10.0.0.1", waiting: waiting[0] },
      { address: "10.0.0.2", waiting: waiting[1] },
    ],
    scheduler: { profile: "default", params: { sharedInflight: shared ? 1 : 0 } },
  });
}

interface Open {
  reply?: LocalReply;
  dest?: string;
  end(): void;
}

let n = 0;
function open(
  plugin: WasmPlugin,
  worker: number,
  path = "/v1/chat/completions",
  body?: Uint8Array,
  extra: HeaderList = [],
): Open {
  const out: { reply?: LocalReply; forwarded?: HeaderList } = {};
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
  // Distinct short prompts: no prefix or affinity preference between the two pods.
  const data =
    body ??
    new TextEncoder().encode(
      JSON.stringify({ model: "m", messages: [{ role: "user", content: `q${n++}` }] }),
    );
  s.decodeHeaders(
    [
      [":method", "POST"],
      [":path", path],
      [":authority", "gw"],
      [":scheme", "http"],
      ["content-type", "application/json"],
      ...extra,
    ],
    false,
  );
  if (!out.reply) s.decodeData(data, true);
  return {
    get reply() {
      return out.reply;
    },
    get dest() {
      return out.forwarded?.find(([k]) => k === "x-gateway-destination-endpoint")?.[1]?.split(",")[0];
    },
    end: () => s.destroy(),
  };
}

function push(plugin: WasmPlugin, bytes: Uint8Array): void {
  const o = open(plugin, 0, "/epp/v1/snapshot", bytes, [["authorization", `Bearer ${TOKEN}`]]);
  o.end();
  assert.equal(o.reply?.status, 204);
}

function start(workers: number) {
  return loadFilterPlugin({ controlToken: TOKEN, staleAfterMs: 0, randomSeed: 7 }, workers);
}

/** Worker 0 fills A with 3 open requests; returns them. */
function fillA(plugin: WasmPlugin): Open[] {
  const held = [0, 1, 2].map(() => open(plugin, 0));
  assert.deepEqual(
    held.map((o) => o.dest),
    [A, A, A],
  );
  return held;
}

for (const shared of [false, true]) {
  test(`another worker's dispatches ${shared ? "count" : "do not count"} with sharedInflight ${shared ? "on" : "off"}`, async () => {
    const { plugin } = await start(2);
    push(plugin, snapshot(1, [0, 3], shared));
    // Each worker adopts the snapshot (and, when shared, registers); 1 finds 0 in the directory.
    open(plugin, 0).end();
    open(plugin, 1).end();
    const held = fillA(plugin);
    const seen = open(plugin, 1);
    assert.equal(seen.dest, shared ? B : A);
    seen.end();
    await plugin.shutdown();
    for (const o of held) o.end();
  });
}

test("a worker that registered after another's last directory read is seen within a second", async () => {
  const { clock, plugin } = await start(2);
  push(plugin, snapshot(1, [0, 3], true));
  open(plugin, 1).end(); // worker 1 reads the directory before worker 0 is in it
  const held = fillA(plugin);
  const early = open(plugin, 1);
  assert.equal(early.dest, A);
  early.end();
  clock.advance(1000);
  const late = open(plugin, 1);
  assert.equal(late.dest, B);
  late.end();
  for (const o of held) o.end();
  await plugin.shutdown();
});

test("a completion on one worker clears its count for the others", async () => {
  const { plugin } = await start(2);
  push(plugin, snapshot(1, [0, 3], true));
  open(plugin, 0).end();
  open(plugin, 1).end();
  const held = fillA(plugin);
  const before = open(plugin, 1);
  assert.equal(before.dest, B);
  before.end();
  for (const o of held) o.end();
  const after = open(plugin, 1);
  assert.equal(after.dest, A);
  after.end();
  await plugin.shutdown();
});

test("a new snapshot that includes the dispatches is not counted twice; an old-snapshot record is ignored", async () => {
  const { clock, plugin } = await start(3);
  push(plugin, snapshot(1, [0, 3], true));
  for (const w of [0, 1, 2]) open(plugin, w).end();
  const held = fillA(plugin);
  const before = open(plugin, 1);
  assert.equal(before.dest, B);
  before.end();
  // One second later the scrape sees worker 0's 3 requests queued on A; B has 5.
  clock.advance(1000);
  push(plugin, snapshot(2, [3, 5], true, CREATED_MS + 1000));
  // Worker 2 has not routed since: its record still names generation 1, and worker 1 must ignore it.
  // Worker 0 adopts generation 2 with one new dispatch (A: 3 + 1 < 5).
  const fresh = open(plugin, 0);
  assert.equal(fresh.dest, A);
  // Worker 1: A = 3 scraped + worker 0's one new request (+ tokens) < 5. Counting the 3 again gives 7 > 5.
  const w1 = open(plugin, 1);
  assert.equal(w1.dest, A);
  w1.end();
  fresh.end();
  for (const o of held) o.end();
  await plugin.shutdown();
});

test("hostile shared data under the same keys cannot trap a pick or skew it for long", async () => {
  const { proc, plugin } = await start(2);
  push(plugin, snapshot(1, [0, 3], true));
  open(plugin, 1).end();
  const sd = proc.sharedData;
  const u8 = (n: number, fill: (v: DataView) => void) => {
    const b = new Uint8Array(n);
    fill(new DataView(b.buffer));
    return b;
  };
  // A directory claiming 1000 workers in 12 bytes, plus a well-formed header with extreme counts.
  sd.set(
    "epp",
    PREFIX + "inflight.workers",
    u8(12, (v) => (v.setUint32(0, 1000, true), v.setBigUint64(4, 0xabcn, true))),
  );
  const record = (entries: [number, number, number][]) =>
    u8(28 + 12 * entries.length, (v) => {
      v.setUint32(0, 0x31464e49, true);
      v.setUint32(4, 2, true);
      v.setBigUint64(8, 2n, true);
      v.setBigUint64(16, BigInt(CREATED_MS), true);
      v.setUint32(24, entries.length, true);
      entries.forEach(([i, r, t], k) => {
        v.setUint32(28 + 12 * k, i, true);
        v.setInt32(32 + 12 * k, r, true);
        v.setInt32(36 + 12 * k, t, true);
      });
    });
  sd.set(
    "epp",
    PREFIX + "inflight.abc",
    record([
      [0, 0x7fffffff, -0x80000000],
      [1, -0x80000000, 0x7fffffff],
    ]),
  );
  // A new snapshot makes both workers re-read the directory (worker 1 sees the hostile peer).
  push(plugin, snapshot(2, [0, 3], true));
  const routed = [0, 1, 0, 1].map((w) => open(plugin, w));
  for (const o of routed) {
    assert.equal(o.reply, undefined);
    assert.ok(o.dest === A || o.dest === B);
  }
  // Short, long and garbage records are ignored.
  for (const bad of [
    u8(3, () => {}),
    u8(24 + 17, () => {}),
    u8(40, (v) => v.setUint32(0, 0xdeadbeef, true)),
  ]) {
    sd.set("epp", PREFIX + "inflight.abc", bad);
    const o = open(plugin, 1);
    assert.equal(o.reply, undefined);
    assert.ok(o.dest === A || o.dest === B);
    o.end();
  }
  for (const o of routed) o.end();
  // With the hostile record gone the pick is the plain one again (A idle, B 3 waiting).
  sd.set(
    "epp",
    PREFIX + "inflight.abc",
    u8(0, () => {}),
  );
  const clean = open(plugin, 1);
  assert.equal(clean.dest, A);
  clean.end();
  assert.deepEqual(plugin.failedWorkers, []);
  await plugin.shutdown();
});

test("a directory filled by workers long gone: a new worker takes a stale slot and is shared again", async () => {
  const { proc, plugin } = await start(2);
  // 64 entries (the cap) for VMs that left no record, as a process that reloaded its module many times would.
  const full = new Uint8Array(4 + 64 * 8);
  const v = new DataView(full.buffer);
  v.setUint32(0, 64, true);
  for (let i = 0; i < 64; i++) v.setBigUint64(4 + 8 * i, BigInt(0x1000 + i), true);
  proc.sharedData.set("epp", PREFIX + "inflight.workers", full);
  push(plugin, snapshot(1, [0, 3], true));
  open(plugin, 0).end();
  open(plugin, 1).end();
  const held = fillA(plugin);
  const seen = open(plugin, 1);
  assert.equal(seen.dest, B, "worker 1 sees worker 0's three open requests on A");
  seen.end();
  for (const o of held) o.end();
  await plugin.shutdown();
});
