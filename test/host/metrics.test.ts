// proxy_define_metric & co. as Envoy 1.35 answers them (host/README.md, "Metrics" rows).
import { test } from "node:test";
import assert from "node:assert/strict";
import { WasmResult } from "../../host/index.ts";
import { loadPuppet, newEnvoy } from "./puppet.ts";

const R = WasmResult;
const U64 = 2n ** 64n;

type Guest = Awaited<ReturnType<typeof loadPuppet>>["guests"] extends Map<number, infer G> ? G : never;

/** Defines counter "c", gauge "g" and histogram "h" in `g`'s VM; their ids. */
function defineThree(g: Guest): [number, number, number] {
  g.reset();
  const ip = g.alloc(4);
  return (["c", "g", "h"] as const).map((n, type) => {
    g.call("proxy_define_metric", type, ...g.put(n), ip);
    return g.u32(ip);
  }) as [number, number, number];
}

test("metrics: a second define of a name gets a new id for the same stat; counter and gauge of one name are two stats", async () => {
  const envoy = newEnvoy();
  const { plugin, guests } = await loadPuppet(envoy, {});
  const g = guests.get(0)!;
  g.reset();
  const ip = g.alloc(4);
  const define = (type: number, name: string): [number, number] => [
    g.call("proxy_define_metric", type, ...g.put(name), ip),
    g.u32(ip),
  ];
  assert.deepEqual(define(0, "a"), [R.Ok, 4]);
  assert.deepEqual(define(0, "a"), [R.Ok, 8]);
  assert.deepEqual(define(1, "a"), [R.Ok, 5]);
  assert.deepEqual(define(2, "h"), [R.Ok, 6]);
  assert.equal(g.call("proxy_increment_metric", 4, 1n), R.Ok);
  assert.equal(g.call("proxy_increment_metric", 8, 2n), R.Ok);
  assert.equal(g.call("proxy_record_metric", 5, 7n), R.Ok);
  assert.equal(envoy.metrics.value("a"), 3n); // the counter: both ids
  const vp = g.alloc(8);
  assert.equal(g.call("proxy_get_metric", 5, vp), R.Ok);
  assert.equal(g.u64(vp), 7n); // the gauge of the same name is its own stat
  await plugin.shutdown();
});

test("metrics: type above histogram is BadArgument; a bad id pointer still defines the metric", async () => {
  const envoy = newEnvoy();
  const { plugin, guests } = await loadPuppet(envoy, {});
  const g = guests.get(0)!;
  g.reset();
  const ip = g.alloc(4);
  assert.equal(g.call("proxy_define_metric", 3, ...g.put("x"), ip), R.BadArgument);
  assert.equal(g.call("proxy_define_metric", 0, ...g.put("lost"), 0xfffffff0), R.InvalidMemoryAccess);
  assert.equal(envoy.metrics.value("lost"), 0n);
  g.call("proxy_define_metric", 0, ...g.put("next"), ip);
  assert.equal(g.u32(ip), 8); // id 4 went to "lost"
  await plugin.shutdown();
});

test("metrics: increment — counters need delta > 0, gauges add and subtract (uint64), histograms refuse", async () => {
  const envoy = newEnvoy();
  const { plugin, guests } = await loadPuppet(envoy, {});
  const g = guests.get(0)!;
  const [c, gauge, h] = defineThree(g);
  assert.equal(g.call("proxy_increment_metric", c, 0n), R.BadArgument);
  assert.equal(g.call("proxy_increment_metric", c, -1n), R.BadArgument);
  assert.equal(g.call("proxy_increment_metric", c + 4, 1n), R.NotFound); // counter id never defined
  assert.equal(g.call("proxy_increment_metric", c + 4, 0n), R.NotFound); // looked up before the delta check
  assert.equal(g.call("proxy_increment_metric", gauge, 5n), R.Ok);
  assert.equal(g.call("proxy_increment_metric", gauge, -7n), R.Ok);
  assert.equal(envoy.metrics.value("g"), U64 - 2n);
  assert.equal(g.call("proxy_increment_metric", gauge + 4, 1n), R.NotFound);
  assert.equal(g.call("proxy_increment_metric", h, 1n), R.BadArgument);
  assert.equal(g.call("proxy_increment_metric", 7, 1n), R.BadArgument); // type bits 3
  await plugin.shutdown();
});

test("metrics: record — adds to a counter, sets a gauge, samples a histogram; unknown ids are NotFound", async () => {
  const envoy = newEnvoy();
  const { plugin, guests } = await loadPuppet(envoy, {});
  const g = guests.get(0)!;
  const [c, gauge, h] = defineThree(g);
  assert.equal(g.call("proxy_record_metric", c, 3n), R.Ok);
  assert.equal(g.call("proxy_record_metric", c, 0n), R.Ok); // no positivity check on record
  assert.equal(g.call("proxy_record_metric", gauge, 9n), R.Ok);
  assert.equal(g.call("proxy_record_metric", gauge, 4n), R.Ok);
  assert.equal(g.call("proxy_record_metric", h, 12n), R.Ok);
  assert.equal(g.call("proxy_record_metric", h, 30n), R.Ok);
  assert.equal(envoy.metrics.value("c"), 3n);
  assert.equal(envoy.metrics.value("g"), 4n);
  const hist = envoy.metrics.histogram("h")!;
  assert.deepEqual([hist.count, hist.sum], [2, 42]);
  for (const id of [c + 4, gauge + 4, h + 4, 7])
    assert.equal(g.call("proxy_record_metric", id, 1n), R.NotFound);
  await plugin.shutdown();
});

test("metrics: get — counters and gauges; histogram ids and type bits 3 are BadArgument, unknown ids NotFound", async () => {
  const envoy = newEnvoy();
  const { plugin, guests } = await loadPuppet(envoy, {}, { workers: 2 });
  const out: unknown[] = [];
  for (const g of [guests.get(0)!, guests.get(1)!]) {
    g.reset();
    const ip = g.alloc(4);
    g.call("proxy_define_metric", 0, ...g.put("shared"), ip);
    const c = g.u32(ip);
    g.call("proxy_define_metric", 2, ...g.put("hist"), ip);
    const h = g.u32(ip);
    g.call("proxy_increment_metric", c, 1n);
    const vp = g.alloc(8);
    out.push([g.call("proxy_get_metric", c, vp), g.u64(vp)]);
    out.push(g.call("proxy_get_metric", h, vp));
    out.push(g.call("proxy_get_metric", 3, vp));
    out.push(g.call("proxy_get_metric", c + 4, vp));
    out.push(g.call("proxy_get_metric", 9, vp)); // gauge id never defined
  }
  // Ids are per VM (both workers' first counter is 4); the stat is per process.
  assert.deepEqual(out, [
    [R.Ok, 1n],
    R.BadArgument,
    R.BadArgument,
    R.NotFound,
    R.NotFound,
    [R.Ok, 2n],
    2,
    2,
    1,
    1,
  ]);
  await plugin.shutdown();
});
