// One plugin's pull-mode state (plugins.ts keeps it next to the plugin's snapshot cache; pull.ts acts on
// it). Apart from pull.ts so that plugins.ts need not import the tick and http_call logic.

import { log, LogLevel } from "./abi/host.ts";

/** Each failure cause is logged at most once per window (a down sidecar must not flood Envoy's log). */
export const PULL_LOG_WINDOW_MS: u64 = 10_000;

/** One plugin's pull state (plugins.ts keeps it next to the plugin's snapshot cache). */
export class PullState {
  /** Token of the http_call in flight (0: none); http_call tokens start at 4 (cpp-host nextHttpCallId). */
  inFlight: u32 = 0;
  inFlightSinceMs: u64 = 0;
  /** ETag of the last body this plugin stored, sent back as If-None-Match. */
  etag: string = "";
  failures: u32 = 0;
  private lastLogged: Map<string, u64> = new Map<string, u64>();
  private suppressed: Map<string, u32> = new Map<string, u32>();

  constructor(
    /** This root's lease holder id (never 0, which marks a free lease). */
    readonly holder: u64,
    readonly leaseKey: string,
  ) {}

  /** Logs `message` unless `cause` was logged within the window; says how many were left out. */
  logOnce(cause: string, message: string, nowMs: u64): void {
    const last = this.lastLogged.has(cause) ? this.lastLogged.get(cause) : 0;
    const seen = this.lastLogged.has(cause);
    if (seen && nowMs < last + PULL_LOG_WINDOW_MS) {
      this.suppressed.set(cause, (this.suppressed.has(cause) ? this.suppressed.get(cause) : 0) + 1);
      return;
    }
    const skipped = this.suppressed.has(cause) ? this.suppressed.get(cause) : 0;
    this.lastLogged.set(cause, nowMs);
    this.suppressed.set(cause, 0);
    const more = skipped > 0 ? " (" + skipped.toString() + " more since the last report)" : "";
    log(LogLevel.Warn, message + more);
  }
}

export function newPullState(keyPrefix: string, holder: u64): PullState {
  return new PullState(holder == 0 ? 1 : holder, keyPrefix + "pull-lease");
}
