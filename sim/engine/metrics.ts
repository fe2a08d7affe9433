// Prometheus text exposition for one simulated pod, in vLLM's (or SGLang's) exact metric names.
// Written by hand rather than with prom-client: the sidecar scrapes every pod every 50 ms and the
// routing benchmark renders 10 pods every 50 ms of virtual time, so this must stay cheap.
import type { Clock } from "../clock/clock.ts";
import type { Histogram } from "./histogram.ts";
import type { EngineConfig } from "./presets.ts";
import type { EngineStats } from "./stats.ts";

export type EngineFlavor = "vllm" | "sglang";

/** What a /metrics page reads from one engine. Engine implements it; declared here so rendering depends on
 * the engine's parts, not on the engine (which calls renderMetrics). */
export interface MetricsSource {
  readonly model: string;
  readonly config: EngineConfig;
  readonly clock: Clock;
  readonly stats: EngineStats;
  readonly lora: { readonly maxLoras: number };
  readonly pool: { readonly usedBlocks: number };
  readonly numRunning: number;
  readonly numWaiting: number;
  kvUsage(): number;
  loraSets(): { running: string[]; waiting: string[] };
}

/** Keeps old lora_requests_info label sets, as vLLM does (the EPP takes the newest timestamp). */
export class LoraInfoSeries {
  private readonly series = new Map<string, number>();
  private static readonly MAX_SERIES = 8;

  update(labels: string, ts: number): Map<string, number> {
    this.series.delete(labels);
    this.series.set(labels, ts);
    if (this.series.size > LoraInfoSeries.MAX_SERIES) {
      const oldest = this.series.keys().next().value as string;
      this.series.delete(oldest);
    }
    return this.series;
  }
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function fmt(v: number): string {
  if (v === Infinity) return "+Inf";
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

// Bucket line prefixes depend only on (name, labels, buckets): build them once.
const bucketPrefixCache = new Map<string, string[]>();

function bucketPrefixes(name: string, labels: string, h: Histogram): string[] {
  const key = name + "\u0000" + labels;
  let prefixes = bucketPrefixCache.get(key);
  if (!prefixes) {
    prefixes = h.buckets.map((b) => `${name}_bucket{${labels},le="${fmt(b)}"} `);
    prefixes.push(`${name}_bucket{${labels},le="+Inf"} `);
    if (bucketPrefixCache.size > 10_000) bucketPrefixCache.clear();
    bucketPrefixCache.set(key, prefixes);
  }
  return prefixes;
}

function histogram(out: string[], name: string, help: string, labels: string, h: Histogram): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
  const prefixes = bucketPrefixes(name, labels, h);
  let cum = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    cum += h.counts[i];
    out.push(prefixes[i] + fmt(cum));
  }
  out.push(
    prefixes[h.buckets.length] + fmt(h.count),
    `${name}_sum{${labels}} ${fmt(h.sum)}`,
    `${name}_count{${labels}} ${fmt(h.count)}`,
  );
}

function gauge(out: string[], name: string, help: string, labels: string, v: number, type = "gauge"): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}{${labels}} ${fmt(v)}`);
}

export function renderMetrics(
  engine: MetricsSource,
  flavor: EngineFlavor,
  loraSeries: LoraInfoSeries,
): string {
  return flavor === "sglang" ? renderSglang(engine) : renderVllm(engine, loraSeries);
}

function renderVllm(e: MetricsSource, loraSeries: LoraInfoSeries): string {
  const out: string[] = [];
  const s = e.stats;
  const m = `model_name="${escapeLabel(e.model)}"`;
  const usage = e.kvUsage();
  gauge(out, "vllm:num_requests_running", "Number of requests in model execution batches.", m, e.numRunning);
  gauge(out, "vllm:num_requests_waiting", "Number of requests waiting to be processed.", m, e.numWaiting);
  gauge(out, "vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", m, usage);
  gauge(out, "vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage.", m, usage);
  const loras = e.loraSets();
  const loraLabels = `max_lora="${e.lora.maxLoras}",running_lora_adapters="${escapeLabel(loras.running.join(","))}",waiting_lora_adapters="${escapeLabel(loras.waiting.join(","))}"`;
  const series = loraSeries.update(loraLabels, e.clock.epochSeconds(e.clock.now()));
  out.push(
    "# HELP vllm:lora_requests_info Running stats on lora requests.",
    "# TYPE vllm:lora_requests_info gauge",
  );
  for (const [labels, ts] of series) out.push(`vllm:lora_requests_info{${labels}} ${ts.toFixed(3)}`);
  const c = e.config;
  gauge(
    out,
    "vllm:cache_config_info",
    "Information of the LLMEngine CacheConfig",
    `block_size="${c.blockSize}",cache_dtype="auto",enable_prefix_caching="${c.enablePrefixCaching ? "True" : "False"}",num_gpu_blocks="${c.numGpuBlocks}"`,
    1,
  );
  gauge(
    out,
    "vllm:num_preemptions_total",
    "Cumulative number of preemption from the engine.",
    m,
    s.preemptions,
    "counter",
  );
  gauge(
    out,
    "vllm:prefix_cache_queries_total",
    "Prefix cache queries, in terms of number of queried tokens.",
    m,
    s.prefixQueries,
    "counter",
  );
  gauge(
    out,
    "vllm:prefix_cache_hits_total",
    "Prefix cache hits, in terms of number of cached tokens.",
    m,
    s.prefixHits,
    "counter",
  );
  gauge(out, "vllm:prompt_tokens_total", "Number of prefill tokens processed.", m, s.promptTokens, "counter");
  gauge(
    out,
    "vllm:generation_tokens_total",
    "Number of generation tokens processed.",
    m,
    s.generationTokens,
    "counter",
  );
  out.push(
    "# HELP vllm:request_success_total Count of successfully processed requests.",
    "# TYPE vllm:request_success_total counter",
  );
  for (const reason of ["stop", "length", "abort"] as const) {
    out.push(
      `vllm:request_success_total{finished_reason="${reason}",${m}} ${fmt(s.finishedByReason.get(reason) ?? 0)}`,
    );
  }
  histogram(
    out,
    "vllm:time_to_first_token_seconds",
    "Histogram of time to first token in seconds.",
    m,
    s.ttft,
  );
  histogram(
    out,
    "vllm:time_per_output_token_seconds",
    "Histogram of time per output token in seconds.",
    m,
    s.tpot,
  );
  histogram(
    out,
    "vllm:inter_token_latency_seconds",
    "Histogram of inter-token latency in seconds.",
    m,
    s.itl,
  );
  histogram(
    out,
    "vllm:e2e_request_latency_seconds",
    "Histogram of e2e request latency in seconds.",
    m,
    s.e2e,
  );
  histogram(
    out,
    "vllm:request_queue_time_seconds",
    "Histogram of time spent in WAITING phase for request.",
    m,
    s.queueTime,
  );
  histogram(out, "vllm:request_prompt_tokens", "Number of prefill tokens processed.", m, s.promptLen);
  histogram(
    out,
    "vllm:request_generation_tokens",
    "Number of generation tokens processed.",
    m,
    s.generationLen,
  );
  out.push("");
  return out.join("\n");
}

function renderSglang(e: MetricsSource): string {
  const out: string[] = [];
  const s = e.stats;
  const m = `model_name="${escapeLabel(e.model)}"`;
  const c = e.config;
  gauge(out, "sglang:num_running_reqs", "The number of running requests.", m, e.numRunning);
  gauge(out, "sglang:num_queue_reqs", "The number of requests in the waiting queue.", m, e.numWaiting);
  gauge(out, "sglang:token_usage", "The token usage.", m, e.kvUsage());
  gauge(out, "sglang:num_used_tokens", "The number of used tokens.", m, e.pool.usedBlocks * c.blockSize);
  gauge(
    out,
    "sglang:cache_hit_rate",
    "The prefix cache hit rate.",
    m,
    s.prefixQueries > 0 ? s.prefixHits / s.prefixQueries : 0,
  );
  gauge(
    out,
    "sglang:cache_config_info",
    "Information of the cache configuration.",
    `${m},page_size="${c.blockSize}",num_pages="${c.numGpuBlocks}"`,
    1,
  );
  gauge(
    out,
    "sglang:prompt_tokens_total",
    "Number of prefill tokens processed.",
    m,
    s.promptTokens,
    "counter",
  );
  gauge(
    out,
    "sglang:generation_tokens_total",
    "Number of generation tokens processed.",
    m,
    s.generationTokens,
    "counter",
  );
  gauge(out, "sglang:cached_tokens_total", "Number of cached prompt tokens.", m, s.prefixHits, "counter");
  gauge(out, "sglang:num_requests_total", "Number of requests processed.", m, s.e2e.count, "counter");
  gauge(
    out,
    "sglang:num_retractions_total",
    "Number of retracted (preempted) requests.",
    m,
    s.preemptions,
    "counter",
  );
  histogram(
    out,
    "sglang:time_to_first_token_seconds",
    "Histogram of time to first token in seconds.",
    m,
    s.ttft,
  );
  histogram(
    out,
    "sglang:inter_token_latency_seconds",
    "Histogram of inter-token latency in seconds.",
    m,
    s.itl,
  );
  histogram(
    out,
    "sglang:e2e_request_latency_seconds",
    "Histogram of End-to-end request latency in seconds",
    m,
    s.e2e,
  );
  out.push("");
  return out.join("\n");
}
