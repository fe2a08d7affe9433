// Adapts a PoolInventory to the flat PoolView the snapshot builder takes (sidecar/snapshot/builder.ts).
import type { PoolView, ScrapeConfig } from "../snapshot/builder.ts";
import type { PoolInventory } from "./types.ts";

export function toPoolView(inv: PoolInventory): PoolView {
  return {
    namespace: inv.pool.namespace,
    name: inv.pool.name,
    failureMode: inv.pool.failureMode,
    strictModels: inv.pool.annotations.strictModels,
    targetPorts: inv.pool.targetPorts,
    endpoints: inv.endpoints,
    models: inv.models,
    objectives: inv.objectives,
    rewrites: inv.rewrites,
  };
}

/** The pool's scrape settings from its annotations (engine, metrics port and path). */
export function scrapeConfigOf(inv: PoolInventory): ScrapeConfig {
  const a = inv.pool.annotations;
  const cfg: ScrapeConfig = {};
  if (a.engine !== undefined) cfg.defaultEngine = a.engine;
  if (a.metricsPort !== undefined) cfg.metricsPort = a.metricsPort;
  if (a.metricsPath !== undefined) cfg.metricsPath = a.metricsPath;
  return cfg;
}
