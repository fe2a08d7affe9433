// `npm start`: the whole product on one machine — simulated vLLM pods, the sidecar in file mode on
// examples/local, and the local gateway running build/filter.wasm (or, with --envoy, the real Envoy running it)
// — as one supervised process tree. Both run the same shipped Envoy bootstrap: envoy/envoy-override-host.yaml
// with the simulated pods as its endpoints (default), or envoy/envoy.yaml's ORIGINAL_DST cluster
// (--cluster original_dst).
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { assertPortsFree, freePort } from "./local-stack/ports.ts";
import { envoyArgs, findEnvoy, writeLocalEnvoyConfig } from "./local-stack/envoy.ts";
import { writeLocalManifests } from "./local-stack/manifests.ts";
import {
  gatewayConfigFromEnvoy,
  ORIGINAL_DST_BOOTSTRAP,
  OVERRIDE_HOST_BOOTSTRAP,
} from "./local-stack/gateway-config.ts";
import { Supervisor } from "./local-stack/supervisor.ts";
import { buildFilterIfNeeded } from "./local-stack/filter-build.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct";
const ADAPTERS = ["food-review-lora-v1", "food-review-lora-v2", "summaries-lora"];

const USAGE = `usage: npm start -- [flags]

  --pods N             simulated vLLM pods (default 4)
  --port P             gateway data port (default 8080)
  --control-port P     gateway control port on 127.0.0.1 (default 8081)
  --sidecar-port P     sidecar metrics and status page (default 9090)
  --sim-base-port P    first simulated pod port; pod i uses P+i (default 8001)
  --preset NAME        simulator preset: h100-llama3-8b, a100-40g-llama2-7b, fast (default h100-llama3-8b)
  --time-scale X       run the simulated GPUs X times faster than real time (default 1)
  --profile NAME       scheduler profile: default, gie-default, legacy (default default)
  --cluster TYPE       how the pick is routed, as in the shipped Envoy configs: override_host (default;
                       envoy/envoy-override-host.yaml with the simulated pods as endpoints: retries walk the
                       filter's fallback list) or original_dst (envoy/envoy.yaml: one ip:port, no endpoint list)
  --envoy              run the real Envoy (>= 1.35, from PATH) instead of the built-in gateway, with that
                       bootstrap: data listener on --port (0.0.0.0, as in the file), control listener on
                       127.0.0.1:--control-port, admin on a free loopback port
  --envoy-bin PATH     the Envoy binary to run (implies --envoy)`;

function int(value: string | undefined, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${flag} must be an integer, got ${value}`);
  return n;
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      pods: { type: "string", default: "4" },
      port: { type: "string", default: "8080" },
      "control-port": { type: "string", default: "8081" },
      "sidecar-port": { type: "string", default: "9090" },
      "sim-base-port": { type: "string", default: "8001" },
      preset: { type: "string", default: "h100-llama3-8b" },
      "time-scale": { type: "string", default: "1" },
      profile: { type: "string", default: "default" },
      cluster: { type: "string", default: "override_host" },
      envoy: { type: "boolean", default: false },
      "envoy-bin": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const pods = int(values.pods, "--pods");
  const port = int(values.port, "--port");
  const controlPort = int(values["control-port"], "--control-port");
  const sidecarPort = int(values["sidecar-port"], "--sidecar-port");
  const simBase = int(values["sim-base-port"], "--sim-base-port");
  if (pods < 1) throw new Error("--pods must be at least 1");
  const cluster = values.cluster!;
  if (cluster !== "override_host" && cluster !== "original_dst") {
    throw new Error(`--cluster must be override_host or original_dst, got ${cluster}`);
  }
  // Before anything slow: a missing Envoy is a one-line error, not a half-started stack.
  const envoyBin =
    values.envoy || values["envoy-bin"] !== undefined ? findEnvoy(values["envoy-bin"]) : undefined;

  await assertPortsFree([
    { port, flag: "--port", what: "gateway" },
    { port: controlPort, flag: "--control-port", what: "gateway control listener" },
    { port: sidecarPort, flag: "--sidecar-port", what: "sidecar" },
    ...Array.from({ length: pods }, (_, i) => ({
      port: simBase + i,
      flag: "--sim-base-port",
      what: `simulated pod ${i}`,
    })),
  ]);
  buildFilterIfNeeded();

  // A fresh token per run, unless the caller brings one (tests that push their own snapshots).
  const token = process.env.EPP_CONTROL_TOKEN || randomBytes(24).toString("hex");
  const manifests = writeLocalManifests(join(ROOT, "examples/local"), pods, simBase);
  // Over the bootstrap's plugin configuration; the control fields reach the control listener only, and the
  // destination shape (destinationMode, maxFallbacks) is the bootstrap's, fixed by its cluster type.
  const pluginConfig = {
    pool: { namespace: "default", name: "local-pool" },
    controlToken: token,
    failureMode: "FailClose",
  };
  const wasm = join(ROOT, "build/filter.wasm");
  const podAddresses = Array.from({ length: pods }, (_, i) => ({ address: "127.0.0.1", port: simBase + i }));
  const gatewayConfig = join(manifests, "gateway.json");
  writeFileSync(
    gatewayConfig,
    JSON.stringify(
      gatewayConfigFromEnvoy(cluster === "override_host" ? OVERRIDE_HOST_BOOTSTRAP : ORIGINAL_DST_BOOTSTRAP, {
        listeners: { data: { port }, control: { port: controlPort } },
        wasm,
        endpoints:
          cluster === "override_host" ? podAddresses.map((p) => `${p.address}:${p.port}`) : undefined,
        pluginConfig,
      }),
    ),
  );
  // With --envoy: the same bootstrap, listeners, module and plugin configuration (a temporary file).
  // Envoy's admin, or the local gateway's (/stats, /stats/prometheus).
  const adminPort = await freePort();
  const envoyFiles = envoyBin
    ? writeLocalEnvoyConfig({
        port,
        controlPort,
        adminPort,
        wasm,
        pluginConfig,
        ...(cluster === "override_host" ? { endpoints: podAddresses } : {}),
      })
    : undefined;

  const sup = new Supervisor();
  let shuttingDown = false;
  const shutdown = async (code: number) => {
    if (shuttingDown) return;
    shuttingDown = true;
    console.log("\nstopping the local stack …");
    await sup.stopAll();
    rmSync(manifests, { recursive: true, force: true });
    if (envoyFiles) rmSync(envoyFiles.dir, { recursive: true, force: true });
    process.exit(code);
  };
  process.once("SIGINT", () => void shutdown(0));
  process.once("SIGTERM", () => void shutdown(0));
  sup.onUnexpectedExit = (name, code) => {
    console.error(`${name} exited unexpectedly (code ${code}); stopping everything`);
    void shutdown(1);
  };

  const tsx = ["--import", "tsx"];
  sup.start("sim", process.execPath, [
    ...tsx,
    join(ROOT, "sim/main.ts"),
    "--pods",
    String(pods),
    "--base-port",
    String(simBase),
    "--preset",
    values.preset!,
    "--time-scale",
    values["time-scale"]!,
    "--lora-modules",
    ADAPTERS.join(","),
  ]);
  if (envoyBin && envoyFiles) sup.start("envoy", envoyBin, envoyArgs(envoyFiles.file));
  else
    sup.start("gateway", process.execPath, [
      ...tsx,
      join(ROOT, "gateway/main.ts"),
      "--config",
      gatewayConfig,
      "--admin-port",
      String(adminPort),
    ]);
  sup.start(
    "sidecar",
    process.execPath,
    [
      "--max-semi-space-size=16",
      ...tsx,
      join(ROOT, "sidecar/main.ts"),
      "--manifests",
      manifests,
      "--envoy",
      `http://127.0.0.1:${controlPort}`,
      // The status page reads the filter's decision counters from the admin's /stats/prometheus.
      "--envoy-admin",
      `http://127.0.0.1:${adminPort}`,
      "--port",
      String(sidecarPort),
      "--host",
      "127.0.0.1",
      "--profile",
      values.profile!,
      "--log-level",
      "warn",
    ],
    { EPP_CONTROL_TOKEN: token },
  );

  const ok = async (url: string, init?: RequestInit) => (await fetch(url, init)).ok;
  for (let i = 0; i < pods; i++)
    await waitUntil(`simulated pod ${i}`, () => ok(`http://127.0.0.1:${simBase + i}/health`));
  if (envoyBin)
    await waitUntil("Envoy to be ready (admin /ready)", () => ok(`http://127.0.0.1:${adminPort}/ready`));
  await waitUntil("the sidecar to push its first snapshot", () =>
    ok(`http://127.0.0.1:${sidecarPort}/readyz`),
  );
  const gateway = `http://127.0.0.1:${port}`;
  await waitUntil("a request through the gateway", () =>
    ok(`${gateway}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: BASE_MODEL, prompt: "ping", max_tokens: 1 }),
    }),
  );

  const pids = sup
    .pids()
    .map((p) => `${p.name} (pid ${p.pid})`)
    .join(", ");
  console.log(`
epp-wasm local stack is up: ${pids}
  gateway        ${gateway}            (${envoyBin ? `Envoy ${envoyBin}` : "filter.wasm"}, ${cluster} cluster, profile ${values.profile})
  admin          http://127.0.0.1:${adminPort}/stats/prometheus   (the filter's metrics, as Envoy's admin serves them)
  status page    http://127.0.0.1:${sidecarPort}/       metrics: /metrics
  model servers  ${pods} simulated vLLM pods on 127.0.0.1:${simBase}-${simBase + pods - 1} (${values.preset})
  models         ${BASE_MODEL} (Critical), food-review (70/30 LoRA rollout), batch-summaries (Sheddable)

Try it:
  curl -s ${gateway}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{"model":"food-review","messages":[{"role":"user","content":"Is the pasta good?"}],"max_tokens":32}' -i

  node --input-type=module -e "import OpenAI from 'openai';
    const c = new OpenAI({ baseURL: '${gateway}/v1', apiKey: 'unused' });
    const r = await c.chat.completions.create({ model: '${BASE_MODEL}', messages: [{ role: 'user', content: 'hello' }], max_tokens: 16 });
    console.log(r.choices[0].message.content);"

Ctrl-C stops everything.`);
}

main().catch((err: Error) => {
  console.error(`npm start: ${err.message}`);
  process.exit(1);
});
