// Scheduling as configuration, end to end (issue 18): simulated vLLM pods, the sidecar as a real process with
// `--config FILE`, and the local gateway running build/filter.wasm, driven with the official openai client.
// Editing the file — or the pool's ConfigMap, through the fake API server — changes how the running gateway
// routes (here: session affinity switched on), and a session sticks to its pod across turns, moving once —
// and sticking again — when that pod leaves the manifests.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { startSimCluster } from "../../sim/pods.ts";
import { startSidecarProcess, writePool } from "../sidecar/sidecar-process.ts";
import { startSidecar, waitFor } from "../support/sidecar-harness.ts";
import { FakeApiServer } from "../support/fake-apiserver.ts";
import { KubernetesInventory } from "../../sidecar/inventory/kubernetes.ts";
import { ConfigRegistry } from "../../sidecar/scheduling-config/registry.ts";

const TOKEN = "scheduling-config-token";
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const SESSION = "x-session-token";
const SERVED = "x-gateway-destination-endpoint-served";

const WITHOUT_SESSIONS = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: max-score-picker
`;

// llm-d's shape: a session-affinity scorer that outweighs the load scorers, so a session is pinned.
const WITH_SESSIONS = `apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: session-affinity-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: session-affinity-scorer
    weight: 10
  - pluginRef: max-score-picker
`;

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

/** Replaces the file the way editors and ConfigMap volumes do: write aside, then rename over it. */
function replaceFile(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

interface Turn {
  served: string;
  token: string | null;
}

function startGateway(): Promise<Gateway> {
  const gw = new Gateway(
    normalizeConfig({
      listeners: [
        { name: "data", address: "127.0.0.1", port: 0 },
        { name: "control", address: "127.0.0.1", port: 0 },
      ],
      wasm: "build/filter.wasm",
      workers: 2,
      pluginConfig: {
        pool: { namespace: "default", name: "local-pool" },
        controlToken: TOKEN,
        failureMode: "FailClose",
        randomSeed: 7,
      },
    }),
  );
  return gw.start().then(() => gw);
}

/** The session token a one-message chat through `dataPort` is given (null: none). */
async function tokenFrom(dataPort: number): Promise<string | null> {
  const client = new OpenAI({ baseURL: `http://127.0.0.1:${dataPort}/v1`, apiKey: "unused", maxRetries: 0 });
  const { response } = await client.chat.completions
    .create({ model: MODEL, messages: [{ role: "user", content: "hi" }], max_tokens: 1 })
    .withResponse();
  return response.headers.get(SESSION);
}

test("editing the pool's ConfigMap (epp-wasm.io/config) switches on session affinity in the running gateway", async () => {
  const sims = await startSimCluster({ pods: 1, basePort: 0, preset: "fast", timeScale: 1, seed: 6 });
  cleanup.push(() => sims.close());
  const api = await FakeApiServer.start();
  cleanup.push(() => api.close());
  api.apply({
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: {
      name: "local-pool",
      namespace: "default",
      annotations: { "epp-wasm.io/config": "local-pool-epp" },
    },
    spec: {
      selector: { matchLabels: { app: "sim" } },
      targetPorts: [{ number: sims.pods[0]!.port }],
      endpointPickerRef: { name: "epp", port: { number: 9002 } },
    },
  });
  api.apply({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "sim-0", namespace: "default", labels: { app: "sim" } },
    status: { podIP: "127.0.0.1", conditions: [{ type: "Ready", status: "True" }] },
  });
  const configMap = (text: string) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "local-pool-epp", namespace: "default" },
    data: { "config.yaml": text },
  });
  api.apply(configMap(WITHOUT_SESSIONS));
  const gw = await startGateway();
  cleanup.push(() => gw.stop());
  const sc = await startSidecar({
    inventory: new KubernetesInventory({ kubeConfig: api.kubeConfig(), namespace: "default", coalesceMs: 5 }),
    envoys: [`http://127.0.0.1:${gw.listener("control").port}`],
    token: TOKEN,
    config: new ConfigRegistry({ fallbackProfile: "default" }),
  });
  cleanup.push(() => sc.stop());
  const dataPort = gw.listener("data").port;
  await waitFor("the sidecar to be ready", () => sc.sidecar.readiness().ready, 20_000);
  assert.equal(await tokenFrom(dataPort), null);

  api.apply(configMap(WITH_SESSIONS));
  await waitFor(
    "the edited ConfigMap to reach the gateway",
    async () => (await tokenFrom(dataPort)) !== null,
    20_000,
  );
  assert.equal(
    Buffer.from((await tokenFrom(dataPort))!, "base64").toString(),
    `127.0.0.1:${sims.pods[0]!.port}`,
  );
});

test("editing --config switches on session affinity in the running gateway; a session sticks, and moves once when its pod leaves", async () => {
  const sims = await startSimCluster({ pods: 3, basePort: 0, preset: "fast", timeScale: 1, seed: 5 });
  cleanup.push(() => sims.close());
  const ports = sims.pods.map((p) => p.port);
  const dir = mkdtempSync(join(tmpdir(), "epp-config-e2e-"));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  writePool(dir, ports);
  const configFile = join(dir, "scheduling.yaml");
  writeFileSync(configFile, WITHOUT_SESSIONS);

  const gw = await startGateway();
  cleanup.push(() => gw.stop());
  const sidecar = await startSidecarProcess({
    manifestsDir: dir,
    envoys: [`http://127.0.0.1:${gw.listener("control").port}`],
    token: TOKEN,
    args: ["--config", configFile],
  });
  cleanup.push(() => sidecar.kill("SIGTERM"));
  await waitFor("the sidecar to be ready", async () => (await sidecar.readyStatus()) === 200, 20_000);

  const client = new OpenAI({
    baseURL: `http://127.0.0.1:${gw.listener("data").port}/v1`,
    apiKey: "unused",
    maxRetries: 0,
  });
  const turn = async (token: string | null): Promise<Turn> => {
    const { response } = await client.chat.completions
      .create(
        { model: MODEL, messages: [{ role: "user", content: "one more turn" }], max_tokens: 2 },
        token ? { headers: { [SESSION]: token } } : {},
      )
      .withResponse();
    return { served: response.headers.get(SERVED) ?? "", token: response.headers.get(SESSION) };
  };

  // Without the session scorer no token is handed out.
  assert.equal((await turn(null)).token, null);

  replaceFile(configFile, WITH_SESSIONS);
  await waitFor(
    "the edited config to reach the gateway",
    async () => (await turn(null)).token !== null,
    20_000,
  );

  // Five turns of one session land on one pod.
  const first = await turn(null);
  assert.ok(first.token, "the first turn is given a session token");
  let token = first.token;
  for (let i = 0; i < 4; i++) {
    const t = await turn(token);
    assert.equal(t.served, first.served, `turn ${i + 2} stays on ${first.served}`);
    token = t.token ?? token;
  }

  // The session's pod leaves the manifests: the session moves once, then sticks to its new pod.
  const gonePort = Number(first.served.split(":")[1]);
  writePool(
    dir,
    ports.filter((p) => p !== gonePort),
  );
  await waitFor(
    "routing to leave the removed pod",
    async () => (await turn(null)).served !== first.served && (await turn(token)).served !== first.served,
    20_000,
  );
  const moved = await turn(token);
  assert.notEqual(moved.served, first.served);
  assert.ok(moved.token && moved.token !== first.token, "the moved session gets its new pod's token");
  for (let i = 0; i < 4; i++)
    assert.equal((await turn(moved.token)).served, moved.served, "sticks to the new pod");
});
