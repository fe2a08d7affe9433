// `npm start -- --envoy`: the real Envoy in place of the local gateway. The bootstrap is envoy/envoy.yaml (one
// source of truth for listeners, filter wiring, allow_on_headers_stop_iteration and the ORIGINAL_DST cluster) with
// the local stack's ports, the absolute module path and the same plugin configuration the local gateway gets; or,
// given the pods' addresses, envoy/envoy-override-host.yaml with those addresses as its STATIC endpoints.
// Only the control listener's plugin configuration keeps the control path and the token.
import { accessSync, constants, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import {
  connectionManagers,
  CONTROL_FIELDS,
  DESTINATION_FIELDS,
  list,
  obj as objIn,
  type Obj,
  ORIGINAL_DST_BOOTSTRAP,
  OVERRIDE_HOST_BOOTSTRAP,
  readBootstrap,
  wasmPluginConfigs,
} from "./envoy-bootstrap.ts";

export interface LocalEnvoyOptions {
  /** Data listener port (the gateway port). */
  port: number;
  /** Loopback control listener port the sidecar pushes snapshots to. */
  controlPort: number;
  /** Loopback admin port (readiness: GET /ready). */
  adminPort: number;
  /** Path of filter.wasm; made absolute. */
  wasm: string;
  /** Plugin configuration fields that override the template's (pool, controlToken, failureMode, …). */
  pluginConfig: Record<string, unknown>;
  /**
   * The pool's pods as ip:port. Given, the bootstrap is envoy-override-host.yaml with these as its STATIC
   * endpoints (retries walk the filter's fallback list); absent, envoy.yaml's ORIGINAL_DST cluster.
   */
  endpoints?: { address: string; port: number }[];
}

function withoutFields(o: Obj, fields: string[]): Obj {
  return Object.fromEntries(Object.entries(o).filter(([k]) => !fields.includes(k)));
}

/** Replaces the single STATIC cluster's endpoints of envoy-override-host.yaml. */
function setEndpoints(config: Obj, endpoints: { address: string; port: number }[]): void {
  const file = OVERRIDE_HOST_BOOTSTRAP;
  if (endpoints.length === 0) throw new Error("endpoints: at least one pod address is needed");
  const clusters = list(file, objIn(file, config.static_resources, "static_resources").clusters, "clusters");
  const cluster = clusters.find((c) => c.type === "STATIC");
  if (!cluster) throw new Error(`${file}: no STATIC cluster`);
  const assignment = objIn(file, cluster.load_assignment, "load_assignment");
  assignment.endpoints = [
    {
      lb_endpoints: endpoints.map((e) => ({
        endpoint: { address: { socket_address: { address: e.address, port_value: e.port } } },
      })),
    },
  ];
}

/** The template (envoy.yaml, or envoy-override-host.yaml with endpoints) with the local ports, module and plugin config. */
export function localEnvoyConfig(o: LocalEnvoyOptions): Obj {
  const template = o.endpoints ? OVERRIDE_HOST_BOOTSTRAP : ORIGINAL_DST_BOOTSTRAP;
  const obj = (v: unknown, what: string) => objIn(template, v, what);
  const config = readBootstrap(template);
  if (o.endpoints) setEndpoints(config, o.endpoints);
  const overrides = Object.keys(o.pluginConfig).filter((k) => DESTINATION_FIELDS.includes(k));
  if (overrides.length > 0)
    throw new Error(
      `pluginConfig must not set ${overrides.join(", ")}: the cluster type decides (pass endpoints for override_host)`,
    );
  const admin = obj(obj(obj(config.admin, "admin").address, "admin.address").socket_address, "admin socket");
  admin.port_value = o.adminPort;
  const listeners = list(template, obj(config.static_resources, "static_resources").listeners, "listeners");
  const ports: Record<string, number> = { data: o.port, control: o.controlPort };
  for (const name of Object.keys(ports)) {
    const l = listeners.find((x) => x.name === name);
    if (!l) throw new Error(`${template}: no listener named ${name}`);
    obj(obj(l.address, "listener address").socket_address, "listener socket").port_value = ports[name];
  }
  const wasm = resolve(o.wasm);
  for (const l of listeners)
    for (const cfg of connectionManagers(template, l).flatMap((m) => wasmPluginConfigs(template, m))) {
      const code = obj(obj(obj(cfg.vm_config, "vm_config").code, "code").local, "code.local");
      code.filename = wasm;
      const configuration = obj(cfg.configuration, "configuration");
      const plugin = { ...(JSON.parse(String(configuration.value)) as Obj), ...o.pluginConfig };
      // The public data listener must not accept snapshots: its plugin gets no control path and no token.
      configuration.value = JSON.stringify(
        l.name === "control" ? plugin : withoutFields(plugin, CONTROL_FIELDS),
      );
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
