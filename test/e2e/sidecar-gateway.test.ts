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
import { freeConsecutivePorts } from "../../scripts/local-stack/ports.ts";
import { poolManifests } from "../sidecar/sidecar-process.ts";

const TOKEN = "e2e-token";
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

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
  writeFileSync(join(dir, "pool.yaml"), poolManifests(ports, [true, true]));
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

// How fast routing follows is a benchmark's question (bench:e2e); here the deadlines only bound a hang.
test("editing a manifest changes where the running gateway routes", async () => {
  await withStack({}, async ({ dataUrl, dir, ports }) => {
    const seen = new Set<string>();
    for (let i = 0; i < 20; i++) seen.add(await served(dataUrl));
    assert.deepEqual([...seen].sort(), ["sim-0", "sim-1"]);

    writeFileSync(join(dir, "pool.yaml"), poolManifests(ports, [false, true]));
    await waitFor(
      "traffic to leave the unready pod",
      async () => {
        for (let i = 0; i < 5; i++) if ((await served(dataUrl)) !== "sim-1") return false;
        return true;
      },
      20_000,
    );
    // Once moved it stays moved: the unready pod gets nothing.
    for (let i = 0; i < 10; i++) assert.equal(await served(dataUrl), "sim-1");
  });
});

test("loading one server's queue moves new requests to the other", async () => {
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
    // Five consecutive probes served by the idle pod. A probe routed to the loaded pod waits behind its
    // queue and is cut off ("blocked"), so it can only delay this, never satisfy it.
    await waitFor(
      "requests to avoid the loaded pod",
      async () => {
        for (let i = 0; i < 5; i++) if ((await served(dataUrl, 1000)) !== "sim-1") return false;
        return true;
      },
      20_000,
    );
  });
});

test("a gateway that is down at start-up is retried until it is up; the server endpoints answer", async () => {
  const sims = await startSimCluster({ pods: 2, basePort: 0, preset: "fast", timeScale: 1, seed: 2 });
  const dir = mkdtempSync(join(tmpdir(), "epp-e2e-"));
  writeFileSync(
    join(dir, "pool.yaml"),
    poolManifests(
      sims.pods.map((p) => p.port),
      [true, true],
    ),
  );
  // The gateway binds this port only later: a port below the ephemeral range (no parallel test's socket is
  // given it), and a fresh one should it still be taken when the gateway binds.
  let controlPort = await freeConsecutivePorts(1);
  const inventory = new FileInventory({ manifestsDir: dir, debounceMs: 20, settleMs: 20 });
  let sc = await startSidecar({ inventory, envoys: [`http://127.0.0.1:${controlPort}`], token: TOKEN });
  let gw: Gateway | undefined;
  try {
    // The sidecar tried to push and failed (nothing listens yet): it is not ready.
    await waitFor(
      "a failed push",
      async () => /outcome="error"\} [1-9]/.test(await sc.metrics.registry.metrics()),
      10_000,
    );
    assert.equal(sc.sidecar.readiness().ready, false, "not ready while no Envoy has acknowledged");
    const ready = await fetch(`${sc.url}/readyz`);
    assert.equal(ready.status, 503);
    await ready.arrayBuffer();

    for (let attempt = 1; !gw; attempt++) {
      try {
        gw = await startGateway(controlPort);
      } catch (err) {
        if (attempt >= 3 || !/already in use/.test(String(err))) throw err;
        await sc.stop();
        controlPort = await freeConsecutivePorts(1);
        sc = await startSidecar({ inventory, envoys: [`http://127.0.0.1:${controlPort}`], token: TOKEN });
      }
    }
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
    await pull.arrayBuffer();
    assert.equal(pull.status, 200);
    assert.match(pull.headers.get("etag") ?? "", /^"\d+"$/);
    // The same generation answers 304 with no body. Snapshots are republished as scrapes land, so the
    // generation can move between the two requests: ask again until one pair sees the same generation.
    const stale = await fetch(`${sc.url}/snapshot?pool=default/local-pool`, {
      headers: { "if-none-match": '"0"' },
    });
    assert.equal(stale.status, 200, "an old generation gets the snapshot");
    await stale.arrayBuffer();
    await waitFor(
      "a 304 for the current generation",
      async () => {
        const first = await fetch(`${sc.url}/snapshot?pool=default/local-pool`);
        await first.arrayBuffer();
        const etag = first.headers.get("etag")!;
        const again = await fetch(`${sc.url}/snapshot?pool=default/local-pool`, {
          headers: { "if-none-match": etag },
        });
        const body = await again.arrayBuffer();
        if (again.status === 200) {
          assert.notEqual(again.headers.get("etag"), etag, "200 only when the generation moved");
          return false;
        }
        assert.equal(again.status, 304);
        assert.equal(again.headers.get("etag"), etag);
        assert.equal(body.byteLength, 0);
        return true;
      },
      10_000,
    );
  } finally {
    await sc.stop();
    await gw?.stop();
    await sims.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
