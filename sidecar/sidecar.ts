// The sidecar's main loop: inventory → scrape targets → after every scrape round (and at least every
// refresh interval) build, encode and publish one snapshot per pool. Keeps the latest snapshot per pool
// for the HTTP server and records the loop's metrics.
import type { Inventory, Logger, PoolInventory } from "./inventory/types.ts";
import { Scraper } from "./collector/scraper.ts";
import type { MetricsChannel, MetricsFetcher } from "./collector/fetch-metrics.ts";
import { buildSnapshot, poolViewFromInventory } from "./snapshot/builder.ts";
import { scrapeConfigFromInventory, scrapeTargets } from "./collector/targets.ts";
import { EncoderCache, encodeSnapshot } from "./snapshot/encoder.ts";
import { GenerationClock } from "./snapshot/generation.ts";
import type { EngineType, Snapshot } from "./snapshot/types.ts";
import type { Publisher, PushResult } from "./publisher/publisher.ts";
import type { SidecarMetrics } from "./metrics.ts";
import type { PublishedSnapshot, SidecarState } from "./state.ts";
import { ConfigRegistry } from "./scheduling-config/registry.ts";
import type { ConfigStatus } from "./scheduling-config/registry.ts";

export interface SidecarOptions {
  inventory: Inventory;
  publisher: Publisher;
  metrics: SidecarMetrics;
  fetch: MetricsFetcher;
  /** The fetcher's callback form (HttpFetcher.open): the scrape loop uses it when given. */
  open?: (url: string) => MetricsChannel;
  logger: Logger;
  /** Scheduler profile written into every snapshot when `config` resolves none. */
  profile?: string;
  /** Each pool's scheduling config (default: none, only `profile`). */
  config?: ConfigRegistry;
  defaultEngine?: EngineType;
  /** Scrape with `?name[]=…` unless a pool's annotation says otherwise (default true). */
  metricsNameFilter?: boolean;
  /** Written into every snapshot's scheduler record as `sharedInflight` 1/0 (default true). */
  sharedInflight?: boolean;
  scrapeIntervalMs?: number;
  scrapeTimeoutMs?: number;
  staleAfterFailures?: number;
  maxMetricsAgeMs?: number;
  /** Publish at least this often even without a scrape round, so the filter never sees a stale snapshot. */
  refreshMs?: number;
  /** No push target is configured: filters pull GET /snapshot, so readiness needs no acknowledgement. */
  pullOnly?: boolean;
  now?: () => number;
  /** Observer of every snapshot built (benchmarks, tests). */
  onSnapshot?: (e: {
    pool: string;
    snapshot: Snapshot;
    bytes: number;
    buildMs: number;
    encodeMs: number;
  }) => void;
}

export function poolKey(p: { namespace: string; name: string }): string {
  return `${p.namespace}/${p.name}`;
}

export class Sidecar implements SidecarState {
  private readonly scraper: Scraper;
  private readonly generations: GenerationClock;
  private readonly latestByPool = new Map<string, PublishedSnapshot>();
  /** Per pool: its last string table, reused while its pods and adapters stay the same. */
  private readonly encoderCaches = new Map<string, EncoderCache>();
  private refreshTimer?: NodeJS.Timeout;
  private lastPublishMs = 0;
  private readonly now: () => number;
  private readonly onChange = () => this.refreshTargets();
  private readonly config: ConfigRegistry;
  /** Per pool: the label set of its scheduling-config info gauge, to remove when it changes. */
  private readonly configLabels = new Map<string, { pool: string; name: string; hash: string }>();

  constructor(private readonly opts: SidecarOptions) {
    this.now = opts.now ?? Date.now;
    this.config = opts.config ?? new ConfigRegistry({ fallbackProfile: opts.profile ?? "default" });
    this.generations = new GenerationClock(this.now);
    this.scraper = new Scraper({
      fetch: opts.fetch,
      ...(opts.open === undefined ? {} : { open: opts.open }),
      intervalMs: opts.scrapeIntervalMs ?? 50,
      timeoutMs: opts.scrapeTimeoutMs ?? 1000,
      staleAfterFailures: opts.staleAfterFailures ?? 3,
      maxAgeMs: opts.maxMetricsAgeMs ?? 1000,
      onRound: (round) => {
        const m = this.opts.metrics;
        m.scrapeRoundDuration.observe((round.finishedAtMs - round.startedAtMs) / 1000);
        if (round.failed > 0) m.scrapeErrors.inc({ reason: "failed" }, round.failed);
        if (round.skipped > 0) m.scrapeErrors.inc({ reason: "still_in_flight" }, round.skipped);
        this.publishAll();
      },
    });
  }

  async start(): Promise<void> {
    this.opts.inventory.on("change", this.onChange);
    await this.opts.inventory.start();
    this.refreshTargets();
    this.scraper.start();
    const refreshMs = this.opts.refreshMs ?? 100;
    this.refreshTimer = setInterval(() => {
      if (this.now() - this.lastPublishMs >= refreshMs) this.publishAll();
    }, refreshMs);
    this.refreshTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.refreshTimer);
    this.opts.inventory.off("change", this.onChange);
    await this.scraper.stop();
    await this.opts.inventory.stop();
    await this.opts.publisher.close();
  }

  /** Called by the publisher for every push result (wired in main.ts / tests). */
  recordPush(r: PushResult): void {
    const m = this.opts.metrics;
    m.pushes.inc({ target: r.target, outcome: r.outcome });
    m.pushDuration.observe({ target: r.target }, r.latencyMs / 1000);
    if (r.remoteGeneration !== undefined && !this.generations.observe(r.remoteGeneration)) {
      this.opts.logger.warn(
        { target: r.target, pool: r.pool, held: r.remoteGeneration.toString() },
        "target holds a generation no sidecar could have made; it accepts ours once that goes unrefreshed",
      );
    }
    if (r.outcome === "ok") {
      const snap = this.latestByPool.get(r.pool)?.snapshot;
      const newestAge = snap ? newestMetricsAgeMs(snap) : undefined;
      if (snap && newestAge !== undefined && snap.generation === r.generation) {
        m.pushStaleness.observe((this.now() - snap.createdAtMs + newestAge) / 1000);
      }
    } else if (r.outcome !== "superseded") {
      this.opts.logger.warn(
        { target: r.target, pool: r.pool, status: r.status, err: r.error },
        "snapshot push failed",
      );
    }
  }

  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    if (!this.opts.inventory.synced) reasons.push("inventory not synced yet");
    if (this.latestByPool.size === 0) reasons.push("no pool to serve yet");
    // Pull mode: a built snapshot is all there is to serve, and nobody acknowledges it. (With push targets
    // configured, none discovered yet still means not ready.)
    else if (!this.opts.pullOnly && !this.opts.publisher.allTargetsAcked())
      reasons.push("not every Envoy target has acknowledged a snapshot");
    // A target holding a generation we did not make (and cannot follow) routes on someone else's table.
    const limit = this.generations.plausibleLimit();
    for (const st of this.opts.publisher.status()) {
      if (st.heldGeneration !== undefined && BigInt(st.heldGeneration) > limit)
        reasons.push(
          `${st.target} holds generation ${st.heldGeneration}, which this sidecar did not produce`,
        );
    }
    return { ready: reasons.length === 0, reasons };
  }

  poolKeys(): string[] {
    return [...this.latestByPool.keys()];
  }

  latest(key: string): PublishedSnapshot | undefined {
    return this.latestByPool.get(key);
  }

  pushStatus() {
    return this.opts.publisher.status();
  }

  configStatus(): ConfigStatus[] {
    return this.config.status();
  }

  /** A config source changed: publish now rather than at the next scrape round. */
  configChanged(): void {
    this.publishAll();
  }

  private refreshTargets(): void {
    const targets = this.opts.inventory
      .pools()
      .flatMap((inv) => scrapeTargets(poolViewFromInventory(inv), this.scrapeConfig(inv)));
    this.scraper.setTargets(targets);
    // Pools that disappeared stop being served and published.
    const live = new Set(this.opts.inventory.pools().map((p) => poolKey(p.pool)));
    for (const key of this.latestByPool.keys()) if (!live.has(key)) this.latestByPool.delete(key);
    for (const key of this.encoderCaches.keys()) if (!live.has(key)) this.encoderCaches.delete(key);
    this.config.retain(live);
    for (const [key, labels] of this.configLabels)
      if (!live.has(key)) {
        this.opts.metrics.configInfo.remove(labels);
        this.configLabels.delete(key);
      }
    this.publishAll();
  }

  /** The pool's annotations win over the sidecar-wide defaults (--engine, --metrics-name-filter). */
  private scrapeConfig(inv: PoolInventory) {
    return scrapeConfigFromInventory(inv, {
      ...(this.opts.defaultEngine ? { defaultEngine: this.opts.defaultEngine } : {}),
      ...(this.opts.metricsNameFilter === undefined
        ? {}
        : { metricsNameFilter: this.opts.metricsNameFilter }),
    });
  }

  private publishAll(): void {
    this.lastPublishMs = this.now();
    for (const inv of this.opts.inventory.pools()) {
      try {
        this.publishPool(inv);
      } catch (err) {
        this.opts.logger.error(
          { pool: poolKey(inv.pool), err: (err as Error).message },
          "cannot build snapshot",
        );
      }
    }
  }

  private encoderCache(pool: string): EncoderCache {
    let c = this.encoderCaches.get(pool);
    if (c === undefined) this.encoderCaches.set(pool, (c = new EncoderCache()));
    return c;
  }

  private publishPool(inv: PoolInventory): void {
    const m = this.opts.metrics;
    const key = poolKey(inv.pool);
    const started = performance.now();
    // How many Envoys route for the pool decides how the filter places new prompt groups
    // (docs/scheduling.md, "Placement"): with one, load-aware; with several, a hash they all agree on.
    // With a config, the SCHEDULER record repeats the detector's limits for filters that predate PLUGINS.
    const cfg = this.config.resolve(inv);
    const view = poolViewFromInventory(
      inv,
      {
        profile: cfg.profile,
        ...cfg.thresholds,
        params: {
          envoyReplicas: Math.max(1, this.opts.publisher.targetCount()),
          sharedInflight: this.opts.sharedInflight === false ? 0 : 1,
        },
      },
      cfg,
    );
    this.recordConfig(key, cfg.profile, cfg.hash);
    const snapshot = buildSnapshot(view, this.scraper, {
      generation: this.generations.next(),
      nowMs: this.now(),
      defaultEngine: this.scrapeConfig(inv).defaultEngine,
    });
    const built = performance.now();
    const bytes = encodeSnapshot(snapshot, this.encoderCache(key));
    const encoded = performance.now();
    m.encodeDuration.observe((encoded - started) / 1000);
    this.opts.onSnapshot?.({
      pool: key,
      snapshot,
      bytes: bytes.length,
      buildMs: built - started,
      encodeMs: encoded - built,
    });
    this.latestByPool.set(key, { snapshot, bytes });
    this.opts.publisher.publish(key, bytes, snapshot.generation);
    recordPoolGauges(m, inv, snapshot);
    m.snapshotBytes.set({ pool: key }, bytes.length);
    m.snapshotGeneration.set({ pool: key }, Number(snapshot.generation % 2n ** 52n));
    m.staleEndpoints.set({ pool: key }, snapshot.endpoints.filter((e) => e.stale).length);
  }

  /** epp_sidecar_scheduling_config_info{pool,name,hash} 1 for the config the pool routes with. */
  private recordConfig(pool: string, name: string, hash = "none"): void {
    const prev = this.configLabels.get(pool);
    if (prev !== undefined && prev.name === name && prev.hash === hash) return;
    if (prev !== undefined) this.opts.metrics.configInfo.remove(prev);
    const labels = { pool, name, hash };
    this.configLabels.set(pool, labels);
    this.opts.metrics.configInfo.set(labels, 1);
  }
}

/** Age of the freshest endpoint metrics in a snapshot (ms at createdAtMs), or undefined. */
function newestMetricsAgeMs(s: Snapshot): number | undefined {
  let best: number | undefined;
  for (const e of s.endpoints) {
    if (e.metricsAgeMs !== null && (best === undefined || e.metricsAgeMs < best)) best = e.metricsAgeMs;
  }
  return best;
}

function recordPoolGauges(m: SidecarMetrics, inv: PoolInventory, s: Snapshot): void {
  const labels = { name: inv.pool.name, namespace: inv.pool.namespace };
  const ready = s.endpoints.filter((e) => e.ready);
  const fresh = ready.filter((e) => !e.stale && e.hasMetrics);
  const avg = (f: (e: (typeof fresh)[number]) => number) =>
    fresh.length === 0 ? 0 : fresh.reduce((a, e) => a + f(e), 0) / fresh.length;
  m.poolReadyPods.set(labels, ready.length);
  m.poolAverageKvCache.set(
    labels,
    avg((e) => e.kvUsage),
  );
  m.poolAverageQueue.set(
    labels,
    avg((e) => e.waiting),
  );
  m.poolAverageRunning.set(
    labels,
    avg((e) => e.running),
  );
}
