// Per-band and per-fairness-id figures for workloads whose requests name objectives (overload, issue 22):
// TTFT (arrival to first token, so Envoy-side queueing counts), goodput, requests refused at arrival or
// answered after waiting, the Envoy-side wait, and how goodput splits across fairness ids.
import { distribution, percentile, sloMiss, type RequestRecord, type Slo } from "./metrics.ts";

export interface BandRow {
  /** The objective's name, or "all". */
  band: string;
  priority: number | null;
  /** Measured requests (sent inside the window). */
  requests: number;
  served: number;
  goodput_rps: number;
  slo_met_percent: number;
  ttft_p50_ms: number;
  ttft_p90_ms: number;
  /** Answered by the filter at arrival (429/503: shed, or a full band). */
  rejected: number;
  /** Answered after waiting (flow control's TTL or limits, or a pool gone). */
  expired: number;
  /** Wait between arrival and the decision, over served requests (flow control: time held in Envoy). */
  queue_p50_ms: number;
  queue_p90_ms: number;
  /** TTFT percentiles 0..100 in steps of 5, served requests (for CDF plots). */
  ttft_cdf_ms: number[];
}

export interface TenantRow {
  id: string;
  requests: number;
  served: number;
  goodput_rps: number;
  /** Goodput over demand (measured requests), %. */
  attainment_percent: number;
  /** Max-min fair share of the stage's total goodput given each id's demand (water-filling), req/s. */
  fair_share_rps: number;
}

export interface BandReport {
  bands: BandRow[];
  all: BandRow;
  tenants: TenantRow[];
  /** Jain's index over the ids' goodput: (Σx)² / (n·Σx²); 1 = equal goodput. */
  jain_goodput: number;
  /** The first (noisiest) id's goodput over its max-min fair share; ≤ 1 = no more than its share. */
  noisy_over_fair_share: number;
}

/** Jain's fairness index; 1 for an empty or all-zero list. */
export function jain(xs: readonly number[]): number {
  const s = xs.reduce((a, b) => a + b, 0);
  const q = xs.reduce((a, b) => a + b * b, 0);
  return q > 0 ? (s * s) / (xs.length * q) : 1;
}

/** Max-min fair split of `total` over `demands`: ids wanting less than an equal share get all they want. */
export function maxMinShares(total: number, demands: readonly number[]): number[] {
  const out = new Array<number>(demands.length).fill(0);
  let left = total;
  let open = demands.map((_, i) => i);
  while (open.length > 0 && left > 1e-12) {
    const share = left / open.length;
    const small = open.filter((i) => demands[i] - out[i] <= share);
    if (small.length === 0) {
      for (const i of open) out[i] += share;
      break;
    }
    for (const i of small) {
      left -= demands[i] - out[i];
      out[i] = demands[i];
    }
    open = open.filter((i) => !small.includes(i));
  }
  return out;
}

function bandRow(
  band: string,
  priority: number | null,
  rs: readonly RequestRecord[],
  secs: number,
  slo: Slo,
): BandRow {
  const ok = rs.filter((r) => r.status === 200);
  const met = rs.filter((r) => sloMiss(r, slo) === "met").length;
  const ttft = distribution(ok.map((r) => r.ttftMs));
  const wait = distribution(ok.map((r) => r.waitMs ?? 0));
  const sorted = Float64Array.from(ok.map((r) => r.ttftMs)).sort();
  return {
    band,
    priority,
    requests: rs.length,
    served: ok.length,
    goodput_rps: secs > 0 ? met / secs : 0,
    slo_met_percent: rs.length > 0 ? (100 * met) / rs.length : 0,
    ttft_p50_ms: ttft.p50,
    ttft_p90_ms: ttft.p90,
    rejected: rs.filter((r) => r.status !== 200 && !((r.waitMs ?? 0) > 0)).length,
    expired: rs.filter((r) => r.status !== 200 && (r.waitMs ?? 0) > 0).length,
    queue_p50_ms: wait.p50,
    queue_p90_ms: wait.p90,
    ttft_cdf_ms: Array.from({ length: 21 }, (_, k) =>
      sorted.length ? percentile(sorted, k === 0 ? 0.0001 : 5 * k) : 0,
    ),
  };
}

export function bandReport(
  records: readonly RequestRecord[],
  w: { objectives?: { name: string; priority: number }[]; fairnessIds?: string[] },
  windowMs: number,
  slo: Slo,
): BandReport {
  const secs = windowMs / 1000;
  const bands = (w.objectives ?? []).map((o) =>
    bandRow(
      o.name,
      o.priority,
      records.filter((r) => r.band === o.name),
      secs,
      slo,
    ),
  );
  const ids = w.fairnessIds ?? [...new Set(records.map((r) => r.tenant ?? ""))];
  const per = ids.map((id) => {
    const rs = records.filter((r) => (r.tenant ?? "") === id);
    const met = rs.filter((r) => sloMiss(r, slo) === "met").length;
    return { id, rs, met };
  });
  const goodput = per.map((p) => (secs > 0 ? p.met / secs : 0));
  const fair = maxMinShares(
    goodput.reduce((a, b) => a + b, 0),
    per.map((p) => (secs > 0 ? p.rs.length / secs : 0)),
  );
  return {
    bands,
    all: bandRow("all", null, records, secs, slo),
    tenants: per.map((p, i) => ({
      id: p.id,
      requests: p.rs.length,
      served: p.rs.filter((r) => r.status === 200).length,
      goodput_rps: goodput[i],
      attainment_percent: p.rs.length > 0 ? (100 * p.met) / p.rs.length : 0,
      fair_share_rps: fair[i],
    })),
    jain_goodput: jain(goodput),
    noisy_over_fair_share: fair[0] > 0 ? goodput[0] / fair[0] : 0,
  };
}
