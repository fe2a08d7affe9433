// The decoded form of a snapshot (docs/snapshot-format.md § "The decoded form"): what the encoder takes,
// what the TypeScript decoder returns, and (with generation as a decimal string) the golden JSON shape.

export type EngineType = "vllm" | "sglang" | "trtllm-serve" | "triton-trtllm";
export type FailureMode = "FailClose" | "FailOpen";
export type Criticality = "Unset" | "Critical" | "Standard" | "Sheddable";

export interface SnapshotPool {
  namespace: string;
  name: string;
  failureMode: FailureMode;
  strictModels: boolean;
  targetPorts: number[];
}

export interface SnapshotEndpoint {
  podName: string;
  /** IPv4 or IPv6 literal, no brackets. */
  address: string;
  port: number;
  ready: boolean;
  stale: boolean;
  hasMetrics: boolean;
  engine: EngineType;
  /** Age of the metrics at createdAtMs; null = never scraped. */
  metricsAgeMs: number | null;
  waiting: number;
  running: number;
  /** 0..1, rounded to 1/10000 on the wire. */
  kvUsage: number;
  maxLoras: number;
  kvBlockSize: number;
  kvBlockCount: number;
  runningAdapters: string[];
  waitingAdapters: string[];
}

export interface ModelTarget {
  name: string;
  weight: number;
}

export interface SnapshotModel {
  name: string;
  criticality: Criticality;
  targets: ModelTarget[];
}

export interface SnapshotObjective {
  name: string;
  /** null = unset (the filter treats it as 0). */
  priority: number | null;
}

export interface RewriteTarget {
  model: string;
  weight: number;
}

export interface SnapshotRewrite {
  /** Exact model names; empty matches every model. */
  matches: string[];
  targets: RewriteTarget[];
}

export interface SchedulerConfig {
  profile: string;
  queueThreshold: number;
  /** 0..1 */
  kvThreshold: number;
  metricsStalenessMs: number;
  params: Record<string, number>;
}

export interface Snapshot {
  generation: bigint;
  createdAtMs: number;
  pool: SnapshotPool;
  endpoints: SnapshotEndpoint[];
  models: SnapshotModel[];
  objectives: SnapshotObjective[];
  rewrites: SnapshotRewrite[];
  scheduler: SchedulerConfig;
}

/** Wire constants shared by encoder and decoder. */
export const SNAPSHOT_MAGIC = 0x53505045; // "EPPS" read as little-endian u32
export const SNAPSHOT_VERSION = 1;
export const HEADER_LENGTH = 32;
export const NEVER_SCRAPED = 0xffffffff;
export const MAX_STRING_BYTES = 1024;
export const MAX_TARGET_PORTS = 8;
export const MAX_MODEL_TARGETS = 10;
export const MAX_REWRITE_MATCHES = 16;
export const MAX_REWRITE_TARGETS = 16;
export const MAX_ADAPTERS = 255;

export const TAG = {
  strings: 1,
  pool: 2,
  endpoints: 3,
  models: 4,
  objectives: 5,
  rewrites: 6,
  scheduler: 7,
} as const;

export const ENGINES: readonly EngineType[] = ["vllm", "sglang", "trtllm-serve", "triton-trtllm"];
export const CRITICALITIES: readonly Criticality[] = ["Unset", "Critical", "Standard", "Sheddable"];
export const FAILURE_MODES: readonly FailureMode[] = ["FailClose", "FailOpen"];

/** GIE defaults the filter also uses when no SCHEDULER section is present. */
export const DEFAULT_SCHEDULER: Readonly<SchedulerConfig> = Object.freeze({
  profile: "default",
  queueThreshold: 5,
  kvThreshold: 0.8,
  metricsStalenessMs: 200,
  params: {},
});
