// One simulated model server (a "pod"): vLLM V1-style continuous batching in steps.
//
// Each step: running requests first, in order (decode-first; a partly prefilled request continues
// its chunk), then waiting requests FCFS while the token budget, max_num_seqs and KV blocks allow
// (chunked prefill). A running request that cannot get a block preempts the most recently
// scheduled running request (recompute: blocks freed, progress reset, re-queued at the front).
// The step's duration comes from the step-time model; its tokens are emitted when it ends.
//
// The engine never reads wall time: it only uses the Clock it is given, so the same code runs
// behind the HTTP server (RealClock) and in discrete-event benchmarks (VirtualClock).
import type { Clock } from "../clock/clock.ts";
import { Deque } from "./deque.ts";
import { EngineStats } from "./stats.ts";
import { BlockPool, blockHashes, chainHash } from "./kv-cache.ts";
import { LoraManager } from "./lora.ts";
import type { EngineConfig } from "./presets.ts";
import { EngineRequest, type FinishReason, type RequestCallbacks, type SubmitInput } from "./request.ts";
import { Rng } from "../rng.ts";
import { stepTimeMs } from "./step-time.ts";
import { LoraInfoSeries, renderMetrics, type EngineFlavor, type MetricsSource } from "./metrics.ts";

export interface EngineOptions {
  config: EngineConfig;
  clock: Clock;
  seed?: number;
  /** Base model name (the `model_name` metric label). */
  model?: string;
  loraModules?: string[];
  /** Which server's metric names metricsText() uses. */
  flavor?: EngineFlavor;
}

/** Why submit() refused a request (the HTTP layer maps these to 400/404). */
export class SubmitError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** Bound on waiting requests skipped for LoRA per step, so a huge blocked queue stays cheap. */
const MAX_LORA_SKIPS = 2048;

export class Engine implements MetricsSource {
  readonly config: EngineConfig;
  readonly clock: Clock;
  readonly model: string;
  readonly pool: BlockPool;
  readonly lora: LoraManager;
  readonly stats = new EngineStats();
  private readonly rng: Rng;
  private readonly waiting = new Deque<EngineRequest>();
  private running: EngineRequest[] = [];
  private readonly byId = new Map<string, EngineRequest>();
  private nextSeq = 0;
  private stepScheduled = false;
  private lastStepEnd = 0;
  /** Requests scheduled in the step in flight, and how many tokens each computes. */
  private batch: EngineRequest[] = [];
  private batchTokens: number[] = [];
  private saltCounter = 0;
  private readonly loraSeries = new LoraInfoSeries();
  readonly flavor: EngineFlavor;
  /** Test hook: called after every step with the requests that were scheduled in order. */
  onStep?: (scheduled: readonly EngineRequest[], startMs: number, durationMs: number) => void;

  constructor(opts: EngineOptions) {
    this.config = opts.config;
    this.clock = opts.clock;
    this.model = opts.model ?? "meta-llama/Llama-3.1-8B-Instruct";
    this.rng = new Rng(opts.seed ?? 1);
    this.flavor = opts.flavor ?? "vllm";
    this.pool = new BlockPool(this.config.numGpuBlocks, this.config.blockSize);
    const c = this.config;
    this.lora = new LoraManager(c.maxLoras, c.maxCpuLoras, c.loraWarmLoadMs, c.loraColdLoadMs);
    for (const m of opts.loraModules ?? []) this.lora.register(m);
  }

  get numRunning(): number {
    return this.running.length;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  /** Requests not yet finished. */
  get inFlight(): number {
    return this.byId.size;
  }

  kvUsage(): number {
    return this.pool.usage();
  }

  runningRequests(): readonly EngineRequest[] {
    return this.running;
  }

  waitingRequests(): Iterable<EngineRequest> {
    return this.waiting;
  }

  /** Distinct adapters among running (and waiting) requests, for vllm:lora_requests_info. */
  loraSets(): { running: string[]; waiting: string[] } {
    const running = new Set<string>();
    for (const r of this.running) if (r.lora) running.add(r.lora);
    const waiting = new Set<string>();
    for (const r of this.waiting) if (r.lora) waiting.add(r.lora);
    return { running: [...running], waiting: [...waiting] };
  }

  /** Prometheus text of this pod's /metrics. */
  metricsText(): string {
    return renderMetrics(this, this.flavor, this.loraSeries);
  }

  /** Validate and enqueue a request; throws SubmitError for a bad one. */
  submit(input: SubmitInput, callbacks: RequestCallbacks = {}): EngineRequest {
    const c = this.config;
    if (input.lora !== undefined && !this.lora.known.has(input.lora)) {
      throw new SubmitError(404, `The model \`${input.lora}\` does not exist.`);
    }
    const ids = input.promptTokenIds;
    const promptLen = ids ? ids.length : (input.promptTokens ?? 0);
    if (promptLen < 1) throw new SubmitError(400, "The prompt must contain at least one token.");
    if (promptLen > c.maxModelLen) {
      throw new SubmitError(
        400,
        `This model's maximum context length is ${c.maxModelLen} tokens. However, your request has ${promptLen} input tokens. Please reduce the length of the input messages.`,
      );
    }
    const usableBlocks = c.numGpuBlocks - Math.ceil((1 - (c.kvPreemptThreshold ?? 1)) * c.numGpuBlocks);
    let maxTokens = input.maxTokens;
    if (maxTokens !== undefined) {
      if (!Number.isInteger(maxTokens) || maxTokens < 1)
        throw new SubmitError(400, "max_tokens must be at least 1.");
      if (promptLen + maxTokens > c.maxModelLen) {
        throw new SubmitError(
          400,
          `'max_tokens' is too large: ${maxTokens}. This model's maximum context length is ${c.maxModelLen} tokens and your request has ${promptLen} input tokens (${maxTokens} > ${c.maxModelLen} - ${promptLen}).`,
        );
      }
    } else {
      const drawn = Math.round(this.rng.logNormal(c.defaultOutputMean, c.defaultOutputSigma));
      maxTokens = Math.max(
        1,
        Math.min(drawn, Math.min(c.maxModelLen, usableBlocks * c.blockSize) - promptLen),
      );
    }
    // vLLM refuses to start when one max-length sequence cannot fit in KV; we refuse the request,
    // since it could never finish (it would preempt itself forever).
    if (promptLen + maxTokens > usableBlocks * c.blockSize) {
      throw new SubmitError(
        400,
        `prompt + max_tokens (${promptLen + maxTokens}) exceeds the KV cache capacity of ${usableBlocks * c.blockSize} tokens`,
      );
    }
    const seq = this.nextSeq++;
    const id = input.id ?? `cmpl-${seq}`;
    if (this.byId.has(id)) throw new SubmitError(400, `duplicate request id ${id}`);
    // Adapters get their own hash chain (vLLM salts block hashes with the LoRA); prompts without
    // token ids get a unique salt so they never match anything.
    let hashes: number[];
    if (ids && c.enablePrefixCaching) {
      hashes = blockHashes(
        ids,
        c.blockSize,
        input.lora ? chainHash(7, toCodes(input.lora), 0, input.lora.length) : 0,
      );
    } else {
      hashes = [];
      let parent = 1e15 + ++this.saltCounter;
      const empty: number[] = [];
      for (let i = 0; i + c.blockSize <= promptLen; i += c.blockSize)
        hashes.push((parent = chainHash(parent, empty, 0, 0)));
    }
    const r = new EngineRequest(
      id,
      seq,
      promptLen,
      maxTokens,
      input.lora,
      this.clock.now(),
      hashes,
      callbacks,
    );
    r.outputDrawn = input.maxTokens === undefined;
    this.byId.set(id, r);
    this.waiting.pushBack(r);
    this.wake();
    return r;
  }

  /** Client went away: drop the request and free its blocks now. */
  abort(id: string): boolean {
    const r = this.byId.get(id);
    if (!r || r.finished) return false;
    if (!this.waiting.remove(r)) {
      const i = this.running.indexOf(r);
      if (i >= 0) this.running.splice(i, 1);
    }
    this.finish(r, "abort", this.clock.now());
    return true;
  }

  private wake(): void {
    if (this.stepScheduled) return;
    this.stepScheduled = true;
    this.clock.schedule(Math.max(this.clock.now(), this.lastStepEnd), () => this.startStep());
  }

  private startStep(): void {
    const start = Math.max(this.clock.now(), this.lastStepEnd);
    const loadMs = this.schedule();
    if (this.batch.length === 0) {
      this.stepScheduled = false;
      return;
    }
    let prefill = 0;
    let decodeKv = 0;
    let hasLora = false;
    for (let i = 0; i < this.batch.length; i++) {
      const r = this.batch[i];
      const n = this.batchTokens[i];
      if (r.seqLen - r.numComputed > 1) prefill += n;
      else decodeKv += r.numComputed + 1;
      if (r.lora) hasLora = true;
    }
    const duration =
      loadMs +
      stepTimeMs(this.config.step, {
        prefillTokens: prefill,
        decodeKvTokens: decodeKv,
        batchSize: this.batch.length,
        hasLora,
      });
    const end = start + duration;
    this.lastStepEnd = end;
    this.stats.steps++;
    this.clock.schedule(end, () => this.endStep(start, end));
  }

  /** Choose this step's batch (allocating KV); returns LoRA load time to add to the step. */
  private schedule(): number {
    const c = this.config;
    const pool = this.pool;
    const bs = c.blockSize;
    const batch = this.batch;
    const tokens = this.batchTokens;
    batch.length = 0;
    tokens.length = 0;
    let budget = c.maxNumBatchedTokens;
    let preempted = false;
    // Blocks held back when a preemption threshold below 1 is configured.
    const reserve = Math.ceil((1 - (c.kvPreemptThreshold ?? 1)) * pool.numBlocks);
    const running = this.running;

    for (let i = 0; i < running.length && budget > 0; i++) {
      const r = running[i];
      const n = Math.min(r.seqLen - r.numComputed, budget);
      const need = Math.ceil((r.numComputed + n) / bs) - r.blocks.length;
      let ok = true;
      while (pool.freeBlocks - reserve < need) {
        const victim = running.pop() as EngineRequest;
        this.preempt(victim);
        preempted = true;
        if (victim === r) {
          ok = false;
          break;
        }
      }
      if (!ok) break;
      for (let k = 0; k < need; k++) r.blocks.push(pool.allocate());
      batch.push(r);
      tokens.push(n);
      budget -= n;
    }

    let loadMs = 0;
    if (!preempted && this.waiting.length > 0) {
      let active: Set<string> | undefined;
      let skipped = 0;
      let w = 0;
      while (w < this.waiting.length && budget > 0 && running.length < c.maxNumSeqs) {
        const r = this.waiting.at(w);
        if (r.lora) {
          if (!active) {
            active = new Set();
            for (const x of running) if (x.lora) active.add(x.lora);
          }
          if (!active.has(r.lora) && active.size >= c.maxLoras) {
            // Skip: this adapter would exceed max_loras; later requests may go first.
            if (++skipped > MAX_LORA_SKIPS) break;
            w++;
            continue;
          }
        }
        // Prefix-cache lookup: leading full blocks, leaving at least one token to compute.
        const maxHit = c.enablePrefixCaching
          ? Math.min(r.blockHashes.length, Math.floor((r.seqLen - 1) / bs))
          : 0;
        let hits = 0;
        let hitsOnFree = 0;
        for (; hits < maxHit; hits++) {
          const b = pool.lookup(r.blockHashes[hits]);
          if (b < 0) break;
          if (pool.isFree(b)) hitsOnFree++;
        }
        const computed = hits * bs;
        const n = Math.min(r.seqLen - computed, budget);
        const need = Math.ceil((computed + n) / bs) - hits;
        if (pool.freeBlocks - reserve - hitsOnFree < need) break;
        for (let k = 0; k < hits; k++) {
          const b = pool.lookup(r.blockHashes[k]);
          pool.touch(b);
          r.blocks.push(b);
        }
        for (let k = 0; k < need; k++) r.blocks.push(pool.allocate());
        r.numComputed = computed;
        r.registeredBlocks = hits;
        this.stats.prefixQueries += r.seqLen;
        this.stats.prefixHits += computed;
        if (r.cachedTokens < 0) r.cachedTokens = computed;
        if (r.firstScheduledMs < 0) {
          r.firstScheduledMs = this.clock.now();
          this.stats.queueTime.observe((r.firstScheduledMs - r.arrivalMs) / 1000);
        }
        if (r.lora) {
          active?.add(r.lora);
          loadMs += this.lora.activate(r.lora, active ?? new Set());
        }
        this.waiting.removeAt(w);
        running.push(r);
        batch.push(r);
        tokens.push(n);
        budget -= n;
      }
    }
    return loadMs;
  }

  private preempt(r: EngineRequest): void {
    this.releaseBlocks(r);
    r.numComputed = 0;
    r.registeredBlocks = 0;
    r.preemptions++;
    this.stats.preemptions++;
    this.waiting.pushFront(r);
  }

  private releaseBlocks(r: EngineRequest): void {
    // Release tail first so the request's last blocks are evicted before its shared prefix.
    for (let i = r.blocks.length - 1; i >= 0; i--) this.pool.release(r.blocks[i]);
    r.blocks.length = 0;
  }

  private endStep(start: number, end: number): void {
    const bs = this.config.blockSize;
    const stats = this.stats;
    const batch = this.batch;
    const tokens = this.batchTokens;
    let finishedAny = false;
    for (let i = 0; i < batch.length; i++) {
      const r = batch[i];
      if (r.finished) continue; // aborted during the step
      const wasPrefill = r.seqLen - r.numComputed > 1;
      r.numComputed += tokens[i];
      if (wasPrefill) stats.promptTokens += tokens[i];
      // Publish prompt blocks that just became full.
      const full = Math.min(Math.floor(r.numComputed / bs), r.blockHashes.length);
      while (r.registeredBlocks < full) {
        this.pool.register(r.blocks[r.registeredBlocks], r.blockHashes[r.registeredBlocks]);
        r.registeredBlocks++;
      }
      if (r.numComputed < r.seqLen) continue;
      const index = r.generated++;
      stats.generationTokens++;
      if (index === 0) {
        if (r.firstTokenMs < 0) {
          r.firstTokenMs = end;
          stats.ttft.observe((end - r.arrivalMs) / 1000);
          r.callbacks.onFirstToken?.(r);
        }
      } else {
        const itl = (end - r.lastTokenMs) / 1000;
        stats.tpot.observe(itl);
        stats.itl.observe(itl);
      }
      r.lastTokenMs = end;
      r.callbacks.onToken?.(r, index, end);
      if (r.generated >= r.maxTokens) {
        this.finish(r, r.outputDrawn ? "stop" : "length", end);
        finishedAny = true;
      }
    }
    if (finishedAny) this.running = this.running.filter((r) => !r.finished);
    this.onStep?.(batch, start, end - start);
    this.stepScheduled = false;
    if (this.running.length > 0 || this.waiting.length > 0) this.wake();
  }

  private finish(r: EngineRequest, reason: FinishReason, nowMs: number): void {
    r.finished = true;
    r.finishedMs = nowMs;
    this.releaseBlocks(r);
    this.byId.delete(r.id);
    if (reason !== "abort") this.stats.recordFinished(r, reason, nowMs);
    r.callbacks.onDone?.(r, reason);
  }
}

function toCodes(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i));
  return out;
}
