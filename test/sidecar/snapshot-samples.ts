// Sample snapshots shared by the golden-vector script, the snapshot tests and the sidecar benchmark.
// Everything is deterministic: fixed timestamps and a seeded PRNG.
import type { EngineType, Snapshot, SnapshotEndpoint } from "../../sidecar/snapshot/types.ts";
import { mulberry32 } from "../../sim/rng.ts";

const CREATED_AT = 1795000000000; // 2026-11-17, fixed so golden files are stable
const GENERATION = 1795000000000000n;

function endpoint(
  over: Partial<SnapshotEndpoint> & Pick<SnapshotEndpoint, "podName" | "address">,
): SnapshotEndpoint {
  return {
    port: 8000,
    ready: true,
    stale: false,
    hasMetrics: true,
    engine: "vllm",
    metricsAgeMs: 12,
    waiting: 0,
    running: 0,
    kvUsage: 0,
    maxLoras: 0,
    kvBlockSize: 16,
    kvBlockCount: 4096,
    runningAdapters: [],
    waitingAdapters: [],
    ...over,
  };
}

function base(name: string, endpoints: SnapshotEndpoint[]): Snapshot {
  return {
    generation: GENERATION,
    createdAtMs: CREATED_AT,
    pool: { namespace: "default", name, failureMode: "FailClose", strictModels: false, targetPorts: [8000] },
    endpoints,
    models: [],
    objectives: [],
    rewrites: [],
    scheduler: {
      profile: "default",
      queueThreshold: 5,
      kvThreshold: 0.8,
      metricsStalenessMs: 200,
      params: {},
    },
  };
}

export function minimalSnapshot(): Snapshot {
  return base("minimal", [endpoint({ podName: "vllm-0", address: "10.0.0.1" })]);
}

export function realisticSnapshot(): Snapshot {
  const s = base("qwen3-32b", [
    endpoint({
      podName: "vllm-qwen3-32b-7c9f-abcde",
      address: "10.244.1.17",
      waiting: 3,
      running: 14,
      kvUsage: 0.4523,
      maxLoras: 4,
      kvBlockCount: 12873,
      metricsAgeMs: 21,
      runningAdapters: ["sql-lora", "tweet-summary-1"],
      waitingAdapters: ["tweet-summary-2"],
    }),
    endpoint({
      podName: "vllm-qwen3-32b-7c9f-fghij",
      address: "10.244.2.9",
      waiting: 0,
      running: 9,
      kvUsage: 0.3081,
      maxLoras: 4,
      kvBlockCount: 12873,
      metricsAgeMs: 7,
      runningAdapters: ["sql-lora"],
    }),
    endpoint({
      podName: "vllm-qwen3-32b-7c9f-klmno",
      address: "10.244.3.4",
      port: 8001,
      stale: true,
      waiting: 11,
      running: 31,
      kvUsage: 0.9712,
      maxLoras: 4,
      kvBlockCount: 12873,
      metricsAgeMs: 1450,
      runningAdapters: ["tweet-summary-1", "sql-lora"],
      waitingAdapters: ["sql-lora"],
    }),
    endpoint({
      podName: "vllm-qwen3-32b-7c9f-pqrst",
      address: "10.244.3.5",
      ready: false,
      hasMetrics: false,
      metricsAgeMs: null,
      kvBlockSize: 0,
      kvBlockCount: 0,
    }),
  ]);
  s.pool.failureMode = "FailOpen";
  s.pool.strictModels = true;
  s.pool.targetPorts = [8000, 8001];
  s.models = [
    { name: "qwen3-32b", criticality: "Critical", targets: [] },
    {
      name: "tweet-summary",
      criticality: "Standard",
      targets: [
        { name: "tweet-summary-1", weight: 90 },
        { name: "tweet-summary-2", weight: 10 },
      ],
    },
    { name: "sql-lora", criticality: "Sheddable", targets: [{ name: "sql-lora", weight: 0 }] },
    { name: "legacy-chat", criticality: "Unset", targets: [] },
  ];
  s.objectives = [
    { name: "premium", priority: 100 },
    { name: "batch", priority: -10 },
    { name: "default-objective", priority: null },
  ];
  s.rewrites = [
    { matches: ["gpt-4o", "gpt-4o-mini"], targets: [{ model: "qwen3-32b", weight: 1 }] },
    {
      matches: [],
      targets: [
        { model: "qwen3-32b", weight: 3 },
        { model: "tweet-summary-1", weight: 1 },
      ],
    },
  ];
  s.scheduler = {
    profile: "gie-default",
    queueThreshold: 5,
    kvThreshold: 0.8,
    metricsStalenessMs: 200,
    params: {
      "queue.weight": 2,
      "kv-cache.weight": 2,
      "prefix.weight": 3,
      "prefix.blockSize": 64,
      "lora.affinity": 0.8,
    },
  };
  return s;
}

export function ipv6Snapshot(): Snapshot {
  const s = base("ipv6", [
    endpoint({ podName: "vllm-v6-0", address: "fd00:10:244::1a", kvUsage: 0.125 }),
    endpoint({ podName: "vllm-v6-1", address: "::1", port: 8001 }),
  ]);
  s.pool.targetPorts = [8000, 8001];
  return s;
}

export function emptySnapshot(): Snapshot {
  return base("empty", []);
}

export function unicodeSnapshot(): Snapshot {
  const s = base("modèles-日本語", [
    endpoint({ podName: "pod-ünïcödé-0", address: "10.1.0.1", runningAdapters: ["lora-中文", "lora-🚀"] }),
  ]);
  s.pool.namespace = "équipe-ß";
  s.models = [{ name: "модель-🚀", criticality: "Standard", targets: [{ name: "lora-中文", weight: 1 }] }];
  s.objectives = [{ name: "优先级", priority: -1 }];
  s.scheduler.params = { ключ: 0.5 };
  return s;
}

const ENGINE_LIST: EngineType[] = ["vllm", "sglang", "trtllm-serve", "triton-trtllm"];

/** A pool of `n` endpoints with seeded random metrics (kvUsage on the 1/10000 grid so round trips are exact). */
export function largeSnapshot(n: number, seed = 1): Snapshot {
  const rnd = mulberry32(seed);
  const adapters = Array.from({ length: 16 }, (_, i) => `adapter-${i}`);
  const pick = (k: number) => Array.from({ length: k }, () => adapters[Math.floor(rnd() * adapters.length)]!);
  const endpoints: SnapshotEndpoint[] = [];
  for (let i = 0; i < n; i++) {
    const never = rnd() < 0.02;
    const host = i + 1;
    endpoints.push(
      endpoint({
        podName: `vllm-large-${i.toString().padStart(4, "0")}`,
        address: `10.${(host >> 16) & 255}.${(host >> 8) & 255}.${host & 255}`,
        ready: rnd() > 0.05,
        stale: rnd() < 0.03,
        hasMetrics: !never,
        metricsAgeMs: never ? null : Math.floor(rnd() * 200),
        waiting: Math.floor(rnd() * 20),
        running: Math.floor(rnd() * 64),
        kvUsage: Math.floor(rnd() * 10001) / 10000,
        maxLoras: 8,
        kvBlockCount: 8192 + Math.floor(rnd() * 8192),
        runningAdapters: [...new Set(pick(Math.floor(rnd() * 4)))],
        waitingAdapters: [...new Set(pick(Math.floor(rnd() * 2)))],
      }),
    );
  }
  const s = base("large", endpoints);
  s.models = adapters.map((a) => ({ name: a, criticality: "Standard", targets: [] }));
  return s;
}

/** Random snapshot exercising every field and limit, for round-trip tests. */
export function randomSnapshot(seed: number): Snapshot {
  const rnd = mulberry32(seed);
  const int = (max: number) => Math.floor(rnd() * (max + 1));
  const word = () => {
    const alphabet = "abcxyz-_.0189éü日🚀";
    const chars = Array.from(alphabet);
    return Array.from({ length: 1 + int(12) }, () => chars[int(chars.length - 1)]).join("");
  };
  const names = Array.from({ length: 1 + int(20) }, word);
  const name = () => names[int(names.length - 1)]!;
  const n = int(40);
  const endpoints: SnapshotEndpoint[] = [];
  for (let i = 0; i < n; i++) {
    const v6 = rnd() < 0.3;
    endpoints.push({
      podName: name(),
      address: v6 ? `fd00::${i.toString(16)}` : `192.168.${i >> 8}.${i & 255}`,
      port: 1 + int(65534),
      ready: rnd() < 0.5,
      stale: rnd() < 0.5,
      hasMetrics: rnd() < 0.5,
      engine: ENGINE_LIST[int(3)]!,
      metricsAgeMs: rnd() < 0.2 ? null : int(0xfffffffe),
      waiting: int(0xffffffff),
      running: int(1000),
      kvUsage: int(10000) / 10000,
      maxLoras: int(0xffff),
      kvBlockSize: int(0xffff),
      kvBlockCount: int(0xffffffff),
      runningAdapters: Array.from({ length: int(5) }, name),
      waitingAdapters: Array.from({ length: int(5) }, name),
    });
  }
  const ports = Array.from({ length: 1 + int(7) }, () => 1 + int(65534));
  const modelNames = [...new Set(Array.from({ length: int(8) }, word))];
  const objectiveNames = [...new Set(Array.from({ length: int(8) }, word))];
  const params: Record<string, number> = {};
  for (let i = int(6); i > 0; i--) params[word()] = (rnd() - 0.5) * 1e6;
  return {
    generation: BigInt(int(0xffffffff)) * 0x100000000n + BigInt(int(0xffffffff)),
    createdAtMs: int(2 ** 42),
    pool: {
      namespace: word(),
      name: word(),
      failureMode: rnd() < 0.5 ? "FailOpen" : "FailClose",
      strictModels: rnd() < 0.5,
      targetPorts: ports,
    },
    endpoints,
    models: modelNames.map((m) => ({
      name: m,
      criticality: (["Unset", "Critical", "Standard", "Sheddable"] as const)[int(3)]!,
      targets: Array.from({ length: int(10) }, () => ({ name: name(), weight: int(1_000_000) })),
    })),
    objectives: objectiveNames.map((o) => ({ name: o, priority: rnd() < 0.3 ? null : int(2000) - 1000 })),
    rewrites: Array.from({ length: int(5) }, () => ({
      matches: Array.from({ length: int(16) }, name),
      targets: Array.from({ length: 1 + int(15) }, () => ({ model: name(), weight: 1 + int(999_999) })),
    })),
    scheduler: {
      profile: word(),
      queueThreshold: int(100),
      kvThreshold: int(10000) / 10000,
      metricsStalenessMs: int(5000),
      params,
    },
  };
}

/** The golden vectors written to test/fixtures/snapshots/<name>.{bin,json}. */
/** A pool with a PLUGINS section (format version 2): GIE's default config plus every parameter kind. */
export function pluginsSnapshot(): Snapshot {
  const s = realisticSnapshot();
  s.pool.name = "with-plugins";
  s.scheduler = { ...s.scheduler, profile: "gie-default", queueThreshold: 8, kvThreshold: 0.9 };
  s.scheduling = {
    plugins: [
      { type: "queue-scorer", name: "queue-scorer", params: {} },
      { type: "kv-cache-utilization-scorer", name: "kv-cache-utilization-scorer", params: {} },
      {
        type: "prefix-cache-scorer",
        name: "prefix",
        params: { blockSizeTokens: 16, maxPrefixBlocksToMatch: 256, autoTune: false },
      },
      { type: "max-score-picker", name: "max-score-picker", params: { maxNumOfEndpoints: 1 } },
      { type: "single-profile-handler", name: "single-profile-handler", params: {} },
      {
        type: "utilization-detector",
        name: "utilization-detector",
        params: { queueDepthThreshold: 8, kvCacheUtilThreshold: 0.9, metricsStalenessThreshold: 150 },
      },
      {
        type: "session-affinity-scorer",
        name: "sessions",
        params: { "encodedEndpointHeaderConfig.header": "x-session-token" },
      },
    ],
    profiles: [
      {
        name: "default",
        entries: [
          { plugin: 0, weight: 2 },
          { plugin: 1, weight: 2 },
          { plugin: 2, weight: 3 },
          { plugin: 6, weight: 0.5 },
          { plugin: 3, weight: 1 },
        ],
      },
    ],
    handler: 4,
    saturation: 5,
  };
  return s;
}

/** Flow control on (FLOW_CONTROL section): three bands, one with its own TTL, global-strict fairness. */
export function flowControlSnapshot(): Snapshot {
  const s = pluginsSnapshot();
  s.pool.name = "with-flow-control";
  s.flowControl = {
    maxRequests: 20000,
    maxBytes: 10 * 2 ** 30,
    defaultTtlMs: 30000,
    fairness: "global-strict",
    defaultBand: { maxRequests: 5000, maxBytes: 2 ** 30, ttlMs: 0 },
    bands: [
      { priority: 100, maxRequests: 1000, maxBytes: 2 ** 30, ttlMs: 60000 },
      { priority: 0, maxRequests: 5000, maxBytes: 2 ** 30, ttlMs: 0 },
      { priority: -10, maxRequests: 0, maxBytes: 0, ttlMs: 5000 },
    ],
  };
  return s;
}

export const GOLDEN_CASES: Record<string, () => Snapshot> = {
  plugins: pluginsSnapshot,
  "flow-control": flowControlSnapshot,
  minimal: minimalSnapshot,
  realistic: realisticSnapshot,
  ipv6: ipv6Snapshot,
  "empty-endpoints": emptySnapshot,
  unicode: unicodeSnapshot,
  "endpoints-1000": () => largeSnapshot(1000),
};
