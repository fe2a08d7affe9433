// The PLUGINS (tag 8) and FLOW_CONTROL (tag 9) sections of format version 2 and unknown engine codes, written byte by byte from
// docs/snapshot-format.md rather than by the encoder, read by both decoders (sidecar/snapshot/decoder.ts
// and the AssemblyScript one through build/snapshot-probe.wasm).
import { test } from "node:test";
import assert from "node:assert/strict";
import { crc32 } from "node:zlib";
import { decodeSnapshot, SnapshotDecodeError } from "../../sidecar/snapshot/decoder.ts";
import { loadSnapshotProbe } from "./probe.ts";
import { snapshotBytesWith } from "../support/snapshot-fixture.ts";
import { f64, i32, section, u16, u32, u8 } from "./le-bytes.ts";

const STRINGS = [
  "ns", // 0
  "pool", // 1
  "pod-0", // 2
  "10.0.0.9", // 3
  "queue-scorer", // 4
  "prefix-cache-scorer", // 5
  "prefix", // 6
  "autoTune", // 7
  "max-score-picker", // 8
  "utilization-detector", // 9
  "metricsStalenessThreshold", // 10
  "mode", // 11
  "fast", // 12
  "default", // 13
];
const strings = section(1, [
  ...u32(STRINGS.length),
  ...STRINGS.flatMap((s) => [...u16(Buffer.byteLength(s)), ...Buffer.from(s)]),
]);
const pool = section(2, [...u32(0), ...u32(1), ...u8(0), ...u8(0), ...u8(1), ...u16(8000)]);
// One endpoint whose engine code (9) no decoder knows: decoded as "unknown", never an error.
const endpoints = section(3, [
  ...u32(1),
  ...[...u32(2), ...u32(3), ...u16(8000), ...u8(0b101), ...u8(9), ...u32(5)],
  ...[...u32(1), ...u32(2), ...u16(100), ...u16(0), ...u16(16), ...u32(10)],
  ...[...u8(0), ...u8(0)],
]);

interface Plugins {
  kind?: number;
  bool?: number;
  weight?: number;
  entryPlugin?: number;
  handler?: number;
  profiles?: number;
}
function pluginsPayload(o: Plugins = {}): number[] {
  return [
    ...u16(4),
    // queue-scorer, no params
    ...[...u32(4), ...u32(4), ...u8(0)],
    // prefix-cache-scorer named "prefix": autoTune false (bool), mode "fast" (string)
    ...[...u32(5), ...u32(6), ...u8(2)],
    ...[...u32(7), ...u8(o.kind ?? 2), ...u8(o.bool ?? 0)],
    ...[...u32(11), ...u8(1), ...u32(12)],
    // max-score-picker
    ...[...u32(8), ...u32(8), ...u8(0)],
    // utilization-detector: metricsStalenessThreshold 150 ms (number)
    ...[...u32(9), ...u32(9), ...u8(1), ...u32(10), ...u8(0), ...f64(150)],
    ...u8(o.profiles ?? 1),
    ...[...u32(13), ...u8(3)],
    ...[...u16(0), ...f64(2), ...u16(o.entryPlugin ?? 1), ...f64(o.weight ?? 3), ...u16(2), ...f64(1)],
    ...u16(o.handler ?? 0xffff),
    ...u16(3),
  ];
}

/** `extra`: further sections, written after ENDPOINTS. */
function snapshotBytes(
  version: number,
  plugins: number[] = pluginsPayload(),
  extra: number[] = [],
): Uint8Array {
  const body = [
    ...u32(1),
    ...u32(0),
    ...u32(2),
    ...u32(0),
    ...strings,
    ...section(8, plugins),
    ...pool,
    ...endpoints,
    ...extra,
  ];
  const head = [0x45, 0x50, 0x50, 0x53, ...u16(version), ...u16(32), ...u32(16 + body.length)];
  return Uint8Array.from([...head, ...u32(crc32(Uint8Array.from(body))), ...body]);
}

const EXPECTED_SCHEDULING = {
  plugins: [
    { type: "queue-scorer", name: "queue-scorer", params: {} },
    { type: "prefix-cache-scorer", name: "prefix", params: { autoTune: false, mode: "fast" } },
    { type: "max-score-picker", name: "max-score-picker", params: {} },
    {
      type: "utilization-detector",
      name: "utilization-detector",
      params: { metricsStalenessThreshold: 150 },
    },
  ],
  profiles: [
    {
      name: "default",
      entries: [
        { plugin: 0, weight: 2 },
        { plugin: 1, weight: 3 },
        { plugin: 2, weight: 1 },
      ],
    },
  ],
  handler: null,
  saturation: 3,
  crc: crc32(Uint8Array.from(pluginsPayload())),
};

test("PLUGINS: both decoders read the documented values, crc = CRC-32 of the section payload", async () => {
  const probe = await loadSnapshotProbe();
  const bytes = snapshotBytes(2);
  const ts = decodeSnapshot(bytes);
  assert.deepEqual(ts.scheduling, EXPECTED_SCHEDULING);
  const { code, text } = probe.decode(bytes);
  assert.equal(code, 0, text);
  assert.deepEqual(JSON.parse(text).scheduling, EXPECTED_SCHEDULING);
});

test("an unknown engine code decodes as unknown on both sides", async () => {
  const probe = await loadSnapshotProbe();
  const bytes = snapshotBytes(2);
  assert.equal(decodeSnapshot(bytes).endpoints[0]!.engine, "unknown");
  assert.equal(JSON.parse(probe.decode(bytes).text).endpoints[0].engine, "unknown");
});

test("version 1: a tag-8 section is skipped, as a version-1 reader did", async () => {
  const probe = await loadSnapshotProbe();
  const bytes = snapshotBytes(1, [1, 2, 3]); // not even a valid PLUGINS payload
  assert.equal(decodeSnapshot(bytes).scheduling, undefined);
  const { code, text } = probe.decode(bytes);
  assert.equal(code, 0, text);
  assert.equal(JSON.parse(text).scheduling, undefined);
});

test("PLUGINS: both decoders reject bad kinds, booleans, weights, indexes and an empty profile list", async () => {
  const probe = await loadSnapshotProbe();
  const cases: Record<string, Plugins> = {
    "param kind 3": { kind: 3 },
    "boolean byte 2": { bool: 2 },
    "negative weight": { weight: -1 },
    "NaN weight": { weight: NaN },
    "infinite weight": { weight: Infinity },
    "entry names plugin 4 of 4": { entryPlugin: 4 },
    "handler 4 of 4": { handler: 4 },
    "no profile": { profiles: 0 },
  };
  for (const [what, o] of Object.entries(cases)) {
    const bytes = snapshotBytes(2, pluginsPayload(o));
    assert.throws(() => decodeSnapshot(bytes), SnapshotDecodeError, `TypeScript decoder accepted ${what}`);
    assert.notEqual(probe.decode(bytes).code, 0, `AssemblyScript decoder accepted ${what}`);
  }
  const truncated = pluginsPayload().slice(0, -1);
  assert.throws(() => decodeSnapshot(snapshotBytes(2, truncated)), SnapshotDecodeError);
  assert.notEqual(probe.decode(snapshotBytes(2, truncated)).code, 0);
});

interface Flow {
  fairness?: number;
  maxBytes?: number;
  bandBytes?: number;
  priorities?: number[];
  bandCount?: number;
}
/** The FLOW_CONTROL payload of docs/snapshot-format.md; `o` plants one bad value. */
function flowPayload(o: Flow = {}): number[] {
  const priorities = o.priorities ?? [100, 0, -10];
  return [
    ...[...u32(20000), ...f64(o.maxBytes ?? 10 * 2 ** 30), ...u32(30000), ...u8(o.fairness ?? 1)],
    ...[...u32(5000), ...f64(2 ** 30), ...u32(0)],
    ...u8(o.bandCount ?? priorities.length),
    ...priorities.flatMap((p, i) => [
      ...i32(p),
      ...u32(1000 * (i + 1)),
      ...f64(i === 1 ? (o.bandBytes ?? 2 ** 20) : 2 ** 20),
      ...u32(i === 0 ? 60000 : 0),
    ]),
  ];
}

const EXPECTED_FLOW = {
  maxRequests: 20000,
  maxBytes: 10 * 2 ** 30,
  defaultTtlMs: 30000,
  fairness: "global-strict",
  defaultBand: { maxRequests: 5000, maxBytes: 2 ** 30, ttlMs: 0 },
  bands: [
    { priority: 100, maxRequests: 1000, maxBytes: 2 ** 20, ttlMs: 60000 },
    { priority: 0, maxRequests: 2000, maxBytes: 2 ** 20, ttlMs: 0 },
    { priority: -10, maxRequests: 3000, maxBytes: 2 ** 20, ttlMs: 0 },
  ],
  crc: crc32(Uint8Array.from(flowPayload())),
};

test("FLOW_CONTROL: both decoders read the documented values, crc = CRC-32 of the section payload", async () => {
  const probe = await loadSnapshotProbe();
  const bytes = snapshotBytes(2, pluginsPayload(), section(9, flowPayload()));
  assert.deepEqual(decodeSnapshot(bytes).flowControl, EXPECTED_FLOW);
  const { code, text } = probe.decode(bytes);
  assert.equal(code, 0, text);
  assert.deepEqual(JSON.parse(text).flowControl, EXPECTED_FLOW);
  // Absent section = flow control off.
  assert.equal(decodeSnapshot(snapshotBytes(2)).flowControl, undefined);
  assert.equal(JSON.parse(probe.decode(snapshotBytes(2)).text).flowControl, undefined);
});

test("FLOW_CONTROL: round-robin fairness and no bands", async () => {
  const probe = await loadSnapshotProbe();
  const bytes = snapshotBytes(2, pluginsPayload(), section(9, flowPayload({ fairness: 0, priorities: [] })));
  const ts = decodeSnapshot(bytes).flowControl!;
  assert.equal(ts.fairness, "round-robin");
  assert.deepEqual(ts.bands, []);
  const as = JSON.parse(probe.decode(bytes).text).flowControl;
  assert.equal(as.fairness, "round-robin");
  assert.deepEqual(as.bands, []);
});

test("version 1: a tag-9 section is skipped; version 2 skips tags above 9", async () => {
  const probe = await loadSnapshotProbe();
  const garbage = section(9, [1, 2, 3]);
  const v1 = snapshotBytes(1, [1, 2, 3], garbage);
  assert.equal(decodeSnapshot(v1).flowControl, undefined);
  const r1 = probe.decode(v1);
  assert.equal(r1.code, 0, r1.text);
  assert.equal(JSON.parse(r1.text).flowControl, undefined);
  const v2 = snapshotBytes(2, pluginsPayload(), [...section(10, [9, 9, 9]), ...section(0xffff, [])]);
  assert.equal(decodeSnapshot(v2).flowControl, undefined);
  const r2 = probe.decode(v2);
  assert.equal(r2.code, 0, r2.text);
});

test("FLOW_CONTROL: both decoders reject bad fairness, byte totals, band order and counts", async () => {
  const probe = await loadSnapshotProbe();
  const cases: Record<string, number[]> = {
    "fairness 2": section(9, flowPayload({ fairness: 2 })),
    "NaN maxBytes": section(9, flowPayload({ maxBytes: NaN })),
    "infinite maxBytes": section(9, flowPayload({ maxBytes: Infinity })),
    "negative maxBytes": section(9, flowPayload({ maxBytes: -1 })),
    "fractional band maxBytes": section(9, flowPayload({ bandBytes: 1.5 })),
    "band maxBytes 2^53": section(9, flowPayload({ bandBytes: 2 ** 53 })),
    "bands ascending": section(9, flowPayload({ priorities: [-10, 0, 100] })),
    "repeated priority": section(9, flowPayload({ priorities: [5, 5] })),
    "band count beyond the payload": section(9, flowPayload({ bandCount: 4 })),
    "band count short of the payload (trailing bytes)": section(9, flowPayload({ bandCount: 2 })),
    truncated: section(9, flowPayload().slice(0, -1)),
    "section twice": [...section(9, flowPayload()), ...section(9, flowPayload())],
  };
  for (const [what, extra] of Object.entries(cases)) {
    const bytes = snapshotBytes(2, pluginsPayload(), extra);
    assert.throws(() => decodeSnapshot(bytes), SnapshotDecodeError, `TypeScript decoder accepted ${what}`);
    assert.notEqual(probe.decode(bytes).code, 0, `AssemblyScript decoder accepted ${what}`);
  }
});

test("FLOW_CONTROL: the test fixture fills what a test leaves out, and the filter's decoder reads it", async () => {
  const probe = await loadSnapshotProbe();
  const bytes = snapshotBytesWith({
    flowControl: { bands: [{ priority: 0, maxRequests: 2, maxBytes: 0, ttlMs: 500 }] },
  });
  const { code, text } = probe.decode(bytes);
  assert.equal(code, 0, text);
  const { crc, ...fc } = JSON.parse(text).flowControl;
  assert.equal(typeof crc, "number");
  assert.deepEqual(fc, {
    maxRequests: 0,
    maxBytes: 0,
    defaultTtlMs: 0,
    fairness: "round-robin",
    defaultBand: { maxRequests: 5000, maxBytes: 2 ** 30, ttlMs: 0 },
    bands: [{ priority: 0, maxRequests: 2, maxBytes: 0, ttlMs: 500 }],
  });
});
