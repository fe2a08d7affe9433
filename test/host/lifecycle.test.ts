// VM lifecycle: canary then workers, restricted start-up, context ids, call order, failure state.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type PluginConfig, type WasmPlugin, PluginConfigError, VirtualClock } from "../../host/index.ts";
import { REQ, recorder } from "./recorder.ts";
import { Guest, TRAP, loadPuppet, newEnvoy, puppetBinary } from "./puppet.ts";

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

// The puppet's hook events, in the order puppet.ts numbers its exports.
const EVENTS = [
  "_start",
  "proxy_on_context_create",
  "proxy_on_vm_start",
  "proxy_on_configure",
  "proxy_on_tick",
  "proxy_on_queue_ready",
  "proxy_on_request_headers",
  "proxy_on_request_body",
  "proxy_on_response_headers",
  "proxy_on_response_body",
  "proxy_on_http_call_response",
  "proxy_on_log",
  "proxy_on_done",
  "proxy_on_delete",
  "proxy_on_request_trailers",
];

test("plugins with the same vm_id, VM configuration and code share each worker's VM, one root context per plugin", async () => {
  // cpp-host keys VMs by makeVmKey(vm_id, VM configuration, code) and starts one root context per
  // plugin in the shared VM (WasmBase::start): on_context_create(root, 0), on_vm_start, on_configure.
  const clock = new VirtualClock();
  const envoy = newEnvoy({ clock });
  const calls: string[] = [];
  // One test-import function for every plugin, so the host may put them in the same VM.
  const testImports: NonNullable<PluginConfig["testImports"]> = ({ workerIndex, exports }) => {
    const g = new Guest(workerIndex, exports);
    return {
      hook: (event: number, a: number, b: number) => {
        g.reset();
        const name = EVENTS[event]!;
        let note = "";
        if (name === "proxy_on_configure") {
          note = ` ${g.text(g.property("plugin_name").data)}:${g.bufferBytes(7).text}`;
          g.call("proxy_set_tick_period_milliseconds", note.endsWith("A") ? 100 : 200);
        }
        if (name !== "_start") calls.push(`${workerIndex}:${name}(${a},${b})${note}`);
        return name === "proxy_on_vm_start" || name === "proxy_on_configure" || name === "proxy_on_done"
          ? 1
          : 0;
      },
    };
  };
  const code = await puppetBinary();
  const base = { vmId: "shared", rootId: "root", workers: 2, vmConfiguration: "vm", testImports };
  const a = await envoy.loadPlugin(code, { ...base, name: "a", configuration: "A" });
  calls.length = 0;
  const b = await envoy.loadPlugin(code, { ...base, name: "b", configuration: "B" });
  const vms = (p: WasmPlugin) => (p as unknown as { vms: object[] }).vms;
  assert.equal(envoy.vmCount, 2, "one VM per worker, shared by both plugins");
  assert.ok(vms(a).every((vm, i) => vm === vms(b)[i]));
  assert.deepEqual(calls, [
    // The canary is a fresh clone: the new plugin's root is the first context there.
    "-1:proxy_on_context_create(1,0)",
    "-1:proxy_on_vm_start(1,2)",
    "-1:proxy_on_configure(1,1) b:B",
    // In each worker VM the second plugin gets the next context id and its own start-up calls.
    "0:proxy_on_context_create(2,0)",
    "0:proxy_on_vm_start(2,2)",
    "0:proxy_on_configure(2,1) b:B",
    "1:proxy_on_context_create(2,0)",
    "1:proxy_on_vm_start(2,2)",
    "1:proxy_on_configure(2,1) b:B",
  ]);

  // Streams hang off their own plugin's root; ids come from the one per-VM counter.
  calls.length = 0;
  for (const p of [b, a]) {
    const s = p.newHttpStream(recorder(), { worker: 0 });
    s.decodeHeaders(REQ, true);
    s.destroy();
  }
  assert.deepEqual(
    calls.filter((c) => c.includes("context_create")),
    ["0:proxy_on_context_create(3,2)", "0:proxy_on_context_create(4,1)"],
  );

  // Each root context has its own tick timer (Envoy's Wasm::setTimerPeriod keys timers by root id).
  calls.length = 0;
  clock.advance(200);
  assert.deepEqual(calls.filter((c) => c.startsWith("0:")).sort(), [
    "0:proxy_on_tick(1,0)",
    "0:proxy_on_tick(1,0)",
    "0:proxy_on_tick(2,0)",
  ]);

  // A different VM configuration is a different VM key: its own VMs, where its root is context 1.
  calls.length = 0;
  const c = await envoy.loadPlugin(code, {
    ...base,
    name: "c",
    vmConfiguration: "other",
    configuration: "C",
  });
  assert.equal(envoy.vmCount, 4);
  assert.ok(calls.includes("0:proxy_on_context_create(1,0)"));
  assert.ok(vms(c).every((vm, i) => vm !== vms(a)[i]));

  // A plugin leaving runs only its own root's on_done/on_delete; the VMs go with the last plugin.
  calls.length = 0;
  await a.shutdown();
  assert.deepEqual(
    calls.filter((x) => x.startsWith("0:")),
    ["0:proxy_on_done(1,0)", "0:proxy_on_delete(1,0)"],
  );
  assert.equal(envoy.vmCount, 4);
  await b.shutdown();
  assert.equal(envoy.vmCount, 2);
  await c.shutdown();
  assert.equal(envoy.vmCount, 0);
});

test("a trap after the response headers went out resets the stream instead of a 503", async () => {
  // cpp-host CHECK_FAIL → context.cc failStream → sendLocalReply, which the filter manager turns into
  // a stream reset once response headers were sent (filter_manager.cc DownstreamFilterManager::sendLocalReply).
  const { plugin } = await loadPuppet(newEnvoy(), { proxy_on_response_body: () => TRAP });
  const rec = recorder();
  const s = plugin.newHttpStream(rec);
  s.decodeHeaders(REQ, true);
  s.encodeHeaders([[":status", "200"]], false);
  s.encodeData(new TextEncoder().encode("x"), true);
  assert.deepEqual(rec.events, ["reqH eos=true", "respH eos=false", "reset wasm_fail_stream"]);
  assert.deepEqual(plugin.failedWorkers, [0]);
  s.destroy();
  await plugin.shutdown();
});
