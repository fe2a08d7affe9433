// Fuzzes the AssemblyScript decoder through build/snapshot-probe.wasm with seeded inputs: truncations,
// bit flips, random bytes and checksum-repaired mutations of the golden vectors. The decoder must never
// trap (the probe's abort throws), must reject every input whose checksum is wrong, and for
// checksum-repaired mutations must accept exactly what the sidecar's strict TS decoder accepts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import { decodeSnapshot as tsDecode } from "../../sidecar/snapshot/decoder.ts";
import { loadSnapshotProbe } from "./probe.ts";
import { mulberry32 } from "../../sim/rng.ts";

const DIR = new URL("../fixtures/snapshots/", import.meta.url);
// The 1000-endpoint vector is large; smaller ones keep the run to a few seconds.
const goldens = readdirSync(DIR)
  .filter((f) => f.endsWith(".bin") && !f.includes("1000"))
  .sort()
  .map((f) => new Uint8Array(readFileSync(new URL(f, DIR))));

function fixCrc(b: Uint8Array): Uint8Array {
  if (b.length >= 16) new DataView(b.buffer, b.byteOffset).setUint32(12, crc32(b.subarray(16)), true);
  return b;
}

function tsAccepts(b: Uint8Array): boolean {
  try {
    tsDecode(b);
    return true;
  } catch {
    return false;
  }
}

test("every truncation of every golden vector is rejected", async () => {
  const probe = await loadSnapshotProbe();
  let n = 0;
  for (const g of goldens) {
    for (let len = 0; len < g.length; len++) {
      assert.notEqual(probe.decode(g.subarray(0, len)).code, 0, `accepted a ${len}-byte prefix`);
      n++;
    }
  }
  assert.ok(n > 500);
});

test("bit flips without a checksum repair are all rejected", async () => {
  const probe = await loadSnapshotProbe();
  const next = mulberry32(42);
  for (let i = 0; i < 3000; i++) {
    const g = goldens[i % goldens.length]!;
    const b = g.slice();
    const flips = 1 + Math.floor(next() * 3);
    for (let k = 0; k < flips; k++) b[Math.floor(next() * b.length)]! ^= 1 << Math.floor(next() * 8);
    if (Buffer.compare(b, g) === 0) continue;
    assert.notEqual(probe.decode(b).code, 0, `accepted a flipped copy (iteration ${i})`);
  }
});

test("random bytes, with and without a valid header, are rejected without trapping", async () => {
  const probe = await loadSnapshotProbe();
  const next = mulberry32(7);
  for (let i = 0; i < 2000; i++) {
    const len = Math.floor(next() * 300);
    const b = new Uint8Array(len);
    for (let k = 0; k < len; k++) b[k] = Math.floor(next() * 256);
    if (i % 2 === 0 && len >= 32) {
      // A plausible header so the section parser sees random sections.
      // Versions 1 and 2 in turn: version 2 reads random PLUGINS sections too.
      b.set([0x45, 0x50, 0x50, 0x53, i % 4 === 0 ? 1 : 2, 0, 32, 0]);
      new DataView(b.buffer).setUint32(8, len, true);
      fixCrc(b);
    }
    const { code } = probe.decode(b);
    assert.equal(code === 0, tsAccepts(b), `AS and TS decoders disagree on random input ${i}`);
  }
});

test("checksum-repaired mutations: the AS decoder accepts exactly what the TS decoder accepts", async () => {
  const probe = await loadSnapshotProbe();
  const next = mulberry32(2026);
  let rejected = 0;
  for (let i = 0; i < 4000; i++) {
    const g = goldens[i % goldens.length]!;
    const b = g.slice();
    const kind = i % 3;
    if (kind === 0) {
      // Flip bytes past the checksum field.
      for (let k = 0; k < 1 + Math.floor(next() * 2); k++)
        b[16 + Math.floor(next() * (b.length - 16))]! ^= 1 + Math.floor(next() * 255);
    } else if (kind === 1) {
      // Overwrite a u32 with an extreme value (counts, lengths, string refs).
      const at = 16 + Math.floor(next() * (b.length - 20));
      new DataView(b.buffer).setUint32(
        at,
        [0, 1, 0xff, 0xffff, 0xffffffff, 0x7fffffff][Math.floor(next() * 6)]!,
        true,
      );
    } else {
      // Small values into single bytes (flags, enums, counts).
      b[32 + Math.floor(next() * (b.length - 32))] = Math.floor(next() * 20);
    }
    fixCrc(b);
    const { code, text } = probe.decode(b);
    const ts = tsAccepts(b);
    assert.equal(
      code === 0,
      ts,
      `mutation ${i}: AS ${code === 0 ? "accepted" : `rejected (${text})`}, TS ${ts ? "accepted" : "rejected"}`,
    );
    if (code !== 0) rejected++;
  }
  assert.ok(rejected > 1000, `only ${rejected} mutations were rejected`);
});
