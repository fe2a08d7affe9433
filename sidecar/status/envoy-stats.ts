// What the picker decided, as the Envoys count it: the filter's decision counters read from each Envoy's
// admin `/stats/prometheus` (the addresses the operator gives with --envoy-admin, or every discovered Envoy
// pod at --envoy-admin-port). The sidecar never sees a request, so this is the only way the status page can
// show requests by outcome, picks per endpoint and the traffic split. Each read returns the growth since the
// previous one, per Envoy and clamped at zero (a restarted Envoy starts its counters again), summed.
import { parsePrometheusText } from "../collector/prom-parser.ts";

// The filter's names (assembly/metrics.ts REQUESTS, ENDPOINT_PICKS) and labels, as the shipped stats_tags
// extract them (gateway/stats-tags.ts).
export const REQUESTS_METRIC = "epp_wasm_requests_total";
export const PICKS_METRIC = "epp_wasm_endpoint_picks_total";
// Flow control's (assembly/flow-control/metrics.ts), labelled by band priority: gauges of what is held now,
// and a counter per outcome.
export const QUEUE_SIZE_METRIC = "inference_extension_flow_control_queue_size";
export const QUEUE_BYTES_METRIC = "inference_extension_flow_control_queue_bytes";
export const FLOW_REQUESTS_METRIC = "epp_wasm_flow_control_requests_total";
const WANTED = new Set([
  REQUESTS_METRIC,
  PICKS_METRIC,
  QUEUE_SIZE_METRIC,
  QUEUE_BYTES_METRIC,
  FLOW_REQUESTS_METRIC,
]);

/** The path Envoy's admin serves its stats on in Prometheus text. */
export const STATS_PATH = "/stats/prometheus";

/** Cumulative (or, from read(), the growth of) decision counters. */
export interface DecisionCounts {
  /** `model \t target \t outcome` → requests (summed over objectives). */
  requests: Map<string, number>;
  /** `ip:port` → picks. */
  picks: Map<string, number>;
}

/** One flow-control band as the Envoys report it: held now, and each outcome since the Envoy started. */
export interface BandReading {
  priority: number;
  queued: number;
  bytes: number;
  /** queued (ever), dispatched, expired, rejected, cancelled → requests. */
  outcomes: Record<string, number>;
}

type PageSamples = ReturnType<typeof parsePrometheusText>["samples"];

/** The metrics this reader uses from one Prometheus page, parsed once for both views. */
function pageSamples(text: string): PageSamples {
  return parsePrometheusText(text, { names: WANTED }).samples;
}

/** The flow-control bands in one page's samples (none when flow control never ran). */
function bandReadings(samples: PageSamples): Map<number, BandReading> {
  const bands = new Map<number, BandReading>();
  const band = (labels: Record<string, string>): BandReading | undefined => {
    const p = Number(labels.priority);
    if (!Number.isInteger(p)) return undefined;
    let b = bands.get(p);
    if (b === undefined) bands.set(p, (b = { priority: p, queued: 0, bytes: 0, outcomes: {} }));
    return b;
  };
  for (const s of samples.get(QUEUE_SIZE_METRIC) ?? []) {
    const b = band(s.labels);
    if (b) b.queued += s.value;
  }
  for (const s of samples.get(QUEUE_BYTES_METRIC) ?? []) {
    const b = band(s.labels);
    if (b) b.bytes += s.value;
  }
  for (const s of samples.get(FLOW_REQUESTS_METRIC) ?? []) {
    const b = band(s.labels);
    const o = s.labels.outcome;
    if (b && o) b.outcomes[o] = (b.outcomes[o] ?? 0) + s.value;
  }
  return bands;
}

/** The growth of the counters since the previous read, and how many Envoys answered (0: nothing is known). */
export interface DecisionGrowth extends DecisionCounts {
  answered: number;
  /** Envoys read (answered or not). */
  envoys: number;
}

export interface EnvoyReading {
  url: string;
  ok: boolean;
  /** Why the last read failed (null when it worked). */
  error: string | null;
  /** When the last read that worked finished (ms since the epoch; null: never). */
  lastOkAtMs: number | null;
}

export interface EnvoyStatsOptions {
  /** Stats URLs (a bare origin gets STATS_PATH). */
  urls?: string[];
  timeoutMs?: number;
  now?: () => number;
}

export function requestKey(model: string, target: string, outcome: string): string {
  return `${model}\t${target}\t${outcome}`;
}

/** A stats URL for `url`: as given when it has a path, else the origin with STATS_PATH. */
export function statsUrl(url: string): string {
  const u = new URL(url); // throws with the URL in the message when malformed
  if (u.pathname === "/" || u.pathname === "") u.pathname = STATS_PATH;
  return u.toString();
}

/** The filter's decision counters in one Prometheus page. */
export function decisionCounts(text: string): DecisionCounts {
  return countsFrom(pageSamples(text));
}

function countsFrom(samples: PageSamples): DecisionCounts {
  const requests = new Map<string, number>();
  for (const s of samples.get(REQUESTS_METRIC) ?? []) {
    const k = requestKey(s.labels.model_name ?? "", s.labels.target_model_name ?? "", s.labels.outcome ?? "");
    requests.set(k, (requests.get(k) ?? 0) + s.value);
  }
  const picks = new Map<string, number>();
  for (const s of samples.get(PICKS_METRIC) ?? []) {
    const k = s.labels.endpoint ?? "";
    picks.set(k, (picks.get(k) ?? 0) + s.value);
  }
  return { requests, picks };
}

function growth(into: Map<string, number>, cur: Map<string, number>, prev: Map<string, number>): void {
  for (const [k, v] of cur) {
    const d = Math.max(0, v - (prev.get(k) ?? 0));
    if (d > 0) into.set(k, (into.get(k) ?? 0) + d);
  }
}

export class EnvoyStatsReader {
  private urls: string[] = [];
  private readonly last = new Map<string, DecisionCounts>();
  private readonly lastBands = new Map<string, Map<number, BandReading>>();
  private readonly readings = new Map<string, EnvoyReading>();
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(opts: EnvoyStatsOptions = {}) {
    this.timeoutMs = opts.timeoutMs ?? 800;
    this.now = opts.now ?? Date.now;
    this.setUrls(opts.urls ?? []);
  }

  /** Replaces the Envoys read (discovery calls it as pods come and go); forgets the ones gone. */
  setUrls(urls: string[]): void {
    this.urls = [...new Set(urls.map(statsUrl))];
    for (const k of [...this.last.keys()]) if (!this.urls.includes(k)) this.last.delete(k);
    for (const k of [...this.readings.keys()]) if (!this.urls.includes(k)) this.readings.delete(k);
    for (const k of [...this.lastBands.keys()]) if (!this.urls.includes(k)) this.lastBands.delete(k);
  }

  /** Flow control's bands as of each Envoy's last good read, summed over the Envoys; highest priority first. */
  flowControl(): BandReading[] {
    const sum = new Map<number, BandReading>();
    for (const bands of this.lastBands.values())
      for (const b of bands.values()) {
        let t = sum.get(b.priority);
        if (t === undefined)
          sum.set(b.priority, (t = { priority: b.priority, queued: 0, bytes: 0, outcomes: {} }));
        t.queued += b.queued;
        t.bytes += b.bytes;
        for (const [o, n] of Object.entries(b.outcomes)) t.outcomes[o] = (t.outcomes[o] ?? 0) + n;
      }
    return [...sum.values()].sort((a, b) => b.priority - a.priority);
  }

  /** Whether any Envoy admin is configured at all. */
  configured(): boolean {
    return this.urls.length > 0;
  }

  status(): EnvoyReading[] {
    return this.urls.map(
      (url) => this.readings.get(url) ?? { url, ok: false, error: "not read yet", lastOkAtMs: null },
    );
  }

  /** Reads every Envoy; the growth since each one's previous read, summed (an Envoy's first read is its baseline). */
  async read(): Promise<DecisionGrowth> {
    const delta: DecisionGrowth = {
      requests: new Map(),
      picks: new Map(),
      answered: 0,
      envoys: this.urls.length,
    };
    await Promise.all(
      this.urls.map(async (url) => {
        let counts: DecisionCounts;
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
          const text = await res.text();
          if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
          const samples = pageSamples(text);
          counts = countsFrom(samples);
          this.lastBands.set(url, bandReadings(samples));
        } catch (err) {
          const e = err as Error;
          const cause = (e.cause as Error | undefined)?.message;
          const prev = this.readings.get(url);
          this.readings.set(url, {
            url,
            ok: false,
            error: cause ?? e.message,
            lastOkAtMs: prev?.lastOkAtMs ?? null,
          });
          return;
        }
        this.readings.set(url, { url, ok: true, error: null, lastOkAtMs: this.now() });
        delta.answered++;
        const prev = this.last.get(url);
        this.last.set(url, counts);
        if (prev === undefined) return;
        growth(delta.requests, counts.requests, prev.requests);
        growth(delta.picks, counts.picks, prev.picks);
      }),
    );
    return delta;
  }
}
