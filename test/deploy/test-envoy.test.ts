// `npm run test:envoy` cannot run here (no Envoy, no Docker): what can be checked without one is. Its flags,
// which runtime it chooses, the Docker command, the bootstrap it renders for a container, the snapshot its
// checks push, and the whole command's answer when no Envoy exists (exit 1, or 0 with --allow-skip).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CONTAINER_CONFIG_DIR,
  CONTAINER_WASM,
  DEFAULT_IMAGE,
  envoyCommand,
  findRuntime,
  parseTestEnvoyArgs,
  wasmPathFor,
} from "../../scripts/test-envoy/runtime.ts";
import { checkSnapshot, MODEL, runChecks, type CheckTarget } from "../../scripts/test-envoy/checks.ts";
import { envoyArgs, localEnvoyConfig } from "../../scripts/local-stack/envoy.ts";
import {
  connectionManagers,
  list,
  OVERRIDE_HOST_BOOTSTRAP,
  wasmPluginConfigs,
  type Obj,
} from "../../scripts/local-stack/envoy-bootstrap.ts";
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import { decodeSnapshot } from "../../sidecar/snapshot/decoder.ts";
import { repoRoot } from "./yaml-files.ts";
import {
  gatewayConfigFromEnvoy,
  ORIGINAL_DST_BOOTSTRAP,
  readShippedEnvoy,
} from "../../scripts/local-stack/gateway-config.ts";
import { freeConsecutivePorts, freePort, freePorts } from "../../scripts/local-stack/ports.ts";
import { Gateway } from "../../gateway/server.ts";
import { normalizeConfig } from "../../gateway/config.ts";
import { startSimCluster } from "../../sim/pods.ts";

/** A directory holding executable stubs with these names. */
function binDir(names: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "epp-test-envoy-bin-"));
  for (const n of names) {
    writeFileSync(join(dir, n), "#!/bin/sh\nexit 0\n");
    chmodSync(join(dir, n), 0o755);
  }
  return dir;
}

test("test:envoy flags: both bootstraps and the pinned image by default; ENVOY_BIN; bad values are refused", () => {
  const d = parseTestEnvoyArgs([], {});
  assert.deepEqual(d.clusters, ["override_host", "original_dst"]);
  assert.equal(d.image, DEFAULT_IMAGE);
  assert.match(
    DEFAULT_IMAGE,
    /^envoyproxy\/envoy:v1\.(3[5-9]|[4-9]\d)[\w.-]*$/,
    "Envoy >= 1.35 (override_host)",
  );
  assert.equal(d.require, true, "no Envoy is a failure by default");
  assert.equal(d.envoyBin, undefined);
  assert.equal(parseTestEnvoyArgs([], { ENVOY_BIN: "/opt/envoy" }).envoyBin, "/opt/envoy");
  assert.equal(parseTestEnvoyArgs(["--envoy-bin", "/x"], { ENVOY_BIN: "/y" }).envoyBin, "/x");
  assert.deepEqual(parseTestEnvoyArgs(["--cluster", "original_dst"], {}).clusters, ["original_dst"]);
  assert.equal(
    parseTestEnvoyArgs(["--allow-skip", "--image", "envoyproxy/envoy:v1.36-latest"], {}).require,
    false,
  );
  assert.throws(() => parseTestEnvoyArgs(["--cluster", "eds"], {}), /--cluster must be/);
  assert.throws(() => parseTestEnvoyArgs(["--docker", "--envoy-bin", "/x"], {}), /exclude each other/);
  assert.throws(() => parseTestEnvoyArgs(["--bogus"], {}), /Unknown option/);
});

test("test:envoy runtime: envoy on PATH, else Docker when its daemon answers, else a sentence naming what is missing", () => {
  const none = binDir([]);
  const envoyOnly = binDir(["envoy"]);
  const dockerOnly = binDir(["docker"]);
  const both = binDir(["envoy", "docker"]);
  const up = () => ({ ok: true }) as const;
  const down = () => ({ ok: false, why: "Cannot connect to the Docker daemon" }) as const;
  const o = { docker: false, image: DEFAULT_IMAGE };
  try {
    const missing = findRuntime(o, none, up);
    assert.equal(missing.kind, "none");
    assert.match(
      missing.kind === "none" ? missing.reason : "",
      /^no docker or envoy found: install Docker .*--envoy-bin/,
    );
    assert.deepEqual(findRuntime(o, envoyOnly, up), { kind: "binary", bin: join(envoyOnly, "envoy") });
    assert.deepEqual(findRuntime(o, both, up), { kind: "binary", bin: join(both, "envoy") });
    assert.deepEqual(findRuntime({ ...o, docker: true }, both, up), {
      kind: "docker",
      docker: join(both, "docker"),
      image: DEFAULT_IMAGE,
    });
    assert.equal(findRuntime(o, dockerOnly, up).kind, "docker");
    const noDaemon = findRuntime(o, dockerOnly, down);
    assert.match(noDaemon.kind === "none" ? noDaemon.reason : "", /daemon does not answer \(Cannot connect/);
    assert.throws(() => findRuntime({ ...o, envoyBin: join(none, "envoy") }, none, up), /not an executable/);
  } finally {
    for (const d of [none, envoyOnly, dockerOnly, both]) rmSync(d, { recursive: true, force: true });
  }
});

test("test:envoy Docker command: host network, config and module mounted read-only, envoy on the mounted config", () => {
  const files = {
    configDir: "/tmp/epp-envoy-x",
    configFile: "/tmp/epp-envoy-x/envoy.json",
    wasm: "/repo/build/filter.wasm",
  };
  const docker = envoyCommand(
    { kind: "docker", docker: "/usr/bin/docker", image: DEFAULT_IMAGE },
    envoyArgs,
    files,
    "c1",
  );
  assert.equal(docker.command, "/usr/bin/docker");
  const a = docker.args;
  assert.deepEqual(a.slice(0, 6), ["run", "--rm", "--name", "c1", "--network", "host"]);
  assert.ok(a.includes(`${files.configDir}:${CONTAINER_CONFIG_DIR}:ro`));
  assert.ok(a.includes(`${files.wasm}:${CONTAINER_WASM}:ro`));
  const image = a.indexOf(DEFAULT_IMAGE);
  assert.deepEqual(a.slice(image + 1), ["envoy", ...envoyArgs(`${CONTAINER_CONFIG_DIR}/envoy.json`)]);
  const bin = envoyCommand({ kind: "binary", bin: "/opt/envoy" }, envoyArgs, files, "c1");
  assert.deepEqual(bin, { command: "/opt/envoy", args: envoyArgs(files.configFile) });
});

test("test:envoy bootstrap for Docker: the shipped override_host file, every Wasm filter loading the mounted module", () => {
  const rt = { kind: "docker", docker: "docker", image: DEFAULT_IMAGE } as const;
  const endpoints = [9, 10, 11].map((port) => ({ address: "127.0.0.1", port }));
  const config = localEnvoyConfig({
    port: 1,
    controlPort: 2,
    adminPort: 3,
    wasm: wasmPathFor(rt, "/repo/build/filter.wasm"),
    pluginConfig: { controlToken: "t" },
    endpoints,
  });
  const f = OVERRIDE_HOST_BOOTSTRAP;
  const listeners = list(f, (config.static_resources as Obj).listeners, "listeners");
  const plugins = listeners.flatMap((l) =>
    connectionManagers(f, l).flatMap((m) => wasmPluginConfigs(f, m).map((c) => ({ l: l.name, c }))),
  );
  assert.equal(plugins.length, 2);
  for (const { c } of plugins) {
    const code = ((c.vm_config as Obj).code as Obj).local as Obj;
    assert.equal(code.filename, CONTAINER_WASM);
  }
  const control = plugins.find((p) => p.l === "control")!;
  const data = plugins.find((p) => p.l === "data")!;
  const cfg = (p: { c: Obj }) => JSON.parse(String((p.c.configuration as Obj).value)) as Obj;
  assert.equal(cfg(control).controlToken, "t");
  assert.equal(cfg(data).controlToken, undefined, "the data listener never gets the token");
  assert.equal(cfg(data).healthPath, "/epp/healthz", "the checks use the shipped health path");
  assert.equal(
    wasmPathFor({ kind: "binary", bin: "/x" }, "/repo/build/filter.wasm"),
    "/repo/build/filter.wasm",
  );
});

test("test:envoy snapshot: strict models, and under override_host the dead port is the least loaded pick", () => {
  const t: CheckTarget = {
    cluster: "override_host",
    dataUrl: "",
    controlUrl: "",
    controlPath: "/epp/v1/snapshot",
    healthPath: "/epp/healthz",
    token: "t",
    pool: { namespace: "default", name: "local-pool" },
    failureMode: "FailOpen",
    live: [8001, 8002],
    dead: 8009,
  };
  const s = decodeSnapshot(encodeSnapshot(checkSnapshot(t, 1n)));
  assert.deepEqual(
    s.endpoints.map((e) => e.port),
    [8009, 8001, 8002],
  );
  assert.ok(s.endpoints[0].waiting < s.endpoints[1].waiting, "the dead port is the pick");
  assert.equal(s.pool.strictModels, true);
  assert.deepEqual(
    s.models.map((m) => m.name),
    [MODEL],
  );
  const dst = checkSnapshot({ ...t, cluster: "original_dst" }, 1n);
  assert.deepEqual(
    dst.endpoints.map((e) => e.port),
    [8001, 8002],
  );
});

function runCommand(args: string[], path: string) {
  return spawnSync(process.execPath, ["--import", "tsx", "scripts/test-envoy.ts", ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    env: { ...process.env, PATH: path, ENVOY_BIN: "" },
    timeout: 60_000,
  });
}

test("npm run test:envoy without Docker or Envoy: says what is missing and exits 1; with --allow-skip exits 0", () => {
  const empty = binDir([]);
  try {
    const failed = runCommand([], empty);
    assert.equal(failed.status, 1, failed.stderr);
    assert.match(failed.stdout, /^test:envoy cannot run: no docker or envoy found: install Docker/);
    const skip = runCommand(["--allow-skip"], empty);
    assert.equal(skip.status, 0, skip.stderr);
    assert.match(skip.stdout, /test:envoy skipped: no docker or envoy found/);
    const bad = runCommand(["--cluster", "eds"], empty);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--cluster must be override_host or original_dst/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test("package.json: test:envoy runs the script, and npm test does not run it", () => {
  const pkg = JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
    scripts: Record<string, string>;
  };
  assert.equal(pkg.scripts["test:envoy"], "node --import tsx scripts/test-envoy.ts");
  const reachable = new Set<string>();
  const visit = (name: string) => {
    if (reachable.has(name)) return;
    reachable.add(name);
    for (const m of (pkg.scripts[name] ?? "").matchAll(/npm run ([\w:-]+)/g)) visit(m[1]);
  };
  visit("test");
  assert.ok(!reachable.has("test:envoy"));
  for (const s of reachable) assert.ok(!(pkg.scripts[s] ?? "").includes("test-envoy"), s);
});

test("test:envoy's checks pass against the local gateway (our model of Envoy) on both shipped bootstraps", async () => {
  const base = await freeConsecutivePorts(2);
  const sims = await startSimCluster({ pods: 2, basePort: base, host: "127.0.0.1", timeScale: 10 });
  const live = [base, base + 1];
  const lines: string[] = [];
  try {
    for (const cluster of ["override_host", "original_dst"] as const) {
      const file = cluster === "override_host" ? OVERRIDE_HOST_BOOTSTRAP : ORIGINAL_DST_BOOTSTRAP;
      const shipped = readShippedEnvoy(file);
      const plugin = (n: string) => shipped.listeners.find((l) => l.name === n)!.pluginConfig;
      const [data, control] = await freePorts(2);
      const dead = await freePort();
      const gw = new Gateway(
        normalizeConfig(
          gatewayConfigFromEnvoy(file, {
            listeners: { data: { port: data }, control: { port: control } },
            wasm: join(repoRoot, "build/filter.wasm"),
            endpoints: cluster === "override_host" ? [dead, ...live].map((p) => `127.0.0.1:${p}`) : undefined,
            pluginConfig: { controlToken: "tok" },
          }),
        ),
      );
      await gw.start();
      try {
        await runChecks(
          {
            cluster,
            dataUrl: `http://127.0.0.1:${data}`,
            controlUrl: `http://127.0.0.1:${control}`,
            controlPath: String(plugin("control").controlPath),
            healthPath: String(plugin("data").healthPath),
            token: "tok",
            pool: plugin("control").pool as CheckTarget["pool"],
            failureMode: String(plugin("data").failureMode),
            live,
            dead,
          },
          (l) => lines.push(`${cluster}${l}`),
        );
      } finally {
        await gw.stop();
      }
    }
  } finally {
    await sims.close();
  }
  assert.equal(lines.length, 8 + 7, lines.join("\n"));
  assert.ok(lines.some((l) => l.includes("override_host fallback")));
});
