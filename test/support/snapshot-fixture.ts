// Snapshots for tests: a test names only what it is about; everything else is a routable default
// (pool default/pool-a in FailClose, ready vLLM endpoints with fresh metrics, GIE's scheduler defaults).
// Fields the builder does not know (new snapshot sections) pass through unchanged. `flowControl` may be
// partial: what it leaves out is "no limit" pool-wide, round-robin, upstream's per-band defaults, no bands.
import { encodeSnapshot } from "../../sidecar/snapshot/encoder.ts";
import { DEFAULT_FLOW_BAND, DEFAULT_SCHEDULER } from "../../sidecar/snapshot/types.ts";
import type {
  FlowControlSection,
  SchedulerConfig,
  Snapshot,
  SnapshotEndpoint,
  SnapshotPool,
} from "../../sidecar/snapshot/types.ts";

/** A fixed creation time, so snapshots (and what the filter derives from them) are the same on every run. */
export const CREATED_MS = 1_795_000_000_000;

/** One endpoint: its address, plus whatever the test sets; pod names default to pod-<index>. */
export type EndpointFixture = Partial<SnapshotEndpoint> & { address: string };

export type SnapshotFixture = Partial<
  Omit<Snapshot, "generation" | "pool" | "endpoints" | "scheduler" | "flowControl">
> & {
  generation?: bigint | number;
  pool?: Partial<SnapshotPool>;
  endpoints?: readonly EndpointFixture[];
  scheduler?: Partial<SchedulerConfig>;
  /** Flow control on; e.g. `{ bands: [{ priority: 0, maxRequests: 2, maxBytes: 0, ttlMs: 500 }] }`. */
  flowControl?: Partial<FlowControlSection>;
};

/** A FLOW_CONTROL section from the fields a test names. */
export function flowControlWith(f: Partial<FlowControlSection> = {}): FlowControlSection {
  return {
    maxRequests: 0,
    maxBytes: 0,
    defaultTtlMs: 0,
    fairness: "round-robin",
    bands: [],
    ...f,
    defaultBand: { ...DEFAULT_FLOW_BAND, ...f.defaultBand },
  };
}

export function endpointWith(e: EndpointFixture, index: number): SnapshotEndpoint {
  return {
    podName: `pod-${index}`,
    port: 8000,
    ready: true,
    stale: false,
    hasMetrics: true,
    engine: "vllm",
    metricsAgeMs: 10,
    waiting: 0,
    running: 0,
    kvUsage: 0,
    maxLoras: 0,
    kvBlockSize: 16,
    kvBlockCount: 4096,
    runningAdapters: [],
    waitingAdapters: [],
    ...e,
  };
}

export function snapshotWith(o: SnapshotFixture = {}): Snapshot {
  const { flowControl, ...rest } = o;
  return {
    ...rest,
    ...(flowControl === undefined ? {} : { flowControl: flowControlWith(flowControl) }),
    generation: BigInt(o.generation ?? 1),
    createdAtMs: o.createdAtMs ?? CREATED_MS,
    pool: {
      namespace: "default",
      name: "pool-a",
      failureMode: "FailClose",
      strictModels: false,
      targetPorts: [8000],
      ...o.pool,
    },
    endpoints: (o.endpoints ?? []).map(endpointWith),
    models: o.models ?? [],
    objectives: o.objectives ?? [],
    rewrites: o.rewrites ?? [],
    scheduler: { ...DEFAULT_SCHEDULER, params: {}, ...o.scheduler },
  };
}

/** The wire bytes of snapshotWith(o), as a control push carries them. */
export function snapshotBytesWith(o: SnapshotFixture = {}): Uint8Array {
  return encodeSnapshot(snapshotWith(o));
}
