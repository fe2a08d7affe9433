// Pure normalization/selection rules, and the shipped examples/local manifests through file mode.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FileInventory } from "../../sidecar/inventory/files.ts";
import { normalize } from "../../sidecar/inventory/resources.ts";
import type { RawObject, RewriteRecord } from "../../sidecar/inventory/resources.ts";
import { assemble, orderRewrites } from "../../sidecar/inventory/select.ts";
import type { InvalidResource, PoolInventory } from "../../sidecar/inventory/types.ts";
import { poolViewFromInventory } from "../../sidecar/snapshot/builder.ts";
import { scrapeConfigFromInventory, scrapeTargets } from "../../sidecar/collector/targets.ts";
import { ENGINE_MAPPINGS } from "../../sidecar/collector/engines.ts";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const X = "inference.networking.x-k8s.io/v1alpha2";

function reasonOf(obj: RawObject): string | undefined {
  const r = normalize(obj);
  return r.ok ? undefined : `${r.invalid?.field}:${r.invalid?.reason}`;
}

test("resources: invalid objects are rejected naming the field and a stable reason", () => {
  const pool = (spec: unknown): RawObject => ({
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name: "p" },
    spec,
  });
  assert.equal(reasonOf(pool({ targetPorts: [{ number: 80 }] })), "spec.selector:missing_selector");
  assert.equal(
    reasonOf(pool({ selector: { matchLabels: {} }, targetPorts: [{ number: 80 }] })),
    "spec.selector.matchLabels:missing_selector",
  );
  const sel = { matchLabels: { app: "x" } };
  assert.equal(reasonOf(pool({ selector: sel, targetPorts: [] })), "spec.targetPorts:bad_ports");
  assert.equal(
    reasonOf(pool({ selector: sel, targetPorts: [{ number: 70000 }] })),
    "spec.targetPorts[0].number:bad_ports",
  );
  assert.equal(
    reasonOf(pool({ selector: sel, targetPorts: [{ number: 80 }, { number: 80 }] })),
    "spec.targetPorts:bad_ports",
  );
  assert.equal(
    reasonOf(
      pool({
        selector: sel,
        targetPorts: [{ number: 80 }],
        endpointPickerRef: { name: "e", failureMode: "Maybe" },
      }),
    ),
    "spec.endpointPickerRef.failureMode:invalid_failure_mode",
  );
  assert.equal(reasonOf(pool({ selector: sel, targetPorts: [{ number: 80 }] })), undefined);
  assert.equal(
    reasonOf({
      apiVersion: X,
      kind: "InferencePool",
      metadata: { name: "p" },
      spec: { selector: { app: "x" }, targetPortNumber: 0 },
    }),
    "spec.targetPortNumber:bad_ports",
  );
  const model = (spec: object): RawObject => ({
    apiVersion: X,
    kind: "InferenceModel",
    metadata: { name: "m" },
    spec,
  });
  assert.equal(
    reasonOf(model({ modelName: "a", poolRef: { name: "p" }, criticality: "High" })),
    "spec.criticality:unknown_criticality",
  );
  assert.equal(reasonOf(model({ modelName: "a" })), "spec.poolRef:missing_pool_ref");
  assert.equal(
    reasonOf(model({ modelName: "a", poolRef: { name: "p" }, targetModels: [{ name: "x", weight: 0 }] })),
    "spec.targetModels[0].weight:out_of_range",
  );
  const annotated = (value: string): RawObject => ({
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name: "p", annotations: { "epp-wasm.io/metrics-name-filter": value } },
    spec: { selector: sel, targetPorts: [{ number: 80 }] },
  });
  assert.equal(reasonOf(annotated("no")), "metadata.annotations.epp-wasm.io/metrics-name-filter:invalid");
  const off = normalize(annotated("false"));
  assert.ok(off.ok && off.record.kind === "InferencePool");
  assert.equal(off.record.spec.annotations.metricsNameFilter, false);
  const other = normalize({ apiVersion: "apps/v1", kind: "Deployment", metadata: { name: "d" } });
  assert.deepEqual(other, { ok: false }, "kinds we do not read are ignored, not reported");
});

test("select: rewrite rules are ordered exact-match first, then older resource, then listed order", () => {
  const rw = (name: string, createdMs: number, rules: [string[], string][]): RewriteRecord => ({
    kind: "InferenceModelRewrite",
    group: "inference.networking.x-k8s.io",
    meta: { namespace: "ns", name, createdMs },
    poolName: "p",
    rules: rules.map(([matches, to]) => ({ matches, targets: [{ model: to, weight: 1 }] })),
  });
  const order = orderRewrites([
    rw("newer", 2000, [
      [[], "n-all"],
      [["a"], "n-a"],
    ]),
    rw("older", 1000, [
      [["b"], "o-b"],
      [[], "o-all"],
      [["a"], "o-a"],
    ]),
  ]).map((r) => r.targets[0]!.model);
  assert.deepEqual(order, ["o-b", "o-a", "n-a", "o-all", "n-all"]);
});

test("llm-d.ai objectives and rewrites normalize like the x-k8s ones; the llm-d.ai copy wins a same-name clash", () => {
  const LLMD = "llm-d.ai/v1alpha2";
  const rec = (apiVersion: string, kind: string, name: string, spec: Record<string, unknown>) => {
    const r = normalize({ apiVersion, kind, metadata: { name, namespace: "ns" }, spec });
    assert.ok(r.ok, JSON.stringify(r));
    return r.record;
  };
  const objectives = [
    rec(X, "InferenceObjective", "chat", { poolRef: { name: "p" }, priority: 1 }),
    rec(LLMD, "InferenceObjective", "chat", { poolRef: { name: "p" }, priority: 7 }),
    rec(X, "InferenceObjective", "batch", { poolRef: { name: "p" }, priority: -1 }),
    rec(LLMD, "InferenceObjective", "only-llmd", { poolRef: { name: "p" } }),
  ];
  const rw = (to: string) => ({ poolRef: { name: "p" }, rules: [{ targets: [{ modelRewrite: to }] }] });
  const rewrites = [
    rec(LLMD, "InferenceModelRewrite", "r", rw("from-llmd")),
    rec(X, "InferenceModelRewrite", "r", rw("from-x")),
  ];
  assert.equal(
    reasonOf({
      apiVersion: "llm-d.ai/v1alpha1",
      kind: "InferenceObjective",
      metadata: { name: "v" },
      spec: {},
    }),
    "undefined:undefined",
  );
  assert.equal(
    reasonOf({
      apiVersion: LLMD,
      kind: "InferenceObjective",
      metadata: { name: "v" },
      spec: { priority: 1 },
    }),
    "spec.poolRef:missing_pool_ref",
  );
  const pool = rec("inference.networking.k8s.io/v1", "InferencePool", "p", {
    selector: { matchLabels: { app: "a" } },
    targetPorts: [{ number: 8000 }],
  });
  // Either listing order gives the same answer.
  for (const order of [objectives, [...objectives].reverse()]) {
    const [inv] = assemble({ pools: [pool], pods: [], models: [], objectives: order, rewrites } as never, {});
    const got = Object.fromEntries(inv!.objectives.map((o) => [o.name, o.priority]));
    assert.deepEqual(got, { chat: 7, batch: -1, "only-llmd": null });
    assert.deepEqual(
      inv!.rewrites.map((r) => r.targets[0]!.model),
      ["from-llmd"],
    );
  }
});

test("examples/local: the shipped file-mode manifests load cleanly", async () => {
  const invalid: unknown[] = [];
  const inv = new FileInventory({
    manifestsDir: new URL("../../examples/local", import.meta.url).pathname,
    rescanMs: 0,
    onInvalid: (i) => invalid.push(i),
  });
  try {
    await inv.start();
    assert.deepEqual(invalid, []);
    const [p] = inv.pools();
    assert.equal(p!.pool.name, "local-pool");
    assert.deepEqual(
      p!.endpoints.map((e) => `${e.address}:${e.port}:${e.ready}`),
      ["127.0.0.1:8001:true", "127.0.0.1:8002:true", "127.0.0.1:8003:true", "127.0.0.1:8004:true"],
    );
    const rollout = p!.models.find((m) => m.name === "food-review")!;
    assert.deepEqual(
      rollout.targets.map((t) => t.weight),
      [70, 30],
    );
    assert.ok(p!.models.some((m) => m.criticality === "Sheddable"));
    assert.ok(p!.objectives.some((o) => o.priority !== null && o.priority < 0));
    assert.equal(p!.rewrites.length, 1);
  } finally {
    await inv.stop();
  }
});

/** Loads one manifest file through file mode; returns the pools and what was reported invalid. */
async function loadManifest(yaml: string): Promise<{ pools: PoolInventory[]; invalid: InvalidResource[] }> {
  const dir = await mkdtemp(join(tmpdir(), "epp-annotations-"));
  const invalid: InvalidResource[] = [];
  const inv = new FileInventory({ manifestsDir: dir, rescanMs: 0, onInvalid: (i) => invalid.push(i) });
  try {
    await writeFile(join(dir, "pool.yaml"), yaml);
    await inv.start();
    return { pools: inv.pools(), invalid };
  } finally {
    await inv.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const annotatedPod = (name: string, ip: string, label?: string) => `---
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: default
  labels: { app: sim${label === undefined ? "" : `, epp-wasm.io/engine: ${label}`} }
status: { podIP: ${ip}, conditions: [{ type: Ready, status: "True" }] }
`;
const annotatedPool = (annotations: string) => `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata:
  name: annotated
  namespace: default
  annotations: {${annotations}}
spec:
  selector: { matchLabels: { app: sim } }
  targetPorts: [{ number: 8000 }]
  endpointPickerRef: { name: epp, port: { number: 9002 } }
`;
const mappingName = (m: unknown) =>
  m === ENGINE_MAPPINGS.sglang ? "sglang" : m === ENGINE_MAPPINGS.vllm ? "vllm" : "other";

test("pool annotations are read from their strings; a pod's epp-wasm.io/engine label overrides the pool's engine", async () => {
  // README "Annotations on an InferencePool": engine (a pod label of the same key overrides it per pod),
  // metrics-port / metrics-path (default: the target port, /metrics), strict-models "true".
  const { pools, invalid } = await loadManifest(
    annotatedPool(
      '"epp-wasm.io/engine": "sglang", "epp-wasm.io/metrics-port": "9400", ' +
        '"epp-wasm.io/metrics-path": "/custom/metrics", "epp-wasm.io/strict-models": "true"',
    ) +
      annotatedPod("a-pool-engine", "10.0.0.1") +
      annotatedPod("b-labelled-vllm", "10.0.0.2", "vllm") +
      annotatedPod("c-unknown-label", "10.0.0.3", "bogus"),
  );
  assert.deepEqual(invalid, []);
  const p = pools[0]!;
  assert.deepEqual(p.pool.annotations, {
    strictModels: true,
    engine: "sglang",
    metricsPort: 9400,
    metricsPath: "/custom/metrics",
  });
  assert.deepEqual(
    p.endpoints.map((e) => `${e.podName}:${e.engine}`),
    ["a-pool-engine:sglang", "b-labelled-vllm:vllm", "c-unknown-label:sglang"],
  );
  const view = poolViewFromInventory(p);
  assert.equal(view.strictModels, true);
  const targets = scrapeTargets(view, scrapeConfigFromInventory(p, { metricsNameFilter: false }));
  assert.deepEqual(
    targets.map((t) => [t.url, mappingName(t.mapping)]),
    [
      ["http://10.0.0.1:9400/custom/metrics", "sglang"],
      ["http://10.0.0.2:9400/custom/metrics", "vllm"],
      ["http://10.0.0.3:9400/custom/metrics", "sglang"],
    ],
  );
});

test('pool annotations: defaults without them; strict-models only for "true"; a bad metrics-port is rejected', async () => {
  const plain = await loadManifest(
    annotatedPool('"epp-wasm.io/strict-models": "false"') + annotatedPod("a", "10.0.0.1"),
  );
  const q = plain.pools[0]!;
  assert.deepEqual(q.pool.annotations, { strictModels: false });
  assert.deepEqual(
    scrapeTargets(poolViewFromInventory(q), scrapeConfigFromInventory(q, { metricsNameFilter: false })).map(
      (t) => [t.url, mappingName(t.mapping)],
    ),
    [["http://10.0.0.1:8000/metrics", "vllm"]],
  );
  const bad = await loadManifest(annotatedPool('"epp-wasm.io/metrics-port": "http"'));
  assert.deepEqual(bad.pools, []);
  assert.deepEqual(
    bad.invalid.map((i) => `${i.kind}:${i.field}`),
    ["InferencePool:metadata.annotations.epp-wasm.io/metrics-port"],
  );
});
