// Host calls outside the filter-manager path: shared data, queues, ticks, properties,
// foreign functions, logging, WASI and the memory protocol.
import { test } from "node:test";
import assert from "node:assert/strict";
import { SharedData, VirtualClock, WasmResult } from "../../host/index.ts";
import { compileWat, loadPuppet, newEnvoy, puppetWat } from "./puppet.ts";
import { REQ, recorder } from "./recorder.ts";

test("shared data: keyed by vm_id, global CAS counter from 1, exact CAS rules", () => {
  const sd = new SharedData();
  assert.equal(sd.get("a", "k"), undefined);
  assert.equal(sd.set("a", "k", Uint8Array.of(1), 12345), WasmResult.Ok); // new key ignores cas
  assert.equal(sd.get("a", "k")!.cas, 1);
  assert.equal(sd.set("b", "other", Uint8Array.of(2)), WasmResult.Ok);
  assert.equal(sd.get("b", "other")!.cas, 2); // one counter across vm_ids
  assert.equal(sd.get("b", "k"), undefined); // scoped by vm_id
  assert.equal(sd.set("a", "k", Uint8Array.of(3), 99), WasmResult.CasMismatch);
  assert.equal(sd.set("a", "k", Uint8Array.of(3), 1), WasmResult.Ok);
  assert.equal(sd.get("a", "k")!.cas, 3);
  assert.equal(sd.set("a", "k", Uint8Array.of(4), 0), WasmResult.Ok); // cas 0 always overwrites
  assert.deepEqual(sd.get("a", "k")!.value, Uint8Array.of(4));
  // Wrap: the counter skips 0.
  (sd as unknown as { casCounter: number }).casCounter = 0xffffffff;
  sd.set("a", "w", Uint8Array.of(0));
  assert.equal(sd.get("a", "w")!.cas, 1);
});

test("shared data through the ABI is shared by all workers with the same vm_id", async () => {
  const envoy = newEnvoy();
  const out: unknown[] = [];
  const { plugin, guests } = await loadPuppet(envoy, {}, { workers: 2 });
  const [g0, g1] = [guests.get(0)!, guests.get(1)!];
  g0.reset();
  g1.reset();
  assert.equal(g0.sharedGet("endpoints/m").r, WasmResult.NotFound);
  assert.equal(g0.sharedSet("endpoints/m", "10.0.0.1:8000"), 0);
  const got = g1.sharedGet("endpoints/m");
  out.push(got.value);
  out.push(g1.sharedSet("endpoints/m", "x", got.cas + 100));
  out.push(g1.sharedSet("endpoints/m", "10.0.0.2:8000", got.cas));
  out.push(envoy.sharedData.get("vm", "endpoints/m")!.cas > got.cas);
  assert.deepEqual(out, ["10.0.0.1:8000", WasmResult.CasMismatch, 0, true]);
  // An empty value copies out as ptr 0 / size 0 without calling malloc.
  g0.sharedSet("empty", "");
  const pp = g0.alloc(4);
  const sp = g0.alloc(4);
  const cp = g0.alloc(4);
  assert.equal(g0.call("proxy_get_shared_data", ...g0.put("empty"), pp, sp, cp), 0);
  assert.deepEqual([g0.u32(pp), g0.u32(sp)], [0, 0]);
  // A bad return pointer gives InvalidMemoryAccess instead of a trap.
  assert.equal(
    g0.call("proxy_get_shared_data", ...g0.put("endpoints/m"), 0xfffffff0, sp, cp),
    WasmResult.InvalidMemoryAccess,
  );
  await plugin.shutdown();
  assert.equal(envoy.sharedData.get("vm", "endpoints/m"), undefined); // last VM gone → vm_id data erased
});

test("shared queues: register/resolve/enqueue/dequeue; on_queue_ready delivered asynchronously to the owner", async () => {
  const clock = new VirtualClock();
  const ready: string[] = [];
  const { plugin, guests } = await loadPuppet(
    newEnvoy({ clock }),
    {
      proxy_on_queue_ready: (g, root, token) => {
        const o = g.callOut("proxy_dequeue_shared_queue", token!);
        ready.push(`${g.worker}:${root}:${g.text(o.data)}`);
        ready.push(`again:${g.callOut("proxy_dequeue_shared_queue", token!).r}`);
      },
    },
    { workers: 2 },
  );
  const [g0, g1] = [guests.get(0)!, guests.get(1)!];
  const tp = g0.alloc(4);
  assert.equal(g0.call("proxy_register_shared_queue", ...g0.put("q"), tp), 0);
  const token = g0.u32(tp);
  const rp = g1.alloc(4);
  assert.equal(g1.call("proxy_resolve_shared_queue", ...g1.put(""), ...g1.put("q"), rp), 0);
  assert.equal(g1.u32(rp), token);
  assert.equal(
    g1.call("proxy_resolve_shared_queue", ...g1.put("vm"), ...g1.put("nope"), rp),
    WasmResult.NotFound,
  );
  assert.equal(g1.call("proxy_enqueue_shared_queue", token, ...g1.put("item")), 0);
  assert.equal(g1.call("proxy_enqueue_shared_queue", token + 99, ...g1.put("item")), WasmResult.NotFound);
  assert.deepEqual(ready, []); // not inline
  clock.runUntilIdle();
  assert.deepEqual(ready, ["0:1:item", `again:${WasmResult.Empty}`]);
  await plugin.shutdown();
});

test("ticks: per root context, via the clock, period 0 disables, re-armed after each on_tick", async () => {
  const clock = new VirtualClock();
  const ticks: string[] = [];
  const count = (prefix: string) => ticks.filter((t) => t.startsWith(prefix)).length;
  const { plugin } = await loadPuppet(
    newEnvoy({ clock }),
    {
      proxy_on_configure: (g) => {
        g.call("proxy_set_tick_period_milliseconds", 100);
        return 1;
      },
      proxy_on_tick: (g) => {
        ticks.push(`${g.worker}@${clock.nowMs()}`);
        if (ticks.length === 5) g.call("proxy_set_tick_period_milliseconds", 0);
      },
    },
    { workers: 2 },
  );
  clock.advance(99);
  assert.deepEqual(ticks, []);
  clock.advance(1);
  assert.deepEqual(ticks, ["0@100", "1@100"]);
  clock.advance(200);
  assert.deepEqual(ticks, ["0@100", "1@100", "0@200", "1@200", "0@300", "1@300"]);
  clock.advance(1000);
  assert.equal(count("0@"), 3); // worker 0 disabled its timer at its 3rd tick
  assert.ok(count("1@") > 3);
  await plugin.shutdown();
  assert.equal(clock.pendingTimers(), 0);
});

test("properties: NUL-separated paths, plugin names, source address, extras; dotted path → NotFound", async () => {
  const got: Record<string, unknown> = {};
  const { plugin } = await loadPuppet(
    newEnvoy(),
    {
      proxy_on_request_headers: (g) => {
        const t = (p: string) => {
          const r = g.property(p);
          return r.r === 0 ? g.text(r.data) : r.r;
        };
        got.path = t("request\0path");
        got.urlPath = t("request\0url_path");
        got.method = t("request\0method");
        got.header = t("request\0headers\0x-model");
        got.dotted = t("request.path");
        got.source = t("source\0address");
        got.port = new DataView(g.property("source\0port").data.buffer).getBigInt64(0, true);
        got.name = t("plugin_name");
        got.root = t("plugin_root_id");
        got.vm = t("plugin_vm_id");
        got.extra = t("xds\0cluster_name");
        got.set = g.call("proxy_set_property", ...g.put("my_key"), ...g.put("v"));
        got.filterState = t("my_key");
        return 0;
      },
      proxy_on_response_headers: (g) => {
        got.afterRelease = g.property("request\0path").r;
        return 0;
      },
    },
    { properties: { "xds\0cluster_name": "pods_odst" } },
  );
  const s = plugin.newHttpStream(recorder(), { downstream: { address: "10.1.2.3", port: 5555 } });
  s.decodeHeaders(REQ, true);
  s.encodeHeaders([[":status", "200"]], true);
  s.destroy();
  assert.deepEqual(got, {
    path: "/v1/chat?x=1",
    urlPath: "/v1/chat",
    method: "POST",
    header: "m1",
    dotted: WasmResult.NotFound,
    source: "10.1.2.3:5555",
    port: 5555n,
    name: "puppet",
    root: "root",
    vm: "vm",
    extra: "pods_odst",
    set: 0,
    filterState: "v",
    afterRelease: WasmResult.NotFound,
  });
  await plugin.shutdown();
});

test("foreign functions: clear_route_cache Ok, compress round-trip, unknown → NotFound", async () => {
  const out: unknown[] = [];
  const { plugin } = await loadPuppet(newEnvoy(), {
    proxy_on_request_headers: (g) => {
      out.push(g.callOut("proxy_call_foreign_function", ...g.put("clear_route_cache"), ...g.put("")).r);
      const c = g.callOut("proxy_call_foreign_function", ...g.put("compress"), ...g.put("aaaaaaaaaa"));
      const u = g.callOut("proxy_call_foreign_function", ...g.put("uncompress"), ...g.put(c.data));
      out.push(g.text(u.data));
      out.push(g.callOut("proxy_call_foreign_function", ...g.put("no_such_fn"), ...g.put("")).r);
      return 0;
    },
  });
  const s = plugin.newHttpStream(recorder());
  s.decodeHeaders(REQ, true);
  assert.equal((s as unknown as { routeCacheClears: number }).routeCacheClears, 1);
  s.destroy();
  assert.deepEqual(out, [0, "aaaaaaaaaa", WasmResult.NotFound]);
  await plugin.shutdown();
});

test("logging: levels, prefix, level filter, get_log_level, level > 5 → BadArgument", async () => {
  const entries: string[] = [];
  const { plugin, guests } = await loadPuppet(
    newEnvoy({ log: (e) => entries.push(`${e.level}|${e.message}`) }),
    {},
    { logLevel: 3 },
  );
  const g = guests.get(0)!;
  g.reset();
  assert.equal(g.log(2, "dropped"), 0);
  assert.equal(g.log(4, "kept"), 0);
  assert.equal(g.log(6, "bad"), WasmResult.BadArgument);
  const lp = g.alloc(4);
  assert.equal(g.call("proxy_get_log_level", lp), 0);
  assert.equal(g.u32(lp), 3);
  assert.deepEqual(entries, ["4|wasm log puppet root vm: kept"]);
  assert.equal(plugin.logs.at(-1)!.message, "wasm log puppet root vm: kept");
  await plugin.shutdown();
});

test("WASI subset: fd_write to fd 1/2 logs info/error, other fds EBADF; environ; random_get limit; proc_exit only logs (at trace)", async () => {
  const entries: string[] = [];
  const { plugin, guests } = await loadPuppet(
    newEnvoy({ log: (e) => entries.push(`${e.level}|${e.message}`) }),
    {},
    { environment: { A: "1", BB: "22" } },
  );
  const g = guests.get(0)!;
  g.reset();
  const [mp, ml] = g.put("hello\n");
  const iov = g.alloc(8);
  g.setU32(iov, mp);
  g.setU32(iov + 4, ml);
  const np = g.alloc(4);
  assert.equal(g.call("fd_write", 1, iov, 1, np), 0);
  assert.equal(g.u32(np), 6);
  assert.equal(g.call("fd_write", 2, iov, 1, np), 0);
  assert.equal(g.call("fd_write", 3, iov, 1, np), 8);
  const cp = g.alloc(4);
  const sp = g.alloc(4);
  assert.equal(g.call("environ_sizes_get", cp, sp), 0);
  assert.deepEqual([g.u32(cp), g.u32(sp)], [2, 10]);
  assert.equal(g.call("random_get", g.alloc(16), 16), 0);
  assert.equal(g.call("random_get", 0, 65537), 28);
  assert.equal(g.call("clock_time_get", 2, 0n, g.alloc(8)), 58);
  assert.equal(g.call("fd_read", 0, 0, 0, 0), 52);
  g.call("proc_exit", 3);
  assert.deepEqual(entries.slice(0, 2), [
    "2|wasm log puppet root vm: hello",
    "4|wasm log puppet root vm: hello",
  ]);
  // Envoy 1.35 (cpp-host 65bb78f): proc_exit, fd_seek and fd_close log at trace only and carry on;
  // poll_oneoff is ENOSYS; functions added to cpp-host later are not linked at all.
  assert.ok(!entries.some((e) => e.includes("proc_exit")), "logged at trace, below the default level");
  assert.equal(g.call("fd_seek", 1, 0n, 0, g.alloc(8)), 0);
  assert.equal(g.call("poll_oneoff", 0, 0, 0, g.alloc(4)), 52);
  await plugin.shutdown();
});

test("malloc protocol: memory growth inside malloc is survived (views refreshed)", async () => {
  const { plugin, guests } = await loadPuppet(newEnvoy(), {});
  const g = guests.get(0)!;
  g.reset();
  const big = "x".repeat(300_000); // forces memory.grow inside the guest's malloc
  assert.equal(g.sharedSet("big", "small"), 0);
  const envoyData = new TextEncoder().encode(big);
  (
    plugin as unknown as { vms: Array<{ services: { sharedData: SharedData } }> }
  ).vms[0]!.services.sharedData.set("vm", "big", envoyData);
  const r = g.sharedGet("big");
  assert.equal(r.r, 0);
  assert.equal(r.value.length, 300_000);
  await plugin.shutdown();
});

test("a module without malloc or without the ABI marker is rejected with Envoy's text", async () => {
  const noMalloc = await compileWat(puppetWat({ omit: ["malloc"] }));
  await assert.rejects(loadPuppet(newEnvoy(), {}, {}, noMalloc), /Wasm module is missing malloc function\./);
  const noAbi = await compileWat(puppetWat({ omit: ["abi"] }));
  await assert.rejects(loadPuppet(newEnvoy(), {}, {}, noAbi), /Missing or unknown Proxy-Wasm ABI version/);
});

test("malloc runs restricted: proxy_log is allowed inside it, other proxy calls fail the VM", async () => {
  // cpp-host WasmBase::allocMemory restricts malloc to proxy_log, fd_write and clock_time_get. This
  // malloc logs on every call and, for a 13-byte allocation, sets a tick period.
  const malloc = `(func (export "malloc") (param $n i32) (result i32) (local $p i32)
    (drop (call $proxy_log (i32.const 2) (i32.const 0) (i32.const 0)))
    (if (i32.eq (local.get $n) (i32.const 13))
      (then (drop (call $proxy_set_tick_period_milliseconds (i32.const 5)))))
    (local.set $p (global.get $bump))
    (global.set $bump (i32.add (global.get $bump) (i32.and (i32.add (local.get $n) (i32.const 7)) (i32.const -8))))
    (local.get $p))`;
  const code = await compileWat(puppetWat({ omit: ["malloc"], extraImports: malloc }));
  const seen: string[] = [];
  const { plugin } = await loadPuppet(
    newEnvoy(),
    {
      proxy_on_request_headers: (g) => {
        const ok = g.getHeader(0, "x-model"); // 2 bytes: malloc only logs
        seen.push(`${ok.r}:${ok.value}`);
        g.getHeader(0, "x-thirteen"); // 13 bytes: malloc calls a restricted function
        seen.push("not reached");
        return 0;
      },
    },
    {},
    code,
  );
  const rec = recorder();
  const s = plugin.newHttpStream(rec);
  s.decodeHeaders([...REQ, ["x-thirteen", "0123456789abc"]], true);
  assert.deepEqual(seen, ["0:m1"]);
  assert.deepEqual(rec.events, ["local 503 wasm_fail_stream"]);
  assert.deepEqual(plugin.failedWorkers, [0]);
  assert.ok(plugin.logs.some((l) => l.message === "wasm log puppet root vm: "));
  assert.ok(plugin.logs.some((l) => l.level === 5 && l.message.includes("restricted_callback")));
  s.destroy();
  await plugin.shutdown();
});
