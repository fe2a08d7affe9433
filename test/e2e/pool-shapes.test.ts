// InferencePool shapes of GIE v1.6 through the whole path: the sidecar (file mode and Kubernetes mode against the
// fake API server) turns the pool into a snapshot, pushes it to the local gateway running build/filter.wasm, and
// requests route to the pool's pods. Shapes: no endpointPickerRef; appProtocol kubernetes.io/h2c (pods that speak
// only HTTP/2 cleartext, the gateway's cluster speaking h2c as envoy/envoy-h2c.yaml does); eight targetPorts as
// data-parallel ranks, checked the way GIE's conformance case GatewayFollowingEPPRoutingWithDataParallelism does
// (conformance/tests/gateway_following_epp_routing_dp.go at v1.6.0: with the `test-epp-endpoint-selection` header
// naming `ip` or `ip:port` entries, every request lands on a listed pod, on a listed port when one is given).
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { FileInventory } from "../../sidecar/inventory/files.ts";
import { KubernetesInventory } from "../../sidecar/inventory/kubernetes.ts";
import type { Inventory } from "../../sidecar/inventory/types.ts";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { startSimCluster, type SimCluster } from "../../sim/pods.ts";
import { freeConsecutivePorts } from "../../scripts/local-stack/ports.ts";
import { FakeApiServer, type FakeObject } from "../support/fake-apiserver.ts";
import { startSidecar, waitFor } from "../support/sidecar-harness.ts";

const TOKEN = "pool-shapes-token";
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const SERVED = "x-gateway-destination-endpoint-served";
const SUBSET = "test-epp-endpoint-selection";
const SOURCES = ["file mode", "fake API server"] as const;
type Source = (typeof SOURCES)[number];

const cleanup: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function pool(name: string, spec: Record<string, unknown>): FakeObject {
  return {
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name, namespace: "default" },
    spec: { selector: { matchLabels: { app: name } }, ...spec },
  };
}

/** A ready pod of `app`; `port` pins its one endpoint (epp-wasm.io/port), else every targetPort is one. */
function pod(app: string, name: string, ip: string, port?: number): FakeObject {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace: "default",
      labels: { app },
      ...(port === undefined ? {} : { annotations: { "epp-wasm.io/port": String(port) } }),
    },
    status: { podIP: ip, conditions: [{ type: "Ready", status: "True" }] },
  };
}

async function inventoryFrom(source: Source, objects: FakeObject[]): Promise<Inventory> {
  if (source === "file mode") {
    const dir = mkdtempSync(join(tmpdir(), "epp-pool-shapes-"));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, "objects.yaml"), objects.map((o) => stringify(o)).join("---\n"));
    return new FileInventory({ manifestsDir: dir, debounceMs: 20, settleMs: 20, rescanMs: 500 });
  }
  const api = await FakeApiServer.start();
  cleanup.push(() => api.close());
  for (const o of objects) api.apply(o);
  return new KubernetesInventory({ kubeConfig: api.kubeConfig(), namespace: "default", coalesceMs: 5 });
}

interface Routed {
  status: number;
  served: string;
  httpVersion: string | null;
  port: string | null;
}

/** The gateway (ORIGINAL_DST, h2c when asked) fed by a sidecar reading `objects`; `send` posts one completion. */
async function stack(source: Source, poolName: string, objects: FakeObject[], h2c = false) {
  const gw = new Gateway(
    normalizeConfig({
      listeners: [
        { name: "data", address: "127.0.0.1", port: 0 },
        { name: "control", address: "127.0.0.1", port: 0 },
      ],
      wasm: "build/filter.wasm",
      workers: 1,
      cluster: { type: "ORIGINAL_DST", ...(h2c ? { http2: true } : {}) },
      pluginConfig: {
        pool: { namespace: "default", name: poolName },
        controlToken: TOKEN,
        failureMode: "FailClose",
        conformance: true,
        randomSeed: 5,
      },
    }),
  );
  await gw.start();
  cleanup.push(() => gw.stop());
  const sc = await startSidecar({
    inventory: await inventoryFrom(source, objects),
    envoys: [`http://127.0.0.1:${gw.listener("control").port}`],
    token: TOKEN,
  });
  cleanup.push(() => sc.stop());
  await waitFor("sidecar ready (pool known, snapshot accepted)", () => sc.sidecar.readiness().ready, 20_000);
  const dataUrl = `http://127.0.0.1:${gw.listener("data").port}`;
  const send = async (subset?: string, prompt = "hello"): Promise<Routed> => {
    const res = await fetch(`${dataUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", ...(subset ? { [SUBSET]: subset } : {}) },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: prompt }], max_tokens: 2 }),
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    return {
      status: res.status,
      served: res.headers.get(SERVED) ?? "",
      httpVersion: res.headers.get("x-inference-http-version"),
      port: res.headers.get("x-inference-port"),
    };
  };
  return { send, sc };
}

async function sims(opts: Parameters<typeof startSimCluster>[0]): Promise<SimCluster> {
  const c = await startSimCluster({ basePort: 0, preset: "fast", timeScale: 4, seed: 3, ...opts });
  cleanup.push(() => c.close());
  return c;
}

for (const source of SOURCES) {
  test(`${source}: a GIE v1.6 pool without endpointPickerRef routes through the gateway`, async () => {
    const cluster = await sims({ pods: 2 });
    const addrs = cluster.pods.map((p) => `127.0.0.1:${p.port}`);
    const { send } = await stack(source, "no-epp-ref", [
      pool("no-epp-ref", { targetPorts: [{ number: 8000 }] }),
      ...cluster.pods.map((p, i) => pod("no-epp-ref", `pod-${i}`, "127.0.0.1", p.port)),
    ]);
    for (let i = 0; i < 4; i++) {
      const r = await send(undefined, `request ${i}`);
      assert.equal(r.status, 200);
      assert.ok(addrs.includes(r.served), `served ${r.served}, pods ${addrs.join()}`);
    }
    // Each pod is reachable by the picker's choice alone.
    for (const a of addrs) assert.equal((await send(a)).served, a);
  });

  test(`${source}: an appProtocol kubernetes.io/h2c pool routes over HTTP/2 to h2c-only pods`, async () => {
    const cluster = await sims({ pods: 2, h2c: true });
    const addrs = cluster.pods.map((p) => `127.0.0.1:${p.port}`);
    const { send, sc } = await stack(
      source,
      "h2c-pool",
      [
        pool("h2c-pool", { targetPorts: [{ number: 8000 }], appProtocol: "kubernetes.io/h2c" }),
        ...cluster.pods.map((p, i) => pod("h2c-pool", `pod-${i}`, "127.0.0.1", p.port)),
      ],
      true,
    );
    for (const a of addrs) {
      const r = await send(a);
      assert.equal(r.status, 200);
      assert.equal(r.served, a);
      assert.equal(r.httpVersion, "2.0", "the pod was reached over HTTP/2");
    }
    // The sidecar scrapes the h2c-only pods over h2c too: no endpoint is stale and no scrape failed.
    const stale = async () =>
      (await sc.metrics.staleEndpoints.get()).values.find((v) => v.labels.pool === "default/h2c-pool")?.value;
    await waitFor("the h2c pool's endpoints scraped", async () => (await stale()) === 0, 10_000);
    const failed = (await sc.metrics.scrapeErrors.get()).values.filter((v) => v.labels.reason === "failed");
    assert.deepEqual(
      failed.map((v) => v.value),
      [],
      "no scrape failed",
    );
  });
}

test("eight targetPorts are eight data-parallel ranks; EPP-selected pods and ports confine traffic as GIE's DP conformance case requires", async () => {
  // Two pods (127.0.0.2, 127.0.0.3), each serving the same eight ports: one simulated engine per rank.
  const ips = ["127.0.0.2", "127.0.0.3"];
  const base = await freeConsecutivePorts(8, ips[0]);
  const ports = Array.from({ length: 8 }, (_, i) => base + i);
  const ranks = await Promise.all(
    ips.map((host, i) => sims({ pods: 8, basePort: base, host, podNamePrefix: `dp-${i}` })),
  );
  assert.deepEqual(
    ranks[0]!.pods.map((p) => p.port),
    ports,
  );
  const all = ips.flatMap((ip) => ports.map((p) => `${ip}:${p}`));
  const { send } = await stack("file mode", "dp-pool", [
    pool("dp-pool", { targetPorts: ports.map((number) => ({ number })) }),
    pod("dp-pool", "dp-a", ips[0]!),
    pod("dp-pool", "dp-b", ips[1]!),
  ]);
  // Every rank is its own endpoint, and the rank the gateway reports is the one that answered.
  for (const a of all) {
    const r = await send(a);
    assert.equal(r.status, 200, a);
    assert.equal(r.served, a);
    assert.equal(r.port, a.slice(a.lastIndexOf(":") + 1));
  }
  // The conformance case's three selections (it uses three pods and three ports; here two pods and eight).
  const [a, b] = ips as [string, string];
  const cases: Array<{ header: string; allowed: Map<string, Set<number> | "any"> }> = [
    { header: b, allowed: new Map([[b, "any"]]) },
    {
      header: `${a},${b}:${ports[2]}`,
      allowed: new Map<string, Set<number> | "any">([
        [a, "any"],
        [b, new Set([ports[2]!])],
      ]),
    },
    {
      header: `${a}:${ports[0]},${a}:${ports[7]},${b}`,
      allowed: new Map<string, Set<number> | "any">([
        [a, new Set([ports[0]!, ports[7]!])],
        [b, "any"],
      ]),
    },
  ];
  for (const c of cases) {
    const seen = new Set<string>();
    // 40 requests, 8 at a time (the conformance case sends 100, 10 at a time).
    for (let wave = 0; wave < 5; wave++) {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => send(c.header, `wave ${wave} request ${i}`)),
      );
      for (const r of results) {
        assert.equal(r.status, 200);
        const ip = r.served.slice(0, r.served.lastIndexOf(":"));
        const port = Number(r.served.slice(r.served.lastIndexOf(":") + 1));
        const allowed = c.allowed.get(ip);
        assert.ok(allowed !== undefined, `${c.header}: served by ${r.served}, a pod not selected`);
        assert.ok(ports.includes(port), `${c.header}: ${r.served} is not one of the pool's ports`);
        if (allowed !== "any")
          assert.ok(allowed.has(port), `${c.header}: ${r.served} is not a selected rank`);
        seen.add(r.served);
      }
    }
    assert.ok(seen.size > 1, `${c.header}: traffic spread over more than one rank (${[...seen].join()})`);
  }
});
