// Real and virtual clocks. Everything time-driven in the host (ticks, http_call timeouts, deferred
// queue notifications) goes through a Clock so benchmarks can run on virtual time.

export interface Clock {
  /** Wall time behind proxy_get_current_time_nanoseconds and WASI realtime. */
  nowNs(): bigint;
  /** One-shot timer. */
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
}

// Envoy answers proxy_get_current_time_nanoseconds from the system clock at nanosecond resolution
// (source/extensions/common/wasm/context.cc Context::getCurrentTimeNanoseconds); Date.now() has whole
// milliseconds, so the sub-millisecond part comes from performance.now(), re-anchored whenever the two drift
// apart (the filter times its decisions in microseconds).
let anchorMs = Date.now();
let anchorPerf = performance.now();

function wallNs(): bigint {
  const elapsed = performance.now() - anchorPerf;
  const ms = Date.now();
  if (Math.abs(anchorMs + elapsed - ms) > 2) {
    anchorMs = ms;
    anchorPerf = performance.now();
    return BigInt(ms) * 1_000_000n;
  }
  return BigInt(anchorMs) * 1_000_000n + BigInt(Math.round(elapsed * 1e6));
}

export const realClock: Clock = {
  nowNs: wallNs,
  setTimer: (ms, fn) => {
    const t = setTimeout(fn, ms);
    // Ticks must not keep a test or CLI process alive on their own.
    t.unref?.();
    return t;
  },
  clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

interface VirtualTimer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** Time only moves when told; timers fire in (time, creation) order. */
export class VirtualClock implements Clock {
  private nowMsValue = 0;
  private seq = 0;
  private timers: VirtualTimer[] = [];

  constructor(private readonly startNs: bigint = 0n) {}

  nowNs(): bigint {
    return this.startNs + BigInt(Math.round(this.nowMsValue * 1e6));
  }

  nowMs(): number {
    return this.nowMsValue;
  }

  setTimer(ms: number, fn: () => void): unknown {
    const t: VirtualTimer = { at: this.nowMsValue + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.timers.push(t);
    return t;
  }

  clearTimer(handle: unknown): void {
    if (handle && typeof handle === "object") (handle as VirtualTimer).cancelled = true;
  }

  /** Moves time forward by ms, firing due timers in order (timers set while firing are honoured). */
  advance(ms: number): void {
    const end = this.nowMsValue + ms;
    for (;;) {
      const next = this.nextDue(end);
      if (!next) break;
      this.nowMsValue = Math.max(this.nowMsValue, next.at);
      next.cancelled = true;
      next.fn();
    }
    this.nowMsValue = end;
  }

  /** Fires timers that are due now (zero-delay work) until none are left. */
  runUntilIdle(): void {
    this.advance(0);
  }

  pendingTimers(): number {
    return this.timers.filter((t) => !t.cancelled).length;
  }

  private nextDue(end: number): VirtualTimer | undefined {
    this.timers = this.timers.filter((t) => !t.cancelled);
    let best: VirtualTimer | undefined;
    for (const t of this.timers) {
      if (t.at > end) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  }
}
