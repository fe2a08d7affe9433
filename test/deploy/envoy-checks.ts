// Static checks for our Envoy bootstrap configs: the Wasm filter wiring, the shared vm_id between the data and
// control listeners, the destination header, and clusters that routes name.
import { at, isObj, objs, str, type Json } from "./json-path.ts";

export const DESTINATION_HEADER = "x-gateway-destination-endpoint";
export const ROOT_ID = "epp";
export const CONTROL_PATH = "/epp/v1/snapshot";

export interface WasmFilter {
  listener: string;
  name: string;
  rootId: string;
  vmId: string;
  runtime: string;
  code: string;
  failOpen: unknown;
  allowOnHeadersStopIteration: unknown;
  /** The plugin configuration JSON, parsed; undefined when it is not valid JSON. */
  plugin: Json | undefined;
  pluginError?: string;
}

export interface ListenerInfo {
  name: string;
  address: string;
  port: number;
  hcm: Json[];
  wasm: WasmFilter[];
  httpFilterNames: string[];
}

function hcmConfigs(listener: Json): Json[] {
  return objs(listener.filter_chains)
    .flatMap((fc) => objs(fc.filters))
    .filter((f) => f.name === "envoy.filters.network.http_connection_manager")
    .map((f) => f.typed_config)
    .filter(isObj);
}

function wasmFilter(listener: string, f: Json): WasmFilter {
  const cfg = at(f, "typed_config.config");
  const raw = at(cfg, "configuration.value");
  let plugin: Json | undefined;
  let pluginError: string | undefined;
  try {
    const parsed: unknown = JSON.parse(String(raw));
    if (isObj(parsed)) plugin = parsed;
    else pluginError = "plugin configuration is not a JSON object";
  } catch (e) {
    pluginError = `plugin configuration is not JSON: ${(e as Error).message}`;
  }
  return {
    listener,
    name: String(at(cfg, "name")),
    rootId: String(at(cfg, "root_id")),
    vmId: String(at(cfg, "vm_config.vm_id")),
    runtime: String(at(cfg, "vm_config.runtime")),
    code: String(at(cfg, "vm_config.code.local.filename")),
    failOpen: at(cfg, "fail_open"),
    allowOnHeadersStopIteration: at(cfg, "allow_on_headers_stop_iteration"),
    plugin,
    pluginError,
  };
}

export function listeners(config: unknown): ListenerInfo[] {
  return objs(at(config, "static_resources.listeners")).map((l) => {
    const name = String(l.name);
    const hcm = hcmConfigs(l);
    const httpFilters = hcm.flatMap((h) => objs(h.http_filters));
    return {
      name,
      address: String(at(l, "address.socket_address.address")),
      port: Number(at(l, "address.socket_address.port_value")),
      hcm,
      httpFilterNames: httpFilters.map((f) => String(f.name)),
      wasm: httpFilters.filter((f) => f.name === "envoy.filters.http.wasm").map((f) => wasmFilter(name, f)),
    };
  });
}

/** The loopback listener that carries the control path. */
export function controlListener(config: unknown): ListenerInfo | undefined {
  return listeners(config).find((l) => l.address === "127.0.0.1" && l.wasm.length > 0);
}

export function dataListeners(config: unknown): ListenerInfo[] {
  return listeners(config).filter((l) => l.address !== "127.0.0.1" && l.wasm.length > 0);
}

export function checkPluginConfig(w: WasmFilter): string[] {
  const where = `listener ${w.listener} filter ${w.name}`;
  if (!w.plugin) return [`${where}: ${w.pluginError}`];
  const p = w.plugin;
  const problems: string[] = [];
  if (!str(at(p, "pool.namespace")) || !str(at(p, "pool.name")))
    problems.push(`${where}: plugin config needs pool.namespace and pool.name`);
  if (!str(p.controlToken)) problems.push(`${where}: plugin config needs a non-empty controlToken`);
  if (p.controlPath !== CONTROL_PATH) problems.push(`${where}: controlPath must be ${CONTROL_PATH}`);
  if (p.failureMode !== "FailClose" && p.failureMode !== "FailOpen")
    problems.push(`${where}: failureMode must be FailClose or FailOpen`);
  if (p.staleAfterMs !== undefined && !(typeof p.staleAfterMs === "number" && p.staleAfterMs > 0))
    problems.push(`${where}: staleAfterMs must be a positive number`);
  return problems;
}

function routes(l: ListenerInfo): Json[] {
  return l.hcm.flatMap((h) => objs(at(h, "route_config.virtual_hosts")).flatMap((vh) => objs(vh.routes)));
}

function checkDataCluster(cluster: Json, name: string): string[] {
  if (cluster.type === "ORIGINAL_DST") {
    const problems: string[] = [];
    if (cluster.lb_policy !== "CLUSTER_PROVIDED")
      problems.push(`cluster ${name}: ORIGINAL_DST needs CLUSTER_PROVIDED`);
    if (cluster.load_assignment !== undefined)
      problems.push(`cluster ${name}: ORIGINAL_DST must not list endpoints`);
    if (at(cluster, "original_dst_lb_config.use_http_header") !== true)
      problems.push(`cluster ${name}: original_dst_lb_config.use_http_header must be true`);
    if (at(cluster, "original_dst_lb_config.http_header_name") !== DESTINATION_HEADER)
      problems.push(`cluster ${name}: http_header_name must be ${DESTINATION_HEADER}`);
    return problems;
  }
  const override = objs(at(cluster, "load_balancing_policy.policies"))
    .map((p) => p.typed_extension_config)
    .filter(isObj)
    .find((t) => t.name === "envoy.load_balancing_policies.override_host");
  if (!override) return [`cluster ${name}: neither ORIGINAL_DST nor the override_host policy`];
  const problems: string[] = [];
  const headers = objs(at(override, "typed_config.override_host_sources")).map((s) => s.header);
  if (!headers.includes(DESTINATION_HEADER))
    problems.push(`cluster ${name}: override_host must read ${DESTINATION_HEADER}`);
  if (objs(at(override, "typed_config.fallback_policy.policies")).length === 0)
    problems.push(`cluster ${name}: override_host needs a fallback_policy`);
  if (cluster.type !== "STATIC" && cluster.type !== "EDS")
    problems.push(`cluster ${name}: override_host needs a STATIC or EDS cluster`);
  return problems;
}

/** All the rules one of our Envoy bootstraps must follow. */
export function checkEnvoyConfig(config: unknown): string[] {
  const problems: string[] = [];
  if (at(config, "admin.address.socket_address.address") !== "127.0.0.1")
    problems.push("admin must listen on 127.0.0.1");
  const all = listeners(config);
  const control = controlListener(config);
  const data = dataListeners(config);
  if (!control) problems.push("no loopback control listener with the Wasm filter");
  if (data.length === 0) problems.push("no data listener with the Wasm filter");
  const filters = all.flatMap((l) => l.wasm);
  const vmIds = new Set(filters.map((w) => w.vmId));
  if (vmIds.size !== 1)
    problems.push(`data and control listeners must share one vm_id, found ${[...vmIds].join(", ")}`);
  if (new Set(filters.map((w) => w.code)).size !== 1)
    problems.push("data and control listeners must load the same module");
  for (const w of filters) {
    if (w.rootId !== ROOT_ID) problems.push(`listener ${w.listener}: root_id must be ${ROOT_ID}`);
    if (w.runtime !== "envoy.wasm.runtime.v8") problems.push(`listener ${w.listener}: runtime must be V8`);
    if (w.failOpen !== false) problems.push(`listener ${w.listener}: fail_open must be false`);
    if (w.allowOnHeadersStopIteration !== true)
      problems.push(`listener ${w.listener}: allow_on_headers_stop_iteration must be true`);
    problems.push(...checkPluginConfig(w));
  }
  const tokens = new Set(filters.map((w) => String(w.plugin?.controlToken)));
  if (tokens.size !== 1) problems.push("data and control listeners must use the same controlToken");
  const pools = new Set(filters.map((w) => JSON.stringify(w.plugin?.pool)));
  if (pools.size !== 1) problems.push("data and control listeners must name the same pool");
  for (const l of all) {
    const wasmAt = l.httpFilterNames.indexOf("envoy.filters.http.wasm");
    const routerAt = l.httpFilterNames.indexOf("envoy.filters.http.router");
    if (wasmAt >= 0 && routerAt !== l.httpFilterNames.length - 1)
      problems.push(`listener ${l.name}: the router must be the last HTTP filter`);
  }

  const clusters = new Map(objs(at(config, "static_resources.clusters")).map((c) => [String(c.name), c]));
  for (const l of data) {
    const rs = routes(l);
    if (rs.length === 0) problems.push(`listener ${l.name}: no routes`);
    for (const r of rs) {
      const name = str(at(r, "route.cluster"));
      if (!name) {
        problems.push(`listener ${l.name}: a data route has no cluster`);
        continue;
      }
      const cluster = clusters.get(name);
      if (!cluster) {
        problems.push(`listener ${l.name}: route names unknown cluster ${name}`);
        continue;
      }
      problems.push(...checkDataCluster(cluster, name));
      const retryOn = String(at(r, "route.retry_policy.retry_on") ?? "");
      if (!retryOn.split(",").includes("connect-failure"))
        problems.push(`listener ${l.name}: route needs a retry_policy with connect-failure`);
    }
  }
  for (const l of all)
    for (const r of routes(l)) {
      const name = str(at(r, "route.cluster"));
      if (name && !clusters.has(name))
        problems.push(`listener ${l.name}: route names unknown cluster ${name}`);
    }
  return [...new Set(problems)];
}
