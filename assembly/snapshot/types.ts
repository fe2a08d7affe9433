// The decoded snapshot (docs/snapshot-format.md). Wire units are kept (kvUsage in 1/10000) so the
// data path never converts; the probe converts to the documented JSON form.

export const ENGINE_NAMES: string[] = ["vllm", "sglang", "trtllm-serve", "triton-trtllm"];
export const CRITICALITY_NAMES: string[] = ["Unset", "Critical", "Standard", "Sheddable"];
export const NEVER_SCRAPED: u32 = 0xffffffff;

export class Pool {
  namespace: string = "";
  name: string = "";
  failOpen: bool = false;
  strictModels: bool = false;
  targetPorts: u16[] = [];
}

export class Endpoint {
  podName: string = "";
  address: string = "";
  port: u16 = 0;
  ready: bool = false;
  stale: bool = false;
  hasMetrics: bool = false;
  engine: u8 = 0;
  metricsAgeMs: u32 = NEVER_SCRAPED;
  waiting: u32 = 0;
  running: u32 = 0;
  kvUsage: u16 = 0;
  maxLoras: u16 = 0;
  kvBlockSize: u16 = 0;
  kvBlockCount: u32 = 0;
  runningAdapters: string[] = [];
  waitingAdapters: string[] = [];
  /** Precomputed `x-gateway-destination-endpoint` value. */
  hostPort: string = "";
}

export class WeightedName {
  name: string = "";
  weight: u32 = 0;
}

export class Model {
  name: string = "";
  criticality: u8 = 0;
  targets: WeightedName[] = [];
}

export class Objective {
  name: string = "";
  hasPriority: bool = false;
  priority: i32 = 0;
}

export class Rewrite {
  matches: string[] = [];
  targets: WeightedName[] = [];
}

export class SchedulerConfig {
  profile: string = "default";
  queueThreshold: u32 = 5;
  kvThreshold: u16 = 8000;
  metricsStalenessMs: u32 = 200;
  paramKeys: string[] = [];
  paramValues: f64[] = [];
}

/** Parameter kinds in the PLUGINS section (docs/snapshot-format.md). */
export const PARAM_NUMBER: u8 = 0;
export const PARAM_STRING: u8 = 1;
export const PARAM_BOOL: u8 = 2;

/** One plugin parameter as the sidecar validated it: durations arrive as milliseconds (PARAM_NUMBER). */
export class PluginParam {
  key: string = "";
  kind: u8 = PARAM_NUMBER;
  num: f64 = 0;
  str: string = "";
  flag: bool = false;
}

/** One `plugins[]` entry of an EndpointPickerConfig. */
export class PluginSpec {
  type: string = "";
  /** The config's `name`, which defaults to the type. */
  name: string = "";
  params: PluginParam[] = [];
}

/** A `schedulingProfiles[].plugins[]` entry: an index into SchedulingSpec.plugins and its weight. */
export class ProfileEntry {
  plugin: i32 = 0;
  weight: f64 = 1;
}

export class ProfileSpec {
  name: string = "";
  entries: ProfileEntry[] = [];
}

/** No plugin index (PLUGINS section: 0xFFFF). */
export const NO_PLUGIN: i32 = -1;

/** The PLUGINS section: the validated EndpointPickerConfig the filter builds its scheduler from. */
export class SchedulingSpec {
  plugins: PluginSpec[] = [];
  profiles: ProfileSpec[] = [];
  /** Index of the profile handler plugin, or NO_PLUGIN (single-profile-handler). */
  handler: i32 = NO_PLUGIN;
  /** Index of the saturation detector plugin, or NO_PLUGIN (utilization-detector, default parameters). */
  saturation: i32 = NO_PLUGIN;
  /** CRC-32 of the section payload: the filter rebuilds its profiles only when this changes. */
  crc: u32 = 0;
}

/** FLOW_CONTROL section: one priority band's limits. */
export class FlowBand {
  priority: i32 = 0;
  /** 0 = no limit on count. */
  maxRequests: u32 = 0;
  /** 0 = no limit on bytes. */
  maxBytes: f64 = 0;
  /** 0 = the section's defaultTtlMs. */
  ttlMs: u32 = 0;
}

/** Fairness inside a band: rotate over fairness ids (FCFS per id), or one FIFO across all ids. */
export const FAIRNESS_ROUND_ROBIN: u8 = 0;
export const FAIRNESS_GLOBAL_STRICT: u8 = 1;

/** The FLOW_CONTROL section (tag 9): present only when the config turns flow control on. */
export class FlowControlSpec {
  /** Pool-wide (per worker VM as enforced) limits; 0 = none. */
  maxRequests: u32 = 0;
  maxBytes: f64 = 0;
  /** TTL for bands that give none; 0 = no TTL (Envoy's stream idle timeout still applies). */
  defaultTtlMs: u32 = 0;
  fairness: u8 = FAIRNESS_ROUND_ROBIN;
  /** Limits for priorities no band names. */
  defaultBand: FlowBand = new FlowBand();
  /** Sorted by priority, highest first; priorities are unique. */
  bands: FlowBand[] = [];
  /** CRC-32 of the section payload. */
  crc: u32 = 0;
}

export class Snapshot {
  generation: u64 = 0;
  createdAtMs: u64 = 0;
  crc: u32 = 0;
  pool: Pool = new Pool();
  endpoints: Endpoint[] = [];
  models: Model[] = [];
  objectives: Objective[] = [];
  rewrites: Rewrite[] = [];
  scheduler: SchedulerConfig = new SchedulerConfig();
  /** The PLUGINS section (format version 2); null = none sent, the built-in `default` config applies. */
  scheduling: SchedulingSpec | null = null;
  /** The FLOW_CONTROL section; null = flow control off (requests are admitted or shed at once). */
  flowControl: FlowControlSpec | null = null;
}
