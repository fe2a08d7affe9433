// The filter's metrics (assembly/metrics.ts) through the host: labels bounded by the snapshot, ids defined once
// per label set and VM, and Envoy's tag extraction giving GIE's series.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { EnvoyProcess, VirtualClock } from "../../host/index.ts";
import type { LocalReply, WasmPlugin } from "../../host/index.ts";
import { renderPrometheus } from "../../host/prometheus.ts";
import { statsConfig } from "../../gateway/stats-tags.ts";
import { CREATED_MS, snapshotBytesWith } from "../support/snapshot-fixture.ts";

const WASM = readFileSync(
  process.env.EPP_TEST_FILTER_WASM ?? new URL("../../build/filter.wasm", import.meta.url),
);
const TOKEN = "control-token";
const POOL = { namespace: "default", name: "pool-a" };

async function setup(workers = 1): Promise<{ proc: EnvoyProcess; plugin: WasmPlugin }> {
  const proc = new EnvoyProcess({ clock: new VirtualClock(BigInt(CREATED_MS + 50) * 1_000_000n) });
  const plugin = await proc.loadPlugin(WASM, {
    vmId: "epp",
    name: "epp",
    rootId: "epp",
    workers,
    allowOnHeadersStopIteration: true,
    configuration: JSON.stringify({
      pool: POOL,
      controlToken: TOKEN,
      destinationMode: "override_host",
      randomSeed: 1,
    }),
  });
  const status = send(
    plugin,
    "/epp/v1/snapshot",
    snapshotBytesWith({
      pool: { ...POOL, strictModels: true },
      endpoints: [{ address: "10.0.0.1" }, { address: "10.0.0.2" }],
      models: [
        { name: "chat", criticality: "Critical", targets: [{ name: "chat-v2", weight: 1 }] },
        { name: "meta/llama-3.1", criticality: "Standard", targets: [] },
      ],
      objectives: [{ name: "premium", priority: 10 }],
    }),
    [["authorization", `Bearer ${TOKEN}`]],
  );
  assert.equal(status, 204);
  return { proc, plugin };
}

/** One request; the local reply's status, or 200 when it went upstream. */
function send(
  plugin: WasmPlugin,
  path: string,
  body: Uint8Array | string,
  extra: [string, string][] = [],
  worker = 0,
): number {
  let reply: LocalReply | undefined;
  const s = plugin.newHttpStream(
    {
      forwardRequestHeaders: () => {},
      forwardRequestData: () => {},
      forwardResponseHeaders: () => {},
      forwardResponseData: () => {},
      localReply: (r) => (reply = r),
    },
    { worker },
  );
  s.decodeHeaders(
    [
      [":method", "POST"],
      [":path", path],
      [":authority", "gw"],
      [":scheme", "http"],
      ["content-type", "application/json"],
      ...extra,
    ],
    false,
  );
  if (!reply) s.decodeData(typeof body === "string" ? new TextEncoder().encode(body) : body, true);
  s.destroy();
  return reply?.status ?? 200;
}

const chat = (model: string) => JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] });

/** Metric ids handed out so far in worker `w`'s VM (one per define). */
function defines(plugin: WasmPlugin, w = 0): number {
  const vm = (plugin as unknown as { vms: { metrics: { next: number[] } }[] }).vms[w]!;
  return vm.metrics.next.reduce((n, v, type) => n + (v - type) / 4, 0);
}

test("metrics: known names label themselves; unknown models, targets and objectives share __unknown__", async () => {
  const { proc, plugin } = await setup();
  assert.equal(send(plugin, "/v1/chat/completions", chat("chat")), 200);
  assert.equal(
    send(plugin, "/v1/chat/completions", chat("meta/llama-3.1"), [
      ["x-gateway-inference-objective", "premium"],
    ]),
    200,
  );
  for (let i = 0; i < 20; i++) {
    assert.equal(send(plugin, "/v1/chat/completions", chat(`nope-${i}`)), 404);
    send(plugin, "/v1/chat/completions", chat("chat"), [["x-gateway-inference-objective", `obj-${i}`]]);
  }
  const text = renderPrometheus(proc.metrics, statsConfig());
  const total = (labels: string) =>
    Number(text.match(new RegExp(`^inference_objective_request_total\\{${labels}\\} (\\d+)$`, "m"))?.[1]);
  assert.equal(total('model_name="chat",target_model_name="chat-v2"'), 21);
  assert.equal(total('model_name="meta/llama-3.1",target_model_name="meta/llama-3.1"'), 1);
  assert.equal(total('model_name="__unknown__",target_model_name="__none__"'), 20);
  assert.match(
    text,
    /^epp_wasm_requests_total\{model_name="chat",target_model_name="chat-v2",objective="__unknown__",outcome="routed"\} 20$/m,
  );
  assert.match(text, /objective="premium",outcome="routed"\} 1$/m);
  // 20 distinct unknown names and 20 distinct objectives made no series of their own.
  assert.doesNotMatch(text, /nope-|obj-/);
  await plugin.shutdown();
});

test("metrics: a warm label set defines nothing more; the second worker VM defines its own ids for the same stats", async () => {
  const { proc, plugin } = await setup(2);
  for (let i = 0; i < 3; i++) send(plugin, "/v1/chat/completions", chat("chat"));
  const warm = defines(plugin);
  for (let i = 0; i < 50; i++) send(plugin, "/v1/chat/completions", chat("chat"));
  assert.equal(defines(plugin), warm, "no define on a warm request");
  send(plugin, "/v1/chat/completions", chat("chat"), [], 1);
  assert.ok(defines(plugin, 1) > 0);
  assert.equal(
    proc.metrics.value("inference_objective_request_total.model_name.chat.target_model_name.chat-v2"),
    54n,
    "one process-wide stat for both VMs",
  );
  await plugin.shutdown();
});

test("metrics: snapshots accepted and rejected by reason; 413 and 400 outcomes", async () => {
  const { proc, plugin } = await setup();
  const auth: [string, string][] = [["authorization", `Bearer ${TOKEN}`]];
  assert.equal(send(plugin, "/epp/v1/snapshot", snapshotBytesWith({ pool: POOL }), auth), 409);
  assert.equal(send(plugin, "/epp/v1/snapshot", new Uint8Array([1, 2, 3]), auth), 400);
  assert.equal(send(plugin, "/v1/chat/completions", "{"), 400);
  const snaps = (o: string, r: string) =>
    proc.metrics.value(`epp_wasm_snapshots_total.outcome.${o}.reason.${r}`);
  assert.equal(snaps("accepted", "stored"), 1n);
  assert.equal(snaps("rejected", "stale_generation"), 1n);
  assert.equal(snaps("rejected", "invalid_snapshot"), 1n);
  assert.equal(
    proc.metrics.value(
      "epp_wasm_requests_total.model_name.__none__.target_model_name.__none__.objective.__none__.outcome.bad_request",
    ),
    1n,
  );
  await plugin.shutdown();
});
