// Seeded garbage through the real build/filter.wasm: plugin configurations (never a trap, either
// accepted or rejected with a message naming the problem) and control-path bodies (never a trap,
// never stored unless valid).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { crc32 } from "node:zlib";
import { EnvoyProcess, PluginConfigError } from "../../host/index.ts";
import type { LocalReply } from "../../host/index.ts";
import { mulberry32 } from "../../sim/rng.ts";

const WASM = readFileSync(new URL("../../build/filter.wasm", import.meta.url));
const GOLDEN = new Uint8Array(readFileSync(new URL("../fixtures/snapshots/realistic.bin", import.meta.url)));
const GOLDEN_POOL = JSON.parse(
  readFileSync(new URL("../fixtures/snapshots/realistic.json", import.meta.url), "utf8"),
) as {
  pool: { namespace: string; name: string };
};
const VALID_CONFIG =
  '{"pool":{"namespace":"a","name":"b"},"controlToken":"tok","failureMode":"FailOpen","staleAfterMs":10,"randomSeed":5}';

test("mutated plugin configurations load or are rejected with a message, never trap", async () => {
  const module = await WebAssembly.compile(WASM);
  const next = mulberry32(11);
  const alphabet = '{}[]":,0123456789-.eE truefalsnl\\u"poolcontrolTokennamespacename';
  let accepted = 0;
  for (let i = 0; i < 300; i++) {
    const chars = [...VALID_CONFIG];
    const edits = 1 + Math.floor(next() * 4);
    for (let k = 0; k < edits; k++) {
      const at = Math.floor(next() * chars.length);
      const op = Math.floor(next() * 3);
      const c = alphabet[Math.floor(next() * alphabet.length)]!;
      if (op === 0) chars.splice(at, 1);
      else if (op === 1) chars.splice(at, 0, c);
      else chars[at] = c;
    }
    const errors: string[] = [];
    const proc = new EnvoyProcess({ log: (e) => e.level >= 4 && errors.push(e.message) });
    try {
      const plugin = await proc.loadPlugin(module, {
        vmId: "fuzz",
        workers: 1,
        configuration: chars.join(""),
      });
      accepted++;
      await plugin.shutdown();
    } catch (e) {
      assert.ok(e instanceof PluginConfigError, String(e));
      assert.ok(
        errors.some((m) => m.includes("invalid plugin configuration")),
        `config ${JSON.stringify(chars.join(""))} failed without a config error: ${errors.join(" | ")}`,
      );
    }
  }
  assert.ok(accepted > 0 && accepted < 300, `accepted ${accepted} of 300`);
});

test("garbage and corrupted control bodies get 400 (or 204/409 when valid) and never trap", async () => {
  const proc = new EnvoyProcess();
  const plugin = await proc.loadPlugin(WASM, {
    vmId: "epp",
    workers: 1,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({ pool: GOLDEN_POOL.pool, controlToken: "tok" }),
  });
  const next = mulberry32(99);
  const statuses = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    let body: Uint8Array;
    if (i % 2 === 0) {
      body = new Uint8Array(1 + Math.floor(next() * 200));
      for (let k = 0; k < body.length; k++) body[k] = Math.floor(next() * 256);
    } else {
      body = new Uint8Array(GOLDEN);
      body[16 + Math.floor(next() * (body.length - 16))]! ^= 1 + Math.floor(next() * 255);
      if (i % 4 === 1) new DataView(body.buffer).setUint32(12, crc32(body.subarray(16)), true);
    }
    let reply: LocalReply | undefined;
    const s = plugin.newHttpStream({
      forwardRequestHeaders: () => assert.fail("a control request was forwarded"),
      forwardRequestData: () => {},
      forwardResponseHeaders: () => {},
      forwardResponseData: () => {},
      localReply: (r) => (reply = r),
    });
    s.decodeHeaders(
      [
        [":method", "POST"],
        [":path", "/epp/v1/snapshot"],
        ["authorization", "Bearer tok"],
      ],
      false,
    );
    s.decodeData(body, true);
    s.destroy();
    assert.ok(reply, `no reply for body ${i}`);
    statuses.set(reply.status, (statuses.get(reply.status) ?? 0) + 1);
    assert.ok([204, 400, 409].includes(reply.status), `status ${reply.status}`);
  }
  assert.deepEqual(plugin.failedWorkers, []);
  assert.ok((statuses.get(400) ?? 0) > 300, JSON.stringify([...statuses]));
  await plugin.shutdown();
});
