// Per-stage metrics with inference-perf's definitions (shared/reference/peers-sim-workloads.md §6):
// TTFT, TPOT = (E2E − TTFT)/(output − 1) (first token excluded), ITL = gaps between tokens,
// NTPOT = E2E/output, E2E; throughput over the measured window; goodput against TTFT/TPOT SLOs;
// kv_cache_hit_percent = 100·Σcached/Σprompt.

/** One finished (or refused) request as the harness timed it; all times in ms of virtual time. */
export interface RequestRecord {
  sendMs: number;
  /** HTTP status: 200 served, 429/503 local replies from the filter. */
  status: number;
  pod: number;
  promptTokens: number;
  outputTokens: number;
  cachedTokens: number;
  ttftMs: number;
  e2eMs: number;
  preemptions: number;
  /** Workloads with objectives (overload): the request's objective, fairness id, and how long it waited
   *  between arrival and the policy's decision (held in Envoy by flow control, or for a client connection). */
  band?: string;
  tenant?: string;
  waitMs?: number;
}

export interface Distribution {
  mean: number;
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  max: number;
}

export interface Slo {
  ttftMs: number;
  tpotMs: number;
}

export interface StageSummary {
  successes: {
    count: number;
    latency: {
      time_to_first_token: Distribution;
      time_per_output_token: Distribution;
      inter_token_latency: Distribution;
      normalized_time_per_output_token: Distribution;
      request_latency: Distribution;
    };
    prompt_len: Distribution;
    output_len: Distribution;
    throughput: {
      requests_per_sec: number;
      input_tokens_per_sec: number;
      output_tokens_per_sec: number;
      total_tokens_per_sec: number;
      goodput_requests_per_sec: number;
    };
  };
  failures: { count: number; by_label: Record<string, number> };
  /** SLO attainment over every measured request (refused ones miss): goodput's numerator, and why the rest missed. */
  slo: SloAttainment;
  kv_cache_hit_percent: number;
  preemptions: number;
  /** Fraction of measured requests sent to each pod (index = pod). */
  pod_request_share: number[];
  /** Per pod: % of its served requests within the SLOs, and its median TPOT (ms). */
  pod_slo_met_percent: number[];
  pod_tpot_p50_ms: number[];
}

export interface SloAttainment {
  ttft_ms: number;
  tpot_ms: number;
  requests: number;
  met: number;
  attainment_percent: number;
  missed_ttft_only: number;
  missed_tpot_only: number;
  missed_both: number;
  refused: number;
}

const EMPTY: Distribution = { mean: 0, min: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0 };

/** Nearest-rank percentile on sorted values (p in 0..100). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  const rank = Math.ceil((p / 100) * n);
  return sorted[Math.min(n - 1, Math.max(0, rank - 1))];
}

export function distribution(values: ArrayLike<number>): Distribution {
  const n = values.length;
  if (n === 0) return { ...EMPTY };
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  return {
    mean: sum / n,
    min: sorted[0],
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[n - 1],
  };
}

/** TPOT excludes the first token; undefined for single-token outputs (as inference-perf skips them). */
export function tpotMs(r: RequestRecord): number | undefined {
  return r.outputTokens > 1 ? (r.e2eMs - r.ttftMs) / (r.outputTokens - 1) : undefined;
}

export function ntpotMs(r: RequestRecord): number | undefined {
  return r.outputTokens > 0 ? r.e2eMs / r.outputTokens : undefined;
}

export function meetsSlo(r: RequestRecord, slo: Slo): boolean {
  return sloMiss(r, slo) === "met";
}

/** Which SLO a request misses; a refused request (429/503) meets neither. */
export function sloMiss(r: RequestRecord, slo: Slo): "met" | "ttft" | "tpot" | "both" | "refused" {
  if (r.status !== 200) return "refused";
  const t = tpotMs(r);
  const ttftBad = r.ttftMs > slo.ttftMs;
  const tpotBad = t !== undefined && t > slo.tpotMs;
  return ttftBad ? (tpotBad ? "both" : "ttft") : tpotBad ? "tpot" : "met";
}

/**
 * Summarizes the requests of one stage. `windowMs` is the measured window's length (requests
 * sent inside it, warm-up and cool-down excluded); `itlMs` holds the token gaps of those requests.
 */
export function summarizeStage(
  records: readonly RequestRecord[],
  itlMs: ArrayLike<number>,
  windowMs: number,
  pods: number,
  slo: Slo,
): StageSummary {
  const ok = records.filter((r) => r.status === 200);
  const byLabel: Record<string, number> = {};
  for (const r of records)
    if (r.status !== 200) byLabel[String(r.status)] = (byLabel[String(r.status)] ?? 0) + 1;
  const secs = windowMs / 1000;
  let inTok = 0;
  let outTok = 0;
  let cached = 0;
  let pre = 0;
  const share = new Array<number>(pods).fill(0);
  const podMet = new Array<number>(pods).fill(0);
  const podTpot: number[][] = Array.from({ length: pods }, () => []);
  const misses = { met: 0, ttft: 0, tpot: 0, both: 0, refused: 0 };
  for (const r of records) misses[sloMiss(r, slo)]++;
  const good = misses.met;
  for (const r of ok) {
    inTok += r.promptTokens;
    outTok += r.outputTokens;
    cached += r.cachedTokens;
    pre += r.preemptions;
    if (r.pod >= 0 && r.pod < pods) {
      share[r.pod]++;
      if (meetsSlo(r, slo)) podMet[r.pod]++;
      const t = tpotMs(r);
      if (t !== undefined) podTpot[r.pod].push(t);
    }
  }
  const defined = (xs: (number | undefined)[]) => xs.filter((x): x is number => x !== undefined);
  return {
    successes: {
      count: ok.length,
      latency: {
        time_to_first_token: distribution(ok.map((r) => r.ttftMs)),
        time_per_output_token: distribution(defined(ok.map(tpotMs))),
        inter_token_latency: distribution(itlMs),
        normalized_time_per_output_token: distribution(defined(ok.map(ntpotMs))),
        request_latency: distribution(ok.map((r) => r.e2eMs)),
      },
      prompt_len: distribution(ok.map((r) => r.promptTokens)),
      output_len: distribution(ok.map((r) => r.outputTokens)),
      throughput: {
        requests_per_sec: secs > 0 ? ok.length / secs : 0,
        input_tokens_per_sec: secs > 0 ? inTok / secs : 0,
        output_tokens_per_sec: secs > 0 ? outTok / secs : 0,
        total_tokens_per_sec: secs > 0 ? (inTok + outTok) / secs : 0,
        goodput_requests_per_sec: secs > 0 ? good / secs : 0,
      },
    },
    failures: { count: records.length - ok.length, by_label: byLabel },
    slo: {
      ttft_ms: slo.ttftMs,
      tpot_ms: slo.tpotMs,
      requests: records.length,
      met: good,
      attainment_percent: records.length > 0 ? (100 * good) / records.length : 0,
      missed_ttft_only: misses.ttft,
      missed_tpot_only: misses.tpot,
      missed_both: misses.both,
      refused: misses.refused,
    },
    kv_cache_hit_percent: inTok > 0 ? (100 * cached) / inTok : 0,
    preemptions: pre,
    pod_request_share: ok.length > 0 ? share.map((c) => c / ok.length) : share,
    pod_slo_met_percent: share.map((c, i) => (c > 0 ? (100 * podMet[i]) / c : 0)),
    pod_tpot_p50_ms: podTpot.map((ts) => distribution(ts).p50),
  };
}
