// The sidecar's own Prometheus metrics: GIE-style pool gauges plus the health of every stage of the
// scrape → encode → push loop. Names follow GIE's `inference_pool_*` where GIE has one.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class SidecarMetrics {
  readonly registry = new Registry();

  readonly poolAverageKvCache = new Gauge({
    name: "inference_pool_average_kv_cache_utilization",
    help: "Average KV-cache utilization (0..1) of the pool's ready endpoints with fresh metrics.",
    labelNames: ["name", "namespace"],
    registers: [this.registry],
  });
  readonly poolAverageQueue = new Gauge({
    name: "inference_pool_average_queue_size",
    help: "Average number of waiting requests per ready endpoint with fresh metrics.",
    labelNames: ["name", "namespace"],
    registers: [this.registry],
  });
  readonly poolAverageRunning = new Gauge({
    name: "inference_pool_average_running_requests",
    help: "Average number of running requests per ready endpoint with fresh metrics.",
    labelNames: ["name", "namespace"],
    registers: [this.registry],
  });
  readonly poolReadyPods = new Gauge({
    name: "inference_pool_ready_pods",
    help: "Number of ready endpoints (pod × target port) in the pool.",
    labelNames: ["name", "namespace"],
    registers: [this.registry],
  });
  readonly scrapeRoundDuration = new Histogram({
    name: "epp_sidecar_scrape_round_duration_seconds",
    help: "Time from the start of a scrape round until all its scrapes settled (or the next round began).",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [this.registry],
  });
  readonly scrapeErrors = new Counter({
    name: "epp_sidecar_scrape_errors_total",
    help: "Metrics scrapes that failed, or were skipped because the previous one was still in flight.",
    labelNames: ["reason"],
    registers: [this.registry],
  });
  readonly staleEndpoints = new Gauge({
    name: "epp_sidecar_stale_endpoints",
    help: "Endpoints currently marked stale in the pool's snapshot.",
    labelNames: ["pool"],
    registers: [this.registry],
  });
  readonly snapshotBytes = new Gauge({
    name: "epp_sidecar_snapshot_bytes",
    help: "Size of the pool's latest snapshot.",
    labelNames: ["pool"],
    registers: [this.registry],
  });
  readonly snapshotGeneration = new Gauge({
    name: "epp_sidecar_snapshot_generation",
    help: "Generation of the pool's latest snapshot (low 52 bits).",
    labelNames: ["pool"],
    registers: [this.registry],
  });
  readonly encodeDuration = new Histogram({
    name: "epp_sidecar_snapshot_encode_seconds",
    help: "Time to build and encode one snapshot.",
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: "epp_sidecar_push_total",
    help: "Snapshot pushes by target and outcome (ok, superseded, rejected, unauthorized, error).",
    labelNames: ["target", "outcome"],
    registers: [this.registry],
  });
  readonly pushDuration = new Histogram({
    name: "epp_sidecar_push_duration_seconds",
    help: "Latency of one snapshot push to one target.",
    labelNames: ["target"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5],
    registers: [this.registry],
  });
  readonly pushStaleness = new Histogram({
    name: "epp_sidecar_metrics_to_push_seconds",
    help: "Age of the newest metrics in a snapshot when a target acknowledged it (metric-to-filter staleness).",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly invalidResources = new Counter({
    name: "epp_sidecar_invalid_resources_total",
    help: "Kubernetes or manifest objects skipped as invalid, by kind and reason.",
    labelNames: ["kind", "reason"],
    registers: [this.registry],
  });

  readonly configRejected = new Counter({
    name: "epp_sidecar_config_rejected_total",
    help: "Scheduling configs refused (the last good one stays in force), by source (file, configmap) and reason.",
    labelNames: ["source", "reason"],
    registers: [this.registry],
  });
  readonly configInfo = new Gauge({
    name: "epp_sidecar_scheduling_config_info",
    help: "1 for the scheduling config each pool routes with: its name and the first 16 hex digits of its SHA-256 (none: no config, the profile name only).",
    labelNames: ["pool", "name", "hash"],
    registers: [this.registry],
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: "epp_sidecar_" });
  }
}
