// Push-target discovery: static URLs, and every ready Envoy pod matching a label selector (pod IPs, not a
// Service), through the real client-node informer against the fake API server.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { PodTargetDiscovery, staticTargets } from "../../sidecar/publisher/discovery.ts";
import type { PublishTarget } from "../../sidecar/publisher/publisher.ts";
import { FakeApiServer, type FakeObject } from "../support/fake-apiserver.ts";
import { silentLogger, waitFor } from "../support/sidecar-harness.ts";

let api: FakeApiServer;
before(async () => {
  api = await FakeApiServer.start();
});
after(async () => {
  await api.close();
});

function envoyPod(
  name: string,
  ip: string,
  opts: { ready?: boolean; app?: string; phase?: string } = {},
): FakeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "gw", labels: { app: opts.app ?? "envoy", tier: "edge" } },
    status: {
      phase: opts.phase ?? "Running",
      podIP: ip,
      conditions: [{ type: "Ready", status: opts.ready === false ? "False" : "True" }],
    },
  };
}

test("static targets are normalized to their origin and malformed URLs are rejected", () => {
  assert.deepEqual(staticTargets(["http://127.0.0.1:19001/"]), [
    { id: "static:http://127.0.0.1:19001", url: "http://127.0.0.1:19001" },
  ]);
  assert.throws(() => staticTargets(["not a url"]));
});

test("selector discovery follows ready Envoy pods by IP", async () => {
  api.apply(envoyPod("envoy-a", "10.1.0.1"));
  api.apply(envoyPod("envoy-b", "fd00::2"));
  api.apply(envoyPod("envoy-c", "10.1.0.3", { ready: false }));
  api.apply(envoyPod("other", "10.1.0.9", { app: "web" }));
  let targets: PublishTarget[] = [];
  const d = new PodTargetDiscovery({
    kubeConfig: api.kubeConfig(),
    namespace: "gw",
    selector: "app=envoy,tier=edge",
    port: 19001,
    logger: silentLogger,
    onTargets: (t) => (targets = t),
  });
  await d.start();
  try {
    const urls = () => targets.map((t) => t.url).sort();
    await waitFor("initial targets", () => urls().length === 2);
    assert.deepEqual(urls(), ["http://10.1.0.1:19001", "http://[fd00::2]:19001"]);

    api.apply(envoyPod("envoy-c", "10.1.0.3"));
    await waitFor("a pod turning ready becomes a target", () => urls().includes("http://10.1.0.3:19001"));

    api.delete(envoyPod("envoy-a", "10.1.0.1"));
    await waitFor("a deleted pod stops being a target", () => !urls().includes("http://10.1.0.1:19001"));
  } finally {
    await d.stop();
  }
});
