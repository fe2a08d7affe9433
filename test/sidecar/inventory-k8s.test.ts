// Kubernetes mode against a fake API server: the real client-node 1.4 informers, real HTTP list/watch.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { KubernetesInventory } from "../../sidecar/inventory/kubernetes.ts";
import type { InvalidResource, PoolInventory } from "../../sidecar/inventory/types.ts";
import { FakeApiServer } from "../support/fake-apiserver.ts";
import type { FakeObject } from "../support/fake-apiserver.ts";
import { withDeadline } from "../support/deadline.ts";

const NS = "llm";
let api: FakeApiServer;

before(async () => {
  api = await FakeApiServer.start();
});
after(async () => {
  await api.close();
});

function poolV1(name: string, app: string, ports: number[]): FakeObject {
  return {
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name, namespace: NS },
    spec: {
      selector: { matchLabels: { app } },
      targetPorts: ports.map((number) => ({ number })),
      endpointPickerRef: { name: `${name}-epp`, port: { number: 9002 }, failureMode: "FailOpen" },
    },
  };
}

function poolX(name: string, app: string, port: number): FakeObject {
  return {
    apiVersion: "inference.networking.x-k8s.io/v1alpha2",
    kind: "InferencePool",
    metadata: { name, namespace: NS },
    spec: { selector: { app }, targetPortNumber: port, extensionRef: { name: `${name}-epp` } },
  };
}

function pod(name: string, app: string, ip: string, ready = true): FakeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, labels: { app } },
    status: { podIP: ip, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  };
}

function model(name: string, modelName: string, spec: Record<string, unknown> = {}): FakeObject {
  return {
    apiVersion: "inference.networking.x-k8s.io/v1alpha2",
    kind: "InferenceModel",
    metadata: { name, namespace: NS },
    spec: { modelName, poolRef: { name: "pool-a" }, ...spec },
  };
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function pool(inv: KubernetesInventory, name: string): PoolInventory | undefined {
  return inv.pools().find((p) => p.pool.name === name);
}

function endpoints(inv: KubernetesInventory, name: string): string[] {
  return (pool(inv, name)?.endpoints ?? []).map(
    (e) => `${e.podName}@${e.address}:${e.port}:${e.ready ? "R" : "-"}`,
  );
}

function inventory(
  extra: Partial<ConstructorParameters<typeof KubernetesInventory>[0]> = {},
): KubernetesInventory {
  return new KubernetesInventory({
    kubeConfig: api.kubeConfig(),
    namespace: NS,
    backoff: { baseMs: 20, maxMs: 200 },
    coalesceMs: 5,
    ...extra,
  });
}

function cleanup(): void {
  for (const o of [
    poolV1("pool-a", "a", [8000]),
    poolX("pool-a", "a", 8000),
    poolX("pool-b", "b", 8000),
    ...["a-0", "a-1", "a-2", "a-3", "b-0"].map((n) => pod(n, "", "")),
    ...["m-old", "m-new", "m-bad", "m-ok"].map((n) => model(n, "")),
  ])
    api.delete(o);
}

test("k8s inventory: pods joining, turning unready and leaving change the endpoints (with change events)", async () => {
  api.apply(poolV1("pool-a", "a", [8000, 8001]));
  api.apply(pod("a-0", "a", "10.0.0.1"));
  api.apply(pod("other", "zzz", "10.0.0.9"));
  const inv = inventory();
  let changes = 0;
  inv.on("change", () => changes++);
  try {
    await inv.start();
    await waitFor("sync", () => inv.synced);
    assert.deepEqual(endpoints(inv, "pool-a"), ["a-0@10.0.0.1:8000:R", "a-0@10.0.0.1:8001:R"]);
    assert.equal(pool(inv, "pool-a")!.pool.failureMode, "FailOpen");
    assert.ok(api.requests.some((r) => r.includes("watch=true") && r.includes("allowWatchBookmarks=true")));
    assert.ok(
      api.requests.some(
        (r) => r.startsWith("/api/v1/namespaces/llm/pods?") && r.includes("labelSelector=app%3Da"),
      ),
    );

    const before = changes;
    api.apply(pod("a-1", "a", "10.0.0.2"));
    await waitFor("a-1 joins", () => endpoints(inv, "pool-a").length === 4);
    // The store coalesces change events (a timer), so the event may follow the visible update.
    await waitFor("a change event", () => changes > before);

    api.apply(pod("a-0", "a", "10.0.0.1", false));
    await waitFor("a-0 unready", () => endpoints(inv, "pool-a").includes("a-0@10.0.0.1:8000:-"));

    const deleting = pod("a-1", "a", "10.0.0.2");
    deleting.metadata.deletionTimestamp = "2026-11-23T00:00:00Z";
    api.apply(deleting);
    await waitFor("a-1 terminating", () => endpoints(inv, "pool-a").includes("a-1@10.0.0.2:8000:-"));

    api.delete(pod("a-1", "a", ""));
    await waitFor("a-1 gone", () => endpoints(inv, "pool-a").length === 2);
    api.bookmark(); // must be harmless
    api.delete(pod("other", "zzz", ""));
  } finally {
    await inv.stop();
    cleanup();
  }
});

test("k8s inventory: a dropped watch resumes from its resourceVersion and sees changes made while disconnected", async () => {
  api.apply(poolV1("pool-a", "a", [8000]));
  api.apply(pod("a-0", "a", "10.0.0.1"));
  const restarts: string[] = [];
  const logger = {
    info() {},
    debug() {},
    error() {},
    warn: (_o: object | string, msg?: string) => restarts.push(msg ?? ""),
  };
  const inv = inventory({ logger });
  try {
    await inv.start();
    await waitFor("sync", () => inv.synced && endpoints(inv, "pool-a").length === 1);
    await waitFor("watches open", () => api.watchCount >= 6);
    const lists = api.requests.filter((r) => !r.includes("watch=true")).length;
    api.dropWatches();
    api.apply(pod("a-1", "a", "10.0.0.2")); // while nobody watches
    api.apply(pod("a-0", "a", "10.0.0.1", false));
    await waitFor(
      "changes seen",
      () => endpoints(inv, "pool-a").join() === "a-0@10.0.0.1:8000:-,a-1@10.0.0.2:8000:R",
    );
    assert.equal(api.requests.filter((r) => !r.includes("watch=true")).length, lists, "no re-list needed");
    const resumed = api.requests.filter((r) => r.includes("watch=true")).slice(-1)[0]!;
    assert.match(resumed, /resourceVersion=\d+/);
    // client-node 1.4 stays stopped after a dropped connection; our backoff restarted it.
    assert.ok(restarts.some((m) => m.includes("restarting")));
  } finally {
    await inv.stop();
    cleanup();
  }
});

for (const mode of ["ERROR event", "HTTP 410"] as const) {
  test(`k8s inventory: 410 Gone (${mode}) leads to a re-list that catches up, including deletions`, async () => {
    api.goneAsHttpStatus = mode === "HTTP 410";
    api.apply(poolV1("pool-a", "a", [8000]));
    api.apply(pod("a-0", "a", "10.0.0.1"));
    api.apply(pod("a-1", "a", "10.0.0.2"));
    const inv = inventory();
    try {
      await inv.start();
      await waitFor("sync", () => inv.synced && endpoints(inv, "pool-a").length === 2);
      await waitFor("watches open", () => api.watchCount >= 6);
      const podLists = () =>
        api.requests.filter((r) => r.startsWith("/api/v1/namespaces/llm/pods?") && !r.includes("watch"))
          .length;
      const listsBefore = podLists();
      api.dropWatches();
      api.delete(pod("a-0", "a", ""));
      api.apply(pod("a-2", "a", "10.0.0.3"));
      api.compact(); // the versions the informers hold are now too old
      await waitFor(
        "re-listed state",
        () => endpoints(inv, "pool-a").join() === "a-1@10.0.0.2:8000:R,a-2@10.0.0.3:8000:R",
      );
      assert.ok(podLists() > listsBefore, "pods were re-listed");
    } finally {
      api.goneAsHttpStatus = false;
      await inv.stop();
      cleanup();
    }
  });
}

test("k8s inventory: an invalid InferenceModel is reported and skipped; on a modelName clash the oldest wins", async () => {
  api.apply(poolV1("pool-a", "a", [8000]));
  api.apply(model("m-old", "llama", { criticality: "Critical", targetModels: [{ name: "lora-1" }] }));
  api.apply(model("m-new", "llama", { criticality: "Sheddable" }));
  api.apply(model("m-ok", "qwen"));
  api.apply(model("m-bad", "mistral", { targetModels: [{ name: "x", weight: 50 }, { name: "y" }] }));
  const invalid: InvalidResource[] = [];
  const warnings: string[] = [];
  const logger = {
    info() {},
    debug() {},
    error() {},
    warn: (_o: object | string, msg?: string) => warnings.push(msg ?? ""),
  };
  const inv = inventory({ onInvalid: (i) => invalid.push(i), logger });
  try {
    await inv.start();
    await waitFor("sync", () => inv.synced);
    await waitFor("models", () => (pool(inv, "pool-a")?.models.length ?? 0) === 2);
    assert.deepEqual(pool(inv, "pool-a")!.models, [
      { name: "llama", criticality: "Critical", targets: [{ name: "lora-1", weight: 0 }] },
      { name: "qwen", criticality: "Unset", targets: [] },
    ]);
    assert.equal(invalid.length, 1);
    assert.deepEqual(
      {
        kind: invalid[0]!.kind,
        name: invalid[0]!.name,
        field: invalid[0]!.field,
        reason: invalid[0]!.reason,
      },
      { kind: "InferenceModel", name: "m-bad", field: "spec.targetModels", reason: "partial_weights" },
    );
    assert.ok(warnings.some((w) => w.includes("llm/m-bad") && w.includes("spec.targetModels")));

    // An invalid update keeps the last good version of that object.
    api.apply(model("m-ok", "qwen", { criticality: "Urgent" }));
    await waitFor("second rejection", () => invalid.length === 2);
    assert.equal(invalid[1]!.reason, "unknown_criticality");
    assert.ok(pool(inv, "pool-a")!.models.some((m) => m.name === "qwen"));

    // Deleting the oldest hands the name to the next one.
    api.delete(model("m-old", ""));
    await waitFor("m-new takes over", () =>
      pool(inv, "pool-a")!.models.some((m) => m.criticality === "Sheddable"),
    );
  } finally {
    await inv.stop();
    cleanup();
  }
});

test("k8s inventory: both InferencePool API versions; v1 wins a same-name clash; poolName narrows", async () => {
  api.apply(poolX("pool-b", "b", 8100));
  api.apply(poolX("pool-a", "a", 9999));
  api.apply(poolV1("pool-a", "a", [8000]));
  api.apply(pod("a-0", "a", "10.0.0.1"));
  api.apply(pod("b-0", "b", "10.0.1.1"));
  const inv = inventory();
  const only = inventory({ poolName: "pool-b" });
  try {
    await Promise.all([inv.start(), only.start()]);
    await waitFor("sync", () => inv.synced && only.synced);
    await waitFor(
      "endpoints",
      () => endpoints(inv, "pool-a").length === 1 && endpoints(inv, "pool-b").length === 1,
    );
    const a = pool(inv, "pool-a")!;
    const b = pool(inv, "pool-b")!;
    assert.equal(a.pool.apiVersion, "v1");
    assert.deepEqual(a.pool.targetPorts, [8000]);
    assert.equal(b.pool.apiGroup, "inference.networking.x-k8s.io");
    assert.deepEqual(b.pool.selector, { app: "b" });
    assert.equal(b.pool.failureMode, "FailClose");
    assert.deepEqual(endpoints(inv, "pool-b"), ["b-0@10.0.1.1:8100:R"]);
    await waitFor("only pool-b", () => endpoints(only, "pool-b").length === 1);
    assert.deepEqual(
      only.pools().map((p) => p.pool.name),
      ["pool-b"],
    );
  } finally {
    await Promise.all([inv.stop(), only.stop()]);
    cleanup();
  }
});

function policy(group: string, kind: string, name: string, spec: Record<string, unknown>): FakeObject {
  return {
    apiVersion: `${group}/v1alpha2`,
    kind,
    metadata: { name, namespace: NS },
    spec: { poolRef: { group: "inference.networking.k8s.io", name: "pool-a" }, ...spec },
  };
}

test("k8s inventory: llm-d.ai objectives and rewrites are watched with GIE's; the llm-d.ai copy wins a same-name clash", async () => {
  const X = "inference.networking.x-k8s.io";
  const L = "llm-d.ai";
  const rw = (to: string) => ({
    rules: [{ matches: [{ model: { value: "alias" } }], targets: [{ modelRewrite: to }] }],
  });
  api.apply(poolV1("pool-a", "a", [8000]));
  api.apply(policy(X, "InferenceObjective", "chat", { priority: 1 }));
  api.apply(policy(L, "InferenceObjective", "chat", { priority: 5 }));
  api.apply(policy(X, "InferenceObjective", "batch", { priority: -1 }));
  api.apply(policy(X, "InferenceModelRewrite", "split", rw("from-x")));
  const inv = inventory();
  const priorities = () =>
    Object.fromEntries((pool(inv, "pool-a")?.objectives ?? []).map((o) => [o.name, o.priority]));
  const targets = () => (pool(inv, "pool-a")?.rewrites ?? []).map((r) => r.targets[0]!.model);
  try {
    await inv.start();
    await waitFor("sync", () => inv.synced);
    assert.ok(
      api.requests.some((r) => r.startsWith("/apis/llm-d.ai/v1alpha2/namespaces/llm/inferenceobjectives")),
    );
    assert.ok(
      api.requests.some((r) => r.startsWith("/apis/llm-d.ai/v1alpha2/namespaces/llm/inferencemodelrewrites")),
    );
    assert.deepEqual(priorities(), { chat: 5, batch: -1 });
    assert.deepEqual(targets(), ["from-x"]);
    // The llm-d.ai rewrite of the same name replaces the x-k8s one; deleting it brings the old one back.
    api.apply(policy(L, "InferenceModelRewrite", "split", rw("from-llmd")));
    await waitFor("llm-d rewrite", () => targets().join() === "from-llmd");
    api.delete(policy(L, "InferenceModelRewrite", "split", {}));
    await waitFor("x-k8s rewrite again", () => targets().join() === "from-x");
    api.delete(policy(L, "InferenceObjective", "chat", {}));
    await waitFor("x-k8s objective again", () => priorities().chat === 1);
  } finally {
    await inv.stop();
    for (const [g, k, n] of [
      [X, "InferenceObjective", "chat"],
      [X, "InferenceObjective", "batch"],
      [X, "InferenceModelRewrite", "split"],
      [L, "InferenceModelRewrite", "split"],
    ] as const)
      api.delete(policy(g, k, n, {}));
    cleanup();
  }
});

test("k8s inventory: without llm-d Router's CRDs (404) the GIE objectives still serve", async () => {
  api.missing.add("llm-d.ai/v1alpha2/inferenceobjectives");
  api.missing.add("llm-d.ai/v1alpha2/inferencemodelrewrites");
  api.apply(poolV1("pool-a", "a", [8000]));
  api.apply(policy("inference.networking.x-k8s.io", "InferenceObjective", "chat", { priority: 2 }));
  const inv = inventory();
  try {
    await inv.start();
    await waitFor("sync", () => inv.synced);
    await waitFor("objective", () => pool(inv, "pool-a")?.objectives.length === 1);
    assert.equal(pool(inv, "pool-a")!.objectives[0]!.priority, 2);
  } finally {
    api.missing.clear();
    await inv.stop();
    api.delete(policy("inference.networking.x-k8s.io", "InferenceObjective", "chat", {}));
    cleanup();
  }
});

test("k8s inventory: a missing CRD is treated as empty instead of blocking sync", async () => {
  api.missing.add("inference.networking.x-k8s.io/v1alpha2/inferencemodelrewrites");
  api.apply(poolV1("pool-a", "a", [8000]));
  const inv = inventory();
  try {
    await inv.start();
    await waitFor("sync", () => inv.synced);
    assert.equal(pool(inv, "pool-a")!.rewrites.length, 0);
  } finally {
    api.missing.clear();
    await inv.stop();
    cleanup();
  }
});

test("k8s inventory: failing API requests are retried with doubling backoff until the lists succeed", async () => {
  api.apply(poolV1("pool-a", "a", [8000]));
  api.apply(pod("a-0", "a", "10.0.0.1"));
  api.failRequests = 12; // more than one round of the five initial lists
  const delays: number[] = [];
  const logger = {
    info() {},
    debug() {},
    error() {},
    warn: (o: object | string) => {
      if (typeof o === "object" && "retryInMs" in o) delays.push(o.retryInMs as number);
    },
  };
  const inv = inventory({ logger });
  const synced = new Promise<void>((resolve) => inv.once("synced", resolve));
  try {
    await inv.start();
    await withDeadline(synced, 5000, "the inventory's synced event");
    await waitFor("endpoints", () => endpoints(inv, "pool-a").length === 1);
    assert.equal(api.failRequests, 0);
    assert.ok(delays.includes(20) && delays.includes(40), `delays ${delays.join(",")}`);
    assert.ok(Math.max(...delays) <= 200);
  } finally {
    api.failRequests = 0;
    await inv.stop();
    cleanup();
  }
});
