import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { crc32 } from "node:zlib";
import { EncoderCache, encodeSnapshot, SnapshotEncodeError } from "../../sidecar/snapshot/encoder.ts";
import { decodeSnapshot, snapshotFromJson, SnapshotDecodeError } from "../../sidecar/snapshot/decoder.ts";
import { GenerationClock } from "../../sidecar/snapshot/generation.ts";
import type { Snapshot } from "../../sidecar/snapshot/types.ts";
import {
  flowControlSnapshot,
  GOLDEN_CASES,
  largeSnapshot,
  minimalSnapshot,
  randomSnapshot,
  realisticSnapshot,
} from "./snapshot-samples.ts";

const goldenDir = new URL("../fixtures/snapshots/", import.meta.url).pathname;

function refreshCrc(b: Uint8Array): void {
  new DataView(b.buffer, b.byteOffset, b.byteLength).setUint32(12, crc32(b.subarray(16)), true);
}

test("round trip: 200 seeded random snapshots decode to what was encoded", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const s = randomSnapshot(seed);
    assert.deepEqual(decodeSnapshot(encodeSnapshot(s)), s, `seed ${seed}`);
  }
});

test("round trip: realistic pool and 1000 endpoints", () => {
  // Encode time is a benchmark's number (npm run bench:sidecar reports the encode p50), not a test's.
  for (const s of [realisticSnapshot(), largeSnapshot(1000, 7)])
    assert.deepEqual(decodeSnapshot(encodeSnapshot(s)), s);
});

test("golden vectors: every case is on disk and reproduced byte for byte from its JSON", () => {
  const files = readdirSync(goldenDir).filter((f) => f.endsWith(".bin"));
  assert.deepEqual(files.map((f) => f.slice(0, -4)).sort(), Object.keys(GOLDEN_CASES).sort());
  for (const f of files) {
    const name = f.slice(0, -4);
    const bin = readFileSync(goldenDir + f);
    const json = JSON.parse(readFileSync(`${goldenDir}${name}.json`, "utf8"));
    assert.deepEqual(
      Buffer.from(encodeSnapshot(snapshotFromJson(json))),
      bin,
      `${name}: encoder output differs`,
    );
    assert.deepEqual(decodeSnapshot(bin), snapshotFromJson(json), `${name}: decoder output differs`);
    assert.deepEqual(
      Buffer.from(encodeSnapshot(GOLDEN_CASES[name]!())),
      bin,
      `${name}: sample generator drifted`,
    );
  }
});

test("golden vectors: header fields are where the format says", () => {
  const bin = readFileSync(goldenDir + "minimal.bin");
  assert.equal(bin.subarray(0, 4).toString("latin1"), "EPPS");
  assert.equal(bin.readUInt16LE(4), 2);
  assert.equal(bin.readUInt16LE(6), 32);
  assert.equal(bin.readUInt32LE(8), bin.length);
  assert.equal(bin.readUInt32LE(12), crc32(bin.subarray(16)));
  assert.equal(bin.readBigUInt64LE(16), 1795000000000000n);
  assert.equal(bin.readUInt16LE(32), 1, "STRINGS comes first");
});

test("strings are de-duplicated", () => {
  const s = largeSnapshot(100);
  for (const e of s.endpoints) e.podName = "same-pod-name-repeated";
  const a = encodeSnapshot(s).length;
  s.endpoints.forEach((e, i) => (e.podName = `distinct-pod-name-${String(i).padStart(4, "0")}`));
  const b = encodeSnapshot(s).length;
  assert.ok(b - a >= 99 * 20, `distinct names should cost ~24 bytes each (${a} vs ${b})`);
});

test("decoder rejects bad magic, version, length and checksum", () => {
  const good = encodeSnapshot(realisticSnapshot());
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ["magic", (b) => (b.write("EPPX", 0, "latin1"), b), /magic/],
    ["version", (b) => (b.writeUInt16LE(3, 4), b), /version/],
    ["truncated", (b) => b.subarray(0, b.length - 1), /totalLength/],
    ["extended", (b) => Buffer.concat([b, Buffer.from([0])]), /totalLength/],
    ["short", (b) => b.subarray(0, 10), /too short/],
    ["flipped payload bit", (b) => ((b[100]! ^= 1), b), /checksum/],
    ["crc field", (b) => (b.writeUInt32LE((b.readUInt32LE(12) ^ 1) >>> 0, 12), b), /checksum/],
  ];
  for (const [name, mutate, re] of cases) {
    const b = mutate(Buffer.from(good));
    assert.throws(
      () => decodeSnapshot(b),
      (e: unknown) => e instanceof SnapshotDecodeError && re.test(e.message),
      name,
    );
  }
});

test("decoder rejects structural corruption even with a valid checksum", () => {
  const good = Buffer.from(encodeSnapshot(minimalSnapshot()));
  // minimal: strings section at 32; count at 40.
  const cases: [string, (b: Buffer) => void, RegExp][] = [
    ["huge string count", (b) => b.writeUInt32LE(0xffffffff, 40), /count/],
    ["string index out of range", (b) => b.writeUInt32LE(999, stringsEnd(b) + 8), /out of range/],
    ["reserved non-zero", (b) => b.writeUInt16LE(1, 34), /reserved/],
    ["section length past end", (b) => b.writeUInt32LE(1 << 20, 36), /truncated/],
    ["invalid UTF-8", (b) => (b[46] = 0xff), /UTF-8/],
  ];
  for (const [name, mutate, re] of cases) {
    const b = Buffer.from(good);
    mutate(b);
    refreshCrc(b);
    assert.throws(
      () => decodeSnapshot(b),
      (e: unknown) => e instanceof SnapshotDecodeError && re.test(e.message),
      name,
    );
  }
});

/** Offset of the section after STRINGS (POOL in encoder output). */
function stringsEnd(b: Buffer): number {
  return 32 + 8 + b.readUInt32LE(36);
}

test("decoder skips unknown sections and rejects duplicate or missing required ones", () => {
  const good = Buffer.from(encodeSnapshot(minimalSnapshot()));
  const extra = Buffer.alloc(8 + 3);
  extra.writeUInt16LE(99, 0);
  extra.writeUInt32LE(3, 4);
  const withUnknown = Buffer.concat([good, extra]);
  withUnknown.writeUInt32LE(withUnknown.length, 8);
  refreshCrc(withUnknown);
  assert.deepEqual(decodeSnapshot(withUnknown), minimalSnapshot());

  const pool = good.subarray(
    stringsEnd(good),
    stringsEnd(good) + 8 + good.readUInt32LE(stringsEnd(good) + 4),
  );
  const dup = Buffer.concat([good, pool]);
  dup.writeUInt32LE(dup.length, 8);
  refreshCrc(dup);
  assert.throws(() => decodeSnapshot(dup), /appears twice/);

  const noPool = Buffer.concat([
    good.subarray(0, stringsEnd(good)),
    good.subarray(stringsEnd(good) + pool.length),
  ]);
  noPool.writeUInt32LE(noPool.length, 8);
  refreshCrc(noPool);
  assert.throws(() => decodeSnapshot(noPool), /missing POOL/);
});

test("decoder never throws anything but SnapshotDecodeError on random corruption", () => {
  const good = encodeSnapshot(realisticSnapshot());
  let x = 12345;
  for (let i = 0; i < 2000; i++) {
    const b = Buffer.from(good);
    for (let k = 0; k < 3; k++) {
      x = (x * 1103515245 + 12345) >>> 0;
      b[32 + (x % (b.length - 32))] = x >>> 24;
    }
    refreshCrc(b);
    try {
      decodeSnapshot(b);
    } catch (e) {
      assert.ok(e instanceof SnapshotDecodeError, String(e));
    }
  }
});

test("encoder validates its input with errors that name the field", () => {
  const cases: [string, (s: Snapshot) => void, RegExp][] = [
    ["port 0", (s) => (s.endpoints[0]!.port = 0), /endpoints\[0\]\.port/],
    ["port too big", (s) => (s.endpoints[0]!.port = 70000), /endpoints\[0\]\.port/],
    ["kvUsage > 1", (s) => (s.endpoints[0]!.kvUsage = 1.2), /kvUsage/],
    ["kvUsage NaN", (s) => (s.endpoints[0]!.kvUsage = NaN), /kvUsage/],
    ["negative waiting", (s) => (s.endpoints[0]!.waiting = -1), /waiting/],
    ["fractional running", (s) => (s.endpoints[0]!.running = 1.5), /running/],
    ["age = sentinel", (s) => (s.endpoints[0]!.metricsAgeMs = 0xffffffff), /metricsAgeMs/],
    ["bad address", (s) => (s.endpoints[0]!.address = "[::1]"), /address/],
    ["hostname address", (s) => (s.endpoints[0]!.address = "pod.local"), /address/],
    [
      "duplicate endpoint",
      (s) => s.endpoints.push({ ...s.endpoints[0]!, podName: "x" }),
      /duplicate endpoint/,
    ],
    ["unknown engine", (s) => ((s.endpoints[0] as { engine: string }).engine = "tgi"), /engine/],
    ["too many adapters", (s) => (s.endpoints[0]!.runningAdapters = Array(256).fill("a")), /runningAdapters/],
    ["no ports", (s) => (s.pool.targetPorts = []), /targetPorts/],
    ["nine ports", (s) => (s.pool.targetPorts = [1, 2, 3, 4, 5, 6, 7, 8, 9]), /targetPorts/],
    ["long string", (s) => (s.pool.name = "é".repeat(513)), /pool\.name.*1026 bytes/],
    ["lone surrogate", (s) => (s.pool.name = "a\ud800b"), /surrogate/],
    ["duplicate model", (s) => s.models.push({ ...s.models[0]! }), /duplicate model/],
    ["11 model targets", (s) => (s.models[0]!.targets = Array(11).fill({ name: "a", weight: 1 })), /targets/],
    ["priority not i32", (s) => (s.objectives[0]!.priority = 2 ** 31), /priority/],
    ["rewrite weight 0", (s) => (s.rewrites[0]!.targets[0]!.weight = 0), /weight/],
    ["rewrite without target", (s) => (s.rewrites[0]!.targets = []), /targets/],
    ["17 matches", (s) => (s.rewrites[0]!.matches = Array(17).fill("m")), /matches/],
    ["infinite param", (s) => (s.scheduler.params.x = Infinity), /params\.x/],
    ["kvThreshold > 1", (s) => (s.scheduler.kvThreshold = 80), /kvThreshold/],
    ["negative generation", (s) => (s.generation = -1n), /generation/],
    ["generation > u64", (s) => (s.generation = 1n << 64n), /generation/],
  ];
  for (const [name, mutate, re] of cases) {
    const s = realisticSnapshot();
    mutate(s);
    assert.throws(
      () => encodeSnapshot(s),
      (e: unknown) => e instanceof SnapshotEncodeError && re.test(e.message),
      name,
    );
  }
});

test("encoder: FLOW_CONTROL is written only when set, and its values are validated by field", () => {
  const tags = (b: Uint8Array): number[] => {
    const buf = Buffer.from(b);
    const out: number[] = [];
    for (let off = 32; off < buf.length; off += 8 + buf.readUInt32LE(off + 4))
      out.push(buf.readUInt16LE(off));
    return out;
  };
  assert.ok(!tags(encodeSnapshot(realisticSnapshot())).includes(9));
  assert.equal(tags(encodeSnapshot(flowControlSnapshot())).filter((t) => t === 9).length, 1);
  const cases: [string, (s: Snapshot) => void, RegExp][] = [
    ["fractional maxBytes", (s) => (s.flowControl!.maxBytes = 1.5), /flowControl\.maxBytes/],
    ["NaN maxBytes", (s) => (s.flowControl!.maxBytes = NaN), /flowControl\.maxBytes/],
    ["maxBytes 2^53", (s) => (s.flowControl!.maxBytes = 2 ** 53), /flowControl\.maxBytes/],
    ["maxRequests > u32", (s) => (s.flowControl!.maxRequests = 2 ** 32), /flowControl\.maxRequests/],
    ["negative TTL", (s) => (s.flowControl!.defaultTtlMs = -1), /flowControl\.defaultTtlMs/],
    [
      "unknown fairness",
      (s) => ((s.flowControl as { fairness: string }).fairness = "fifo"),
      /flowControl\.fairness/,
    ],
    [
      "bad default band",
      (s) => (s.flowControl!.defaultBand.maxBytes = Infinity),
      /flowControl\.defaultBand\.maxBytes/,
    ],
    ["band ttl", (s) => (s.flowControl!.bands[1]!.ttlMs = 0.5), /flowControl\.bands\[1\]\.ttlMs/],
    ["priority not i32", (s) => (s.flowControl!.bands[0]!.priority = 2 ** 31), /bands\[0\]\.priority/],
    ["bands ascending", (s) => s.flowControl!.bands.reverse(), /bands\[1\]\.priority.*highest first/],
    [
      "repeated priority",
      (s) => (s.flowControl!.bands[1]!.priority = 100),
      /bands\[1\]\.priority.*without repeats/,
    ],
    [
      "256 bands",
      (s) =>
        (s.flowControl!.bands = Array.from({ length: 256 }, (_, i) => ({
          priority: -i,
          maxRequests: 0,
          maxBytes: 0,
          ttlMs: 0,
        }))),
      /flowControl\.bands/,
    ],
  ];
  for (const [name, mutate, re] of cases) {
    const s = flowControlSnapshot();
    mutate(s);
    assert.throws(
      () => encodeSnapshot(s),
      (e: unknown) => e instanceof SnapshotEncodeError && re.test(e.message),
      name,
    );
  }
});

test("encoder cache: every encoding is byte-identical to an uncached one as pods, adapters and numbers change", () => {
  const cache = new EncoderCache();
  const base = largeSnapshot(300, 11);
  const steps: [string, (s: Snapshot) => void][] = [
    ["same snapshot", () => {}],
    ["numbers only", (s) => s.endpoints.forEach((e, i) => (e.waiting = i % 7))],
    ["pod renamed", (s) => (s.endpoints[5]!.podName = "renamed-pod")],
    ["pod removed", (s) => s.endpoints.splice(17, 1)],
    ["order reversed", (s) => s.endpoints.reverse()],
    ["new adapter", (s) => (s.endpoints[0]!.runningAdapters = ["brand-new-adapter"])],
    ["back to the start", () => {}],
  ];
  let current = base;
  for (const [name, change] of steps) {
    current = structuredClone(current);
    change(current);
    if (name === "back to the start") current = base;
    const cached = encodeSnapshot(current, cache);
    assert.deepEqual(Buffer.from(cached), Buffer.from(encodeSnapshot(current)), name);
    assert.deepEqual(decodeSnapshot(cached), current, name);
  }
  // One cache used for two different pools in turn: slower, never wrong.
  for (const s of [realisticSnapshot(), base, realisticSnapshot(), minimalSnapshot()])
    assert.deepEqual(decodeSnapshot(encodeSnapshot(s, cache)), s);
});

test("encoder: strings seen valid before do not hide a bad value later (with or without a cache)", () => {
  const cache = new EncoderCache();
  const s = realisticSnapshot();
  encodeSnapshot(s, cache);
  encodeSnapshot(s, cache);
  const bad = structuredClone(s);
  bad.endpoints[0]!.runningAdapters = [s.endpoints[0]!.podName, "x\udfffy"];
  assert.throws(() => encodeSnapshot(bad, cache), /endpoints\[0\]\.runningAdapters\[1\].*surrogate/);
  const notString = structuredClone(s);
  (notString.endpoints[1] as { podName: unknown }).podName = 7;
  assert.throws(() => encodeSnapshot(notString, cache), /endpoints\[1\]\.podName: expected a string/);
  assert.deepEqual(decodeSnapshot(encodeSnapshot(s, cache)), s, "the cache still works after a rejection");
});

test("generation clock: strictly increasing, time-based, never backwards when the clock is", () => {
  let now = 1_000;
  const g = new GenerationClock(() => now);
  const a = g.next();
  assert.equal(a, 1_000_000n);
  const b = g.next();
  assert.equal(b, 1_000_001n, "same millisecond: counter");
  now = 500; // clock jumps back
  const c = g.next();
  assert.ok(c > b);
  now = 2_000;
  assert.equal(g.next(), 2_000_000n);
  g.observe(5_000_000n);
  assert.equal(g.next(), 5_000_001n, "observe raises the floor");
  // a restarted process a millisecond later starts above everything its predecessor produced at that rate
  assert.ok(new GenerationClock(() => 2_001).next() > 2_000_000n);
});

test("generation clock: a generation no sidecar could make (2^64-1) is not followed; the u64 range holds", () => {
  const now = 1_795_000_000_000;
  const g = new GenerationClock(() => now);
  assert.equal(g.observe(2n ** 64n - 1n), false, "a poisoned 409 does not drag the clock along");
  assert.equal(g.next(), BigInt(now) * 1000n, "still the clock's own generation");
  const peer = BigInt(now + 30_000) * 1000n; // a second sidecar whose clock runs 30 s ahead
  assert.equal(g.observe(peer), true);
  assert.equal(g.next(), peer + 1n);
  for (let i = 0; i < 1000; i++) assert.ok(g.next() < 2n ** 64n);
});
