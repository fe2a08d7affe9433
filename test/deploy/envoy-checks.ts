// Static checks for our Envoy bootstrap configs: the Wasm filter wiring, the shared vm_id between the data and
// control listeners, the control path only on the loopback listener, and a destination shape the route's cluster
// can parse. The destination and retry rules are shared with the Envoy Gateway and Istio checks.
import { at, isObj, objs, str, type Json } from "./json-path.ts";

export const DESTINATION_HEADER = "x-gateway-destination-endpoint";
export const ROOT_ID = "epp";
export const CONTROL_PATH = "/epp/v1/snapshot";
/** The filter's maxFallbacks in override_host mode when unset (assembly/config.ts DEFAULT_OVERRIDE_HOST_FALLBACKS). */
export const DEFAULT_MAX_FALLBACKS = 3;
/** Plugin configuration fields that enable the control path; only a control listener may carry them. */
export const CONTROL_FIELDS = ["controlPath", "controlToken", "controlTokenEnv"];
/** Retry triggers for failures before the pod received the request (envoyproxy/envoy#10007 for why not "reset"). */
export const RETRY_TRIGGERS = ["connect-failure", "reset-before-request"];

export type Role = "data" | "control";
/**
 * How the cluster behind a route reads the destination header: ORIGINAL_DST parses the whole value as one ip:port
 * (envoyproxy/envoy source/extensions/clusters/original_dst/original_dst_cluster.cc, requestOverrideHost);
 * override_host splits it on "," and gives each attempt the next entry
 * (source/extensions/load_balancing_policies/override_host/load_balancer.cc).
 */
export type ClusterKind = "original_dst" | "override_host";

export interface RetryInfo {
  retryOn: string[];
  /** Retries after the first attempt; undefined when the policy leaves it to the default. */
  numRetries: number | undefined;
}

export interface WasmFilter {
  listener: string;
  name: string;
  rootId: string;
  vmId: string;
  runtime: string;
  code: string;
  failOpen: unknown;
  failurePolicy: unknown;
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

/** Parses a plugin configuration string into an object, or says why it is not one. */
export function parsePlugin(raw: unknown): { plugin?: Json; error?: string } {
  try {
    const parsed: unknown = JSON.parse(String(raw));
    return isObj(parsed) ? { plugin: parsed } : { error: "plugin configuration is not a JSON object" };
  } catch (e) {
    return { error: `plugin configuration is not JSON: ${(e as Error).message}` };
  }
}

/** A WasmFilter record from an envoy.extensions.filters.http.wasm.v3.Wasm `config` (PluginConfig). */
export function wasmFromPluginConfig(listener: string, cfg: unknown): WasmFilter {
  const { plugin, error } = parsePlugin(at(cfg, "configuration.value"));
  return {
    listener,
    name: String(at(cfg, "name")),
    rootId: String(at(cfg, "root_id")),
    vmId: String(at(cfg, "vm_config.vm_id")),
    runtime: String(at(cfg, "vm_config.runtime")),
    code: String(at(cfg, "vm_config.code.local.filename") ?? at(cfg, "vm_config.code.remote.http_uri.uri")),
    failOpen: at(cfg, "fail_open"),
    failurePolicy: at(cfg, "failure_policy"),
    allowOnHeadersStopIteration: at(cfg, "allow_on_headers_stop_iteration"),
    plugin,
    pluginError: error,
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
      wasm: httpFilters
        .filter((f) => f.name === "envoy.filters.http.wasm")
        .map((f) => wasmFromPluginConfig(name, at(f, "typed_config.config"))),
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

/** An explicit maxFallbacks above 0 (in original_dst mode the filter ignores an absent one). */
function hasFallbacks(plugin: Json): boolean {
  return typeof plugin.maxFallbacks === "number" && plugin.maxFallbacks > 0;
}

/** maxFallbacks as the filter applies it in override_host mode (absent = the default). */
export function effectiveFallbacks(plugin: Json): number {
  return typeof plugin.maxFallbacks === "number" ? plugin.maxFallbacks : DEFAULT_MAX_FALLBACKS;
}

/**
 * The plugin configuration a filter on a `role` listener needs. Every config names its destinationMode; only
 * control listeners enable the control path (a data listener's plugin treats that path as an ordinary request).
 */
export function checkPlugin(
  plugin: Json | undefined,
  error: string | undefined,
  where: string,
  role: Role,
): string[] {
  if (!plugin) return [`${where}: ${error ?? "no plugin configuration"}`];
  const p = plugin;
  const problems: string[] = [];
  if (!str(at(p, "pool.namespace")) || !str(at(p, "pool.name")))
    problems.push(`${where}: plugin config needs pool.namespace and pool.name`);
  if (p.failureMode !== "FailClose" && p.failureMode !== "FailOpen")
    problems.push(`${where}: failureMode must be FailClose or FailOpen`);
  if (p.staleAfterMs !== undefined && !(typeof p.staleAfterMs === "number" && p.staleAfterMs > 0))
    problems.push(`${where}: staleAfterMs must be a positive number`);
  if (p.destinationMode !== "original_dst" && p.destinationMode !== "override_host")
    problems.push(`${where}: destinationMode must be set to original_dst or override_host`);
  if (
    p.maxFallbacks !== undefined &&
    !(Number.isInteger(p.maxFallbacks) && Number(p.maxFallbacks) >= 0 && Number(p.maxFallbacks) <= 64)
  )
    problems.push(`${where}: maxFallbacks must be an integer between 0 and 64`);
  if (p.destinationMode === "original_dst" && hasFallbacks(p))
    problems.push(`${where}: destinationMode original_dst writes one ip:port, so maxFallbacks must be 0`);
  if (p.pull !== undefined) problems.push(...checkPull(p.pull, where));
  if (role === "control") {
    if (p.controlPath !== CONTROL_PATH) problems.push(`${where}: controlPath must be ${CONTROL_PATH}`);
    if (!str(p.controlToken) && !str(p.controlTokenEnv))
      problems.push(`${where}: plugin config needs a non-empty controlToken`);
  } else {
    const control = CONTROL_FIELDS.filter((f) => p[f] !== undefined);
    if (control.length > 0)
      problems.push(
        `${where}: a data listener's plugin config must not enable the control path (found ${control.join(", ")})`,
      );
  }
  return problems;
}

/** Pull mode's settings, with the bounds the filter enforces (assembly/config.ts readPull). */
function checkPull(pull: unknown, where: string): string[] {
  if (!isObj(pull))
    return [`${where}: pull must be an object {cluster, path?, authority?, intervalMs?, timeoutMs?}`];
  const problems: string[] = [];
  if (!str(pull.cluster)) problems.push(`${where}: pull.cluster must name the sidecar's cluster`);
  const ms = (v: unknown, lo: number, hi: number) =>
    v === undefined || (Number.isInteger(v) && Number(v) >= lo && Number(v) <= hi);
  if (!ms(pull.intervalMs, 10, 60_000)) problems.push(`${where}: pull.intervalMs must be 10..60000`);
  if (!ms(pull.timeoutMs, 1, 60_000)) problems.push(`${where}: pull.timeoutMs must be 1..60000`);
  return problems;
}

/** The http_call cluster a plugin pulls snapshots from, if it is in pull mode. */
export function pullCluster(w: WasmFilter): string | undefined {
  const pull = w.plugin?.pull;
  return isObj(pull) && typeof pull.cluster === "string" ? pull.cluster : undefined;
}

export function checkPluginConfig(w: WasmFilter, role: Role): string[] {
  return checkPlugin(w.plugin, w.pluginError, `listener ${w.listener} filter ${w.name}`, role);
}

/** Retry triggers: the two safe ones, never plain "reset". */
export function checkRetryOn(retryOn: string[], where: string): string[] {
  const problems: string[] = [];
  if (retryOn.includes("reset"))
    problems.push(
      `${where}: retry_on "reset" also retries requests the pod already received; use reset-before-request`,
    );
  for (const t of RETRY_TRIGGERS)
    if (!retryOn.includes(t)) problems.push(`${where}: retries must trigger on ${t}`);
  return problems;
}

/**
 * The data plugin's destination shape must be one the cluster can parse: ORIGINAL_DST gets exactly one ip:port;
 * override_host gets the list and a retry policy long enough to walk it.
 */
export function checkDestination(
  kind: ClusterKind,
  plugin: Json | undefined,
  retry: RetryInfo | undefined,
  where: string,
): string[] {
  if (!plugin) return [];
  const problems: string[] = [];
  if (kind === "original_dst") {
    if (plugin.destinationMode !== "original_dst")
      problems.push(
        `${where}: an ORIGINAL_DST cluster parses one ip:port, so destinationMode must be original_dst`,
      );
    if (hasFallbacks(plugin))
      problems.push(`${where}: an ORIGINAL_DST cluster needs maxFallbacks 0 (one ip:port per request)`);
  } else {
    if (plugin.destinationMode !== "override_host")
      problems.push(
        `${where}: an override_host cluster reads a list, so destinationMode must be override_host`,
      );
    if (!retry)
      problems.push(`${where}: override_host needs a retry policy, or the fallback list is never walked`);
    else {
      const retries = retry.numRetries ?? 1;
      const fallbacks = effectiveFallbacks(plugin);
      if (retries < fallbacks)
        problems.push(
          `${where}: num_retries ${retries} < maxFallbacks ${fallbacks}: the fallback list is cut short`,
        );
    }
  }
  if (retry) problems.push(...checkRetryOn(retry.retryOn, where));
  return problems;
}

function routes(l: ListenerInfo): Json[] {
  return l.hcm.flatMap((h) => objs(at(h, "route_config.virtual_hosts")).flatMap((vh) => objs(vh.routes)));
}

/** The override_host policy of a cluster's load_balancing_policy, if any. */
export function overrideHostPolicy(cluster: unknown): Json | undefined {
  return objs(at(cluster, "load_balancing_policy.policies"))
    .map((p) => p.typed_extension_config)
    .filter(isObj)
    .find((t) => t.name === "envoy.load_balancing_policies.override_host");
}

/** Problems with one of our override_host policies (the header it reads, its fallback). */
export function checkOverrideHostPolicy(override: Json, where: string): string[] {
  const problems: string[] = [];
  const headers = objs(at(override, "typed_config.override_host_sources")).map((s) => s.header);
  if (!headers.includes(DESTINATION_HEADER))
    problems.push(`${where}: override_host must read ${DESTINATION_HEADER}`);
  if (objs(at(override, "typed_config.fallback_policy.policies")).length === 0)
    problems.push(`${where}: override_host needs a fallback_policy`);
  return problems;
}

/** Which way a data cluster reads the destination header, plus problems with its configuration. */
function dataCluster(cluster: Json, name: string): { kind?: ClusterKind; problems: string[] } {
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
    return { kind: "original_dst", problems };
  }
  const override = overrideHostPolicy(cluster);
  if (!override) return { problems: [`cluster ${name}: neither ORIGINAL_DST nor the override_host policy`] };
  const problems = checkOverrideHostPolicy(override, `cluster ${name}`);
  if (cluster.type !== "STATIC" && cluster.type !== "EDS")
    problems.push(`cluster ${name}: override_host needs a STATIC or EDS cluster`);
  return { kind: "override_host", problems };
}

/** A route's retry policy as RetryInfo (undefined when it has none). */
export function routeRetry(route: Json): RetryInfo | undefined {
  const policy = at(route, "route.retry_policy");
  if (!isObj(policy)) return undefined;
  const n = policy.num_retries;
  return {
    retryOn: String(policy.retry_on ?? "")
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean),
    numRetries: typeof n === "number" ? n : undefined,
  };
}

/** The Wasm filter settings every copy of our filter needs, and its plugin configuration for `role`. */
export function checkWasmFilter(w: WasmFilter, role: Role): string[] {
  const problems: string[] = [];
  if (w.rootId !== ROOT_ID) problems.push(`listener ${w.listener}: root_id must be ${ROOT_ID}`);
  if (w.runtime !== "envoy.wasm.runtime.v8") problems.push(`listener ${w.listener}: runtime must be V8`);
  if (w.failOpen !== undefined)
    problems.push(`listener ${w.listener}: fail_open is deprecated; set failure_policy instead`);
  if (w.failurePolicy !== "FAIL_CLOSED")
    problems.push(`listener ${w.listener}: failure_policy must be FAIL_CLOSED`);
  if (w.allowOnHeadersStopIteration !== true)
    problems.push(`listener ${w.listener}: allow_on_headers_stop_iteration must be true`);
  problems.push(...checkPluginConfig(w, role));
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
  // Pull mode needs no control listener: every data plugin fetches its snapshots itself.
  const pulling = data.length > 0 && data.every((l) => l.wasm.every((w) => pullCluster(w) !== undefined));
  if (!control && !pulling)
    problems.push("no loopback control listener with the Wasm filter (or pull mode on every data listener)");
  if (data.length === 0) problems.push("no data listener with the Wasm filter");
  const filters = all.flatMap((l) => l.wasm);
  const vmIds = new Set(filters.map((w) => w.vmId));
  if (vmIds.size !== 1)
    problems.push(`data and control listeners must share one vm_id, found ${[...vmIds].join(", ")}`);
  if (new Set(filters.map((w) => w.code)).size !== 1)
    problems.push("data and control listeners must load the same module");
  for (const l of all)
    for (const w of l.wasm)
      problems.push(...checkWasmFilter(w, l.name === control?.name ? "control" : "data"));
  const pools = new Set(filters.map((w) => JSON.stringify(w.plugin?.pool)));
  if (pools.size !== 1) problems.push("data and control listeners must name the same pool");
  const modes = new Set(filters.map((w) => String(w.plugin?.destinationMode)));
  if (modes.size !== 1) problems.push("data and control listeners must name the same destinationMode");
  for (const l of all) {
    const wasmAt = l.httpFilterNames.indexOf("envoy.filters.http.wasm");
    const routerAt = l.httpFilterNames.indexOf("envoy.filters.http.router");
    if (wasmAt >= 0 && routerAt !== l.httpFilterNames.length - 1)
      problems.push(`listener ${l.name}: the router must be the last HTTP filter`);
  }

  const clusters = new Map(objs(at(config, "static_resources.clusters")).map((c) => [String(c.name), c]));
  for (const l of all)
    for (const w of l.wasm) {
      const name = pullCluster(w);
      if (name === undefined) continue;
      // Envoy refuses an http_call to a cluster it does not have (BadArgument): the filter would never pull.
      if (!clusters.has(name))
        problems.push(`listener ${l.name}: pull.cluster ${name} is not a cluster here`);
      else if (routes(l).some((r) => str(at(r, "route.cluster")) === name))
        problems.push(
          `listener ${l.name}: pull.cluster ${name} must not be the cluster the route sends clients to`,
        );
    }
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
      const { kind, problems: clusterProblems } = dataCluster(cluster, name);
      problems.push(...clusterProblems);
      const retry = routeRetry(r);
      if (!retry) problems.push(`listener ${l.name}: route to ${name} needs a retry_policy`);
      if (kind)
        for (const w of l.wasm)
          problems.push(...checkDestination(kind, w.plugin, retry, `listener ${l.name} route to ${name}`));
    }
  }
  for (const l of all)
    for (const r of routes(l)) {
      const name = str(at(r, "route.cluster"));
      if (name && !clusters.has(name))
        problems.push(`listener ${l.name}: route names unknown cluster ${name}`);
      if (l.name !== control?.name) continue;
      const retry = routeRetry(r);
      if (retry) problems.push(...checkRetryOn(retry.retryOn, `listener ${l.name}`));
    }
  return [...new Set(problems)];
}
