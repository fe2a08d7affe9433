// A run: one workload × policies × QPS stages on one seed. Every policy sees the same arrival
// sequence at a given QPS (the workload generator is seeded by the run's seed only).
import { readFileSync } from "node:fs";
import { FILTER_WASM_PATH, isFlowControlPolicy } from "./filter-policy.ts";
import { FILTER_POLICIES, parsePolicyName } from "./policies.ts";
import { runStage, type RunSettings, type StageResult } from "./harness.ts";
import { SERVICE_CLIENT_DEFAULTS } from "./k8s-service.ts";

export interface SweepOptions extends RunSettings {
  policies: string[];
  qps: number[];
}

export interface RoutingRun {
  kind: "routing-quality";
  workload: { name: string; description: string };
  config: {
    policies: string[];
    qps: number[];
    seed: number;
    pods: number;
    preset: string;
    /** Per-pod presets when the workload mixes them (heterogeneous). */
    pod_presets?: string[];
    duration_s: number;
    warmup_s: number;
    cooldown_s: number;
    scrape_interval_ms: number;
    push_delay_ms: number;
    workers: number;
    replicas: number;
    slo: { ttft_ms: number; tpot_ms: number };
    /** The load generator's connection pool that `k8s-service` runs with (0 connections = unlimited). */
    service_client: { connections: number; idle_timeout_ms: number };
  };
  /** Wall-clock facts; excluded from determinism checks. */
  environment: { started_at: string; node: string; cpus: number; wall_ms: number };
  stages: StageResult[];
}

/** `onStage` fires before each stage (index, total) for progress reporting. */
export async function runSweep(
  o: SweepOptions,
  onStage?: (i: number, total: number, policy: string, qps: number) => void,
): Promise<RoutingRun> {
  const started = new Date();
  const wall = performance.now();
  const stages: StageResult[] = [];
  const total = o.qps.length * o.policies.length;
  let i = 0;
  // Read the filter once so every stage of the run uses the same build.
  const needsWasm = o.policies.some(
    (p) => isFlowControlPolicy(p) || (FILTER_POLICIES as readonly string[]).includes(parsePolicyName(p).base),
  );
  const wasm = o.wasm ?? (needsWasm ? readFileSync(FILTER_WASM_PATH) : undefined);
  for (const qps of o.qps) {
    for (const policy of o.policies) {
      onStage?.(i++, total, policy, qps);
      stages.push(await runStage({ ...o, policy, qps, wasm }));
    }
  }
  onStage?.(total, total, "", 0);
  const os = await import("node:os");
  return {
    kind: "routing-quality",
    workload: { name: o.workload.name, description: o.workload.description },
    config: {
      policies: o.policies,
      qps: o.qps,
      seed: o.seed,
      pods: o.pods,
      preset: o.preset,
      ...(o.workload.podPresets ? { pod_presets: o.workload.podPresets(o.pods) } : {}),
      duration_s: o.durationMs / 1000,
      warmup_s: o.warmupMs / 1000,
      cooldown_s: o.cooldownMs / 1000,
      scrape_interval_ms: o.scrapeIntervalMs,
      push_delay_ms: o.pushDelayMs,
      workers: o.workers ?? 1,
      replicas: o.replicas ?? 1,
      slo: { ttft_ms: o.slo.ttftMs, tpot_ms: o.slo.tpotMs },
      service_client: {
        connections: (o.service ?? SERVICE_CLIENT_DEFAULTS).connections,
        idle_timeout_ms: (o.service ?? SERVICE_CLIENT_DEFAULTS).idleTimeoutMs,
      },
    },
    environment: {
      started_at: started.toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      wall_ms: performance.now() - wall,
    },
    stages,
  };
}
