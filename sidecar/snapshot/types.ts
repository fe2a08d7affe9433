// The decoded form of a snapshot (docs/snapshot-format.md § "The decoded form"): what the encoder takes,
// what the TypeScript decoder returns, and (with generation as a decimal string) the golden JSON shape.

export type EngineType = "vllm" | "sglang" | "trtllm-serve" | "triton-trtllm";
/** What a decoder reports for an engine code it does not know (a newer sidecar's engine): not an error. */
export type DecodedEngine = EngineType | "unknown";
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
  /** The encoder refuses "unknown"; decoders report it for codes they do not know. */
  engine: DecodedEngine;
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

/** A plugin parameter as the sidecar validated it: durations are milliseconds, enums are strings. */
export type PluginParamValue = number | string | boolean;

export interface SchedulingPlugin {
  type: string;
  /** The config's `name` (defaults to the type). */
  name: string;
  params: Record<string, PluginParamValue>;
}

export interface SchedulingProfileEntry {
  /** Index into SchedulingSection.plugins. */
  plugin: number;
  /** Finite, >= 0. */
  weight: number;
}

export interface SchedulingProfile {
  name: string;
  entries: SchedulingProfileEntry[];
}

/** The PLUGINS section: a validated EndpointPickerConfig (docs/snapshot-format.md). */
export interface SchedulingSection {
  plugins: SchedulingPlugin[];
  /** At least one. */
  profiles: SchedulingProfile[];
  /** Plugin index of the profile handler; null = single-profile-handler. */
  handler: number | null;
  /** Plugin index of the saturation detector; null = utilization-detector with its defaults. */
  saturation: number | null;
  /** Decoders only: CRC-32 of the section payload (the encoder ignores it). */
  crc?: number;
}

/** Fairness inside a band: rotate over fairness ids (FCFS per id), or one FIFO across all ids. */
export type FairnessPolicy = "round-robin" | "global-strict";

/** One band's limits; 0 = no limit (ttlMs 0 = the section's defaultTtlMs). */
export interface FlowBandLimits {
  /** u32. */
  maxRequests: number;
  /** An integer 0..2^53-1 (f64 on the wire). */
  maxBytes: number;
  /** u32. */
  ttlMs: number;
}

export interface FlowBand extends FlowBandLimits {
  /** i32: requests whose objective has this priority queue here. */
  priority: number;
}

/** The FLOW_CONTROL section (tag 9): present only when the config turns flow control on. */
export interface FlowControlSection {
  /** Pool-wide limits; 0 = none. */
  maxRequests: number;
  maxBytes: number;
  /** TTL for bands that give none; 0 = no TTL. */
  defaultTtlMs: number;
  fairness: FairnessPolicy;
  /** Limits for priorities no band names. */
  defaultBand: FlowBandLimits;
  /** Sorted by priority, highest first; priorities unique; at most 255. */
  bands: FlowBand[];
  /** Decoders only: CRC-32 of the section payload (the encoder ignores it). */
  crc?: number;
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
  /** The PLUGINS section; absent = none (the filter's built-in default config). */
  scheduling?: SchedulingSection;
  /** The FLOW_CONTROL section; absent = flow control off. */
  flowControl?: FlowControlSection;
}

/** Wire constants shared by encoder and decoder. */
export const SNAPSHOT_MAGIC = 0x53505045; // "EPPS" read as little-endian u32
/** The version the encoder writes; decoders also read VERSION_1 (no PLUGINS section). */
export const SNAPSHOT_VERSION = 2;
export const SNAPSHOT_VERSION_1 = 1;
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
  plugins: 8,
  flowControl: 9,
} as const;

/** PLUGINS section: parameter kinds and the "no plugin" index. */
export const PARAM_KIND = { number: 0, string: 1, bool: 2 } as const;
export const NO_PLUGIN_INDEX = 0xffff;
export const MAX_PLUGINS = 0xfffe;
export const MAX_PLUGIN_PARAMS = 255;
export const MAX_PROFILES = 255;
export const MAX_PROFILE_ENTRIES = 255;

/** FLOW_CONTROL section: fairness codes (index = wire byte) and the band limit (u8 count). */
export const FAIRNESS_POLICIES: readonly FairnessPolicy[] = ["round-robin", "global-strict"];
export const MAX_FLOW_BANDS = 255;

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

/** Upstream's per-band limits when a config names none (GIE flow control: 5,000 requests, 1 GiB), no TTL. */
export const DEFAULT_FLOW_BAND: Readonly<FlowBandLimits> = Object.freeze({
  maxRequests: 5000,
  maxBytes: 2 ** 30,
  ttlMs: 0,
});
