// Pull mode end to end, as separate processes: the gateway running envoy/envoy-pull.yaml (no control listener;
// the filter fetches GET /snapshot through the `epp-sidecar` cluster with proxy_http_call), the real epp-sidecar
// CLI started with no push target, and a pool of simulated pods. Routing follows the pool's manifests, and when
// the sidecar dies the gateway keeps routing on the last snapshot until it is stale.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gatewayConfigFromEnvoy, readShippedEnvoy } from "../../scripts/local-stack/gateway-config.ts";
import { freePorts, portIsFree } from "../../scripts/local-stack/ports.ts";
import { startSimCluster, type SimCluster } from "../../sim/pods.ts";

const ROOT = new URL("../..", import.meta.url).pathname;
const BOOTSTRAP = join(ROOT, "envoy/envoy-pull.yaml");
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const SERVED = "x-gateway-destination-endpoint-served";
/** Short, so the test sees the snapshot go stale after the sidecar dies (the shipped file says 5000). */
const STALE_AFTER_MS = 1500;

interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
}

function run(args: string[], env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  child.stdout!.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr!.on("data", (c: Buffer) => (out += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function stop(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.child.kill("SIGKILL"), 5000);
  await p.exited;
  clearTimeout(timer);
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Replaces the manifest whole (write, then rename), so the sidecar never reads it half-written. */
function writeManifest(path: string, text: string): void {
  writeFileSync(path + ".tmp~", text);
  renameSync(path + ".tmp~", path);
}

function poolYaml(pool: { namespace: string; name: string }, pods: { name: string; port: number }[]): string {
  const head = `apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: ${pool.name}, namespace: ${pool.namespace} }
spec:
  selector: { matchLabels: { app: sim } }
  targetPorts: [{ number: 8000 }]
  endpointPickerRef: { name: epp, port: { number: 9002 } }
`;
  return (
    head +
    pods
      .map(
        (p) => `---
apiVersion: v1
kind: Pod
metadata:
  name: ${p.name}
  namespace: ${pool.namespace}
  labels: { app: sim }
  annotations: { epp-wasm.io/port: "${p.port}" }
status:
  podIP: 127.0.0.1
  conditions: [{ type: Ready, status: "True" }]
`,
      )
      .join("")
  );
}

interface Answer {
  status: number;
  pod: string | null;
  served: string | null;
}

async function complete(port: number, prompt: string): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: 1 }),
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  return { status: res.status, pod: res.headers.get("x-inference-pod"), served: res.headers.get(SERVED) };
}

test("pull mode: gateway + sidecar with no push target + pods; routing follows the pool and survives the sidecar", async () => {
  const shipped = readShippedEnvoy(BOOTSTRAP);
  assert.deepEqual(
    shipped.listeners.map((l) => l.name),
    ["data"],
    "envoy-pull.yaml has no control listener",
  );
  const data = shipped.listeners[0]!.pluginConfig as {
    pool: { namespace: string; name: string };
    pull: { cluster: string };
  };
  const pool = data.pool;
  const sims: SimCluster = await startSimCluster({
    pods: 3,
    basePort: 0,
    preset: "fast",
    timeScale: 10,
    seed: 7,
  });
  const dir = mkdtempSync(join(tmpdir(), "epp-pull-e2e-"));
  const [gatewayPort, sidecarPort] = await freePorts(2);
  let sidecar: Proc | undefined;
  let gateway: Proc | undefined;
  try {
    const pods = sims.pods.map((p, i) => ({ name: `sim-${i}`, port: p.port }));
    const manifests = join(dir, "pool.yaml");
    writeFileSync(manifests, poolYaml(pool, pods));

    // The sidecar with no --envoy and no token: it only serves GET /snapshot.
    const env = { ...process.env };
    delete env.EPP_CONTROL_TOKEN;
    delete env.EPP_ENVOY;
    delete env.EPP_ENVOY_SELECTOR;
    // sidecar/main.ts directly (bin/epp-sidecar.mjs is a wrapper process): SIGKILL must reach the sidecar itself.
    sidecar = run(
      [
        "--import",
        "tsx",
        "sidecar/main.ts",
        ...["--manifests", dir, "--port", String(sidecarPort), "--host", "127.0.0.1"],
        ...["--scrape-interval-ms", "50", "--log-level", "info"],
      ],
      env,
    );
    const sidecarUrl = `http://127.0.0.1:${sidecarPort}`;
    const running = sidecar;
    await until("the sidecar to be ready with no push target", 20_000, async () => {
      if (running.child.exitCode !== null) assert.fail(`sidecar exited:\n${running.output()}`);
      const r = await fetch(`${sidecarUrl}/readyz`);
      const body = (await r.json()) as { ready: boolean };
      return r.status === 200 && body.ready ? true : undefined;
    });
    // Its stdout may arrive after it answers /readyz: wait for the line rather than read it once.
    await until("the sidecar to log that it runs in pull mode", 10_000, async () =>
      /no push target \(pull mode/.test(running.output()) ? true : undefined,
    );

    // GET /snapshot: binary, an ETag, 304 for a matching If-None-Match (also weak or in a list), per pool.
    const snap = await fetch(`${sidecarUrl}/snapshot?pool=${pool.namespace}/${pool.name}`);
    const bytes = new Uint8Array(await snap.arrayBuffer());
    assert.equal(snap.status, 200);
    assert.equal(snap.headers.get("content-type"), "application/octet-stream");
    assert.ok(bytes.length > 32);
    assert.equal((await fetch(`${sidecarUrl}/snapshot?pool=${pool.namespace}/other`)).status, 404);
    await until("a 304 for the current generation", 10_000, async () => {
      const first = await fetch(`${sidecarUrl}/snapshot?pool=${pool.namespace}/${pool.name}`);
      await first.arrayBuffer();
      const etag = first.headers.get("etag")!;
      for (const inm of [etag, `W/${etag}`, `"0", ${etag}`]) {
        const again = await fetch(`${sidecarUrl}/snapshot?pool=${pool.namespace}/${pool.name}`, {
          headers: { "if-none-match": inm },
        });
        const body = await again.arrayBuffer();
        if (again.status !== 304) return undefined; // the generation moved meanwhile: ask again
        assert.equal(body.byteLength, 0);
      }
      return true;
    });

    // The gateway runs the shipped bootstrap; its only addition is where the `epp-sidecar` cluster points.
    const raw = gatewayConfigFromEnvoy(BOOTSTRAP, {
      listeners: { data: { port: gatewayPort! } },
      wasm: join(ROOT, "build/filter.wasm"),
      endpoints: pods.map((p) => `127.0.0.1:${p.port}`),
      // staleMode fail: this test watches the old fuse (the default keeps routing on a stale snapshot).
      pluginConfig: { staleAfterMs: STALE_AFTER_MS, staleMode: "fail" },
    });
    const config = { ...raw, clusters: { [data.pull.cluster]: sidecarUrl } };
    const file = join(dir, "gateway.json");
    writeFileSync(file, JSON.stringify(config));
    gateway = run(
      ["--import", "tsx", "gateway/main.ts", "--config", file, "--log-level", "warn"],
      process.env,
    );
    const gw = gateway;
    await until("the gateway to route on a pulled snapshot", 20_000, async () => {
      if (gw.child.exitCode !== null) assert.fail(`gateway exited:\n${gw.output()}`);
      const r = await complete(gatewayPort!, "warm up");
      return r.status === 200 && r.served ? true : undefined;
    });

    const byName = new Map(pods.map((p) => [p.name, `127.0.0.1:${p.port}`]));
    for (let i = 0; i < 12; i++) {
      const r = await complete(gatewayPort!, `all pods ${i}`);
      assert.equal(r.status, 200);
      assert.ok(r.pod && byName.has(r.pod), `a pool pod served: ${r.pod}`);
      assert.equal(r.served, byName.get(r.pod));
    }

    // sim-2 leaves the pool: the next pulled snapshot no longer has it, so the filter stops picking it.
    writeManifest(manifests, poolYaml(pool, pods.slice(0, 2)));
    // 24 in a row off sim-2: by chance alone (sim-2 still in the snapshot) that is (2/3)^24, about 6e-5.
    await until("routing to leave sim-2", 10_000, async () => {
      const rs = [];
      for (let i = 0; i < 24; i++) rs.push(await complete(gatewayPort!, `two pods ${i}`));
      return rs.every((r) => r.status === 200 && r.pod !== "sim-2" && r.served) ? true : undefined;
    });
    for (let i = 0; i < 20; i++) {
      const r = await complete(gatewayPort!, `without sim-2 ${i}`);
      assert.equal(r.status, 200);
      assert.notEqual(r.pod, "sim-2");
    }
    // It comes back: the filter picks it again.
    writeManifest(manifests, poolYaml(pool, pods));
    await until("routing to reach sim-2 again", 15_000, async () => {
      const r = await complete(gatewayPort!, `sim-2 back ${Math.random()}`);
      return r.pod === "sim-2" && r.served === byName.get("sim-2") ? true : undefined;
    });

    // The sidecar dies. The filter keeps routing on the last snapshot (with its pick in the header) until it is
    // staleAfterMs old; then FailOpen lets requests through to the cluster's fallback policy without a pick.
    const killedAt = Date.now();
    sidecar.child.kill("SIGKILL");
    await sidecar.exited;
    const fresh = await complete(gatewayPort!, "sidecar just died");
    assert.equal(fresh.status, 200);
    assert.ok(fresh.served, "still picked from the last snapshot");
    await until("the snapshot to go stale", STALE_AFTER_MS + 5000, async () => {
      const r = await complete(gatewayPort!, "after the sidecar died");
      assert.equal(r.status, 200, "FailOpen keeps serving");
      return r.served === null ? true : undefined;
    });
    assert.ok(Date.now() - killedAt >= STALE_AFTER_MS - 200, "stale only after staleAfterMs");
    assert.ok(gateway.child.exitCode === null, "the gateway lives on");
  } finally {
    await stop(gateway);
    await stop(sidecar);
    await sims.close();
    rmSync(dir, { recursive: true, force: true });
  }
  for (const p of [gatewayPort!, sidecarPort!])
    assert.equal(await portIsFree(p), true, `port ${p} left in use`);
});
