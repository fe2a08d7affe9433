// Discrete-event routing benchmark: N simulated pods on one VirtualClock, a seeded arrival
// sequence, each request routed by a policy at its arrival time and timed token by token.
// No HTTP: the engines are driven directly; filter policies still run the real wasm.
import { Engine, SubmitError, VirtualClock, presetConfig, renderChat, tokenize } from "../../sim/index.ts";
import {
  percentile,
  summarizeStage,
  type RequestRecord,
  type Slo,
  type StageSummary,
} from "../report/metrics.ts";
import { baselinePolicy, type Policy, type RouteResult } from "./policies.ts";
import { filterPolicy } from "./filter-policy.ts";
import type { ServiceClientOptions } from "./k8s-service.ts";
import type { Workload } from "./workloads.ts";
import { bandReport, type BandReport } from "../report/bands.ts";

/** What a whole run shares: the cluster, the workload, timing and the filter build. */
export interface RunSettings {
  workload: Workload;
  seed: number;
  pods: number;
  preset: string;
  durationMs: number;
  /** Requests sent before this, or after durationMs − cooldownMs, are run but not measured. */
  warmupMs: number;
  cooldownMs: number;
  scrapeIntervalMs: number;
  pushDelayMs: number;
  /** Worker VMs of the filter (Envoy --concurrency); requests go to them in turn. Default 1. */
  workers?: number;
  /** Envoy processes in front of the pool, requests handed to them in turn. Default 1. */
  replicas?: number;
  slo: Slo;
  /** The load generator's connection pool, for `k8s-service` (defaults: SERVICE_CLIENT_DEFAULTS). */
  service?: ServiceClientOptions;
  /** Compiled filter bytes (read from build/filter.wasm when absent). */
  wasm?: Uint8Array;
}

/** One stage: one policy at one QPS. */
export interface StageOptions extends RunSettings {
  policy: string;
  qps: number;
}

export interface StageResult {
  policy: string;
  qps: number;
  requests_sent: number;
  requests_measured: number;
  summary: StageSummary;
  /** TTFT percentiles 0..100 (step 1) of the measured successes, for CDF plots. */
  ttft_cdf_ms: number[];
  /** Virtual ms after the last arrival until every request finished. */
  drain_ms: number;
  /** The policy's own counters (k8s-service: connections opened, expired, peak open, requests that waited). */
  policy_stats?: object;
  /** Workloads with objectives (overload): per band and per fairness id (bench/report/bands.ts). */
  bands?: BandReport;
  /** Wall-clock cost of the stage; excluded from determinism checks. */
  wall_ms: number;
}

/** Growable Float32 buffer: ITL samples run into millions per stage (ms at float32 precision is plenty). */
class Samples {
  buf = new Float32Array(1 << 16);
  n = 0;
  push(x: number): void {
    if (this.n === this.buf.length) {
      const b = new Float32Array(this.buf.length * 2);
      b.set(this.buf);
      this.buf = b;
    }
    this.buf[this.n++] = x;
  }
  view(): Float32Array {
    return this.buf.subarray(0, this.n);
  }
}

async function makePolicy(o: StageOptions, clock: VirtualClock, engines: Engine[]): Promise<Policy> {
  const base = baselinePolicy(o.policy, o.pods, o.seed, clock, o.service);
  if (base) return base;
  return filterPolicy({
    name: o.policy,
    clock,
    engines,
    seed: o.seed,
    objectives: o.workload.objectives,
    scrapeIntervalMs: o.scrapeIntervalMs,
    pushDelayMs: o.pushDelayMs,
    workers: o.workers,
    replicas: o.replicas,
    wasm: o.wasm,
  });
}

export async function runStage(o: StageOptions): Promise<StageResult> {
  const wallStart = performance.now();
  const clock = new VirtualClock();
  const presets = o.workload.podPresets?.(o.pods) ?? [];
  const configs = new Map<string, ReturnType<typeof presetConfig>>();
  const configOf = (i: number): ReturnType<typeof presetConfig> => {
    const name = presets[i] ?? o.preset;
    let c = configs.get(name);
    if (!c) configs.set(name, (c = presetConfig(name, o.workload.engineOverrides)));
    return c;
  };
  const engines = Array.from(
    { length: o.pods },
    (_, i) =>
      new Engine({
        config: configOf(i),
        clock,
        seed: o.seed * 1009 + i,
        loraModules: o.workload.loraModules,
        flavor: "vllm",
      }),
  );
  const policy = await makePolicy(o, clock, engines);
  const items = o.workload.generate(o.qps, o.durationMs, o.seed);
  const inFlight = new Array<number>(o.pods).fill(0);
  const records: RequestRecord[] = [];
  const itl = new Samples();
  const measureFrom = o.warmupMs;
  const measureTo = o.durationMs - o.cooldownMs;
  let finished = 0;

  for (const item of items) {
    clock.schedule(item.arrivalMs, () => {
      const sendMs = clock.now();
      const measured = sendMs >= measureFrom && sendMs < measureTo;
      // The request's clock starts at its arrival, so a wait for a client connection or in Envoy's
      // flow-control queue counts in TTFT.
      const send = (route: RouteResult): void => start(item, sendMs, measured, route);
      if (policy.dispatch) policy.dispatch(item, inFlight, send);
      else send(policy.route!(item, inFlight));
    });
  }

  function start(item: (typeof items)[number], sendMs: number, measured: boolean, route: RouteResult): void {
    // Only workloads with objectives carry the band fields, so other runs' records stay as they were.
    const tags =
      item.objective === undefined
        ? {}
        : { band: item.objective, tenant: item.fairnessId ?? "", waitMs: clock.now() - sendMs };
    const fail = (status: number): void => {
      finished++;
      route.done?.();
      if (measured)
        records.push({
          ...tags,
          sendMs,
          status,
          pod: -1,
          promptTokens: 0,
          outputTokens: 0,
          cachedTokens: 0,
          ttftMs: 0,
          e2eMs: 0,
          preemptions: 0,
        });
    };
    if ("status" in route) return fail(route.status);
    const pod = route.pod;
    inFlight[pod]++;
    let last = 0;
    try {
      engines[pod].submit(
        {
          id: `r${item.id}`,
          promptTokenIds: tokenize(renderChat(item.messages)),
          maxTokens: item.maxTokens,
          lora: item.lora,
        },
        {
          onToken: (_r, index, nowMs) => {
            if (measured && index > 0) itl.push(nowMs - last);
            last = nowMs;
          },
          onDone: (r) => {
            finished++;
            inFlight[pod]--;
            route.done?.();
            if (!measured) return;
            records.push({
              ...tags,
              sendMs,
              status: 200,
              pod,
              promptTokens: r.promptLen,
              outputTokens: r.generated,
              cachedTokens: Math.max(0, r.cachedTokens),
              ttftMs: r.firstTokenMs - sendMs,
              e2eMs: r.finishedMs - sendMs,
              preemptions: r.preemptions,
            });
          },
        },
      );
    } catch (e) {
      if (!(e instanceof SubmitError)) throw e;
      inFlight[pod]--;
      fail(e.status);
    }
  }

  clock.runUntil(o.durationMs);
  // Drain: periodic scrape/tick timers never run out, so advance in slices until all finished.
  const drainCap = o.durationMs + 600_000;
  while (finished < items.length && clock.now() < drainCap) clock.runUntil(clock.now() + 1000);
  const drainMs = clock.now() - o.durationMs;
  await policy.close?.();
  if (finished < items.length) throw new Error(`${items.length - finished} requests never finished`);

  records.sort((a, b) => a.sendMs - b.sendMs);
  const summary = summarizeStage(records, itl.view(), measureTo - measureFrom, o.pods, o.slo);
  const ttfts = Float64Array.from(records.filter((r) => r.status === 200).map((r) => r.ttftMs)).sort();
  return {
    policy: o.policy,
    qps: o.qps,
    requests_sent: items.length,
    requests_measured: records.length,
    summary,
    ttft_cdf_ms: Array.from({ length: 101 }, (_, p) =>
      ttfts.length ? percentile(ttfts, p === 0 ? 0.0001 : p) : 0,
    ),
    drain_ms: drainMs,
    ...(policy.stats ? { policy_stats: policy.stats() } : {}),
    ...(o.workload.objectives
      ? { bands: bandReport(records, o.workload, measureTo - measureFrom, o.slo) }
      : {}),
    wall_ms: performance.now() - wallStart,
  };
}
