// The sidecar end to end with the real data plane: simulated vLLM pods, the sidecar in file mode scraping
// them every 50 ms, and the local gateway running build/filter.wasm, all over real HTTP.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileInventory } from "../../sidecar/inventory/files.ts";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { startSimCluster, type SimCluster } from "../../sim/pods.ts";
import { startSidecar, waitFor } from "../support/sidecar-harness.ts";
import { freePort } from "../../scripts/local-stack/ports.ts";

const TOKEN = "e2e-token";
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

function manifests(ports: number[], ready: boolean[]): string {
  const pool = `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: local-pool, namespace: default }
spec:
  selector: { matchLabels: { app: sim } }
  targetPorts: [{ number: 8000 }]
  endpointPickerRef: { name: epp, port: { number: 9002 } }
`;
  const pods = ports.map(
    (port, i) => `---
apiVersion: v1
kind: Pod
metadata:
  name: sim-${i}
  namespace: default
  labels: { app: sim }
  annotations: { epp-wasm.io/port: "${port}" }
status:
  podIP: 127.0.0.1
  conditions: [{ type: Ready, status: "${ready[i] ? "True" : "False"}" }]
`,
  );
  return pool + pods.join("");
}

async function startGateway(controlPort = 0) {
  const gw = new Gateway(
    normalizeConfig({
      listeners: [
        { name: "data", address: "127.0.0.1", port: 0 },
        { name: "control", address: "127.0.0.1", port: controlPort },
      ],
      wasm: "build/filter.wasm",
      workers: 2,
      pluginConfig: {
        pool: { namespace: "default", name: "local-pool" },
        controlToken: TOKEN,
        failureMode: "FailClose",
        randomSeed: 3,
      },
    }),
  );
  await gw.start();
  return gw;
}

/** Which pod served a one-token completion; "blocked" when it sat in a queue longer than `timeoutMs`. */
async function served(dataUrl: string, timeoutMs = 2000): Promise<string> {
  try {
    const res = await fetch(`${dataUrl}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, prompt: "hi", max_tokens: 1 }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer();
    return res.status === 200 ? (res.headers.get("x-inference-pod") ?? "?") : `status-${res.status}`;
  } catch {
    return "blocked";
  }
}

async function withStack(
  simOverrides: Record<string, number>,
  body: (s: { sims: SimCluster; dataUrl: string; dir: string; ports: number[] }) => Promise<void>,
) {
  const sims = await startSimCluster({
    pods: 2,
    basePort: 0,
    preset: "fast",
    timeScale: 1,
    seed: 1,
    overrides: simOverrides,
  });
  const ports = sims.pods.map((p) => p.port);
  const dir = mkdtempSync(join(tmpdir(), "epp-e2e-"));
  writeFileSync(join(dir, "pool.yaml"), manifests(ports, [true, true]));
  const gw = await startGateway();
  const inventory = new FileInventory({ manifestsDir: dir, debounceMs: 20, settleMs: 20, rescanMs: 500 });
  const sc = await startSidecar({
    inventory,
    envoys: [`http://127.0.0.1:${gw.listener("control").port}`],
    token: TOKEN,
  });
  try {
    await waitFor("sidecar ready", () => sc.sidecar.readiness().ready, 5000);
    await body({ sims, dataUrl: `http://127.0.0.1:${gw.listener("data").port}`, dir, ports });
  } finally {
    await sc.stop();
    await gw.stop();
    await sims.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

test("editing a manifest changes where the running gateway routes within 1 s", async () => {
  await withStack({}, async ({ dataUrl, dir, ports }) => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(await served(dataUrl));
    assert.deepEqual([...seen].sort(), ["sim-0", "sim-1"]);

    writeFileSync(join(dir, "pool.yaml"), manifests(ports, [false, true]));
    const elapsed = await waitFor(
      "traffic to leave the unready pod",
      async () => {
        for (let i = 0; i < 5; i++) if ((await served(dataUrl)) !== "sim-1") return false;
        return true;
      },
      1000,
    );
    assert.ok(elapsed <= 1000);
  });
});

test("loading one server's queue moves new requests to the other within 200 ms", async () => {
  // One sequence at a time, so requests sent straight to sim-0 pile up in its waiting queue.
  await withStack({ maxNumSeqs: 1 }, async ({ sims, dataUrl }) => {
    const direct = `http://127.0.0.1:${sims.pods[0]!.port}/v1/completions`;
    const load = Array.from({ length: 8 }, () =>
      fetch(direct, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: MODEL, prompt: "load", max_tokens: 400 }),
      }).then((r) => r.arrayBuffer()),
    );
    for (const p of load) void p.catch(() => {}); // cut off when the stack stops
    const started = Date.now();
    // The moment routing had moved is when the first of five consecutive probes that all avoid the loaded
    // pod was sent (not when the fifth returned: probe latency is not routing delay).
    let movedAt = 0;
    await waitFor(
      "requests to avoid the loaded pod",
      async () => {
        const sent = Date.now();
        // A request routed to the loaded pod waits behind its queue; 100 ms is ample for an idle pod.
        for (let i = 0; i < 5; i++) if ((await served(dataUrl, 100)) !== "sim-1") return false;
        movedAt = sent;
        return true;
      },
      2000,
    );
    const elapsed = movedAt - started;
    assert.ok(
      elapsed <= 200,
      `traffic moved after ${elapsed} ms (load started ${Date.now() - started} ms ago)`,
    );
  });
});

test("a gateway that is down at start-up is retried until it is up; the server endpoints answer", async () => {
  const sims = await startSimCluster({ pods: 2, basePort: 0, preset: "fast", timeScale: 1, seed: 2 });
  const dir = mkdtempSync(join(tmpdir(), "epp-e2e-"));
  writeFileSync(
    join(dir, "pool.yaml"),
    manifests(
      sims.pods.map((p) => p.port),
      [true, true],
    ),
  );
  const controlPort = await freePort();
  const inventory = new FileInventory({ manifestsDir: dir, debounceMs: 20, settleMs: 20 });
  const sc = await startSidecar({ inventory, envoys: [`http://127.0.0.1:${controlPort}`], token: TOKEN });
  let gw: Gateway | undefined;
  try {
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(sc.sidecar.readiness().ready, false, "not ready while no Envoy has acknowledged");
    const ready = await fetch(`${sc.url}/readyz`);
    assert.equal(ready.status, 503);
    await ready.arrayBuffer();

    gw = await startGateway(controlPort);
    await waitFor("sidecar ready after the gateway came up", () => sc.sidecar.readiness().ready, 5000);
    const dataUrl = `http://127.0.0.1:${gw.listener("data").port}`;
    assert.match(await served(dataUrl), /^sim-[01]$/);

    assert.equal((await fetch(`${sc.url}/healthz`)).status, 200);
    const metrics = await (await fetch(`${sc.url}/metrics`)).text();
    assert.match(metrics, /inference_pool_ready_pods\{name="local-pool",namespace="default"\} 2/);
    assert.match(
      metrics,
      /epp_sidecar_push_total\{target="static:http:\/\/127\.0\.0\.1:\d+",outcome="ok"\} \d+/,
    );
    const debug = (await (await fetch(`${sc.url}/debug/snapshot?pool=default/local-pool`)).json()) as {
      snapshot: { endpoints: unknown[]; scheduler: { params: Record<string, number> } };
    };
    assert.equal(debug.snapshot.endpoints.length, 2);
    // One Envoy target: the filter may place new prompt groups load-aware (docs/scheduling.md).
    assert.equal(debug.snapshot.scheduler.params.envoyReplicas, 1);
    const pull = await fetch(`${sc.url}/snapshot?pool=default/local-pool`);
    const etag = pull.headers.get("etag")!;
    await pull.arrayBuffer();
    assert.equal(pull.status, 200);
    // The same generation answers 304; snapshots are republished every ≤100 ms, so ask right away.
    const again = await fetch(`${sc.url}/snapshot?pool=default/local-pool`, {
      headers: { "if-none-match": etag },
    });
    await again.arrayBuffer();
    assert.ok(again.status === 304 || again.headers.get("etag") !== etag);
  } finally {
    await sc.stop();
    await gw?.stop();
    await sims.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
