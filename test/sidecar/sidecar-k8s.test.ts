// Kubernetes mode end to end: the real informers against the fake API server, the real scrape → encode →
// push loop, and a push sink that decodes what the sidecar sends to Envoy.
import { test } from "node:test";
import assert from "node:assert/strict";
import { KubernetesInventory } from "../../sidecar/inventory/kubernetes.ts";
import { FakeApiServer, type FakeObject } from "../support/fake-apiserver.ts";
import { invalidHook, startPushSink, startSidecar, waitFor } from "../support/sidecar-harness.ts";
import { SidecarMetrics } from "../../sidecar/metrics.ts";

const NS = "llm";
const TOKEN = "k8s-token";

/** Each test gets its own fake API server, so no test sees the objects another one applied. */
async function withApi(fn: (api: FakeApiServer) => Promise<void>): Promise<void> {
  const api = await FakeApiServer.start();
  try {
    await fn(api);
  } finally {
    await api.close();
  }
}

function pool(): FakeObject {
  return {
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name: "pool-a", namespace: NS },
    spec: {
      selector: { matchLabels: { app: "vllm" } },
      targetPorts: [{ number: 8000 }],
      endpointPickerRef: { name: "epp", port: { number: 9002 } },
    },
  };
}

function pod(name: string, ip: string, ready: boolean): FakeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: NS, labels: { app: "vllm" } },
    status: { podIP: ip, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
  };
}

function model(name: string, spec: Record<string, unknown>): FakeObject {
  return {
    apiVersion: "inference.networking.x-k8s.io/v1alpha2",
    kind: "InferenceModel",
    metadata: { name, namespace: NS },
    spec: { poolRef: { name: "pool-a" }, ...spec },
  };
}

test("pods joining, turning unready, being deleted and a dropped watch all reach the pushed snapshot", () =>
  withApi(async (api) => {
    const sink = await startPushSink(TOKEN);
    api.apply(pool());
    api.apply(pod("p1", "10.0.0.1", true));
    api.apply(model("good", { modelName: "llama", criticality: "Critical" }));
    // Weights on some targets but not all: invalid, must be reported and skipped.
    api.apply(
      model("bad", {
        modelName: "broken",
        targetModels: [{ name: "a", weight: 10 }, { name: "b" }],
      }),
    );
    const metrics = new SidecarMetrics({ processMetrics: false });
    const inventory = new KubernetesInventory({
      kubeConfig: api.kubeConfig(),
      namespace: NS,
      coalesceMs: 5,
      onInvalid: invalidHook(metrics),
    });
    const sc = await startSidecar({ inventory, envoys: [sink.url], token: TOKEN, metrics });
    try {
      const endpoints = () =>
        sink
          .latest()
          ?.endpoints.map((e) => `${e.podName}:${e.ready}`)
          .sort() ?? [];

      await waitFor("first pod pushed", () => endpoints().join() === "p1:true");
      const snap = sink.latest()!;
      assert.deepEqual(
        snap.models.map((m) => m.name),
        ["llama"],
      );
      const invalid = await sc.metrics.registry.getSingleMetricAsString(
        "epp_sidecar_invalid_resources_total",
      );
      assert.match(invalid, /kind="InferenceModel",reason="partial_weights"} 1/);

      api.apply(pod("p2", "10.0.0.2", true));
      await waitFor("joining pod pushed", () => endpoints().join() === "p1:true,p2:true");

      api.apply(pod("p1", "10.0.0.1", false));
      await waitFor("unready pod pushed", () => endpoints().join() === "p1:false,p2:true");

      api.delete(pod("p2", "10.0.0.2", true));
      await waitFor("deleted pod pushed", () => endpoints().join() === "p1:false");

      // A dropped watch is re-established and changes made meanwhile are not lost.
      api.dropWatches();
      api.apply(pod("p3", "10.0.0.3", true));
      await waitFor(
        "change after a dropped watch pushed",
        () => endpoints().join() === "p1:false,p3:true",
        5000,
      );

      // Generations only move forward.
      const gens = sink.received.map((s) => s.generation);
      for (let i = 1; i < gens.length; i++)
        assert.ok(gens[i]! > gens[i - 1]!, "generations strictly increase");
    } finally {
      await sc.stop();
      await sink.close();
    }
  }));

for (const sharedInflight of [undefined, false]) {
  test(`each snapshot tells the filter how many Envoys it goes to (envoyReplicas) and whether workers share in-flight counts (--shared-inflight ${sharedInflight ?? "default"})`, () =>
    withApi(async (api) => {
      const a = await startPushSink(TOKEN);
      const b = await startPushSink(TOKEN);
      api.apply(pool());
      api.apply(pod("p1", "10.0.0.1", true));
      const inventory = new KubernetesInventory({
        kubeConfig: api.kubeConfig(),
        namespace: NS,
        coalesceMs: 5,
      });
      const sc = await startSidecar({ inventory, envoys: [a.url, b.url], token: TOKEN, sharedInflight });
      try {
        await waitFor(
          "both Envoys got a snapshot",
          () => a.latest() !== undefined && b.latest() !== undefined,
        );
        // Two Envoys with separate shared data: the filter must place new prompt groups by a hash they share.
        assert.equal(a.latest()!.scheduler.params.envoyReplicas, 2);
        assert.equal(b.latest()!.scheduler.params.envoyReplicas, 2);
        assert.equal(a.latest()!.scheduler.params.sharedInflight, sharedInflight === false ? 0 : 1);
      } finally {
        await sc.stop();
        await a.close();
        await b.close();
      }
    }));
}
