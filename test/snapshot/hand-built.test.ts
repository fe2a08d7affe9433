// A golden snapshot written byte by byte from docs/snapshot-format.md, not by the encoder: the other golden
// vectors come from the TypeScript codec itself, so a misreading of the format shared by the encoder and a
// decoder would pass them. Both decoders (sidecar/snapshot/decoder.ts and the AssemblyScript one through
// build/snapshot-probe.wasm) must read these bytes as the document says, and reject them once corrupted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { decodeSnapshot, SnapshotDecodeError } from "../../sidecar/snapshot/decoder.ts";
import { loadSnapshotProbe } from "./probe.ts";
import { f64, i32, section, u16, u32, u64, u8 } from "./le-bytes.ts";

// The string table; records refer to strings by index.
const STRINGS = [
  "inference", // 0
  "pool-a", // 1
  "vllm-0", // 2
  "10.0.0.1", // 3
  "sql-lora", // 4
  "vllm-1", // 5
  "fd00::7", // 6  an IPv6 literal, no brackets
  "llama", // 7
  "llama-v2", // 8
  "batch", // 9
  "default", // 10
  "prefixWeight", // 11
  "é-adapter", // 12  two-byte UTF-8 sequence
];
const strings = section(1, [
  ...u32(STRINGS.length),
  ...STRINGS.flatMap((s) => {
    const bytes = [...Buffer.from(s, "utf8")];
    return [...u16(bytes.length), ...bytes];
  }),
]);

// failureMode FailOpen (1), flags: strict models (bit 0), two target ports.
const pool = section(2, [...u32(0), ...u32(1), ...u8(1), ...u8(1), ...u8(2), ...u16(8000), ...u16(8001)]);

const endpoints = section(3, [
  ...u32(2),
  // vllm-0: ready + hasMetrics (bits 0, 2), vLLM, scraped 15 ms before createdAtMs, one running and one
  // waiting adapter.
  ...[...u32(2), ...u32(3), ...u16(8000), ...u8(0b101), ...u8(0), ...u32(15)],
  ...[...u32(4), ...u32(7), ...u16(2500), ...u16(4), ...u16(16), ...u32(29205)],
  ...[...u8(1), ...u8(1), ...u32(4), ...u32(12)],
  // vllm-1: ready and stale (bits 0, 1), no metrics, SGLang, never scraped (0xFFFFFFFF), unknown sizes.
  ...[...u32(5), ...u32(6), ...u16(30000), ...u8(0b011), ...u8(1), ...u32(0xffffffff)],
  ...[...u32(0), ...u32(0), ...u16(0), ...u16(0), ...u16(0), ...u32(0)],
  ...[...u8(0), ...u8(0)],
]);

// llama: Sheddable (3), targets llama (weight 70) and llama-v2 (weight 30).
const models = section(4, [
  ...u32(1),
  ...u32(7),
  ...u8(3),
  ...u8(2),
  ...u32(7),
  ...u32(70),
  ...u32(8),
  ...u32(30),
]);
// batch: priority set (bit 0), -1.
const objectives = section(5, [...u32(1), ...u32(9), ...u8(1), ...i32(-1)]);
// One rule: matches llama, sends everything to llama-v2 (weight 1).
const rewrites = section(6, [...u32(1), ...u8(1), ...u8(1), ...u32(7), ...u32(8), ...u32(1)]);
// default profile, thresholds 5 / 0.8 / 200 ms, one parameter prefixWeight = 2.5.
const scheduler = section(7, [
  ...u32(10),
  ...u32(5),
  ...u16(8000),
  ...u32(200),
  ...u16(1),
  ...u32(11),
  ...f64(2.5),
]);
// A section from a later minor version: skipped.
const unknown = section(99, [1, 2, 3, 4, 5]);

const GENERATION = 1_795_000_000_123_456n;
const CREATED_MS = 1_795_000_000_123;

function snapshotBytes(): Uint8Array {
  // Sections in an order other than the tag order (any order is allowed once STRINGS comes first).
  const body = [
    ...u64(GENERATION),
    ...u64(BigInt(CREATED_MS)),
    ...strings,
    ...unknown,
    ...scheduler,
    ...pool,
  ];
  body.push(...endpoints, ...rewrites, ...objectives, ...models);
  const total = 16 + body.length;
  const head = [0x45, 0x50, 0x50, 0x53, ...u16(1), ...u16(32), ...u32(total)];
  return Uint8Array.from([...head, ...u32(crc32(Uint8Array.from(body))), ...body]);
}

// What docs/snapshot-format.md says these bytes mean ("The decoded form").
const EXPECTED = {
  generation: GENERATION.toString(),
  createdAtMs: CREATED_MS,
  pool: {
    namespace: "inference",
    name: "pool-a",
    failureMode: "FailOpen",
    strictModels: true,
    targetPorts: [8000, 8001],
  },
  endpoints: [
    {
      podName: "vllm-0",
      address: "10.0.0.1",
      port: 8000,
      ready: true,
      stale: false,
      hasMetrics: true,
      engine: "vllm",
      metricsAgeMs: 15,
      waiting: 4,
      running: 7,
      kvUsage: 0.25,
      maxLoras: 4,
      kvBlockSize: 16,
      kvBlockCount: 29205,
      runningAdapters: ["sql-lora"],
      waitingAdapters: ["é-adapter"],
    },
    {
      podName: "vllm-1",
      address: "fd00::7",
      port: 30000,
      ready: true,
      stale: true,
      hasMetrics: false,
      engine: "sglang",
      metricsAgeMs: null,
      waiting: 0,
      running: 0,
      kvUsage: 0,
      maxLoras: 0,
      kvBlockSize: 0,
      kvBlockCount: 0,
      runningAdapters: [],
      waitingAdapters: [],
    },
  ],
  models: [
    {
      name: "llama",
      criticality: "Sheddable",
      targets: [
        { name: "llama", weight: 70 },
        { name: "llama-v2", weight: 30 },
      ],
    },
  ],
  objectives: [{ name: "batch", priority: -1 }],
  rewrites: [{ matches: ["llama"], targets: [{ model: "llama-v2", weight: 1 }] }],
  scheduler: {
    profile: "default",
    queueThreshold: 5,
    kvThreshold: 0.8,
    metricsStalenessMs: 200,
    params: { prefixWeight: 2.5 },
  },
};

test("hand-built snapshot: the header is laid out as documented", () => {
  const bytes = snapshotBytes();
  const view = new DataView(bytes.buffer);
  assert.equal(Buffer.from(bytes.subarray(0, 4)).toString("latin1"), "EPPS");
  assert.equal(view.getUint16(4, true), 1, "version 1: filters still read what older sidecars send");
  assert.equal(view.getUint16(6, true), 32);
  assert.equal(view.getUint32(8, true), bytes.length);
  assert.equal(view.getUint32(12, true), crc32(bytes.subarray(16)));
});

test("hand-built snapshot: the TypeScript decoder reads the documented values", () => {
  const s = decodeSnapshot(snapshotBytes());
  assert.deepEqual({ ...s, generation: s.generation.toString() }, EXPECTED);
});

test("hand-built snapshot: the AssemblyScript decoder reads the documented values", async () => {
  const probe = await loadSnapshotProbe();
  const { code, text } = probe.decode(snapshotBytes());
  assert.equal(code, 0, `rejected: ${text}`);
  assert.deepEqual(JSON.parse(text), EXPECTED);
});

test("hand-built snapshot: both decoders reject it with a wrong checksum, length or version", async () => {
  const probe = await loadSnapshotProbe();
  const corrupt = (at: number, value: number) => {
    const b = snapshotBytes();
    b[at] = value;
    return b;
  };
  const cases = {
    "checksum byte": corrupt(12, snapshotBytes()[12]! ^ 1),
    "a body byte (checksum no longer matches)": corrupt(40, snapshotBytes()[40]! ^ 0x80),
    "version 3": corrupt(4, 3),
    "totalLength one short": corrupt(8, snapshotBytes()[8]! - 1),
  };
  for (const [what, bytes] of Object.entries(cases)) {
    assert.throws(() => decodeSnapshot(bytes), SnapshotDecodeError, `TypeScript decoder accepted ${what}`);
    assert.notEqual(probe.decode(bytes).code, 0, `AssemblyScript decoder accepted ${what}`);
  }
});
