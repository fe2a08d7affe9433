// A memory ceiling in the spirit of Envoy's overload manager (source/server/overload_manager_impl.cc): a resource
// monitor samples memory on a timer, and while usage is at or over the ceiling the gateway rejects new connections
// (envoy.overload_actions.reject_incoming_connections) and answers new requests on open connections with 503
// (envoy.overload_actions.stop_accepting_requests). The resource is the memory Node holds for JavaScript objects and
// buffers (heapUsed + external), the closest analogue of the fixed_heap monitor's allocated heap.
import v8 from "node:v8";
import { runInNewContext } from "node:vm";

export interface OverloadConfig {
  /** The ceiling: at or above it, new connections and new requests are shed. */
  maxHeapBytes: number;
  /** How often usage is sampled (Envoy's refresh_interval, default 1 s; ours 100 ms). */
  sampleIntervalMs: number;
}

export type MemorySampler = () => number;

const defaultSampler: MemorySampler = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

/**
 * A full collection, used while overloaded (at most once a second) so freed request buffers show up in the next
 * sample: without allocation pressure V8 may not collect for a long time, and the gateway would stay closed.
 * Envoy's shrink_heap action plays the same part for tcmalloc's free pages. Undefined if it cannot be had.
 */
function findGc(): (() => void) | undefined {
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === "function") return g;
  try {
    v8.setFlagsFromString("--expose-gc");
    const fn = runInNewContext("gc") as unknown;
    return typeof fn === "function" ? (fn as () => void) : undefined;
  } catch {
    return undefined;
  }
}

export class OverloadMonitor {
  private timer: NodeJS.Timeout | undefined;
  private active = false;
  private lastGcMs = 0;
  /** Looked up on the first overload only (it changes a V8 flag). */
  private gc: (() => void) | undefined | null = null;
  /** The last sample, in bytes. */
  lastUsage = 0;

  constructor(
    private readonly cfg: OverloadConfig,
    private readonly onChange: (overloaded: boolean, usage: number) => void,
    private readonly sample: MemorySampler = defaultSampler,
    private readonly now: () => number = Date.now,
  ) {}

  get overloaded(): boolean {
    return this.active;
  }

  start(): void {
    this.check();
    this.timer = setInterval(() => this.check(), this.cfg.sampleIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One sample: enter or leave the overloaded state (a binary trigger, as Envoy's threshold trigger). */
  check(): void {
    let usage = this.sample();
    if (usage >= this.cfg.maxHeapBytes && this.now() - this.lastGcMs >= 1000) {
      if (this.gc === null) this.gc = findGc();
      this.lastGcMs = this.now();
      if (this.gc) {
        this.gc();
        usage = this.sample();
      }
    }
    this.lastUsage = usage;
    const over = usage >= this.cfg.maxHeapBytes;
    if (over !== this.active) {
      this.active = over;
      this.onChange(over, usage);
    }
  }
}
