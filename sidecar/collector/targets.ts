// What the collector scrapes for a pool: one target per ready endpoint (ip:port), with the engine's metric
// mapping and the metrics URL the pool's annotations ask for.
import { ENGINE_MAPPINGS, nameFilterQuery } from "./engines.ts";
import type { EngineMapping } from "./engines.ts";
import type { ScrapeTarget } from "./scraper.ts";
import type { PoolInventory } from "../inventory/types.ts";
import type { EngineType } from "../snapshot/types.ts";

/** The part of an endpoint scraping needs. */
export interface TargetEndpoint {
  address: string;
  port: number;
  ready: boolean;
  engine?: EngineType;
}

export interface ScrapeConfig {
  /** Engine for endpoints whose pod has no engine-type label. */
  defaultEngine?: EngineType;
  /** Metrics port; default: the endpoint's own (target) port. */
  metricsPort?: number;
  metricsPath?: string;
  /** Ask the server for only the mapping's metrics (`?name[]=…`, honoured by Prometheus' Python client,
   *  which vLLM and SGLang serve /metrics with). Default true; servers that ignore it send the whole page. */
  metricsNameFilter?: boolean;
  /** `h2c`: HTTP/2 cleartext with prior knowledge (an `appProtocol: kubernetes.io/h2c` pool's target ports). */
  scheme?: "http" | "https" | "h2c";
  /** Per-engine mapping overrides. */
  mappings?: Partial<Record<EngineType, EngineMapping>>;
}

export function endpointKey(address: string, port: number): string {
  return `${address}:${port}`;
}

/** Scrape targets for a pool: only ready endpoints are scraped. */
export function scrapeTargets(
  pool: { endpoints: readonly TargetEndpoint[] },
  cfg: ScrapeConfig = {},
): ScrapeTarget[] {
  const path = cfg.metricsPath ?? "/metrics";
  const scheme = cfg.scheme ?? "http";
  const out: ScrapeTarget[] = [];
  const seen = new Set<string>();
  for (const e of pool.endpoints) {
    const key = endpointKey(e.address, e.port);
    if (!e.ready || seen.has(key)) continue;
    seen.add(key);
    const engine = e.engine ?? cfg.defaultEngine ?? "vllm";
    const host = e.address.includes(":") ? `[${e.address}]` : e.address;
    const mapping = cfg.mappings?.[engine] ?? ENGINE_MAPPINGS[engine];
    const query = cfg.metricsNameFilter === false ? "" : nameFilterQuery(mapping);
    const sep = query === "" ? "" : path.includes("?") ? "&" : "?";
    out.push({ key, url: `${scheme}://${host}:${cfg.metricsPort ?? e.port}${path}${sep}${query}`, mapping });
  }
  return out;
}

/**
 * Scrape settings from the pool's annotations, over sidecar-wide defaults (flags). An h2c pool's target ports speak
 * only HTTP/2, so its metrics there are scraped over h2c; a separate metrics port (annotation) stays HTTP/1.1.
 */
export function scrapeConfigFromInventory(inv: PoolInventory, defaults: ScrapeConfig = {}): ScrapeConfig {
  const a = inv.pool.annotations;
  const h2c = inv.pool.appProtocol === "kubernetes.io/h2c" && a.metricsPort === undefined;
  return {
    ...defaults,
    ...(h2c ? { scheme: "h2c" as const } : {}),
    ...(a.engine === undefined ? {} : { defaultEngine: a.engine }),
    ...(a.metricsPort === undefined ? {} : { metricsPort: a.metricsPort }),
    ...(a.metricsPath === undefined ? {} : { metricsPath: a.metricsPath }),
    ...(a.metricsNameFilter === undefined ? {} : { metricsNameFilter: a.metricsNameFilter }),
  };
}
