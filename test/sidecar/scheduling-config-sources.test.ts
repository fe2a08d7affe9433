// Where the scheduling config comes from, end to end: a running `epp-sidecar --config FILE` picks up edits
// (including an editor's write-and-rename) without a restart, keeps the last good config on a refusal and
// reports it (/readyz body, /status.json, metric); a pool's ConfigMap, edited through the fake API server,
// changes that pool's PLUGINS section the same way.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubernetesInventory } from "../../sidecar/inventory/kubernetes.ts";
import { ConfigRegistry } from "../../sidecar/scheduling-config/registry.ts";
import { loadConfig } from "../../sidecar/scheduling-config/load.ts";
import { shippedConfigPath } from "../../sidecar/scheduling-config/shipped.ts";
import { SidecarMetrics } from "../../sidecar/metrics.ts";
import type { SchedulingSection } from "../../sidecar/snapshot/types.ts";
import { FakeApiServer } from "../support/fake-apiserver.ts";
import { withDeadline } from "../support/deadline.ts";
import { startPushSink, startSidecar, waitFor } from "../support/sidecar-harness.ts";
import { startSidecarProcess, writePool } from "./sidecar-process.ts";

const TOKEN = "config-token";
const ROOT = new URL("../..", import.meta.url).pathname;

function config(queueWeight: number, extra = ""): string {
  return `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
${extra}schedulingProfiles:
- name: default
  plugins:
  - pluginRef: queue-scorer
    weight: ${queueWeight}
  - pluginRef: kv-cache-utilization-scorer
    weight: 1
`;
}
const BAD = config(2, "- type: magic-scorer\n");

const queueWeight = (s: SchedulingSection | undefined): number | undefined =>
  s?.profiles[0]?.entries[0]?.weight;

/** Replaces the file the way editors save: write a sibling, rename it over the original. */
function editorSave(path: string, text: string): void {
  writeFileSync(`${path}.swp`, text);
  renameSync(`${path}.swp`, path);
}

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

test("--config FILE: edits change the pushed PLUGINS without a restart; a refusal keeps the last good one and shows", async () => {
  const dir = mkdtempSync(join(tmpdir(), "epp-config-"));
  const manifests = join(dir, "manifests");
  const cfgDir = join(dir, "cfg");
  for (const d of [manifests, cfgDir]) rmSync(d, { recursive: true, force: true });
  await import("node:fs").then((fs) => {
    fs.mkdirSync(manifests);
    fs.mkdirSync(cfgDir);
  });
  writePool(manifests, [1]);
  const file = join(cfgDir, "tuned.yaml");
  writeFileSync(file, config(2));
  const sink = await startPushSink(TOKEN);
  const sc = await startSidecarProcess({
    manifestsDir: manifests,
    envoys: [sink.url],
    token: TOKEN,
    args: ["--config", file],
  });
  try {
    await waitFor("the first config pushed", () => queueWeight(sink.latest()?.scheduling) === 2, 20_000);
    assert.equal(sink.latest()!.scheduler.profile, "tuned", "the SCHEDULER record names the file");

    editorSave(file, config(7));
    await waitFor("the edited weight pushed", () => queueWeight(sink.latest()?.scheduling) === 7, 20_000);

    editorSave(file, BAD);
    await waitFor(
      "the refusal on /readyz",
      async () => ((await getJson(`${sc.url}/readyz`)).body.configRejections as string[]).length === 1,
      20_000,
    );
    const ready = await getJson(`${sc.url}/readyz`);
    assert.equal(ready.status, 200, "the last good config still routes: ready");
    assert.match(
      (ready.body.configRejections as string[])[0]!,
      /tuned\.yaml: plugin "magic-scorer", field plugins\[3\]\.type/,
    );
    const status = await getJson(`${sc.url}/status.json`);
    const cfg = (
      status.body.config as { rejection: { reason: string } | null; active: { hash: string } }[]
    )[0]!;
    assert.equal(cfg.rejection?.reason, "unknown_type");
    const metrics = await (await fetch(`${sc.url}/metrics`)).text();
    assert.match(metrics, /epp_sidecar_config_rejected_total\{source="file",reason="unknown_type"\} 1/);
    assert.match(
      metrics,
      new RegExp(
        `epp_sidecar_scheduling_config_info\\{pool="default/local-pool",name="tuned",hash="${cfg.active.hash}"\\} 1`,
      ),
    );
    const after = sink.received.length;
    await waitFor("more pushes after the refusal", () => sink.received.length > after + 3, 20_000);
    assert.equal(queueWeight(sink.latest()?.scheduling), 7, "the last good config stays in force");

    editorSave(file, config(4));
    await waitFor("the fixed config pushed", () => queueWeight(sink.latest()?.scheduling) === 4, 20_000);
    const fixed = await getJson(`${sc.url}/readyz`);
    assert.deepEqual(fixed.body.configRejections, []);
  } finally {
    await sc.kill("SIGTERM");
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--profile flow-control: the pushed snapshot carries the config's FLOW_CONTROL section", async () => {
  const dir = mkdtempSync(join(tmpdir(), "epp-config-"));
  mkdirSync(join(dir, "manifests"));
  writePool(join(dir, "manifests"), [1]);
  const path = shippedConfigPath("flow-control");
  const want = loadConfig(readFileSync(path, "utf8"), {
    source: path,
    displayName: "flow-control",
  }).flowControl;
  assert.ok(want !== undefined && want.bands.length === 3);
  const sink = await startPushSink(TOKEN);
  const sc = await startSidecarProcess({
    manifestsDir: join(dir, "manifests"),
    envoys: [sink.url],
    token: TOKEN,
    args: ["--profile", "flow-control"],
  });
  try {
    await waitFor("a snapshot with flow control", () => sink.latest()?.flowControl !== undefined, 20_000);
    const { crc, ...got } = sink.latest()!.flowControl!;
    assert.equal(typeof crc, "number");
    assert.deepEqual(got, want);
    assert.equal(sink.latest()!.scheduler.profile, "flow-control");
  } finally {
    await sc.kill("SIGTERM");
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("--config FILE refused at startup: exit status 2 and the message names file, plugin and field", async () => {
  const dir = mkdtempSync(join(tmpdir(), "epp-config-"));
  const file = join(dir, "bad.yaml");
  writeFileSync(file, BAD);
  try {
    const proc = spawn(
      process.execPath,
      ["--import", "tsx", join(ROOT, "sidecar/main.ts"), "--manifests", dir, "--config", file, "--port", "0"],
      { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, EPP_CONTROL_TOKEN: "" } },
    );
    let stderr = "";
    proc.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
    const code = await withDeadline(
      new Promise<number | null>((resolve) => proc.once("exit", (c) => resolve(c))),
      30_000,
      "the sidecar to exit",
    );
    assert.equal(code, 2, stderr);
    assert.match(
      stderr,
      /bad\.yaml: plugin "magic-scorer", field plugins\[3\]\.type: unknown type magic-scorer/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a pool's ConfigMap (epp-wasm.io/config), edited through the API server, changes that pool's PLUGINS", async () => {
  const api = await FakeApiServer.start();
  const sink = await startPushSink(TOKEN);
  const NS = "llm";
  api.apply({
    apiVersion: "inference.networking.k8s.io/v1",
    kind: "InferencePool",
    metadata: { name: "pool-a", namespace: NS, annotations: { "epp-wasm.io/config": "pool-a-epp" } },
    spec: {
      selector: { matchLabels: { app: "vllm" } },
      targetPorts: [{ number: 8000 }],
      endpointPickerRef: { name: "epp", port: { number: 9002 } },
    },
  });
  api.apply({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "p1", namespace: NS, labels: { app: "vllm" } },
    status: { podIP: "10.0.0.1", conditions: [{ type: "Ready", status: "True" }] },
  });
  const cm = (text: string) => ({
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: "pool-a-epp", namespace: NS },
    data: { "config.yaml": text },
  });
  api.apply(cm(config(3)));
  const metrics = new SidecarMetrics({ processMetrics: false });
  const rejected: string[] = [];
  const registry = new ConfigRegistry({
    fallbackProfile: "default",
    onReject: (source, r) => {
      rejected.push(`${source}:${r.reason}`);
      metrics.configRejected.inc({ source, reason: r.reason });
    },
  });
  const inventory = new KubernetesInventory({ kubeConfig: api.kubeConfig(), namespace: NS, coalesceMs: 5 });
  const sc = await startSidecar({ inventory, envoys: [sink.url], token: TOKEN, metrics, config: registry });
  try {
    await waitFor(
      "the ConfigMap's config pushed",
      () => queueWeight(sink.latest()?.scheduling) === 3,
      20_000,
    );
    assert.equal(sink.latest()!.scheduler.profile, "pool-a-epp");
    assert.ok(api.requests.some((r) => r.startsWith(`/api/v1/namespaces/${NS}/configmaps`)));

    api.apply(cm(config(9)));
    await waitFor("the edited ConfigMap pushed", () => queueWeight(sink.latest()?.scheduling) === 9, 20_000);

    api.apply(cm(BAD));
    await waitFor("the refusal recorded", () => rejected.includes("configmap:unknown_type"), 20_000);
    const after = sink.received.length;
    await waitFor("more pushes after the refusal", () => sink.received.length > after + 3, 20_000);
    assert.equal(queueWeight(sink.latest()?.scheduling), 9, "the last good config stays in force");
    const status = sc.sidecar.configStatus().find((c) => c.scope === `pool ${NS}/pool-a`)!;
    assert.match(
      status.rejection!.message,
      /configmap llm\/pool-a-epp key config\.yaml: plugin "magic-scorer", field plugins\[3\]\.type/,
    );

    api.delete(cm(""));
    await waitFor("the missing ConfigMap reported", () => rejected.includes("configmap:not_found"), 20_000);
    assert.equal(queueWeight(sink.latest()?.scheduling), 9, "still the last good config");
  } finally {
    await sc.stop();
    await sink.close();
    await api.close();
  }
});
