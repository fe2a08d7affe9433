// Combines one pool's inventory (spec, endpoints, models, objectives, rewrites) with the collector's
// per-endpoint state into a Snapshot. PoolView is the minimum the builder needs; poolViewFromInventory()
// adapts the inventory's PoolInventory. What to scrape is the collector's (collector/targets.ts).
import type { EndpointMetrics } from "../collector/engines.ts";
import { endpointKey } from "../collector/targets.ts";
import type { PoolInventory } from "../inventory/types.ts";
import { DEFAULT_SCHEDULER, MAX_ADAPTERS, MAX_STRING_BYTES, NEVER_SCRAPED } from "./types.ts";
import type {
  EngineType,
  FailureMode,
  FlowControlSection,
  SchedulerConfig,
  SchedulingSection,
  Snapshot,
  SnapshotEndpoint,
  SnapshotModel,
  SnapshotObjective,
  SnapshotRewrite,
} from "./types.ts";

export interface EndpointView {
  podName: string;
  /** Pod IP (IPv4 or IPv6, no brackets). */
  address: string;
  port: number;
  ready: boolean;
  /** From the pod's engine-type label; falls back to the pool's engine. */
  engine?: EngineType;
}

export interface PoolView {
  namespace: string;
  name: string;
  failureMode: FailureMode;
  strictModels?: boolean;
  targetPorts: number[];
  endpoints: EndpointView[];
  models?: SnapshotModel[];
  objectives?: SnapshotObjective[];
  /** Already in precedence order. */
  rewrites?: SnapshotRewrite[];
  scheduler?: Partial<SchedulerConfig>;
  /** The validated EndpointPickerConfig (PLUGINS section); absent = the filter's built-in default. */
  scheduling?: SchedulingSection;
  /** The config's flow control (FLOW_CONTROL section); absent = off. */
  flowControl?: FlowControlSection;
}

/** What the builder reads from the collector (the Scraper satisfies it). */
export interface MetricsSource {
  state(key: string): { metrics?: EndpointMetrics } | undefined;
  freshness(key: string, nowMs: number): { ageMs?: number; stale: boolean };
}

const ascii = /^[\x20-\x7e]*$/;
function fitsString(s: string): boolean {
  return s.length <= MAX_STRING_BYTES && (ascii.test(s) || Buffer.byteLength(s) <= MAX_STRING_BYTES);
}

/** The snapshot's copy of each adapter list the collector returned (its lists are shared and immutable). */
const adapterCopies = new WeakMap<readonly string[], string[]>();

/** Adapter lists come from model servers: drop names the format cannot carry rather than fail the snapshot. */
function adapters(list: readonly string[]): string[] {
  if (list.length === 0) return [];
  let out = adapterCopies.get(list);
  if (out === undefined) {
    out = list.length <= MAX_ADAPTERS ? [...list] : list.slice(0, MAX_ADAPTERS);
    if (!out.every(fitsString)) out = out.filter(fitsString);
    adapterCopies.set(list, out);
  }
  return out;
}

/** Each inventory endpoint's scraper key, made once per endpoint object rather than on every build. */
const endpointKeys = new WeakMap<EndpointView, string>();

function keyOf(e: EndpointView): string {
  let key = endpointKeys.get(e);
  if (key === undefined) endpointKeys.set(e, (key = endpointKey(e.address, e.port)));
  return key;
}

export interface BuildOptions {
  generation: bigint;
  nowMs: number;
  defaultEngine?: EngineType;
}

export function buildSnapshot(pool: PoolView, metrics: MetricsSource, opts: BuildOptions): Snapshot {
  const now = opts.nowMs;
  const endpoints: SnapshotEndpoint[] = [];
  const seen = new Set<string>();
  for (const e of pool.endpoints) {
    const key = keyOf(e);
    if (seen.has(key)) continue; // the format forbids duplicates; the first one wins
    seen.add(key);
    const engine = e.engine ?? opts.defaultEngine ?? "vllm";
    const m = metrics.state(key)?.metrics;
    const f = metrics.freshness(key, now);
    endpoints.push({
      podName: e.podName,
      address: e.address,
      port: e.port,
      ready: e.ready,
      stale: m === undefined || f.stale,
      hasMetrics: m !== undefined,
      engine,
      metricsAgeMs:
        m === undefined || f.ageMs === undefined ? null : Math.min(NEVER_SCRAPED - 1, Math.round(f.ageMs)),
      waiting: m?.waiting ?? 0,
      running: m?.running ?? 0,
      kvUsage: m?.kvUsage ?? 0,
      maxLoras: m?.maxLoras ?? 0,
      kvBlockSize: m?.kvBlockSize ?? 0,
      kvBlockCount: m?.kvBlockCount ?? 0,
      runningAdapters: m ? adapters(m.runningAdapters) : [],
      waitingAdapters: m ? adapters(m.waitingAdapters) : [],
    });
  }
  return {
    generation: opts.generation,
    createdAtMs: now,
    pool: {
      namespace: pool.namespace,
      name: pool.name,
      failureMode: pool.failureMode,
      strictModels: pool.strictModels ?? false,
      targetPorts: pool.targetPorts,
    },
    endpoints,
    models: pool.models ?? [],
    objectives: pool.objectives ?? [],
    rewrites: pool.rewrites ?? [],
    scheduler: { ...DEFAULT_SCHEDULER, params: {}, ...pool.scheduler },
    ...(pool.scheduling === undefined ? {} : { scheduling: pool.scheduling }),
    ...(pool.flowControl === undefined ? {} : { flowControl: pool.flowControl }),
  };
}

/** The inventory's pool (sidecar/inventory/types.ts) as the builder's input. */
export function poolViewFromInventory(
  inv: PoolInventory,
  scheduler?: Partial<SchedulerConfig>,
  config: { section?: SchedulingSection; flowControl?: FlowControlSection } = {},
): PoolView {
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
    ...(scheduler === undefined ? {} : { scheduler }),
    ...(config.section === undefined ? {} : { scheduling: config.section }),
    ...(config.flowControl === undefined ? {} : { flowControl: config.flowControl }),
  };
}
