// Envoy's admin `/stats/prometheus` for the Wasm-defined stats, with `stats_config` applied:
// - tag extraction (source/common/stats/tag_producer_impl.cc TagProducerImpl::produceTags,
//   tag_extractor_impl.cc TagExtractorStdRegexImpl::extractTag): every `stats_tags` regex is searched in the
//   full stat name; the first capture group is cut out of the name, the second (else the first) is the tag
//   value; the cuts of all extractors are removed together and tags keep the configuration's order;
// - naming (source/server/admin/prometheus_stats.cc PrometheusStatsFormatter::metricName): a name in a
//   registered custom namespace (`wasmcustom`) loses the namespace, gets no `envoy_` prefix, has every
//   character outside [a-zA-Z0-9_] replaced by `_`, and is left out when it then starts with a digit;
// - histograms (same file, generateHistogramOutput): cumulative `_bucket{le=…}` lines over the buckets of
//   the first `histogram_bucket_settings` whose matcher accepts the stat's full name (else Envoy's
//   default buckets), then `+Inf`, `_sum` and `_count`; tag values are escaped (`\`, `"`, newline).
// Envoy updates histogram buckets at each stats flush (5 s by default); here they are always current.
import { MetricType, type MetricStore, type Stat } from "./metrics.ts";

export interface StatsTag {
  tagName: string;
  regex: string;
}

/** `histogram_bucket_settings`: a StringMatcher reduced to prefix / exact / suffix, and bucket bounds. */
export interface HistogramBuckets {
  match: { prefix?: string; exact?: string; suffix?: string };
  buckets: number[];
}

export interface StatsConfig {
  statsTags?: StatsTag[];
  histogramBucketSettings?: HistogramBuckets[];
}

/** source/common/stats/histogram_impl.cc HistogramSettingsImpl::defaultBuckets. */
export const DEFAULT_BUCKETS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

const CUSTOM_NAMESPACE = "wasmcustom.";

export interface ExtractedName {
  name: string;
  tags: [string, string][];
}

/** Tag extraction as TagProducerImpl does it (std::regex is ECMAScript, as is RegExp). */
export class TagProducer {
  private readonly extractors: { tag: string; re: RegExp }[];

  constructor(tags: readonly StatsTag[] = []) {
    this.extractors = tags.map((t) => ({ tag: t.tagName, re: new RegExp(t.regex, "d") }));
  }

  produce(statName: string): ExtractedName {
    const cuts: [number, number][] = [];
    const tags: [string, string][] = [];
    for (const { tag, re } of this.extractors) {
      const m = re.exec(statName);
      if (!m || m.length < 2 || m[1] === undefined) continue;
      const remove = m.indices![1]!;
      const value = m.length > 2 && m[2] !== undefined ? m[2] : m[1];
      tags.push([tag, value]);
      cuts.push([remove[0], remove[1]]);
    }
    let name = "";
    let at = 0;
    for (const [start, end] of cuts.sort((a, b) => a[0] - b[0])) {
      if (start > at) name += statName.slice(at, start);
      at = Math.max(at, end);
    }
    name += statName.slice(at);
    return { name, tags };
  }
}

/** PrometheusStatsFormatter::metricName for a stat in the `wasmcustom` namespace; null when dropped. */
export function prometheusName(extracted: string): string | null {
  const bare = extracted.startsWith(CUSTOM_NAMESPACE) ? extracted.slice(CUSTOM_NAMESPACE.length) : null;
  if (bare === null) return `envoy_${extracted.replace(/[^a-zA-Z0-9_]/g, "_")}`;
  const sanitized = bare.replace(/[^a-zA-Z0-9_]/g, "_");
  return sanitized.length === 0 || /^[0-9]/.test(sanitized) ? null : sanitized;
}

function escapeValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatTags(tags: [string, string][]): string {
  return tags.map(([k, v]) => `${k.replace(/[^a-zA-Z0-9_]/g, "_")}="${escapeValue(v)}"`).join(",");
}

function bucketsFor(fullName: string, settings: readonly HistogramBuckets[]): number[] {
  for (const s of settings) {
    const m = s.match;
    const ok =
      (m.exact !== undefined && fullName === m.exact) ||
      (m.prefix !== undefined && fullName.startsWith(m.prefix)) ||
      (m.suffix !== undefined && fullName.endsWith(m.suffix));
    if (ok) return [...s.buckets].sort((a, b) => a - b);
  }
  return DEFAULT_BUCKETS;
}

/** Envoy's `%.32g`-style number: integers plain, others in JavaScript's shortest form. */
function num(v: number): string {
  return String(v);
}

function histogramLines(s: Stat, name: string, tags: string, settings: readonly HistogramBuckets[]): string {
  const bounds = bucketsFor(s.name, settings);
  const withTags = tags.length > 0 ? `${tags},` : "";
  let out = "";
  for (const b of bounds) {
    let n = 0;
    for (const [v, c] of s.counts) if (v <= b) n += c;
    out += `${name}_bucket{${withTags}le="${num(b)}"} ${n}\n`;
  }
  out += `${name}_bucket{${withTags}le="+Inf"} ${s.count}\n`;
  out += `${name}_sum{${tags}} ${num(s.sum)}\n`;
  out += `${name}_count{${tags}} ${s.count}\n`;
  return out;
}

/**
 * The text a Prometheus scrape of Envoy's admin `/stats/prometheus` returns for the Wasm stats in `store`:
 * counters, then gauges, then histograms, each family under one `# TYPE` line, series sorted by name.
 */
export function renderPrometheus(store: MetricStore, config: StatsConfig = {}): string {
  const producer = new TagProducer(config.statsTags ?? []);
  const settings = config.histogramBucketSettings ?? [];
  const sections: [number, string][] = [
    [MetricType.Counter, "counter"],
    [MetricType.Gauge, "gauge"],
    [MetricType.Histogram, "histogram"],
  ];
  let out = "";
  for (const [type, typeName] of sections) {
    const families = new Map<string, string[]>();
    const stats = [...store.stats.values()].filter((s) => s.type === type);
    stats.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const s of stats) {
      const extracted = producer.produce(s.name);
      const name = prometheusName(extracted.name);
      if (name === null) continue;
      const tags = formatTags(extracted.tags);
      const lines =
        type === MetricType.Histogram
          ? histogramLines(s, name, tags, settings)
          : `${name}{${tags}} ${s.value}\n`;
      const family = families.get(name) ?? [];
      family.push(lines);
      families.set(name, family);
    }
    for (const name of [...families.keys()].sort()) {
      out += `# TYPE ${name} ${typeName}\n${families.get(name)!.join("")}`;
    }
  }
  return out;
}
