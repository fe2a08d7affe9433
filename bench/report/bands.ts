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
  /** Demand: measured requests, and per second of the window. */
  requests: number;
  demand_rps: number;
  served_rps: number;
  goodput_rps: number;
  /** Goodput over demand, %. */
  attainment_percent: number;
  /** Max-min fair share of what was served, given each id's demand, req/s: water-filling inside each
   *  band and each second of arrivals (so a band starved for a whole second is nobody's share), summed. */
  fair_share_rps: number;
  /** Wait between arrival and the decision (served requests): round-robin dispatch favours the quiet ids. */
  queue_p90_ms: number;
  ttft_p90_ms: number;
}

export interface BandReport {
  bands: BandRow[];
  all: BandRow;
  tenants: TenantRow[];
  /** Jain's index over the ids' goodput: (Σx)² / (n·Σx²); 1 = equal goodput (whatever the demands). */
  jain_goodput: number;
  /** Jain's index over the ids' goodput per unit of demand (attainment); 1 = every id served alike. */
  jain_attainment: number;
  /** The first (noisiest) id's served rate over its max-min fair share (fair_share_rps); ≤ 1 = it got no
   *  more than its share while the others had demand. */
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

/** Per id: the sum over (band, second of arrival) cells of its max-min share of the cell's served requests. */
function fairShares(records: readonly RequestRecord[], ids: readonly string[]): number[] {
  const cells = new Map<string, { demand: number[]; served: number }>();
  for (const r of records) {
    const key = `${r.band ?? ""}\u0000${Math.floor(r.sendMs / 1000)}`;
    let c = cells.get(key);
    if (!c) cells.set(key, (c = { demand: ids.map(() => 0), served: 0 }));
    const i = ids.indexOf(r.tenant ?? "");
    if (i >= 0) c.demand[i]++;
    if (r.status === 200) c.served++;
  }
  const out = ids.map(() => 0);
  for (const c of cells.values()) maxMinShares(c.served, c.demand).forEach((x, i) => (out[i] += x));
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
  const rate = (n: number): number => (secs > 0 ? n / secs : 0);
  const per = ids.map((id) => {
    const rs = records.filter((r) => (r.tenant ?? "") === id);
    const met = rs.filter((r) => sloMiss(r, slo) === "met").length;
    const served = rs.filter((r) => r.status === 200).length;
    return { id, rs, met, served };
  });
  const goodput = per.map((p) => rate(p.met));
  const served = per.map((p) => rate(p.served));
  const fair = fairShares(records, ids).map(rate);
  return {
    bands,
    all: bandRow("all", null, records, secs, slo),
    tenants: per.map((p, i) => ({
      id: p.id,
      requests: p.rs.length,
      demand_rps: rate(p.rs.length),
      served_rps: served[i],
      goodput_rps: goodput[i],
      attainment_percent: p.rs.length > 0 ? (100 * p.met) / p.rs.length : 0,
      fair_share_rps: fair[i],
      queue_p90_ms: distribution(p.rs.filter((r) => r.status === 200).map((r) => r.waitMs ?? 0)).p90,
      ttft_p90_ms: distribution(p.rs.filter((r) => r.status === 200).map((r) => r.ttftMs)).p90,
    })),
    jain_goodput: jain(goodput),
    jain_attainment: jain(per.map((p) => (p.rs.length > 0 ? p.met / p.rs.length : 0))),
    noisy_over_fair_share: fair[0] > 0 ? served[0] / fair[0] : 0,
  };
}
