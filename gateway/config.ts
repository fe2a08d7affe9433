// The local gateway's configuration file (JSON or YAML): listeners, the Wasm module and its plugin config.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { hostKey, parseInternetAddressAndPort } from "./destination.ts";
import type { OverloadConfig } from "./overload.ts";
import type { StatsConfig } from "../host/prometheus.ts";

export interface ListenerConfig {
  name: string;
  address: string;
  port: number; // 0 = pick a free port
  /**
   * This listener's plugin configuration, replacing the top-level one (Envoy configures the Wasm filter per
   * listener; the shipped configs give only the control listener the control path and token).
   */
  pluginConfig?: unknown;
  /** This listener's plugin name (Envoy's PluginConfig.name), replacing the top-level one. */
  pluginName?: string;
  /** Envoy's per_connection_buffer_limit_bytes for this listener, replacing the top-level bufferLimitBytes. */
  bufferLimitBytes?: number;
  /**
   * The listener's route is a direct_response (as the shipped control listeners' are): whatever the filter lets
   * through is answered with this status by the router, never sent upstream.
   */
  directResponse?: { status: number; body?: string };
  /** This listener's connection limit, replacing the top-level maxConnections. */
  maxConnections?: number;
}

/**
 * The route's cluster, as Envoy builds it:
 * - ORIGINAL_DST with `original_dst_lb_config.use_http_header` on x-gateway-destination-endpoint;
 * - a static endpoint list with the override_host load-balancing policy (header source
 *   x-gateway-destination-endpoint, round-robin fallback policy).
 */
export type ClusterConfig = (
  | { type: "ORIGINAL_DST"; name: string; connectTimeoutMs: number }
  | {
      type: "override_host";
      name: string;
      connectTimeoutMs: number;
      /** Host keys (`ip:port`, IPv6 as `[ip]:port`) in configuration order. */
      endpoints: string[];
    }
) & {
  /**
   * HTTP/2 cleartext with prior knowledge to the upstreams (the cluster's HttpProtocolOptions
   * explicit_http_config.http2_protocol_options; an InferencePool's appProtocol kubernetes.io/h2c). Default HTTP/1.1.
   */
  http2?: boolean;
};

/** The retry_on conditions the gateway models (a reset or failed connect before any response byte). */
export const RETRY_ON = ["connect-failure", "reset-before-request", "reset", "refused-stream"] as const;
export type RetryOn = (typeof RETRY_ON)[number];

/** Envoy's route RetryPolicy (retry_on, num_retries, retry_back_off). */
export interface RetryPolicyConfig {
  retryOn: RetryOn[];
  numRetries: number;
  /** retry_back_off.base_interval; Envoy's default is 25 ms. */
  baseIntervalMs: number;
  /** retry_back_off.max_interval; Envoy's default is 10 × base. */
  maxIntervalMs: number;
}

export interface GatewayConfig {
  listeners: ListenerConfig[];
  wasm: string; // path to filter.wasm
  vmId: string;
  rootId: string;
  pluginName: string;
  workers: number;
  /** Envoy's `fail_open` for a crashed VM: pass traffic through instead of 503. */
  failOpen: boolean;
  bufferLimitBytes: number;
  /**
   * Envoy's PluginConfig.allow_on_headers_stop_iteration. The filter reads the request body (snapshots on
   * the control path, the OpenAI body on the data path) before it sets the destination, which needs a real
   * StopIteration from on_request_headers; without it Envoy turns StopIteration into StopAllIteration and
   * never delivers the body (envoy-proxy-wasm.md §2). Our Envoy configs set it too.
   */
  allowOnHeadersStopIteration: boolean;
  /** The JSON handed to the filter as its plugin configuration (a listener's own pluginConfig wins). */
  pluginConfig: unknown;
  /**
   * ORIGINAL_DST only, and not an Envoy behaviour: where a request without the destination header goes (round
   * robin), standing in for a route that reaches the pool without the filter (FailOpen). Envoy's ORIGINAL_DST
   * cluster answers 503 there unless the connection's original destination was restored (iptables).
   */
  defaultUpstreams: string[];
  /** Upstream idle timeout, standing in for the route timeout: 504 before the response started, else a reset. */
  upstreamTimeoutMs: number;
  cluster: ClusterConfig;
  /** The route's retry policy; absent = no retries, as in Envoy. */
  retryPolicy?: RetryPolicyConfig;
  /**
   * Clusters a plugin may name in proxy_http_call (pull mode's sidecar), as name → base URL; every listener's
   * plugin gets them. Envoy refuses an http_call to a cluster it does not have (BadArgument).
   */
  clusters: Record<string, string>;
  /**
   * Open connections per listener; a connection over it is closed as soon as it is accepted (Envoy's listener
   * connection limit, downstream_cx_overflow).
   */
  maxConnections: number;
  /** The HCM's request_headers_timeout: a request head not complete in time gets 408 and the connection closes. */
  requestHeadersTimeoutMs: number;
  /** The HCM's stream_idle_timeout: no bytes either way for this long ends the stream (408/504, or a reset). */
  streamIdleTimeoutMs: number;
  /** The overload manager's memory ceiling (overload.ts). */
  overload: OverloadConfig;
  /** Envoy's stats_config as the admin /stats/prometheus applies it (tag regexes, histogram buckets). */
  statsConfig: StatsConfig;
}

const DEFAULTS: Omit<GatewayConfig, "pluginConfig" | "cluster" | "clusters" | "overload" | "statsConfig"> = {
  listeners: [{ name: "data", address: "0.0.0.0", port: 8080 }],
  wasm: "build/filter.wasm",
  vmId: "epp",
  rootId: "epp",
  pluginName: "epp",
  workers: 2,
  failOpen: false,
  bufferLimitBytes: 1024 * 1024,
  allowOnHeadersStopIteration: true,
  defaultUpstreams: [],
  upstreamTimeoutMs: 300_000,
  // Generous: far above what tests and `npm start` open, low enough that a connection flood meets a limit.
  maxConnections: 4096,
  // Envoy's request_headers_timeout is off by default; Node's own headers timeout (60 s) is kept instead.
  requestHeadersTimeoutMs: 60_000,
  // HttpConnectionManagerConfig::StreamIdleTimeoutMs, 5 min (http_connection_manager/config.h).
  streamIdleTimeoutMs: 300_000,
};

// 1 GiB of JavaScript heap and buffers: far above a serving gateway (about 100 MB), below where the process suffers.
const DEFAULT_OVERLOAD: OverloadConfig = { maxHeapBytes: 1024 * 1024 * 1024, sampleIntervalMs: 100 };
// Node refuses a headers timeout above its request timeout (http.Server requestTimeout, 300 s by default).
const MAX_HEADERS_TIMEOUT_MS = 300_000;

// Cluster.connect_timeout defaults to 5 s (api/envoy/config/cluster/v3/cluster.proto).
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export class ConfigError extends Error {}

/** Replaces `${NAME}` in every string with the environment variable NAME (so secrets stay out of files). */
function expandEnv(value: unknown, env: NodeJS.ProcessEnv): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name];
      if (v === undefined) throw new ConfigError(`environment variable ${name} is not set`);
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v) => expandEnv(v, env));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, env)]));
  }
  return value;
}

export function normalizeConfig(raw: unknown, baseDir = process.cwd(), env = process.env): GatewayConfig {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError("gateway config must be an object");
  }
  const input = expandEnv(raw, env) as Record<string, unknown>;
  const cfg = { ...DEFAULTS, ...input } as GatewayConfig;
  // A path given in the file is relative to the file; the default is relative to the working directory.
  cfg.wasm = typeof input.wasm === "string" ? resolve(baseDir, input.wasm) : resolve(DEFAULTS.wasm);
  if (!Array.isArray(cfg.listeners) || cfg.listeners.length === 0) {
    throw new ConfigError("listeners: at least one listener is required");
  }
  for (const l of cfg.listeners) {
    if (typeof l.port !== "number" || !Number.isInteger(l.port) || l.port < 0 || l.port > 65535) {
      throw new ConfigError(`listeners[${l.name}].port must be an integer 0..65535`);
    }
    l.address ??= "0.0.0.0";
    l.name ??= `listener-${l.port}`;
    if (
      l.bufferLimitBytes !== undefined &&
      (!Number.isInteger(l.bufferLimitBytes) || l.bufferLimitBytes < 1)
    ) {
      throw new ConfigError(`listeners[${l.name}].bufferLimitBytes must be a positive integer`);
    }
    if (l.maxConnections !== undefined) positiveInt(l.maxConnections, `listeners[${l.name}].maxConnections`);
    if (l.directResponse !== undefined) {
      const d = l.directResponse as { status?: unknown; body?: unknown };
      if (typeof d.status !== "number" || !Number.isInteger(d.status) || d.status < 200 || d.status > 599) {
        throw new ConfigError(`listeners[${l.name}].directResponse.status must be an HTTP status 200..599`);
      }
      if (d.body !== undefined && typeof d.body !== "string") {
        throw new ConfigError(`listeners[${l.name}].directResponse.body must be a string`);
      }
    }
  }
  if (cfg.pluginConfig === undefined && cfg.listeners.some((l) => l.pluginConfig === undefined)) {
    throw new ConfigError("pluginConfig is required (at the top level or on every listener)");
  }
  cfg.cluster = normalizeCluster(input.cluster);
  cfg.clusters = normalizeCallClusters(input.clusters);
  cfg.retryPolicy = input.retryPolicy === undefined ? undefined : normalizeRetryPolicy(input.retryPolicy);
  if (!Array.isArray(cfg.defaultUpstreams)) throw new ConfigError("defaultUpstreams must be a list of URLs");
  if (cfg.cluster.type === "override_host" && cfg.defaultUpstreams.length > 0) {
    throw new ConfigError(
      "defaultUpstreams applies to cluster type ORIGINAL_DST only; with override_host a request without a " +
        "destination goes round robin over cluster.endpoints (the fallback policy)",
    );
  }
  if (!Number.isInteger(cfg.workers) || cfg.workers < 1) throw new ConfigError("workers must be ≥ 1");
  positiveInt(cfg.maxConnections, "maxConnections");
  positiveMs(cfg.requestHeadersTimeoutMs, "requestHeadersTimeoutMs", 0);
  if (cfg.requestHeadersTimeoutMs > MAX_HEADERS_TIMEOUT_MS) {
    throw new ConfigError(`requestHeadersTimeoutMs must be at most ${MAX_HEADERS_TIMEOUT_MS}`);
  }
  positiveMs(cfg.streamIdleTimeoutMs, "streamIdleTimeoutMs", 0);
  cfg.overload = normalizeOverload(input.overload);
  cfg.statsConfig = normalizeStatsConfig(input.statsConfig);
  for (const u of cfg.defaultUpstreams) {
    try {
      new URL(u);
    } catch {
      throw new ConfigError(`defaultUpstreams: ${u} is not a URL`);
    }
  }
  return cfg;
}

/** Tag regexes must compile (Envoy refuses the bootstrap otherwise: TagExtractorStdRegexImpl). */
function normalizeStatsConfig(v: unknown): StatsConfig {
  if (v === undefined) return {};
  if (!isObject(v)) throw new ConfigError("statsConfig must be an object");
  const sc = v as StatsConfig;
  for (const t of sc.statsTags ?? []) {
    try {
      new RegExp(t.regex);
    } catch (err) {
      throw new ConfigError(`statsConfig.statsTags[${t.tagName}]: ${(err as Error).message}`);
    }
  }
  return sc;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function checkKeys(obj: Record<string, unknown>, allowed: string[], where: string): void {
  for (const k of Object.keys(obj)) {
    if (!allowed.includes(k)) {
      throw new ConfigError(`${where}: unknown field "${k}" (allowed: ${allowed.join(", ")})`);
    }
  }
}

function positiveMs(v: unknown, where: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new ConfigError(`${where} must be a positive number of milliseconds`);
  }
  return v;
}

function positiveInt(v: unknown, where: string): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new ConfigError(`${where} must be a positive integer`);
  }
}

function normalizeOverload(raw: unknown): OverloadConfig {
  if (raw === undefined) return { ...DEFAULT_OVERLOAD };
  if (!isObject(raw)) throw new ConfigError("overload must be an object with maxHeapBytes");
  checkKeys(raw, ["maxHeapBytes", "sampleIntervalMs"], "overload");
  const maxHeapBytes = raw.maxHeapBytes ?? DEFAULT_OVERLOAD.maxHeapBytes;
  positiveInt(maxHeapBytes, "overload.maxHeapBytes");
  const sampleIntervalMs = positiveMs(
    raw.sampleIntervalMs,
    "overload.sampleIntervalMs",
    DEFAULT_OVERLOAD.sampleIntervalMs,
  );
  return { maxHeapBytes: maxHeapBytes as number, sampleIntervalMs };
}

function normalizeCluster(raw: unknown): ClusterConfig {
  if (raw === undefined) {
    return {
      type: "ORIGINAL_DST",
      name: "original_destination_cluster",
      connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    };
  }
  if (!isObject(raw)) throw new ConfigError("cluster must be an object with a type");
  const type = typeof raw.type === "string" ? raw.type.toLowerCase() : undefined;
  const connectTimeoutMs = positiveMs(
    raw.connectTimeoutMs,
    "cluster.connectTimeoutMs",
    DEFAULT_CONNECT_TIMEOUT_MS,
  );
  if (raw.http2 !== undefined && typeof raw.http2 !== "boolean") {
    throw new ConfigError("cluster.http2 must be a boolean");
  }
  const http2 = raw.http2 === true ? { http2: true } : {};
  if (type === "original_dst") {
    checkKeys(raw, ["type", "name", "connectTimeoutMs", "http2"], "cluster (ORIGINAL_DST)");
    const name = raw.name ?? "original_destination_cluster";
    if (typeof name !== "string" || name === "") throw new ConfigError("cluster.name must be a string");
    return { type: "ORIGINAL_DST", name, connectTimeoutMs, ...http2 };
  }
  if (type === "override_host") {
    checkKeys(raw, ["type", "name", "connectTimeoutMs", "endpoints", "http2"], "cluster (override_host)");
    const name = raw.name ?? "inference_pool";
    if (typeof name !== "string" || name === "") throw new ConfigError("cluster.name must be a string");
    if (!Array.isArray(raw.endpoints) || raw.endpoints.length === 0) {
      throw new ConfigError(
        "cluster.endpoints: override_host needs the cluster's endpoint set, a non-empty list of ip:port",
      );
    }
    const endpoints: string[] = [];
    for (const e of raw.endpoints) {
      // A STATIC cluster's socket_address must be an IP literal; the port a real one.
      const d = typeof e === "string" ? parseInternetAddressAndPort(e) : undefined;
      if (!d || String(d.port) !== e.slice(e.lastIndexOf(":") + 1) || d.port === 0) {
        throw new ConfigError(
          `cluster.endpoints: ${JSON.stringify(e)} is not an IP:port literal (IPv6 as [ip]:port, port 1..65535)`,
        );
      }
      const key = hostKey(d);
      if (endpoints.includes(key)) throw new ConfigError(`cluster.endpoints: ${key} is listed twice`);
      endpoints.push(key);
    }
    return { type: "override_host", name, connectTimeoutMs, endpoints, ...http2 };
  }
  throw new ConfigError(
    `cluster.type must be ORIGINAL_DST or override_host, got ${JSON.stringify(raw.type)}`,
  );
}

function normalizeCallClusters(raw: unknown): Record<string, string> {
  if (raw === undefined) return {};
  if (!isObject(raw)) throw new ConfigError("clusters must map cluster names to base URLs");
  const out: Record<string, string> = {};
  for (const [name, url] of Object.entries(raw)) {
    let ok = typeof url === "string";
    try {
      if (ok) ok = ["http:", "https:"].includes(new URL(url as string).protocol);
    } catch {
      ok = false;
    }
    if (!ok)
      throw new ConfigError(`clusters.${name} must be an http:// base URL, got ${JSON.stringify(url)}`);
    out[name] = url as string;
  }
  return out;
}

function normalizeRetryPolicy(raw: unknown): RetryPolicyConfig {
  if (!isObject(raw)) throw new ConfigError("retryPolicy must be an object");
  checkKeys(raw, ["retryOn", "numRetries", "baseIntervalMs", "maxIntervalMs"], "retryPolicy");
  // Envoy spells retry_on as one comma-separated string; a YAML list is accepted too.
  const list =
    typeof raw.retryOn === "string"
      ? raw.retryOn
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== "")
      : Array.isArray(raw.retryOn)
        ? raw.retryOn
        : undefined;
  if (!list || list.length === 0) {
    throw new ConfigError(`retryPolicy.retryOn: give one or more of ${RETRY_ON.join(", ")}`);
  }
  const retryOn: RetryOn[] = [];
  for (const r of list) {
    if (!RETRY_ON.includes(r as RetryOn)) {
      throw new ConfigError(
        `retryPolicy.retryOn: ${JSON.stringify(r)} is not modelled by the gateway (supported: ${RETRY_ON.join(", ")})`,
      );
    }
    if (!retryOn.includes(r as RetryOn)) retryOn.push(r as RetryOn);
  }
  // RetryPolicy.num_retries defaults to 1 (api/envoy/config/route/v3/route_components.proto).
  const numRetries = raw.numRetries ?? 1;
  if (typeof numRetries !== "number" || !Number.isInteger(numRetries) || numRetries < 0) {
    throw new ConfigError("retryPolicy.numRetries must be an integer ≥ 0");
  }
  // source/common/router/retry_state_impl.cc RetryStateImpl: base 25 ms, max 10 × base.
  const baseIntervalMs = positiveMs(raw.baseIntervalMs, "retryPolicy.baseIntervalMs", 25);
  const maxIntervalMs = positiveMs(raw.maxIntervalMs, "retryPolicy.maxIntervalMs", baseIntervalMs * 10);
  if (maxIntervalMs < baseIntervalMs) {
    throw new ConfigError("retryPolicy.maxIntervalMs must be ≥ baseIntervalMs");
  }
  return { retryOn, numRetries, baseIntervalMs, maxIntervalMs };
}

export function loadConfigFile(path: string): GatewayConfig {
  const text = readFileSync(path, "utf8");
  const raw: unknown = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  return normalizeConfig(raw, dirname(resolve(path)));
}
