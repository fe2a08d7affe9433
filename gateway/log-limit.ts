// Rate-limited warnings: a client can make the gateway hit the same error on every request, so each distinct
// cause is logged at most once per window, and the next line for it says how many were suppressed. Causes carry
// client-chosen text (header names), so the table is bounded: past `maxCauses` live entries, new causes share
// one overflow entry.

const OVERFLOW = "(too many distinct causes)";

interface Entry {
  lastLoggedMs: number;
  suppressed: number;
}

export class RateLimitedLog {
  private readonly causes = new Map<string, Entry>();

  constructor(
    private readonly log: { warn(obj: object, msg?: string): void },
    private readonly windowMs = 10_000,
    private readonly maxCauses = 256,
    private readonly now: () => number = Date.now,
  ) {}

  /** Logs `msg` with `obj` unless `cause` was logged less than a window ago (then only counts it). */
  warn(cause: string, obj: object, msg: string): boolean {
    const now = this.now();
    let key = cause;
    let entry = this.causes.get(key);
    if (!entry && this.causes.size >= this.maxCauses) {
      this.evictExpired(now);
      if (this.causes.size >= this.maxCauses) {
        key = OVERFLOW;
        entry = this.causes.get(key);
      }
    }
    if (entry && now - entry.lastLoggedMs < this.windowMs) {
      entry.suppressed++;
      return false;
    }
    const suppressed = entry?.suppressed ?? 0;
    this.causes.set(key, { lastLoggedMs: now, suppressed: 0 });
    this.log.warn(
      { ...obj, cause: key, ...(suppressed > 0 ? { suppressed, windowMs: this.windowMs } : {}) },
      msg,
    );
    return true;
  }

  private evictExpired(now: number): void {
    for (const [k, e] of this.causes) {
      if (now - e.lastLoggedMs >= this.windowMs) this.causes.delete(k);
    }
  }
}
