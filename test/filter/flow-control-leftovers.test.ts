// Flow control's edges (issue 22 follow-ups), with the real build/filter.wasm in the host: a root
// reconfigured while requests are held, a TTL shortened while requests are held, and hostile
// fairness-id values.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { LoadedPlugin } from "../../host/plugin.ts";
import { DEST, harness, pool, TOKEN } from "../support/flow-harness.ts";
import type { Harness, Held } from "../support/flow-harness.ts";

const enc = new TextEncoder();
const SATURATED: [number, number] = [9, 9];
const ROOM_ONE: [number, number] = [5, 9];
/** Room for three: endpoint 1 takes 3 more before its queue limit. */
const ROOM_THREE: [number, number] = [3, 9];

/**
 * on_configure again on the worker's live root, as Envoy does when a listener update keeps the plugin's
 * name (cpp-host WasmBase::start finds root_contexts_[plugin key] and runs onStart, then configure).
 * The host has no call for it, so the test drives the export with the new configuration readable.
 */
function reconfigure(t: Harness, config: Record<string, unknown>): void {
  const plugin = t.plugin as unknown as LoadedPlugin;
  const vm = plugin.vms[0]!;
  const id = plugin.rootContextIds[0]!;
  const root = vm.roots.get(id)!;
  const bytes = enc.encode(
    JSON.stringify({
      pool: { namespace: "default", name: "pool-a" },
      controlToken: TOKEN,
      staleAfterMs: 0,
      randomSeed: 1,
      ...config,
    }),
  );
  (root as unknown as { pluginConfiguration: Uint8Array }).pluginConfiguration = bytes;
  const ok = vm.host(() => {
    vm.configurationReadable = true;
    try {
      return vm.call("proxy_on_configure", id, bytes.length);
    } finally {
      vm.configurationReadable = false;
    }
  });
  assert.equal(ok, 1, "on_configure accepted");
}

/** The local reply's status (a function, so TypeScript does not narrow `reply` across clock ticks). */
function statusOf(h: Held): number | undefined {
  return h.reply?.status;
}

function dest(h: Held): string | undefined {
  return h.forwarded?.find(([k]) => k === DEST)?.[1];
}

function errorOf(h: Held): { type: string; code: string; message: string } {
  return (
    JSON.parse(new TextDecoder().decode(h.reply?.body)) as {
      error: { type: string; code: string; message: string };
    }
  ).error;
}

test("reconfigured root, same pool: held requests move to the new configuration, in order, and are dispatched", async () => {
  const t = await harness();
  t.push(pool(SATURATED));
  const a = t.send("a", { objective: "critical" });
  const b = t.send("b");
  const c = t.send("c", { objective: "sheddable" });
  t.tick(20);
  reconfigure(t, { debugHeaders: true });
  t.tick(20);
  for (const h of [a, b, c]) assert.equal(h.reply, undefined, `${h.name} still held`);
  t.push(pool(ROOM_ONE));
  t.tick();
  assert.equal(dest(a), "10.0.0.1:8000", "the critical one first, by the new plugin's tick");
  assert.equal(b.forwarded, undefined);
  t.push(pool(ROOM_THREE));
  t.tick();
  assert.ok(dest(b) && dest(c), "the rest follow");
  // A moved request's client leaving frees its place in the new queue (no stale entry in the old one).
  t.push(pool(SATURATED));
  const d = t.send("d");
  const e = t.send("e");
  reconfigure(t, {});
  d.stream.destroy();
  t.push(pool(ROOM_ONE));
  t.tick();
  assert.equal(dest(e), "10.0.0.1:8000", "d left, so e is next");
  for (const h of [a, b, c, e]) t.finish(h);
});

test("reconfigured root, another pool: held requests are answered 503 with Retry-After at once", async () => {
  const t = await harness();
  t.push(pool(SATURATED));
  const a = t.send("a");
  const b = t.send("b", { objective: "sheddable" });
  reconfigure(t, { pool: { namespace: "default", name: "pool-b" } });
  for (const h of [a, b]) {
    assert.equal(h.reply?.status, 503, h.name);
    assert.equal(h.reply?.headers.find(([k]) => k === "retry-after")?.[1], "1");
    assert.equal(errorOf(h).code, "reconfigured");
    assert.equal(h.forwarded, undefined);
  }
});

test("a shortened TTL applies to requests already held: they expire by the new TTL from their arrival", async () => {
  const t = await harness();
  t.push(pool(SATURATED, { flowControl: { defaultTtlMs: 10_000 } }));
  const old = t.send("old");
  t.tick(40);
  t.push(pool(SATURATED, { flowControl: { defaultTtlMs: 100 } }));
  const young = t.send("young");
  t.tick(40);
  assert.equal(old.reply, undefined, "80 ms held: within the new TTL");
  t.tick(30);
  assert.equal(statusOf(old), 503, "110 ms after arrival: past the new 100 ms TTL, not the old 10 s");
  assert.equal(errorOf(old).code, "queue_timeout");
  assert.equal(young.reply, undefined, "70 ms held");
  t.tick(40);
  assert.equal(statusOf(young), 503);
  // Lengthened again: a held request gets the longer TTL.
  const late = t.send("late");
  t.tick(50);
  t.push(pool(SATURATED, { flowControl: { defaultTtlMs: 1_000 } }));
  t.tick(100);
  assert.equal(late.reply, undefined, "150 ms: within the lengthened TTL");
  t.tick(900);
  assert.equal(statusOf(late), 503);
});

test("fairness id: 256 bytes is held, 257 bytes is a 400 with flow control on; with it off the header is not read", async () => {
  const t = await harness();
  t.push(pool(SATURATED));
  const fits = t.send("fits", { fairness: "é".repeat(128) });
  assert.equal(fits.reply, undefined);
  const long = t.send("long", { fairness: "x".repeat(257) });
  assert.equal(long.reply?.status, 400);
  assert.equal(errorOf(long).code, "invalid_fairness_id");
  const multibyte = t.send("multibyte", { fairness: "é".repeat(129) });
  assert.equal(multibyte.reply?.status, 400, "the cap counts UTF-8 bytes");
  t.push(pool(SATURATED, { flowControl: undefined }));
  const off = t.send("off", { fairness: "x".repeat(4096) });
  assert.ok(dest(off), "flow control off: routed as before");
});

test("hostile fairness ids: a spray of distinct ids is bounded by the band limit, and memory does not grow across rounds", async () => {
  const t = await harness(1);
  const fc = { defaultBand: { maxRequests: 50, maxBytes: 0, ttlMs: 0 } };
  t.push(pool(SATURATED, { flowControl: fc }));
  const plugin = t.plugin as unknown as LoadedPlugin;
  const pages = () => plugin.vms[0]!.memory.byteLength;
  let n = 0;
  const round = (): void => {
    const sent: Held[] = [];
    for (let k = 0; k < 400; k++) {
      const id = `${n++}-`.padEnd(256, String.fromCharCode(0x21 + (n % 90)));
      sent.push(t.send(`r${n}`, { fairness: id }));
    }
    const held = sent.filter((h) => h.reply === undefined);
    const refused = sent.filter((h) => h.reply?.status === 503);
    assert.equal(held.length, 50, "the band holds its limit");
    assert.equal(refused.length, 350, "the rest are refused at once");
    for (const h of sent) h.stream.destroy();
    t.tick();
  };
  round();
  round();
  const after = pages();
  for (let r = 0; r < 5; r++) round();
  assert.equal(pages(), after, "ids leave with their requests: no growth over five more rounds");
  // The queue still works after the spray.
  const ok = t.send("ok", { fairness: "tenant" });
  t.push(pool(ROOM_ONE, { flowControl: fc }));
  t.tick();
  assert.ok(dest(ok));
});
