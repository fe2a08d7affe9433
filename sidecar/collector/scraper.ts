// Scrapes every target's metrics page on a fixed interval and keeps per-endpoint state.
// Fault isolation: each endpoint has at most one scrape in flight, bounded by its own timeout; a round
// never waits for a slow endpoint before the next round starts (that endpoint is just skipped until its
// scrape settles), and a failure touches only that endpoint's state. The last good metrics are kept
// across failures; staleness is derived from consecutive failures and the age of the last success.
import { realClock } from "./clock.ts";
import type { Clock } from "./clock.ts";
import { extractMetrics } from "./engines.ts";
import type { EndpointMetrics, EngineMapping } from "./engines.ts";
import { channelOverFetcher } from "./fetch-metrics.ts";
import type { MetricsCallback, MetricsChannel, MetricsFetcher } from "./fetch-metrics.ts";
import { DeadlineQueue } from "./deadline-queue.ts";
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
  /** The fetcher's callback form (HttpFetcher.open), used instead of `fetch` when given. */
  open?: (url: string) => MetricsChannel;
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

/** An endpoint's state plus what the loop needs while scraping it. */
interface Live extends EndpointState {
  channel?: MetricsChannel;
  /** The URL `channel` was opened for. */
  channelUrl?: string;
  /** The round of the scrape in flight. */
  round?: Round;
  /** Why the scrape in flight was cancelled (timeout, removal, stop). */
  cancelReason?: Error;
  /** No longer a target (a scrape still in flight must not write its result). */
  removed: boolean;
  /** Completion of this endpoint's scrapes: one function for the endpoint's lifetime, not one per scrape. */
  readonly done: MetricsCallback;
}

interface Round {
  summary: RoundSummary;
  pending: number;
  reported: boolean;
  /** Endpoints at the round's start and whether each was stale then (parallel arrays: no Map per round). */
  states: Live[];
  staleBefore: boolean[];
  onReport?: (s: RoundSummary) => void;
}

export class Scraper {
  private readonly opts: Required<Omit<ScraperOptions, "onRound" | "open">> &
    Pick<ScraperOptions, "onRound" | "open">;
  private readonly endpoints = new Map<string, Live>();
  private readonly queue: { state: Live; round: Round }[] = [];
  private queueHead = 0;
  /** Resolvers waiting in stop() for the scrapes in flight to settle. */
  private idleWaiters: (() => void)[] = [];
  private active = 0;
  /** Scrape deadlines in dispatch order (all scrapes share one timeout, so they are sorted): one timer
   *  for the earliest instead of a timer per scrape (20,000 scrapes/s at 1000 endpoints). */
  private readonly deadlines = new DeadlineQueue<Live>();
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
      open: options.open,
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
        const live: Live = {
          key: t.key,
          url: t.url,
          mapping: t.mapping,
          consecutiveFailures: 0,
          lastWarnings: 0,
          inFlight: false,
          attempt: 0,
          template: new PageTemplate(),
          removed: false,
          done: (error, body) => this.settle(live, error, body),
        };
        this.endpoints.set(t.key, live);
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
        s.removed = true;
        this.cancel(s, new Cancelled("target removed"));
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
    this.deadlines.clear();
    for (let i = this.queueHead; i < this.queue.length; i++) this.queue[i]!.state.inFlight = false;
    this.queue.length = 0;
    this.queueHead = 0;
    // Endpoints removed while in flight were cancelled when they were removed.
    for (const s of this.endpoints.values()) this.cancel(s, new Cancelled("scraper stopped"));
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
      if (state.removed) {
        // Removed while queued: nothing to scrape.
        state.inFlight = false;
        if (--round.pending === 0 && !round.reported) this.report(round, false);
        continue;
      }
      this.scrape(state, round);
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0; // an index instead of shift(): O(1) per dispatch
      this.queueHead = 0;
    }
  }

  private scrape(s: Live, round: Round): void {
    const { clock, timeoutMs } = this.opts;
    this.active++;
    s.round = round;
    s.cancelReason = undefined;
    s.lastAttemptMs = clock.now();
    this.deadlines.push(s, s.lastAttemptMs + timeoutMs, ++s.attempt);
    if (this.deadlineTimer === undefined) this.armDeadline();
    let channel = s.channel;
    if (channel === undefined || s.channelUrl !== s.url) {
      try {
        channel = this.opts.open?.(s.url) ?? channelOverFetcher(this.opts.fetch, s.url);
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        queueMicrotask(() => s.done(error, undefined)); // settle later, as a failed GET would
        return;
      }
      s.channel = channel;
      s.channelUrl = s.url;
    }
    channel.get(s.done);
  }

  /** Ends the scrape in flight of `s`, if any; it settles (asynchronously) with `reason`. */
  private cancel(s: Live, reason: Error): void {
    if (s.round === undefined || s.cancelReason !== undefined) return;
    s.cancelReason = reason;
    s.channel?.cancel(reason);
  }

  /** A scrape of `s` settled: record the outcome, then let the round and the queue move on. */
  private settle(s: Live, fetchError: Error | undefined, text: string | undefined): void {
    const round = s.round;
    if (round === undefined) return; // a channel must call done once per get(); ignore extra calls
    s.round = undefined;
    this.active--;
    s.inFlight = false;
    const cancelled = s.cancelReason;
    let error: string | undefined;
    if (cancelled !== undefined) error = cancelled.message;
    else if (fetchError !== undefined) error = errorText(fetchError);
    else {
      let r: ReturnType<typeof extractMetrics>;
      try {
        r = extractMetrics(text ?? "", s.mapping, s.template);
      } catch (e) {
        // Never expected; but this runs in a socket callback, where a throw would end the process.
        s.template.forget();
        r = { ok: false, error: `metrics page not readable: ${errorText(e)}` };
      }
      if (r.ok) {
        if (!s.removed) {
          if (!round.summary.changed && !sameMetrics(s.metrics, r.metrics)) round.summary.changed = true;
          s.metrics = r.metrics;
          s.lastSuccessMs = this.opts.clock.now();
          s.consecutiveFailures = 0;
          s.lastError = undefined;
          s.lastWarnings = r.warnings.length;
        }
      } else error = r.error;
    }
    if (cancelled instanceof Cancelled) {
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
    while (q.length > 0) {
      const s = q.firstItem();
      if (s.inFlight && s.attempt === q.firstTag()) break;
      q.shift();
    }
    if (q.length === 0) {
      this.deadlineTimer = undefined;
      return;
    }
    const { clock } = this.opts;
    const wait = Math.max(0, q.firstAt() - clock.now());
    this.deadlineTimer = clock.setTimeout(() => this.expireDeadlines(), wait);
  }

  private expireDeadlines(): void {
    const { clock, timeoutMs } = this.opts;
    const now = clock.now();
    const q = this.deadlines;
    while (q.length > 0 && q.firstAt() <= now) {
      const s = q.firstItem();
      const attempt = q.firstTag();
      q.shift();
      if (s.inFlight && s.attempt === attempt) this.cancel(s, new Error(`timed out after ${timeoutMs} ms`));
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
        if (!s.removed && this.isStale(s, now) !== round.staleBefore[i]) {
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
