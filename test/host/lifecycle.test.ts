// VM lifecycle: canary then workers, restricted start-up, context ids, call order, failure state.
import { test } from "node:test";
import assert from "node:assert/strict";
import { PluginConfigError, VirtualClock } from "../../host/index.ts";
import { REQ, recorder } from "./recorder.ts";
import { TRAP, loadPuppet, newEnvoy } from "./puppet.ts";

test("canary runs first and is dropped without on_done; then N workers start the same way", async () => {
  const { plugin, calls } = await loadPuppet(
    newEnvoy(),
    {},
    { workers: 2, configuration: "cfg", vmConfiguration: "vmcfg" },
  );
  assert.equal(plugin.workers, 2);
  assert.deepEqual(calls, [
    "-1:_start()",
    "-1:proxy_on_context_create(1,0)",
    "-1:proxy_on_vm_start(1,5)",
    "-1:proxy_on_configure(1,3)",
    "0:_start()",
    "0:proxy_on_context_create(1,0)",
    "0:proxy_on_vm_start(1,5)",
    "0:proxy_on_configure(1,3)",
    "1:_start()",
    "1:proxy_on_context_create(1,0)",
    "1:proxy_on_vm_start(1,5)",
    "1:proxy_on_configure(1,3)",
  ]);
  await plugin.shutdown();
});

test("on_configure or on_vm_start returning false rejects the plugin", async () => {
  await assert.rejects(loadPuppet(newEnvoy(), { proxy_on_configure: () => 0 }), PluginConfigError);
  await assert.rejects(loadPuppet(newEnvoy(), { proxy_on_vm_start: () => 0 }), PluginConfigError);
});

test("_start runs restricted: proxy_log works, other proxy calls trap with restricted_callback", async () => {
  const logs: string[] = [];
  await assert.rejects(
    loadPuppet(newEnvoy({ log: (e) => logs.push(e.message) }), {
      _start: (g) => {
        assert.equal(g.log(2, "hello from start"), 0);
        g.call("proxy_set_tick_period_milliseconds", 10);
      },
    }),
    PluginConfigError,
  );
  assert.ok(logs.some((m) => m.endsWith("hello from start")));
  assert.ok(logs.some((m) => m.includes("Function: _start failed") && m.includes("restricted_callback")));
});

test("plugin configuration is readable only during on_configure; VM configuration at any time", async () => {
  const seen: string[] = [];
  const { plugin } = await loadPuppet(
    newEnvoy(),
    {
      proxy_on_configure: (g) => {
        seen.push(`configure:${g.bufferBytes(7).text}:${g.bufferBytes(6).text}`);
        return 1;
      },
      proxy_on_request_headers: (g) => {
        const r = g.bufferBytes(7);
        seen.push(`headers:${r.r}:${g.bufferBytes(6).text}`);
        return 0;
      },
    },
    { configuration: '{"a":1}', vmConfiguration: "vm" },
  );
  const s = plugin.newHttpStream(recorder());
  s.decodeHeaders(REQ, true);
  s.destroy();
  assert.deepEqual(seen, ['configure:{"a":1}:vm', 'configure:{"a":1}:vm', "headers:1:vm"]);
  await plugin.shutdown();
});

test("stream contexts count up per VM, are never reused, and get the full call order", async () => {
  const { plugin, calls } = await loadPuppet(newEnvoy(), {}, { workers: 2 });
  calls.length = 0;
  for (let i = 0; i < 3; i++) {
    const s = plugin.newHttpStream(recorder());
    s.decodeHeaders(REQ, false);
    s.decodeData(new TextEncoder().encode("body"), true);
    s.encodeHeaders([[":status", "200"]], false);
    s.encodeData(new TextEncoder().encode("resp"), true);
    s.destroy();
  }
  assert.deepEqual(calls.slice(0, 8), [
    "0:proxy_on_context_create(2,1)",
    "0:proxy_on_request_headers(2,5,0)",
    "0:proxy_on_request_body(2,4,1)",
    "0:proxy_on_response_headers(2,1,0)",
    "0:proxy_on_response_body(2,4,1)",
    "0:proxy_on_log(2)",
    "0:proxy_on_done(2)",
    "0:proxy_on_delete(2)",
  ]);
  const creates = calls.filter((c) => c.includes("context_create"));
  assert.deepEqual(creates, [
    "0:proxy_on_context_create(2,1)",
    "1:proxy_on_context_create(2,1)",
    "0:proxy_on_context_create(3,1)",
  ]);
  await plugin.shutdown();
});

test("shutdown: root on_done then on_delete; on_done=false waits for proxy_done", async () => {
  let guestRef: { call(n: string): number } | undefined;
  const { plugin, calls } = await loadPuppet(newEnvoy(), {
    proxy_on_done: (g, id) => {
      if (id !== 1) return 1;
      guestRef = g;
      setTimeout(() => calls.push(`proxy_done=${guestRef!.call("proxy_done")}`), 20);
      return 0;
    },
  });
  calls.length = 0;
  await plugin.shutdown();
  assert.deepEqual(calls, ["0:proxy_on_done(1)", "proxy_done=0", "0:proxy_on_delete(1)"]);
});

test("a trap marks the VM failed: current and later streams get 503 wasm_fail_stream", async () => {
  const { plugin } = await loadPuppet(newEnvoy(), { proxy_on_request_headers: () => TRAP });
  const a = recorder();
  const s = plugin.newHttpStream(a);
  s.decodeHeaders(REQ, true);
  s.destroy();
  assert.deepEqual(a.events, ["local 503 wasm_fail_stream"]);
  assert.deepEqual(plugin.failedWorkers, [0]);
  assert.ok(
    plugin.logs.some((l) =>
      l.message.startsWith("Function: proxy_on_request_headers failed: Uncaught RuntimeError"),
    ),
  );
  const b = recorder();
  const s2 = plugin.newHttpStream(b);
  s2.decodeHeaders(REQ, true);
  assert.deepEqual(b.events, ["local 503 wasm_fail_stream"]);
  await plugin.shutdown();
});

test("failOpen: after a trap streams pass through untouched", async () => {
  const { plugin } = await loadPuppet(
    newEnvoy(),
    { proxy_on_request_headers: () => TRAP },
    { failOpen: true },
  );
  const a = recorder();
  const s = plugin.newHttpStream(a);
  s.decodeHeaders(REQ, false);
  s.decodeData(new TextEncoder().encode("xy"), true);
  s.encodeHeaders([[":status", "200"]], true);
  assert.deepEqual(a.events, ["reqH eos=false", "reqD 2 eos=true", "respH eos=true"]);
  await plugin.shutdown();
});

test("failure_policy FAIL_OPEN: the trapping stream still fails closed, new streams skip the filter", async () => {
  // cpp-host CHECK_FAIL reads only the deprecated fail_open; Envoy's createContext skips the filter for
  // new streams under FAIL_OPEN (source/extensions/common/wasm/wasm.cc PluginConfig::createContext).
  const { plugin, calls } = await loadPuppet(
    newEnvoy(),
    { proxy_on_request_headers: () => TRAP },
    { failurePolicy: "FAIL_OPEN" },
  );
  const a = recorder();
  const s = plugin.newHttpStream(a);
  s.decodeHeaders(REQ, true);
  s.destroy();
  assert.deepEqual(a.events, ["local 503 wasm_fail_stream"]);
  calls.length = 0;
  const b = recorder();
  const s2 = plugin.newHttpStream(b);
  s2.decodeHeaders(REQ, false);
  s2.decodeData(new TextEncoder().encode("xy"), true);
  s2.encodeHeaders([[":status", "200"]], true);
  s2.destroy();
  assert.deepEqual(b.events, ["reqH eos=false", "reqD 2 eos=true", "respH eos=true"]);
  assert.deepEqual(calls, [], "the plugin sees nothing of a stream it is not in");
  await plugin.shutdown();
});

test("failure_policy FAIL_RELOAD: 503 during the back-off, then a fresh VM (module state lost, shared data kept)", async () => {
  const clock = new VirtualClock(1_000_000_000n);
  const envoy = newEnvoy({ clock });
  let trap = true;
  const { plugin, calls, guests } = await loadPuppet(
    envoy,
    { proxy_on_request_headers: () => (trap ? TRAP : 0) },
    { failurePolicy: "FAIL_RELOAD", reloadBackoffMs: 1000 },
  );
  assert.equal(guests.get(0)!.sharedSet("kept", "yes"), 0);
  const first = recorder();
  plugin.newHttpStream(first).decodeHeaders(REQ, true);
  assert.deepEqual(first.events, ["local 503 wasm_fail_stream"]);

  trap = false;
  const during = recorder();
  plugin.newHttpStream(during).decodeHeaders(REQ, true);
  assert.deepEqual(during.events, ["local 503 wasm_fail_stream"], "still backing off");
  assert.equal(envoy.stats.get("wasm.puppet.vm_reload_backoff"), 1);

  calls.length = 0;
  clock.advance(1500);
  const after = recorder();
  plugin.newHttpStream(after).decodeHeaders(REQ, true);
  assert.deepEqual(after.events, ["reqH eos=true"]);
  assert.equal(envoy.stats.get("wasm.puppet.vm_reload_success"), 1);
  assert.deepEqual(calls.slice(0, 4), [
    "0:_start()",
    "0:proxy_on_context_create(1,0)",
    "0:proxy_on_vm_start(1,0)",
    "0:proxy_on_configure(1,0)",
  ]);
  assert.equal(guests.get(0)!.sharedGet("kept").value, "yes", "shared data survives the reload");
  assert.deepEqual(plugin.failedWorkers, []);
  await plugin.shutdown();
});

test("fail_open and failure_policy together are refused, as Envoy refuses them", async () => {
  await assert.rejects(
    loadPuppet(newEnvoy(), {}, { failOpen: true, failurePolicy: "FAIL_CLOSED" }),
    /only one of fail_open or failure_policy can be set/,
  );
});
