// Scrapes every target's metrics page on a fixed interval and keeps per-endpoint state.
// Fault isolation: each endpoint has at most one scrape in flight, bounded by its own timeout; a round
// never waits for a slow endpoint before the next round starts (that endpoint is just skipped until its
// scrape settles), and a failure touches only that endpoint's state. The last good metrics are kept
// across failures; staleness is derived from consecutive failures and the age of the last success.
import { realClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import { extractMetrics } from "./engines.ts";
import type { EndpointMetrics, EngineMapping } from "./engines.ts";
import type { MetricsFetcher } from "./fetch-metrics.ts";
import { PageTemplate } from "./page-template.ts";

export interface ScrapeTarget {
  /** Identity of the endpoint, e.g. `10.0.0.1:8000`; state survives setTargets() under the same key. */
  key: string;
  url: string;
  mapping: EngineMapping;
}

export interface EndpointState {
  readonly key: string;
  url: string;
  mapping: EngineMapping;
  /** Last good metrics (kept across failures). */
  metrics?: EndpointMetrics;
  lastSuccessMs?: number;
  lastAttemptMs?: number;
  consecutiveFailures: number;
  lastError?: string;
  /** Lines the parser could not read on the last successful scrape. */
  lastWarnings: number;
  inFlight: boolean;
  /** Number of the scrape in flight (or last one), to match it with its deadline. */
  attempt: number;
  /** The structure of this endpoint's last page, so the next one only needs its values parsed. */
  readonly template: PageTemplate;
}

export interface Freshness {
  /** now − last success; undefined if never scraped successfully. */
  ageMs?: number;
  stale: boolean;
}

export interface RoundSummary {
  round: number;
  startedAtMs: number;
  finishedAtMs: number;
  dispatched: number;
  succeeded: number;
  failed: number;
  /** Targets skipped because their previous scrape was still in flight. */
  skipped: number;
  /** True if the round was reported before all its scrapes settled (a slow endpoint outlived it). */
  partial: boolean;
  /** Some endpoint's metrics or stale flag changed. */
  changed: boolean;
}

export interface ScraperOptions {
  fetch: MetricsFetcher;
  intervalMs?: number;
  /** Per-scrape timeout. */
  timeoutMs?: number;
  /** Scrapes in flight at once across all endpoints. */
  concurrency?: number;
  /** Each round starts intervalMs ± jitterMs after the previous one, so pods are not hit in lockstep. */
  jitterMs?: number;
  /** Stale after this many consecutive failures… */
  staleAfterFailures?: number;
  /** …or when the last success is older than this. */
  maxAgeMs?: number;
  clock?: Clock;
  random?: () => number;
  /** Called once per round: when all its scrapes settled, or when the next round starts. */
  onRound?: (summary: RoundSummary) => void;
}

interface Round {
  summary: RoundSummary;
  pending: number;
  reported: boolean;
  /** Endpoints at the round's start and whether each was stale then (parallel arrays: no Map per round). */
  states: EndpointState[];
  staleBefore: boolean[];
  onReport?: (s: RoundSummary) => void;
}

export class Scraper {
  private readonly opts: Required<Omit<ScraperOptions, "onRound">> & Pick<ScraperOptions, "onRound">;
  private readonly endpoints = new Map<string, EndpointState>();
  private readonly queue: { state: EndpointState; round: Round }[] = [];
  private queueHead = 0;
  /** Scrapes in flight, by endpoint. */
  private readonly aborts = new Map<EndpointState, AbortController>();
  /** One controller per endpoint, reused until it is actually aborted (saves an allocation per scrape). */
  private readonly controllers = new WeakMap<EndpointState, AbortController>();
  /** Resolvers waiting in stop() for the scrapes in flight to settle. */
  private idleWaiters: (() => void)[] = [];
  private active = 0;
  /** Scrape deadlines in dispatch order (all scrapes share one timeout, so they are sorted): one timer
   *  for the earliest instead of a timer per scrape (20,000 scrapes/s at 1000 endpoints). */
  private readonly deadlines: { state: EndpointState; at: number; attempt: number }[] = [];
  private deadlineHead = 0;
  private deadlineTimer?: unknown;
  private roundNo = 0;
  private current?: Round;
  private timer?: unknown;
  /** Where the current round sits on the fixed-rate grid. */
  private plannedMs?: number;
  private running = false;

  constructor(options: ScraperOptions) {
    const intervalMs = options.intervalMs ?? 50;
    this.opts = {
      intervalMs,
      timeoutMs: options.timeoutMs ?? 1000,
      concurrency: options.concurrency ?? 256,
      jitterMs: options.jitterMs ?? Math.floor(intervalMs / 10),
      staleAfterFailures: options.staleAfterFailures ?? 3,
      maxAgeMs: options.maxAgeMs ?? 1000,
      clock: options.clock ?? realClock,
      random: options.random ?? Math.random,
      fetch: options.fetch,
      onRound: options.onRound,
    };
  }

  /** Replaces the target list; endpoints that stay keep their state, removed ones are dropped. */
  setTargets(targets: readonly ScrapeTarget[]): void {
    const keep = new Set<string>();
    for (const t of targets) {
      keep.add(t.key);
      const s = this.endpoints.get(t.key);
      if (s === undefined) {
        this.endpoints.set(t.key, {
          key: t.key,
          url: t.url,
          mapping: t.mapping,
          consecutiveFailures: 0,
          lastWarnings: 0,
          inFlight: false,
          attempt: 0,
          template: new PageTemplate(),
        });
      } else {
        if (s.mapping !== t.mapping) {
          s.metrics = undefined; // another engine's numbers would mislead
          s.template.forget(); // learned for other metric names
        }
        s.url = t.url;
        s.mapping = t.mapping;
      }
    }
    for (const [key, s] of this.endpoints) {
      if (!keep.has(key)) {
        this.endpoints.delete(key);
        this.aborts.get(s)?.abort(new Cancelled("target removed"));
      }
    }
  }

  state(key: string): EndpointState | undefined {
    return this.endpoints.get(key);
  }

  states(): ReadonlyMap<string, EndpointState> {
    return this.endpoints;
  }

  private isStale(s: EndpointState, nowMs: number): boolean {
    return (
      s.lastSuccessMs === undefined ||
      s.consecutiveFailures >= this.opts.staleAfterFailures ||
      nowMs - s.lastSuccessMs > this.opts.maxAgeMs
    );
  }

  freshness(key: string, nowMs = this.opts.clock.now()): Freshness {
    const s = this.endpoints.get(key);
    if (s === undefined || s.lastSuccessMs === undefined) return { stale: true };
    return { ageMs: Math.max(0, nowMs - s.lastSuccessMs), stale: this.isStale(s, nowMs) };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.tick();
  }

  /** Stops the loop and aborts scrapes in flight; resolves when they have settled. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.timer !== undefined) this.opts.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.plannedMs = undefined;
    if (this.deadlineTimer !== undefined) this.opts.clock.clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.deadlines.length = 0;
    this.deadlineHead = 0;
    for (let i = this.queueHead; i < this.queue.length; i++) this.queue[i]!.state.inFlight = false;
    this.queue.length = 0;
    this.queueHead = 0;
    for (const ac of this.aborts.values()) ac.abort(new Cancelled("scraper stopped"));
    if (this.active > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  /** Starts one round now; resolves with its summary once all its scrapes settled. For tests and tools. */
  runRound(): Promise<RoundSummary> {
    return new Promise((resolve) => this.beginRound(resolve));
  }

  private tick(): void {
    if (!this.running) return;
    const { intervalMs, jitterMs, random, clock } = this.opts;
    const now = clock.now();
    // Fixed rate: rounds sit on a grid of intervalMs, so timer lateness and round work do not stretch the
    // period (20 rounds/s at 50 ms, not 19). After a stall longer than one interval the grid restarts from
    // now instead of firing the missed rounds back to back.
    this.plannedMs = this.plannedMs === undefined || now - this.plannedMs > intervalMs ? now : this.plannedMs;
    this.beginRound();
    this.plannedMs += intervalMs;
    const delay = Math.max(1, this.plannedMs + (random() * 2 - 1) * jitterMs - clock.now());
    this.timer = clock.setTimeout(() => this.tick(), delay);
  }

  private beginRound(onReport?: (s: RoundSummary) => void): void {
    if (this.current && !this.current.reported) this.report(this.current, true);
    const now = this.opts.clock.now();
    const round: Round = {
      summary: {
        round: ++this.roundNo,
        startedAtMs: now,
        finishedAtMs: now,
        dispatched: 0,
        succeeded: 0,
        failed: 0,
        skipped: 0,
        partial: false,
        changed: false,
      },
      pending: 0,
      reported: false,
      states: [],
      staleBefore: [],
      onReport,
    };
    this.current = round;
    for (const s of this.endpoints.values()) {
      round.states.push(s);
      round.staleBefore.push(this.isStale(s, now));
      if (s.inFlight) {
        round.summary.skipped++;
        continue;
      }
      s.inFlight = true;
      round.pending++;
      round.summary.dispatched++;
      this.queue.push({ state: s, round });
    }
    if (round.pending === 0) this.report(round, false);
    else this.pump();
  }

  private pump(): void {
    while (this.active < this.opts.concurrency && this.queueHead < this.queue.length) {
      const { state, round } = this.queue[this.queueHead++]!;
      if (this.endpoints.get(state.key) !== state) {
        // Removed while queued: nothing to scrape.
        state.inFlight = false;
        if (--round.pending === 0 && !round.reported) this.report(round, false);
        continue;
      }
      void this.scrape(state, round);
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0; // an index instead of shift(): O(1) per dispatch
      this.queueHead = 0;
    }
  }

  private async scrape(s: EndpointState, round: Round): Promise<void> {
    const { clock, timeoutMs } = this.opts;
    this.active++;
    let ac = this.controllers.get(s);
    if (ac === undefined || ac.signal.aborted) this.controllers.set(s, (ac = new AbortController()));
    this.aborts.set(s, ac);
    s.lastAttemptMs = clock.now();
    this.deadlines.push({ state: s, at: s.lastAttemptMs + timeoutMs, attempt: ++s.attempt });
    if (this.deadlineTimer === undefined) this.armDeadline();
    let error: string | undefined;
    try {
      const text = await this.opts.fetch(s.url, ac.signal);
      if (ac.signal.aborted) throw ac.signal.reason;
      const r = extractMetrics(text, s.mapping, s.template);
      if (r.ok) {
        if (this.endpoints.get(s.key) === s) {
          if (!round.summary.changed && !sameMetrics(s.metrics, r.metrics)) round.summary.changed = true;
          s.metrics = r.metrics;
          s.lastSuccessMs = clock.now();
          s.consecutiveFailures = 0;
          s.lastError = undefined;
          s.lastWarnings = r.warnings.length;
        }
      } else {
        error = r.error;
      }
    } catch (e) {
      error = ac.signal.aborted
        ? String((ac.signal.reason as Error)?.message ?? ac.signal.reason)
        : errorText(e);
    } finally {
      this.aborts.delete(s);
      this.active--;
      s.inFlight = false;
    }
    if (ac.signal.reason instanceof Cancelled) {
      // Stopped or removed: not the endpoint's fault, so no failure is recorded.
    } else if (error === undefined) round.summary.succeeded++;
    else {
      round.summary.failed++;
      s.consecutiveFailures++;
      s.lastError = error;
    }
    if (--round.pending === 0 && !round.reported) this.report(round, false);
    this.pump();
    if (this.active === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Arms the timer for the earliest deadline of a scrape still in flight, dropping settled ones. */
  private armDeadline(): void {
    const q = this.deadlines;
    while (this.deadlineHead < q.length) {
      const d = q[this.deadlineHead]!;
      if (d.state.inFlight && d.state.attempt === d.attempt) break;
      this.deadlineHead++;
    }
    if (this.deadlineHead === q.length) {
      q.length = 0;
      this.deadlineHead = 0;
      this.deadlineTimer = undefined;
      return;
    }
    const { clock } = this.opts;
    const wait = Math.max(0, q[this.deadlineHead]!.at - clock.now());
    this.deadlineTimer = clock.setTimeout(() => this.expireDeadlines(), wait);
  }

  private expireDeadlines(): void {
    const { clock, timeoutMs } = this.opts;
    const now = clock.now();
    const q = this.deadlines;
    while (this.deadlineHead < q.length && q[this.deadlineHead]!.at <= now) {
      const d = q[this.deadlineHead++]!;
      if (d.state.inFlight && d.state.attempt === d.attempt)
        this.aborts.get(d.state)?.abort(new Error(`timed out after ${timeoutMs} ms`));
    }
    if (this.deadlineHead > 4096 && this.deadlineHead * 2 > q.length) {
      q.splice(0, this.deadlineHead); // keep the array from growing without bound
      this.deadlineHead = 0;
    }
    this.armDeadline();
  }

  private report(round: Round, partial: boolean): void {
    round.reported = true;
    const now = this.opts.clock.now();
    round.summary.partial = partial;
    round.summary.finishedAtMs = now;
    if (!round.summary.changed) {
      for (let i = 0; i < round.states.length; i++) {
        const s = round.states[i]!;
        if (this.endpoints.get(s.key) === s && this.isStale(s, now) !== round.staleBefore[i]) {
          round.summary.changed = true;
          break;
        }
      }
    }
    const summary = { ...round.summary };
    round.onReport?.(summary);
    try {
      this.opts.onRound?.(summary);
    } catch (e) {
      // A failing consumer must not stop the scrape loop; it sees the next round.
      process.emitWarning(`scraper onRound callback threw: ${errorText(e)}`);
    }
  }
}

/** Abort reason for scrapes we cancel ourselves. */
class Cancelled extends Error {}

function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: string }).code;
    return code ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}

function sameMetrics(a: EndpointMetrics | undefined, b: EndpointMetrics): boolean {
  return (
    a !== undefined &&
    a.waiting === b.waiting &&
    a.running === b.running &&
    a.kvUsage === b.kvUsage &&
    a.maxLoras === b.maxLoras &&
    a.kvBlockSize === b.kvBlockSize &&
    a.kvBlockCount === b.kvBlockCount &&
    sameList(a.runningAdapters, b.runningAdapters) &&
    sameList(a.waitingAdapters, b.waitingAdapters)
  );
}
