// Plugin configuration: the JSON the Envoy filter config carries (read in on_configure, buffer 7).
// Pure (no host calls) so as-pect can test it; an invalid config yields one message naming the field.

import { JsonKind, JsonValue, parseJson, lastJsonError } from "./json/reader.ts";

export const STRICT_FROM_POOL: i32 = -1;

/** One `ip:port` in the destination header: what Envoy's ORIGINAL_DST cluster parses (as one address). */
export const DESTINATIONS_ORIGINAL_DST: i32 = 0;
/** The pick and its fallbacks as `a:p,b:q,…`: what Envoy's override_host LB policy walks on retries. */
export const DESTINATIONS_OVERRIDE_HOST: i32 = 1;

const DEFAULT_OVERRIDE_HOST_FALLBACKS: i32 = 3;

/** Past staleAfterMs: keep routing over the last snapshot's ready endpoints by local in-flight. */
export const STALE_ROUTE: i32 = 0;
/** Past staleAfterMs: the failure mode applies (503 stale_snapshot, or pass-through with FailOpen). */
export const STALE_FAIL: i32 = 1;

export class PluginConfig {
  poolNamespace: string = "";
  poolName: string = "";
  controlPath: string = "/epp/v1/snapshot";
  /**
   * Accepted bearer tokens: one, or two while a rotation is under way. Empty (and no controlTokenEnv):
   * this plugin serves no control path; that path routes like any other request.
   */
  controlTokens: string[] = [];
  /** When set, the token is read from this environment variable of the VM at configure time. */
  controlTokenEnv: string = "";
  failOpen: bool = false;
  /** 0 = a snapshot never goes stale. */
  staleAfterMs: u64 = 5000;
  /** What a snapshot older than staleAfterMs is good for (STALE_ROUTE or STALE_FAIL). */
  staleMode: i32 = STALE_ROUTE;
  /** Adds x-epp-snapshot-state to routed responses. */
  debugHeaders: bool = false;
  /** Path answered locally with the plugin's readiness ("" = off). */
  healthPath: string = "";
  /** How far the sidecar's clock may run ahead of this Envoy's (a snapshot dated further ahead: 400). */
  maxClockSkewMs: u64 = 1000;
  /**
   * An endpoint whose connect failed this recently is avoided while another is reachable; when every
   * ready endpoint failed this recently, requests get 503 no_reachable_endpoint at once. 0 = off.
   */
  failedConnectWindowMs: u64 = 1000;
  controlMaxBytes: u32 = 4 << 20;
  hasRandomSeed: bool = false;
  randomSeed: u64 = 0;
  /** Largest inference request body accepted (413 above); Envoy's own buffer limit also applies. */
  maxBodyBytes: u32 = 4 << 20;
  /** The shape of x-gateway-destination-endpoint, for the cluster type Envoy routes it with. */
  destinationMode: i32 = DESTINATIONS_ORIGINAL_DST;
  /** Fallback endpoints after the pick in x-gateway-destination-endpoint (override_host only). */
  maxFallbacks: i32 = 0;
  /** Honour GIE's `test-epp-endpoint-selection` header (conformance runs only). */
  conformance: bool = false;
  /** STRICT_FROM_POOL: the snapshot's pool flag decides; else the override (0 lenient, 1 strict). */
  strictModels: i32 = STRICT_FROM_POOL;
  /** Pull mode: the Envoy cluster of the sidecar ("" = pull off; snapshots arrive on a control path). */
  pullCluster: string = "";
  /** `:path` of the pull request; default `/snapshot?pool=<ns>/<name>` (the sidecar's route). */
  pullPath: string = "";
  /** `:authority` of the pull request; default the cluster name. */
  pullAuthority: string = "";
  pullIntervalMs: u32 = 100;
  /** http_call timeout; always set (0 would mean none in Envoy, and a hung call would stop pulling). */
  pullTimeoutMs: u32 = 1000;

  /** Whether this plugin answers the control path (a token is configured). */
  controlEnabled(): bool {
    return this.controlTokens.length > 0 || this.controlTokenEnv.length > 0;
  }

  /** Whether this plugin fetches snapshots itself (pull mode). */
  pullEnabled(): bool {
    return this.pullCluster.length > 0;
  }

  /** Shared-data key prefix of the configured pool: `epp.v1/<ns>/<name>/`. */
  keyPrefix(): string {
    return "epp.v1/" + this.poolNamespace + "/" + this.poolName + "/";
  }
}

/** Bounds of pull.intervalMs and pull.timeoutMs. */
export const PULL_MIN_INTERVAL_MS: u32 = 10;
export const PULL_MAX_INTERVAL_MS: u32 = 60_000;
export const PULL_MAX_TIMEOUT_MS: u32 = 60_000;

export class ConfigResult {
  config: PluginConfig | null = null;
  error: string = "";
}

const MAX_SAFE_INTEGER: f64 = 9007199254740991;

function isNonNegativeInteger(v: JsonValue, max: f64): bool {
  return v.kind == JsonKind.Number && v.num >= 0 && v.num <= max && Math.floor(v.num) == v.num;
}

function invalid(out: ConfigResult, field: string, why: string): ConfigResult {
  out.error = "invalid plugin configuration: " + field + " " + why;
  return out;
}

function nonEmptyString(v: JsonValue | null): bool {
  return v != null && v.kind == JsonKind.String && v.str.length > 0;
}

/** At most two tokens are accepted at once: the current one and the next during a rotation. */
export const MAX_CONTROL_TOKENS: i32 = 2;

/** Reads a token or a list of up to two into `out`; returns why it is invalid, or "". */
function readTokens(v: JsonValue, out: string[]): string {
  const why = "must be a non-empty string, or a list of one or two (rotation)";
  if (v.kind == JsonKind.String) {
    if (v.str.length == 0) return why;
    out.push(v.str);
    return "";
  }
  if (v.kind != JsonKind.Array || v.items.length == 0 || v.items.length > MAX_CONTROL_TOKENS) return why;
  for (let i = 0; i < v.items.length; i++) {
    const t = v.items[i];
    if (t.kind != JsonKind.String || t.str.length == 0) return why;
    out.push(t.str);
  }
  return "";
}

/** Tokens from an environment variable: one, or two separated by a comma (rotation); "" if invalid. */
export function tokensFromEnv(value: string, out: string[]): string {
  const parts = value.split(",");
  if (parts.length > MAX_CONTROL_TOKENS) return "holds more than two comma-separated tokens";
  for (let i = 0; i < parts.length; i++) {
    const t = parts[i].trim();
    if (t.length == 0) return "is not set, or holds an empty token";
    out.push(t);
  }
  return "";
}

export function parseConfig(text: string): ConfigResult {
  const out = new ConfigResult();
  const root = parseJson(text);
  if (root == null) return invalid(out, "(document)", "is not valid JSON: " + lastJsonError);
  if (root.kind != JsonKind.Object) return invalid(out, "(document)", "must be a JSON object");
  const c = new PluginConfig();

  const pool = root.get("pool");
  if (pool == null || pool.kind != JsonKind.Object)
    return invalid(out, "pool", "is required: {namespace, name}");
  const ns = pool.get("namespace");
  if (!nonEmptyString(ns)) return invalid(out, "pool.namespace", "must be a non-empty string");
  const name = pool.get("name");
  if (!nonEmptyString(name)) return invalid(out, "pool.name", "must be a non-empty string");
  c.poolNamespace = ns!.str;
  c.poolName = name!.str;

  const path = root.get("controlPath");
  if (path != null) {
    if (!nonEmptyString(path) || path.str.charCodeAt(0) != 0x2f || path.str.indexOf("?") >= 0)
      return invalid(out, "controlPath", "must be a path starting with / and without a query");
    c.controlPath = path.str;
  }

  // The token comes inline, or from the VM's environment so it need not be written into proxy config
  // (Envoy: vm_config.environment_variables; Envoy Gateway: the policy's env.hostKeys). Without either,
  // this plugin has no control path: only a listener configured for snapshots accepts them.
  const token = root.get("controlToken");
  const tokenEnv = root.get("controlTokenEnv");
  if (token != null && tokenEnv != null)
    return invalid(out, "controlToken", "and controlTokenEnv are exclusive; set one");
  if (tokenEnv != null) {
    if (!nonEmptyString(tokenEnv))
      return invalid(out, "controlTokenEnv", "must be a non-empty environment variable name");
    c.controlTokenEnv = tokenEnv.str;
  } else if (token != null) {
    const why = readTokens(token, c.controlTokens);
    if (why.length > 0) return invalid(out, "controlToken", why);
  }

  const mode = root.get("failureMode");
  if (mode != null) {
    if (mode.kind == JsonKind.String && mode.str == "FailOpen") c.failOpen = true;
    else if (mode.kind == JsonKind.String && mode.str == "FailClose") c.failOpen = false;
    else return invalid(out, "failureMode", 'must be "FailOpen" or "FailClose"');
  }

  const stale = root.get("staleAfterMs");
  if (stale != null) {
    if (!isNonNegativeInteger(stale, MAX_SAFE_INTEGER))
      return invalid(out, "staleAfterMs", "must be a non-negative integer (0 = never stale)");
    c.staleAfterMs = <u64>stale.num;
  }

  const staleMode = root.get("staleMode");
  if (staleMode != null) {
    if (staleMode.kind == JsonKind.String && staleMode.str == "route") c.staleMode = STALE_ROUTE;
    else if (staleMode.kind == JsonKind.String && staleMode.str == "fail") c.staleMode = STALE_FAIL;
    else return invalid(out, "staleMode", 'must be "route" or "fail"');
  }

  const debug = root.get("debugHeaders");
  if (debug != null) {
    if (debug.kind != JsonKind.Bool) return invalid(out, "debugHeaders", "must be true or false");
    c.debugHeaders = debug.bool;
  }

  const health = root.get("healthPath");
  if (health != null && health.kind != JsonKind.Null) {
    if (!nonEmptyString(health) || health.str.charCodeAt(0) != 0x2f || health.str.indexOf("?") >= 0)
      return invalid(out, "healthPath", "must be a path starting with / and without a query");
    if (health.str == c.controlPath) return invalid(out, "healthPath", "must differ from controlPath");
    c.healthPath = health.str;
  }

  const window = root.get("failedConnectWindowMs");
  if (window != null) {
    if (!isNonNegativeInteger(window, 3_600_000))
      return invalid(out, "failedConnectWindowMs", "must be an integer between 0 and 3600000 (0 = off)");
    c.failedConnectWindowMs = <u64>window.num;
  }

  const skew = root.get("maxClockSkewMs");
  if (skew != null) {
    if (!isNonNegativeInteger(skew, 3_600_000))
      return invalid(out, "maxClockSkewMs", "must be an integer between 0 and 3600000");
    c.maxClockSkewMs = <u64>skew.num;
  }

  const maxBytes = root.get("controlMaxBytes");
  if (maxBytes != null) {
    if (!isNonNegativeInteger(maxBytes, 0xffffffff) || maxBytes.num < 32)
      return invalid(out, "controlMaxBytes", "must be an integer between 32 and 4294967295");
    c.controlMaxBytes = <u32>maxBytes.num;
  }

  const seed = root.get("randomSeed");
  if (seed != null && seed.kind != JsonKind.Null) {
    if (!isNonNegativeInteger(seed, MAX_SAFE_INTEGER))
      return invalid(out, "randomSeed", "must be a non-negative integer");
    c.hasRandomSeed = true;
    c.randomSeed = <u64>seed.num;
  }

  const maxBody = root.get("maxBodyBytes");
  if (maxBody != null) {
    if (!isNonNegativeInteger(maxBody, 0xffffffff) || maxBody.num < 1)
      return invalid(out, "maxBodyBytes", "must be an integer between 1 and 4294967295");
    c.maxBodyBytes = <u32>maxBody.num;
  }

  const shape = root.get("destinationMode");
  if (shape != null) {
    if (shape.kind == JsonKind.String && shape.str == "original_dst")
      c.destinationMode = DESTINATIONS_ORIGINAL_DST;
    else if (shape.kind == JsonKind.String && shape.str == "override_host") {
      c.destinationMode = DESTINATIONS_OVERRIDE_HOST;
      c.maxFallbacks = DEFAULT_OVERRIDE_HOST_FALLBACKS;
    } else return invalid(out, "destinationMode", 'must be "original_dst" or "override_host"');
  }

  const fallbacks = root.get("maxFallbacks");
  if (fallbacks != null) {
    if (!isNonNegativeInteger(fallbacks, 64))
      return invalid(out, "maxFallbacks", "must be an integer between 0 and 64");
    // Envoy's ORIGINAL_DST cluster parses the whole header value as one address: a list never routes.
    if (fallbacks.num > 0 && c.destinationMode == DESTINATIONS_ORIGINAL_DST)
      return invalid(
        out,
        "maxFallbacks",
        'must be 0 with destinationMode "original_dst" (an ORIGINAL_DST cluster reads one ip:port); use "override_host" for fallbacks',
      );
    c.maxFallbacks = <i32>fallbacks.num;
  }

  const conformance = root.get("conformance");
  if (conformance != null) {
    if (conformance.kind != JsonKind.Bool) return invalid(out, "conformance", "must be true or false");
    c.conformance = conformance.bool;
  }

  const strict = root.get("strictModels");
  if (strict != null && strict.kind != JsonKind.Null) {
    if (strict.kind != JsonKind.Bool)
      return invalid(out, "strictModels", "must be true, false or null (null = the pool's setting)");
    c.strictModels = strict.bool ? 1 : 0;
  }

  const pull = root.get("pull");
  if (pull != null && pull.kind != JsonKind.Null) {
    const why = readPull(pull, c);
    if (why.length > 0) {
      out.error = "invalid plugin configuration: " + why;
      return out;
    }
  }

  out.config = c;
  return out;
}

/** Printable ASCII without spaces (a value the host may put into a request header as it is). */
function isHeaderToken(s: string): bool {
  if (s.length == 0 || s.length > 256) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

/** Reads `pull: {cluster, path?, authority?, intervalMs?, timeoutMs?}` into `c`; returns the error, or "". */
function readPull(v: JsonValue, c: PluginConfig): string {
  if (v.kind != JsonKind.Object)
    return "pull must be an object {cluster, path?, authority?, intervalMs?, timeoutMs?}";
  const keys = v.keys;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (k != "cluster" && k != "path" && k != "authority" && k != "intervalMs" && k != "timeoutMs")
      return "pull has an unknown field " + k + " (known: cluster, path, authority, intervalMs, timeoutMs)";
  }
  const cluster = v.get("cluster");
  if (cluster == null || cluster.kind != JsonKind.String || !isHeaderToken(cluster.str))
    return "pull.cluster must name the Envoy cluster of the sidecar (a non-empty string without spaces)";
  c.pullCluster = cluster.str;
  c.pullAuthority = cluster.str;
  c.pullPath = "/snapshot?pool=" + c.poolNamespace + "/" + c.poolName;
  const path = v.get("path");
  if (path != null) {
    if (path.kind != JsonKind.String || !isHeaderToken(path.str) || path.str.charCodeAt(0) != 0x2f)
      return "pull.path must start with / and hold printable ASCII without spaces";
    c.pullPath = path.str;
  }
  const authority = v.get("authority");
  if (authority != null) {
    if (authority.kind != JsonKind.String || !isHeaderToken(authority.str))
      return "pull.authority must be a host name (printable ASCII without spaces)";
    c.pullAuthority = authority.str;
  }
  const interval = v.get("intervalMs");
  if (interval != null) {
    if (
      !isNonNegativeInteger(interval, <f64>PULL_MAX_INTERVAL_MS) ||
      interval.num < <f64>PULL_MIN_INTERVAL_MS
    )
      return (
        "pull.intervalMs must be an integer between " +
        PULL_MIN_INTERVAL_MS.toString() +
        " and " +
        PULL_MAX_INTERVAL_MS.toString()
      );
    c.pullIntervalMs = <u32>interval.num;
  }
  const timeout = v.get("timeoutMs");
  if (timeout != null) {
    if (!isNonNegativeInteger(timeout, <f64>PULL_MAX_TIMEOUT_MS) || timeout.num < 1)
      return "pull.timeoutMs must be an integer between 1 and " + PULL_MAX_TIMEOUT_MS.toString();
    c.pullTimeoutMs = <u32>timeout.num;
  }
  return "";
}
