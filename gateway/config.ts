// The local gateway's configuration file (JSON or YAML): listeners, the Wasm module and its plugin config.
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";

export interface ListenerConfig {
  name: string;
  address: string;
  port: number; // 0 = pick a free port
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
  /** The JSON handed to the filter as its plugin configuration. */
  pluginConfig: unknown;
  /** Stand-in for a route's default cluster: used round robin when the filter sets no destination. */
  defaultUpstreams: string[];
  /** Upstream connect/response-header timeout. */
  upstreamTimeoutMs: number;
}

const DEFAULTS: Omit<GatewayConfig, "pluginConfig"> = {
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
};

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
  }
  if (cfg.pluginConfig === undefined) throw new ConfigError("pluginConfig is required");
  if (!Number.isInteger(cfg.workers) || cfg.workers < 1) throw new ConfigError("workers must be ≥ 1");
  for (const u of cfg.defaultUpstreams) {
    try {
      new URL(u);
    } catch {
      throw new ConfigError(`defaultUpstreams: ${u} is not a URL`);
    }
  }
  return cfg;
}

export function loadConfigFile(path: string): GatewayConfig {
  const text = readFileSync(path, "utf8");
  const raw: unknown = path.endsWith(".json") ? JSON.parse(text) : parseYaml(text);
  return normalizeConfig(raw, dirname(resolve(path)));
}
