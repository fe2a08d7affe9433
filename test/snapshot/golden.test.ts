// The AssemblyScript decoder (through build/snapshot-probe.wasm) against the shared golden vectors:
// every test/fixtures/snapshots/*.bin must decode to exactly the JSON next to it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import { loadSnapshotProbe } from "./probe.ts";

const DIR = new URL("../fixtures/snapshots/", import.meta.url);
const names = readdirSync(DIR)
  .filter((f) => f.endsWith(".bin"))
  .map((f) => f.slice(0, -4))
  .sort();

/** Deep equality with numbers compared within 1e-9. */
function assertClose(actual: unknown, expected: unknown, path: string): void {
  if (typeof expected === "number") {
    assert.equal(typeof actual, "number", `${path}: expected a number`);
    assert.ok(Math.abs((actual as number) - expected) <= 1e-9, `${path}: ${String(actual)} != ${expected}`);
    return;
  }
  if (expected === null || typeof expected !== "object") {
    assert.equal(actual, expected, path);
    return;
  }
  assert.equal(typeof actual, "object", `${path}: expected an object`);
  assert.ok(actual !== null, `${path}: unexpected null`);
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: expected an array`);
    assert.equal(actual.length, expected.length, `${path}: length`);
    expected.forEach((v, i) => assertClose((actual as unknown[])[i], v, `${path}[${i}]`));
    return;
  }
  const a = actual as Record<string, unknown>;
  const e = expected as Record<string, unknown>;
  assert.deepEqual(Object.keys(a).sort(), Object.keys(e).sort(), `${path}: keys`);
  for (const k of Object.keys(e)) assertClose(a[k], e[k], `${path}.${k}`);
}

test("golden vectors exist", () => {
  assert.ok(names.length >= 1, "no test/fixtures/snapshots/*.bin");
});

for (const name of names) {
  test(`golden ${name}: the AssemblyScript decoder yields the documented JSON`, async () => {
    const probe = await loadSnapshotProbe();
    const bin = readFileSync(new URL(`${name}.bin`, DIR));
    const expected: unknown = JSON.parse(readFileSync(new URL(`${name}.json`, DIR), "utf8"));
    const { code, text } = probe.decode(bin);
    assert.equal(code, 0, `rejected: ${text}`);
    assertClose(JSON.parse(text), expected, name);
  });
}

test("CRC-32 matches zlib on known vectors", async () => {
  const probe = await loadSnapshotProbe();
  assert.equal(probe.crc32(Buffer.from("123456789")), 0xcbf43926);
  assert.equal(probe.crc32(new Uint8Array(0)), 0);
  const bytes = Buffer.from("The quick brown fox jumps over the lazy dog");
  assert.equal(probe.crc32(bytes), crc32(bytes));
});
