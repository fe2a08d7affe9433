// Reading our shipped Envoy bootstraps (envoy/envoy.yaml, envoy/envoy-override-host.yaml) as plain objects:
// where they are, which plugin configuration fields belong to whom, and walking a listener to its HTTP
// connection manager and Wasm filters with errors that name the file and the missing piece. Shared by the
// local gateway's configuration (gateway-config.ts) and `npm start -- --envoy` (envoy.ts).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";

const ROOT = new URL("../..", import.meta.url).pathname;
export const ORIGINAL_DST_BOOTSTRAP = join(ROOT, "envoy/envoy.yaml");
export const OVERRIDE_HOST_BOOTSTRAP = join(ROOT, "envoy/envoy-override-host.yaml");

/** Plugin configuration fields that enable the control path (only the control listener's config has them). */
export const CONTROL_FIELDS = ["controlPath", "controlToken", "controlTokenEnv"];
/** Fields the bootstrap's cluster type decides (ORIGINAL_DST parses one ip:port; override_host a list). */
export const DESTINATION_FIELDS = ["destinationMode", "maxFallbacks"];

export type Obj = Record<string, unknown>;

export function fail(file: string, what: string): never {
  throw new Error(`${file}: ${what}`);
}

export function obj(file: string, v: unknown, what: string): Obj {
  if (typeof v !== "object" || v === null || Array.isArray(v)) fail(file, `${what} missing`);
  return v as Obj;
}

export function list(file: string, v: unknown, what: string): Obj[] {
  if (!Array.isArray(v)) fail(file, `${what} missing`);
  return v.map((x, i) => obj(file, x, `${what}[${i}]`));
}

/** The bootstrap document as an object. */
export function readBootstrap(file: string): Obj {
  return obj(file, parseYaml(readFileSync(file, "utf8")), "document");
}

/** The typed_config of each HTTP connection manager in a listener's filter chains. */
export function connectionManagers(file: string, listener: Obj): Obj[] {
  return list(file, listener.filter_chains, "filter_chains")
    .flatMap((fc) => list(file, fc.filters, "filters"))
    .filter((f) => f.name === "envoy.filters.network.http_connection_manager")
    .map((f) => obj(file, f.typed_config, "hcm typed_config"));
}

/** The Wasm filters' PluginConfig objects (`typed_config.config`) of one connection manager. */
export function wasmPluginConfigs(file: string, manager: Obj): Obj[] {
  return list(file, manager.http_filters, "http_filters")
    .filter((f) => f.name === "envoy.filters.http.wasm")
    .map((f) => obj(file, obj(file, f.typed_config, "wasm typed_config").config, "wasm config"));
}
