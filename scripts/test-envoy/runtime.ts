// `npm run test:envoy`: its flags, and which Envoy it runs — a binary (--envoy-bin, ENVOY_BIN, or `envoy` on
// PATH) or the official image through Docker — or why it cannot run one. No Envoy is an answer, not an error:
// the command says what is missing and fails, unless --allow-skip makes a missing Envoy a skip.
import { spawnSync } from "node:child_process";
import { delimiter, join } from "node:path";
import { accessSync, constants } from "node:fs";
import { parseArgs } from "node:util";
import { findEnvoy } from "../local-stack/envoy.ts";

/** The image Docker runs: the oldest Envoy line we support (override_host exists from 1.35), patched. */
export const DEFAULT_IMAGE = "envoyproxy/envoy:v1.35-latest";
/** Shipped bootstraps the command runs, by their cluster type. */
export const CLUSTERS = ["override_host", "original_dst"] as const;
export type ClusterKind = (typeof CLUSTERS)[number];

export const USAGE = `usage: npm run test:envoy -- [flags]

Runs build/filter.wasm in a real Envoy with the shipped bootstraps (envoy/envoy-override-host.yaml and
envoy/envoy.yaml), the simulator and the sidecar on this machine, and checks routing, the served header, an
unknown model's 404, the health path, a snapshot push and the override_host fallback.

  --envoy-bin PATH   the Envoy binary to run (also ENVOY_BIN); otherwise \`envoy\` on PATH, then Docker
  --docker           use Docker even when an envoy binary is on PATH
  --image IMAGE      the Envoy image for Docker (default ${DEFAULT_IMAGE}; Linux host networking)
  --cluster TYPE     override_host or original_dst (default: both, one after the other)
  --allow-skip       exit 0 when no Envoy can be run (default: say what is missing and exit 1)`;

export interface TestEnvoyOptions {
  help: boolean;
  require: boolean;
  envoyBin?: string;
  docker: boolean;
  image: string;
  clusters: ClusterKind[];
}

export function parseTestEnvoyArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): TestEnvoyOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      help: { type: "boolean", short: "h", default: false },
      "allow-skip": { type: "boolean", default: false },
      "envoy-bin": { type: "string" },
      docker: { type: "boolean", default: false },
      image: { type: "string", default: DEFAULT_IMAGE },
      cluster: { type: "string" },
    },
  });
  const cluster = values.cluster;
  if (cluster !== undefined && !(CLUSTERS as readonly string[]).includes(cluster))
    throw new Error(`--cluster must be ${CLUSTERS.join(" or ")}, got ${cluster}`);
  const envoyBin = values["envoy-bin"] ?? (env.ENVOY_BIN || undefined);
  if (values.docker && envoyBin !== undefined)
    throw new Error("--docker and --envoy-bin (or ENVOY_BIN) exclude each other");
  if (values.image === "") throw new Error("--image must not be empty");
  return {
    help: values.help!,
    require: !values["allow-skip"]!,
    envoyBin,
    docker: values.docker!,
    image: values.image!,
    clusters: cluster === undefined ? [...CLUSTERS] : [cluster as ClusterKind],
  };
}

export type EnvoyRuntime =
  | { kind: "binary"; bin: string }
  | { kind: "docker"; docker: string; image: string }
  | { kind: "none"; reason: string };

/** Where the module is inside the container (the rendered bootstrap names this path). */
export const CONTAINER_WASM = "/epp/build/filter.wasm";
export const CONTAINER_CONFIG_DIR = "/epp/config";

function onPath(name: string, path: string): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const bin = join(dir, name);
    try {
      accessSync(bin, constants.X_OK);
      return bin;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** `docker version` reaches the daemon: the CLI alone cannot run a container. */
export function dockerDaemonAnswers(docker: string): { ok: true } | { ok: false; why: string } {
  const r = spawnSync(docker, ["version", "--format", "{{.Server.Version}}"], {
    encoding: "utf8",
    timeout: 15_000,
  });
  if (r.status === 0) return { ok: true };
  const why = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split("\n")[0];
  return { ok: false, why };
}

export const INSTALL_HINT =
  "install Docker (https://docs.docker.com/engine/install/) or Envoy >= 1.35 " +
  "(https://www.envoyproxy.io/docs/envoy/latest/start/install), or pass --envoy-bin PATH / ENVOY_BIN";

/**
 * The Envoy to run: an explicit binary (must exist), else `envoy` on PATH unless --docker, else Docker when
 * its daemon answers. `kind: "none"` carries the sentence to print.
 */
export function findRuntime(
  o: Pick<TestEnvoyOptions, "envoyBin" | "docker" | "image">,
  path = process.env.PATH ?? "",
  daemon = dockerDaemonAnswers,
): EnvoyRuntime {
  if (o.envoyBin !== undefined) return { kind: "binary", bin: findEnvoy(o.envoyBin, path) };
  if (!o.docker) {
    try {
      return { kind: "binary", bin: findEnvoy(undefined, path) };
    } catch {
      // no envoy on PATH: try Docker
    }
  }
  const docker = onPath("docker", path);
  if (docker === undefined)
    return { kind: "none", reason: `no ${o.docker ? "docker" : "docker or envoy"} found: ${INSTALL_HINT}` };
  const d = daemon(docker);
  if (!d.ok)
    return {
      kind: "none",
      reason: `docker found but its daemon does not answer (${d.why}): ${INSTALL_HINT}`,
    };
  return { kind: "docker", docker, image: o.image };
}

/** The module path the bootstrap must name: the host file, or where Docker mounts it. */
export function wasmPathFor(rt: EnvoyRuntime, hostWasm: string): string {
  return rt.kind === "docker" ? CONTAINER_WASM : hostWasm;
}

/**
 * The command that runs Envoy on `configFile` (a file in `configDir`). Docker uses the host's network, so the
 * bootstrap's loopback addresses (simulated pods, control listener, admin) mean the same inside and out; that
 * needs Linux, or Docker Desktop with host networking turned on.
 */
export function envoyCommand(
  rt: Exclude<EnvoyRuntime, { kind: "none" }>,
  envoyArgs: (configFile: string) => string[],
  files: { configDir: string; configFile: string; wasm: string },
  containerName: string,
): { command: string; args: string[] } {
  if (rt.kind === "binary") return { command: rt.bin, args: envoyArgs(files.configFile) };
  const inContainer = `${CONTAINER_CONFIG_DIR}/${files.configFile.slice(files.configDir.length + 1)}`;
  return {
    command: rt.docker,
    args: [
      "run",
      "--rm",
      "--name",
      containerName,
      "--network",
      "host",
      "-v",
      `${files.configDir}:${CONTAINER_CONFIG_DIR}:ro`,
      "-v",
      `${files.wasm}:${CONTAINER_WASM}:ro`,
      rt.image,
      "envoy",
      ...envoyArgs(inContainer),
    ],
  };
}
