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
}
