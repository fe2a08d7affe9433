// Seeded fuzzing of the control path through the real build/filter.wasm in the host (2 workers):
// truncated, bit-flipped, random and section-mutated snapshots (from the golden vectors and from
// encodeSnapshot of random samples) and random header sets. Invariants: no trap, every reply has a
// documented status and (when it has a body) well-formed JSON, corrupt snapshots get 400, and the data
// path keeps routing by the last good snapshot. EPP_FUZZ_CONTROL_ITERATIONS changes the count.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import { EnvoyProcess, VirtualClock } from "../../host/index.ts";
import type { HeaderList, LocalReply } from "../../host/index.ts";
import type { WasmPlugin as Plugin } from "../../host/index.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";
import { mulberry32 } from "../../sim/rng.ts";
import { GOLDEN_CASES, minimalSnapshot, randomSnapshot } from "../sidecar/snapshot-samples.ts";

const WASM = readFileSync(new URL("../../build/filter.wasm", import.meta.url));
const ITERATIONS = Number(process.env.EPP_FUZZ_CONTROL_ITERATIONS ?? 3000);
const TOKEN = "fuzz-token";
const CONTROL_PATH = "/epp/v1/snapshot";
const CONTROL_STATUSES = new Set([204, 400, 401, 405, 409, 413]);
// The installed snapshot has the highest generation, so a fuzzed snapshot that still decodes is "not
// newer" (409) and can never legitimately replace it (u64 max: nothing can be newer).
const GOOD_GENERATION = (1n << 64n) - 1n;
const GOOD_ENDPOINT = "10.9.9.9:8000";

const POOL = minimalSnapshot().pool;
// A virtual clock that never moves: the good snapshot stays the one within the 500 ms generation hold,
// so every valid mutation must be refused (409), never let in because time passed.
const NOW_MS = 1_800_000_000_000;

function withPool(s: Snapshot): Snapshot {
  return { ...s, pool: { ...s.pool, namespace: POOL.namespace, name: POOL.name } };
}

function goodSnapshot(): Uint8Array {
  const s = minimalSnapshot();
  s.generation = GOOD_GENERATION;
  s.createdAtMs = NOW_MS;
  s.endpoints = [{ ...s.endpoints[0]!, address: "10.9.9.9", port: 8000 }];
  return encodeSnapshot(s);
}

/** Valid-looking seeds: every golden vector plus random samples, all re-targeted at our pool. */
function seeds(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const make of Object.values(GOLDEN_CASES)) out.push(encodeSnapshot(withPool(make())));
  for (const name of ["minimal", "realistic", "ipv6", "unicode"]) {
    out.push(new Uint8Array(readFileSync(new URL(`../fixtures/snapshots/${name}.bin`, import.meta.url))));
  }
  for (let seed = 1; seed <= 20; seed++) out.push(encodeSnapshot(withPool(randomSnapshot(seed))));
  return out;
}

function fixCrc(b: Uint8Array): Uint8Array {
  if (b.length >= 16) new DataView(b.buffer, b.byteOffset).setUint32(12, crc32(b.subarray(16)), true);
  return b;
}

/** Offsets of section payloads ([start, end)) after the 32-byte header, as far as they parse. */
function sections(b: Uint8Array): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 32;
  while (at + 8 <= b.length) {
    const len = dv.getUint32(at + 4, true);
    if (at + 8 + len > b.length) break;
    out.push([at + 8, at + 8 + len]);
    at += 8 + len;
  }
  return out;
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);

function mutate(r: Rand, seed: Uint8Array): { body: Uint8Array; corrupt: boolean } {
  const b = new Uint8Array(seed);
  switch (int(r, 6)) {
    case 0: // truncated (length field no longer matches)
      return { body: b.subarray(0, int(r, b.length)), corrupt: true };
    case 1: {
      // bit flips without fixing the CRC
      const flips = 1 + int(r, 4);
      for (let i = 0; i < flips; i++) b[16 + int(r, b.length - 16)]! ^= 1 << int(r, 8);
      return { body: b, corrupt: true };
    }
    case 2: {
      // random bytes, sometimes behind a plausible header
      const out = new Uint8Array(int(r, 600));
      for (let i = 0; i < out.length; i++) out[i] = int(r, 256);
      if (out.length >= 32 && r() < 0.5) {
        out.set(b.subarray(0, 12));
        new DataView(out.buffer).setUint32(8, out.length, true);
        fixCrc(out);
      }
      return { body: out, corrupt: true };
    }
    case 3: {
      // section-aware: corrupt a section's length or bytes, then fix the CRC so the structure is tested
      const secs = sections(b);
      if (secs.length === 0) return { body: b.subarray(0, 10), corrupt: true };
      const [start, end] = secs[int(r, secs.length)]!;
      const dv = new DataView(b.buffer);
      if (r() < 0.4) dv.setUint32(start - 4, dv.getUint32(start - 4, true) + 1 + int(r, 1000), true);
      else if (end > start) {
        const edits = 1 + int(r, 6);
        for (let i = 0; i < edits; i++) b[start + int(r, end - start)] = r() < 0.5 ? 0xff : int(r, 256);
      }
      // may still decode (e.g. a changed metric): then it is merely old (409), never applied
      return { body: fixCrc(b), corrupt: false };
    }
    case 4: {
      // trailing garbage with a consistent length + CRC: extra (unknown) section or junk
      const extra = new Uint8Array(1 + int(r, 40));
      for (let i = 0; i < extra.length; i++) extra[i] = int(r, 256);
      const out = new Uint8Array(b.length + extra.length);
      out.set(b);
      out.set(extra, b.length);
      new DataView(out.buffer).setUint32(8, out.length, true);
      return { body: fixCrc(out), corrupt: false };
    }
    default: // the unmodified seed: valid but older than the installed snapshot
      return { body: b, corrupt: false };
  }
}

interface Outcome {
  reply?: LocalReply;
  forwarded?: HeaderList;
}

function stream(plugin: Plugin, out: Outcome) {
  return plugin.newHttpStream({
    forwardRequestHeaders: (h) => (out.forwarded = h),
    forwardRequestData: () => {},
    forwardResponseHeaders: () => {},
    forwardResponseData: () => {},
    localReply: (r) => (out.reply = r),
  });
}

function push(plugin: Plugin, body: Uint8Array, headers?: HeaderList): Outcome {
  const out: Outcome = {};
  const s = stream(plugin, out);
  s.decodeHeaders(
    headers ?? [
      [":method", "POST"],
      [":path", CONTROL_PATH],
      [":authority", "envoy"],
      ["authorization", `Bearer ${TOKEN}`],
      ["content-length", String(body.length)],
    ],
    body.length === 0,
  );
  if (body.length > 0 && !out.reply) {
    // Deliver in a few chunks, as Envoy would for a large POST.
    let at = 0;
    while (at < body.length && !out.reply) {
      const n = Math.max(1, Math.ceil(body.length / 3));
      s.decodeData(body.subarray(at, at + n), at + n >= body.length);
      at += n;
    }
  }
  s.destroy();
  return out;
}

function assertWellFormedReply(r: LocalReply, what: string): void {
  assert.ok(CONTROL_STATUSES.has(r.status), `${what}: status ${r.status}`);
  if (r.body.length > 0) {
    const ct = r.headers.find(([k]) => k.toLowerCase() === "content-type")?.[1] ?? "";
    if (ct.includes("json")) {
      assert.doesNotThrow(() => JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(r.body)), what);
    }
  }
}

function assertRoutesToGood(plugin: Plugin, what: string): void {
  for (let w = 0; w < plugin.workers; w++) {
    const out: Outcome = {};
    const s = plugin.newHttpStream(
      {
        forwardRequestHeaders: (h) => (out.forwarded = h),
        forwardRequestData: () => {},
        forwardResponseHeaders: () => {},
        forwardResponseData: () => {},
        localReply: (r) => (out.reply = r),
      },
      { worker: w },
    );
    s.decodeHeaders(
      [
        [":method", "GET"],
        [":path", "/v1/models"],
        [":authority", "envoy"],
      ],
      true,
    );
    s.destroy();
    const dest = out.forwarded?.find(([k]) => k === "x-gateway-destination-endpoint")?.[1];
    assert.equal(
      dest?.split(",")[0],
      GOOD_ENDPOINT,
      `${what}: worker ${w} routed to ${dest} (${out.reply?.status})`,
    );
  }
}

async function loadFilter(): Promise<Plugin> {
  const proc = new EnvoyProcess({ clock: new VirtualClock(BigInt(NOW_MS) * 1_000_000n) });
  return proc.loadPlugin(WASM, {
    vmId: "epp",
    workers: 2,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({
      pool: { namespace: POOL.namespace, name: POOL.name },
      controlToken: TOKEN,
      failureMode: "FailClose",
      staleAfterMs: 0,
      randomSeed: 3,
    }),
  });
}

test("mutated snapshots never trap, get documented statuses, and never replace the good snapshot", async () => {
  const plugin = await loadFilter();
  try {
    const good = push(plugin, goodSnapshot());
    assert.equal(good.reply?.status, 204);
    assertRoutesToGood(plugin, "after install");
    const r = mulberry32(20261123);
    const pool = seeds();
    const statuses = new Map<number, number>();
    for (let i = 0; i < ITERATIONS; i++) {
      const { body, corrupt } = mutate(r, pool[int(r, pool.length)]!);
      const out = push(plugin, body);
      assert.equal(out.forwarded, undefined, `control request ${i} was forwarded`);
      assert.ok(out.reply, `no reply for snapshot ${i}`);
      assertWellFormedReply(out.reply, `snapshot ${i}`);
      assert.ok([400, 409].includes(out.reply.status), `snapshot ${i}: status ${out.reply.status}`);
      if (corrupt) assert.equal(out.reply.status, 400, `corrupt snapshot ${i} was not rejected`);
      statuses.set(out.reply.status, (statuses.get(out.reply.status) ?? 0) + 1);
      if (i % 100 === 0) assertRoutesToGood(plugin, `after snapshot ${i}`);
    }
    assertRoutesToGood(plugin, "at the end");
    console.log(`fuzz-control: ${ITERATIONS} snapshots; statuses ${JSON.stringify([...statuses])}`);
    assert.deepEqual(plugin.failedWorkers, []);
    // Both outcomes must actually occur, or the generator has degenerated.
    assert.ok((statuses.get(400) ?? 0) > ITERATIONS / 3, JSON.stringify([...statuses]));
    assert.ok((statuses.get(409) ?? 0) > ITERATIONS / 20, JSON.stringify([...statuses]));
  } finally {
    await plugin.shutdown();
  }
});

test("random control-path header sets never trap and never store a snapshot", async () => {
  const plugin = await loadFilter();
  try {
    assert.equal(push(plugin, goodSnapshot()).reply?.status, 204);
    const r = mulberry32(7);
    const valid = encodeSnapshot(withPool(minimalSnapshot())); // older generation: 409 at best
    const methods = ["POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "post", "", "P\u00d8ST"];
    const auths = [
      undefined,
      `Bearer ${TOKEN}`,
      `bearer ${TOKEN}`,
      `Bearer ${TOKEN} `,
      `Bearer ${TOKEN}x`,
      "Bearer ",
      "Bearer",
      `Basic ${TOKEN}`,
      TOKEN,
      "\u00ff\u00fe garbage",
      "Bearer " + "A".repeat(70_000),
    ];
    const paths = [
      CONTROL_PATH,
      `${CONTROL_PATH}?x=1`,
      `${CONTROL_PATH}?`,
      `${CONTROL_PATH}#frag`,
      `${CONTROL_PATH}/`,
      CONTROL_PATH.toUpperCase(),
      "/epp/v1/snapshot%2F",
      "//epp/v1/snapshot",
      "/epp/v1/snapshots",
      "*",
    ];
    const statuses = new Map<number, number>();
    for (let i = 0; i < 1500; i++) {
      const method = methods[int(r, methods.length)]!;
      const path = paths[int(r, paths.length)]!;
      const headers: HeaderList = [
        [":method", method],
        [":path", path],
        [":authority", r() < 0.1 ? "x".repeat(20_000) : "envoy"],
      ];
      const auth = auths[int(r, auths.length)];
      if (auth !== undefined) headers.push(["authorization", auth]);
      if (r() < 0.2) headers.push(["authorization", `Bearer ${TOKEN}`]); // duplicated header
      if (r() < 0.2) headers.push([`x-junk-${i}`, "v".repeat(int(r, 50_000))]);
      if (r() < 0.1) headers.push(["content-length", String(int(r, 1 << 30))]);
      const body = r() < 0.3 ? new Uint8Array(0) : r() < 0.5 ? valid : new Uint8Array(int(r, 64));
      const out = push(plugin, body, headers);
      if (out.reply) {
        assertWellFormedReply(out.reply, `headers ${i}`);
        assert.notEqual(out.reply.status, 204, `headers ${i} stored a stale snapshot`);
        statuses.set(out.reply.status, (statuses.get(out.reply.status) ?? 0) + 1);
      } else {
        // Not a control request (other path): it went to the data path and must be routed there.
        assert.ok(path !== CONTROL_PATH && !path.startsWith(`${CONTROL_PATH}?`), `headers ${i}: no reply`);
      }
    }
    assertRoutesToGood(plugin, "after header fuzzing");
    console.log(`fuzz-control headers: statuses ${JSON.stringify([...statuses])}`);
    assert.deepEqual(plugin.failedWorkers, []);
    for (const s of [401, 405]) assert.ok((statuses.get(s) ?? 0) > 0, JSON.stringify([...statuses]));
  } finally {
    await plugin.shutdown();
  }
});
