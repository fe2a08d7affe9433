// `npm run test:envoy`: build/filter.wasm in a real Envoy, on each shipped bootstrap, with simulated pods and
// the sidecar on this machine. The bootstrap is rendered exactly as `npm start -- --envoy` renders it
// (scripts/local-stack/envoy.ts); only the runtime differs: a binary, or the official image through Docker.
// Without either it says what is missing and exits 1 (0 with --allow-skip). Not part of `npm test`.
import { randomBytes } from "node:crypto";
import { chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { envoyArgs, writeLocalEnvoyConfig } from "./local-stack/envoy.ts";
import { buildFilterIfNeeded } from "./local-stack/filter-build.ts";
import {
  ORIGINAL_DST_BOOTSTRAP,
  OVERRIDE_HOST_BOOTSTRAP,
  readShippedEnvoy,
} from "./local-stack/gateway-config.ts";
import { writeLocalManifests } from "./local-stack/manifests.ts";
import { freeConsecutivePorts, freePort, freePorts } from "./local-stack/ports.ts";
import { Supervisor } from "./local-stack/supervisor.ts";
import { startSimCluster } from "../sim/pods.ts";
import { runChecks, runSidecarCheck, type CheckTarget } from "./test-envoy/checks.ts";
import {
  envoyCommand,
  findRuntime,
  parseTestEnvoyArgs,
  USAGE,
  wasmPathFor,
  type ClusterKind,
  type EnvoyRuntime,
} from "./test-envoy/runtime.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const LIVE_PODS = 2;

async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  dead: () => string | undefined,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const gone = dead();
    if (gone) throw new Error(`${gone} while waiting for ${what}`);
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function runCluster(
  cluster: ClusterKind,
  rt: Exclude<EnvoyRuntime, { kind: "none" }>,
  live: number[],
): Promise<void> {
  const bootstrap = cluster === "override_host" ? OVERRIDE_HOST_BOOTSTRAP : ORIGINAL_DST_BOOTSTRAP;
  const shipped = readShippedEnvoy(bootstrap);
  const plugin = (name: string) => shipped.listeners.find((l) => l.name === name)?.pluginConfig ?? {};
  const [data, control, admin, sidecarPort] = await freePorts(4);
  const dead = await freePort();
  const token = randomBytes(24).toString("hex");
  const hostWasm = join(ROOT, "build/filter.wasm");
  const files = writeLocalEnvoyConfig({
    port: data,
    controlPort: control,
    adminPort: admin,
    wasm: wasmPathFor(rt, hostWasm),
    pluginConfig: { controlToken: token },
    ...(cluster === "override_host"
      ? { endpoints: [dead, ...live].map((port) => ({ address: "127.0.0.1", port })) }
      : {}),
  });
  // The image runs Envoy as an unprivileged user: the rendered file must be readable by it.
  chmodSync(files.dir, 0o755);
  chmodSync(files.file, 0o644);
  const containerName = `epp-test-envoy-${process.pid}-${cluster}`;
  const cmd = envoyCommand(
    rt,
    envoyArgs,
    { configDir: files.dir, configFile: files.file, wasm: hostWasm },
    containerName,
  );
  const manifests = writeLocalManifests(join(ROOT, "examples/local"), live.length, live[0]);
  const sup = new Supervisor();
  let exited: string | undefined;
  sup.onUnexpectedExit = (name, code) => (exited = `${name} exited (code ${code})`);
  console.log(`\n${cluster}: ${bootstrap.slice(ROOT.length)} on ${rt.kind === "docker" ? rt.image : rt.bin}`);
  try {
    sup.start("envoy", cmd.command, cmd.args);
    // The first Docker run may pull the image.
    await waitUntil(
      "Envoy (admin /ready)",
      async () => (await fetch(`http://127.0.0.1:${admin}/ready`)).ok,
      rt.kind === "docker" ? 300_000 : 60_000,
      () => exited,
    );
    const controlPlugin = plugin("control");
    const target: CheckTarget = {
      cluster,
      dataUrl: `http://127.0.0.1:${data}`,
      controlUrl: `http://127.0.0.1:${control}`,
      controlPath: String(controlPlugin.controlPath),
      healthPath: String(plugin("data").healthPath),
      token,
      pool: controlPlugin.pool as CheckTarget["pool"],
      failureMode: String(plugin("data").failureMode),
      live,
      dead,
    };
    await runChecks(target, console.log);
    sup.start(
      "sidecar",
      process.execPath,
      [
        "--import",
        "tsx",
        join(ROOT, "sidecar/main.ts"),
        ...["--manifests", manifests, "--envoy", `http://127.0.0.1:${control}`],
        ...["--port", String(sidecarPort), "--host", "127.0.0.1", "--log-level", "warn"],
      ],
      { EPP_CONTROL_TOKEN: token },
    );
    await waitUntil(
      "the sidecar's first accepted push (/readyz)",
      async () => (await fetch(`http://127.0.0.1:${sidecarPort}/readyz`)).ok,
      30_000,
      () => exited,
    );
    await runSidecarCheck(target, console.log);
  } finally {
    await sup.stopAll();
    if (rt.kind === "docker") spawnSync(rt.docker, ["rm", "-f", containerName], { stdio: "ignore" });
    rmSync(files.dir, { recursive: true, force: true });
    rmSync(manifests, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const o = parseTestEnvoyArgs(process.argv.slice(2));
  if (o.help) {
    console.log(USAGE);
    return 0;
  }
  const rt = findRuntime(o);
  if (rt.kind === "none") {
    // The whole point is a run in a real Envoy: without one, that is a failure unless asked otherwise.
    console.log(`test:envoy ${o.require ? "cannot run" : "skipped"}: ${rt.reason}`);
    return o.require ? 1 : 0;
  }
  buildFilterIfNeeded();
  const basePort = await freeConsecutivePorts(LIVE_PODS);
  const sims = await startSimCluster({ pods: LIVE_PODS, basePort, host: "127.0.0.1", timeScale: 10 });
  const live = sims.pods.map((_, i) => basePort + i);
  let failed = 0;
  try {
    for (const cluster of o.clusters) {
      try {
        await runCluster(cluster, rt, live);
      } catch (err) {
        failed++;
        console.error(`  FAIL ${(err as Error).message}`);
      }
    }
  } finally {
    await sims.close();
  }
  console.log(
    failed === 0
      ? `\ntest:envoy: every check passed (${o.clusters.join(", ")})`
      : `\ntest:envoy: ${failed} of ${o.clusters.length} bootstrap(s) failed`,
  );
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(`test:envoy: ${err.message}`);
    process.exit(1);
  },
);
