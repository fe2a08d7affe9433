// The local gateway's configuration derived from one of our shipped Envoy bootstraps (envoy/envoy.yaml or
// envoy/envoy-override-host.yaml), so `npm start` and the cluster-mode tests run exactly what the Envoy files
// say: the cluster type, the route retry policy, each listener's Wasm plugin configuration, name and buffer limit.
// Only what the gateway models is read; anything else in those places is an error, not silently dropped.
import type { HistogramBuckets, StatsConfig } from "../../host/prometheus.ts";
import {
  connectionManagers,
  CONTROL_FIELDS,
  DESTINATION_FIELDS,
  fail,
  list,
  obj,
  type Obj,
  ORIGINAL_DST_BOOTSTRAP,
  OVERRIDE_HOST_BOOTSTRAP,
  readBootstrap,
  wasmPluginConfigs,
} from "./envoy-bootstrap.ts";

export { ORIGINAL_DST_BOOTSTRAP, OVERRIDE_HOST_BOOTSTRAP };

const DESTINATION_HEADER = "x-gateway-destination-endpoint";
const OVERRIDE_HOST_POLICY = "envoy.load_balancing_policies.override_host";
const ROUND_ROBIN_POLICY = "envoy.load_balancing_policies.round_robin";
const HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

export interface ShippedListener {
  name: string;
  pluginName: string;
  pluginConfig: Obj;
  bufferLimitBytes?: number;
  /** The connection manager's request_headers_timeout. */
  requestHeadersTimeoutMs?: number;
  /** The route's retry policy, in the gateway's shape. */
  retryPolicy?: { retryOn: string[]; numRetries: number };
  /** The route's cluster name, or undefined for a direct_response route. */
  cluster?: string;
  directResponse?: { status: number; body?: string };
}

export interface ShippedEnvoy {
  file: string;
  vmId: string;
  rootId: string;
  failOpen: boolean;
  allowOnHeadersStopIteration: boolean;
  listeners: ShippedListener[];
  cluster: (
    | { type: "ORIGINAL_DST"; name: string; connectTimeoutMs: number }
    | { type: "override_host"; name: string; connectTimeoutMs: number; endpoints: string[] }
  ) & { http2?: boolean };
  /** stats_config: the tag regexes and histogram buckets the admin's /stats/prometheus applies. */
  statsConfig: StatsConfig;
}

/** The bootstrap's stats_config, in the form host/prometheus.ts applies (prefix/exact/suffix matchers). */
function readStatsConfig(file: string, v: unknown): StatsConfig {
  if (v === undefined) return {};
  const sc = obj(file, v, "stats_config");
  const tags = sc.stats_tags === undefined ? [] : list(file, sc.stats_tags, "stats_tags");
  const buckets =
    sc.histogram_bucket_settings === undefined
      ? []
      : list(file, sc.histogram_bucket_settings, "histogram_bucket_settings");
  return {
    statsTags: tags.map((t) => ({ tagName: String(t.tag_name), regex: String(t.regex) })),
    histogramBucketSettings: buckets.map((b) => ({
      match: obj(file, b.match, "match") as HistogramBuckets["match"],
      buckets: (b.buckets as unknown[]).map(Number),
    })),
  };
}

/** A protobuf Duration in YAML ("2s", "0.25s") as milliseconds. */
function durationMs(file: string, v: unknown, what: string): number {
  const m = typeof v === "string" ? /^([0-9]+(?:\.[0-9]+)?)s$/.exec(v) : null;
  if (!m) fail(file, `${what} must be a duration like "2s"`);
  return Math.round(Number(m[1]) * 1000);
}

function hcm(file: string, listener: Obj): Obj {
  const managers = connectionManagers(file, listener);
  if (managers.length !== 1)
    fail(file, `listener ${String(listener.name)}: expected one HTTP connection manager`);
  return managers[0]!;
}

function readListener(file: string, l: Obj): ShippedListener & { wasm: Obj } {
  const name = String(l.name);
  const manager = hcm(file, l);
  const wasm = wasmPluginConfigs(file, manager);
  if (wasm.length !== 1) fail(file, `listener ${name}: expected one Wasm filter`);
  const config = wasm[0]!;
  const configuration = obj(file, config.configuration, "wasm configuration");
  const pluginConfig = JSON.parse(String(configuration.value)) as Obj;
  const vhosts = list(file, obj(file, manager.route_config, "route_config").virtual_hosts, "virtual_hosts");
  const routes = vhosts.flatMap((v) => list(file, v.routes, "routes"));
  if (routes.length !== 1) fail(file, `listener ${name}: the gateway models exactly one route`);
  const route = routes[0]!;
  let cluster: string | undefined;
  let retryPolicy: ShippedListener["retryPolicy"];
  let directResponse: ShippedListener["directResponse"];
  if (route.direct_response !== undefined) {
    const d = obj(file, route.direct_response, "direct_response");
    const body = d.body === undefined ? undefined : obj(file, d.body, "direct_response.body").inline_string;
    directResponse = { status: Number(d.status), ...(body === undefined ? {} : { body: String(body) }) };
  } else if (route.route !== undefined) {
    const action = obj(file, route.route, "route");
    cluster = String(action.cluster);
    if (action.retry_policy !== undefined) {
      const rp = obj(file, action.retry_policy, "retry_policy");
      const known = ["retry_on", "num_retries"];
      const unknown = Object.keys(rp).filter((k) => !known.includes(k));
      if (unknown.length > 0) fail(file, `retry_policy.${unknown[0]} is not modelled by the gateway`);
      retryPolicy = {
        retryOn: String(rp.retry_on)
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
        // RetryPolicy.num_retries defaults to 1.
        numRetries: rp.num_retries === undefined ? 1 : Number(rp.num_retries),
      };
    }
  } else {
    fail(file, `listener ${name}: the route must be a cluster route or a direct_response`);
  }
  return {
    name,
    pluginName: String(config.name ?? ""),
    pluginConfig,
    bufferLimitBytes:
      l.per_connection_buffer_limit_bytes === undefined
        ? undefined
        : Number(l.per_connection_buffer_limit_bytes),
    requestHeadersTimeoutMs:
      manager.request_headers_timeout === undefined
        ? undefined
        : durationMs(file, manager.request_headers_timeout, "request_headers_timeout"),
    retryPolicy,
    cluster,
    directResponse,
    wasm: config,
  };
}

/**
 * True when the cluster speaks HTTP/2 with prior knowledge to its hosts: typed_extension_protocol_options holds
 * HttpProtocolOptions with explicit_http_config.http2_protocol_options (api/envoy/extensions/upstreams/http/v3/
 * http_protocol_options.proto). Any other protocol option is not modelled by the gateway.
 */
function readHttp2(file: string, c: Obj): boolean {
  if (c.typed_extension_protocol_options === undefined) return false;
  const options = obj(file, c.typed_extension_protocol_options, "typed_extension_protocol_options");
  const names = Object.keys(options);
  if (names.length !== 1 || names[0] !== HTTP_PROTOCOL_OPTIONS) {
    fail(
      file,
      `cluster ${String(c.name)}: the gateway models only ${HTTP_PROTOCOL_OPTIONS} protocol options`,
    );
  }
  const po = obj(file, options[HTTP_PROTOCOL_OPTIONS], HTTP_PROTOCOL_OPTIONS);
  const keys = Object.keys(po).filter((k) => k !== "@type");
  const explicit =
    po.explicit_http_config === undefined
      ? undefined
      : obj(file, po.explicit_http_config, "explicit_http_config");
  if (keys.length !== 1 || !explicit || Object.keys(explicit).length !== 1) {
    fail(file, `cluster ${String(c.name)}: the gateway models only explicit_http_config with one protocol`);
  }
  if (explicit.http2_protocol_options !== undefined) return true;
  if (explicit.http_protocol_options !== undefined) return false;
  fail(file, `cluster ${String(c.name)}: explicit_http_config must be HTTP/1.1 or HTTP/2`);
}

function readCluster(file: string, c: Obj): ShippedEnvoy["cluster"] {
  const name = String(c.name);
  const http2 = readHttp2(file, c) ? { http2: true } : {};
  // Cluster.connect_timeout defaults to 5 s.
  const connectTimeoutMs =
    c.connect_timeout === undefined ? 5000 : durationMs(file, c.connect_timeout, "connect_timeout");
  if (c.type === "ORIGINAL_DST") {
    const lb = obj(file, c.original_dst_lb_config, "original_dst_lb_config");
    if (lb.use_http_header !== true || lb.http_header_name !== DESTINATION_HEADER) {
      fail(file, `cluster ${name}: ORIGINAL_DST must use_http_header on ${DESTINATION_HEADER}`);
    }
    return { type: "ORIGINAL_DST", name, connectTimeoutMs, ...http2 };
  }
  const lbPolicy = c.load_balancing_policy as { policies?: Array<{ typed_extension_config?: Obj }> };
  const ext = lbPolicy?.policies?.[0]?.typed_extension_config;
  if (ext?.name !== OVERRIDE_HOST_POLICY) {
    fail(file, `cluster ${name}: the gateway models ORIGINAL_DST or ${OVERRIDE_HOST_POLICY}`);
  }
  const typed = obj(file, ext.typed_config, "override_host typed_config");
  const sources = list(file, typed.override_host_sources, "override_host_sources");
  if (sources.length !== 1 || sources[0]!.header !== DESTINATION_HEADER) {
    fail(file, `cluster ${name}: override_host must read the single header ${DESTINATION_HEADER}`);
  }
  const fallback = list(file, obj(file, typed.fallback_policy, "fallback_policy").policies, "policies");
  const fallbackName = obj(file, fallback[0]?.typed_extension_config, "fallback policy").name;
  if (fallbackName !== ROUND_ROBIN_POLICY) fail(file, `cluster ${name}: the fallback must be round robin`);
  const endpoints = list(file, obj(file, c.load_assignment, "load_assignment").endpoints, "endpoints")
    .flatMap((e) => list(file, e.lb_endpoints, "lb_endpoints"))
    .map((e) => {
      const sa = obj(
        file,
        obj(file, obj(file, e.endpoint, "endpoint").address, "address").socket_address,
        "socket_address",
      );
      const address = String(sa.address);
      return `${address.includes(":") ? `[${address}]` : address}:${String(sa.port_value)}`;
    });
  return { type: "override_host", name, connectTimeoutMs, endpoints, ...http2 };
}

/** Reads what the gateway models from one of our Envoy bootstraps. */
export function readShippedEnvoy(file: string): ShippedEnvoy {
  const doc = readBootstrap(file);
  const resources = obj(file, doc.static_resources, "static_resources");
  const listeners = list(file, resources.listeners, "listeners").map((l) => readListener(file, l));
  const wasmConfigs = listeners.map((l) => l.wasm);
  const vm = obj(file, wasmConfigs[0]!.vm_config, "vm_config");
  for (const w of wasmConfigs) {
    const v = obj(file, w.vm_config, "vm_config");
    if (v.vm_id !== vm.vm_id) fail(file, "every listener must share one vm_id");
    if (w.root_id !== wasmConfigs[0]!.root_id) fail(file, "every listener must use one root_id");
  }
  // failure_policy FAIL_OPEN or the deprecated fail_open: true pass traffic through a failed VM.
  const failOpen = (w: Obj) => w.failure_policy === "FAIL_OPEN" || w.fail_open === true;
  const routed = [...new Set(listeners.map((l) => l.cluster).filter((c) => c !== undefined))];
  if (routed.length !== 1) fail(file, "the gateway models one routed cluster");
  const cluster = list(file, resources.clusters, "clusters").find((c) => c.name === routed[0]);
  if (!cluster) fail(file, `no cluster named ${routed[0]}`);
  return {
    file,
    vmId: String(vm.vm_id),
    rootId: String(wasmConfigs[0]!.root_id),
    failOpen: failOpen(wasmConfigs[0]!),
    allowOnHeadersStopIteration: wasmConfigs.every((w) => w.allow_on_headers_stop_iteration === true),
    listeners: listeners.map(({ wasm: _wasm, ...rest }) => rest),
    cluster: readCluster(file, cluster),
    statsConfig: readStatsConfig(file, doc.stats_config),
  };
}

export interface GatewayFromEnvoyOptions {
  /** Port (and address, default 127.0.0.1) per listener name, e.g. { data: { port: 8080 }, control: … }. */
  listeners: Record<string, { port: number; address?: string }>;
  wasm: string;
  workers?: number;
  /** override_host only: the pool's pods as ip:port, replacing the bootstrap's STATIC endpoints. */
  endpoints?: string[];
  /**
   * Plugin configuration fields over the bootstrap's (pool, token, failure mode, …). The control fields reach the
   * control listener only; the destination fields are the bootstrap's to decide.
   */
  pluginConfig?: Obj;
}

/** A gateway config object (for normalizeConfig or a JSON file) equivalent to the Envoy bootstrap. */
export function gatewayConfigFromEnvoy(file: string, o: GatewayFromEnvoyOptions): Obj {
  const shipped = readShippedEnvoy(file);
  const overrides = o.pluginConfig ?? {};
  const fixed = Object.keys(overrides).filter((k) => DESTINATION_FIELDS.includes(k));
  if (fixed.length > 0) {
    throw new Error(`pluginConfig must not set ${fixed.join(", ")}: ${file}'s cluster type decides`);
  }
  const retry = shipped.listeners.find((l) => l.retryPolicy)?.retryPolicy;
  // The gateway has one headers timeout for all listeners: the strictest the bootstrap sets.
  const headerTimeouts = shipped.listeners.flatMap((l) =>
    l.requestHeadersTimeoutMs === undefined ? [] : [l.requestHeadersTimeoutMs],
  );
  const cluster =
    shipped.cluster.type === "override_host" && o.endpoints
      ? { ...shipped.cluster, endpoints: o.endpoints }
      : shipped.cluster;
  return {
    listeners: shipped.listeners.map((l) => {
      const at = o.listeners[l.name];
      if (!at) throw new Error(`no port given for ${file}'s listener ${l.name}`);
      const plugin = { ...l.pluginConfig, ...overrides };
      const pluginConfig =
        l.name === "control"
          ? plugin
          : Object.fromEntries(Object.entries(plugin).filter(([k]) => !CONTROL_FIELDS.includes(k)));
      return {
        name: l.name,
        address: at.address ?? "127.0.0.1",
        port: at.port,
        pluginName: l.pluginName,
        pluginConfig,
        ...(l.bufferLimitBytes === undefined ? {} : { bufferLimitBytes: l.bufferLimitBytes }),
        ...(l.directResponse ? { directResponse: l.directResponse } : {}),
      };
    }),
    wasm: o.wasm,
    vmId: shipped.vmId,
    rootId: shipped.rootId,
    workers: o.workers ?? 2,
    failOpen: shipped.failOpen,
    allowOnHeadersStopIteration: shipped.allowOnHeadersStopIteration,
    cluster,
    statsConfig: shipped.statsConfig,
    ...(retry ? { retryPolicy: retry } : {}),
    ...(headerTimeouts.length > 0 ? { requestHeadersTimeoutMs: Math.min(...headerTimeouts) } : {}),
  };
}
