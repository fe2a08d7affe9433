// `npm start -- --envoy`: the real Envoy in place of the local gateway. The bootstrap is envoy/envoy.yaml (one
// source of truth for listeners, filter wiring, allow_on_headers_stop_iteration and the ORIGINAL_DST cluster) with
// the local stack's ports, the absolute module path and the same plugin configuration the local gateway gets.
import { accessSync, constants, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";

const ROOT = new URL("../..", import.meta.url).pathname;
export const ENVOY_TEMPLATE = join(ROOT, "envoy/envoy.yaml");

export interface LocalEnvoyOptions {
  /** Data listener port (the gateway port). */
  port: number;
  /** Loopback control listener port the sidecar pushes snapshots to. */
  controlPort: number;
  /** Loopback admin port (readiness: GET /ready). */
  adminPort: number;
  /** Path of filter.wasm; made absolute. */
  wasm: string;
  /** Plugin configuration fields that override envoy/envoy.yaml's (pool, controlToken, failureMode, …). */
  pluginConfig: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

function obj(v: unknown, what: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw new Error(`envoy/envoy.yaml: ${what} missing`);
  return v as Obj;
}

function list(v: unknown, what: string): Obj[] {
  if (!Array.isArray(v)) throw new Error(`envoy/envoy.yaml: ${what} missing`);
  return v.map((x, i) => obj(x, `${what}[${i}]`));
}

/** The Wasm filters' PluginConfig objects of one listener. */
function wasmConfigs(listener: Obj): Obj[] {
  return list(listener.filter_chains, "filter_chains")
    .flatMap((fc) => list(fc.filters, "filters"))
    .filter((f) => f.name === "envoy.filters.network.http_connection_manager")
    .flatMap((f) => list(obj(f.typed_config, "hcm typed_config").http_filters, "http_filters"))
    .filter((f) => f.name === "envoy.filters.http.wasm")
    .map((f) => obj(obj(f.typed_config, "wasm typed_config").config, "wasm config"));
}

/** envoy/envoy.yaml with the local stack's ports, module path and plugin configuration. */
export function localEnvoyConfig(o: LocalEnvoyOptions): Obj {
  const config = obj(parseYaml(readFileSync(ENVOY_TEMPLATE, "utf8")), "document");
  const admin = obj(obj(obj(config.admin, "admin").address, "admin.address").socket_address, "admin socket");
  admin.port_value = o.adminPort;
  const listeners = list(obj(config.static_resources, "static_resources").listeners, "listeners");
  const ports: Record<string, number> = { data: o.port, control: o.controlPort };
  for (const name of Object.keys(ports)) {
    const l = listeners.find((x) => x.name === name);
    if (!l) throw new Error(`envoy/envoy.yaml: no listener named ${name}`);
    obj(obj(l.address, "listener address").socket_address, "listener socket").port_value = ports[name];
  }
  const wasm = resolve(o.wasm);
  for (const l of listeners)
    for (const cfg of wasmConfigs(l)) {
      const code = obj(obj(obj(cfg.vm_config, "vm_config").code, "code").local, "code.local");
      code.filename = wasm;
      const configuration = obj(cfg.configuration, "configuration");
      const plugin = JSON.parse(String(configuration.value)) as Obj;
      configuration.value = JSON.stringify({ ...plugin, ...o.pluginConfig });
    }
  return config;
}

/** Writes the bootstrap as JSON (Envoy reads .json files as JSON) into a new temporary directory. */
export function writeLocalEnvoyConfig(o: LocalEnvoyOptions): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "epp-envoy-"));
  const file = join(dir, "envoy.json");
  writeFileSync(file, JSON.stringify(localEnvoyConfig(o), null, 2));
  return { dir, file };
}

export function envoyArgs(configFile: string): string[] {
  // No hot restart: its shared memory (base id 0) would clash with any other Envoy running on this machine.
  return ["-c", configFile, "--log-level", "warn", "--disable-hot-restart"];
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * The Envoy binary to run: `explicit` (from --envoy-bin) if given, else the first `envoy` on PATH.
 * Throws a one-line explanation when there is none.
 */
export function findEnvoy(explicit: string | undefined, path = process.env.PATH ?? ""): string {
  if (explicit !== undefined) {
    const bin = resolve(explicit);
    if (!isExecutableFile(bin)) throw new Error(`--envoy-bin ${explicit} is not an executable file`);
    return bin;
  }
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const bin = join(dir, "envoy");
    if (isExecutableFile(bin)) return bin;
  }
  throw new Error(
    "--envoy needs an envoy binary (>= 1.35) but none is on PATH: install Envoy " +
      "(https://www.envoyproxy.io/docs/envoy/latest/start/install) or pass --envoy-bin /path/to/envoy; " +
      "without --envoy, npm start runs the built-in gateway",
  );
}
