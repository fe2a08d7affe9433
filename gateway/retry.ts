// The route retry policy for resets before the response started, as Envoy's RetryStateImpl decides it
// (source/common/router/retry_state_impl.cc). Response-code retries (5xx, retriable-status-codes) are not modelled.
import type { RetryPolicyConfig } from "./config.ts";
import type { GatewayStats } from "./stats.ts";

/** Envoy's Http::StreamResetReason as resetReasonToString prints it (source/common/http/utility.cc). */
export type ResetReason =
  | "local connection failure"
  | "remote connection failure"
  | "connection timeout"
  | "connection termination"
  | "local reset"
  | "protocol error"
  // HTTP/2 upstreams: a peer's RST_STREAM, and its REFUSED_STREAM (the stream was not processed).
  | "remote reset"
  | "remote refused stream reset";

const CONNECT_FAILURES: ReadonlySet<ResetReason> = new Set([
  "local connection failure",
  "remote connection failure",
  "connection timeout",
]);

export function isConnectFailure(reason: ResetReason): boolean {
  return CONNECT_FAILURES.has(reason);
}

export class RetryState {
  private retriesRemaining: number;
  private nextIntervalMs: number;
  private retried = false;
  /** The last refusal was for want of retries (the router then sets URX, router.cc maybeRetryReset). */
  limitExceeded = false;

  constructor(
    private readonly policy: RetryPolicyConfig,
    private readonly stats: GatewayStats,
    private readonly random: () => number = Math.random,
  ) {
    this.retriesRemaining = policy.numRetries;
    this.nextIntervalMs = policy.baseIntervalMs;
  }

  /**
   * RetryStateImpl::wouldRetryFromReset: a failed connect retries under connect-failure; otherwise (and for a
   * failed connect without connect-failure) reset-before-request retries only if no request byte reached the
   * upstream, reset retries any reset, and refused-stream retries an HTTP/2 REFUSED_STREAM (RemoteRefusedStreamReset),
   * which HTTP/1.1 upstreams never send. A refused stream's headers did reach the upstream, so reset-before-request
   * does not cover it.
   */
  private wouldRetry(reason: ResetReason, requestStarted: boolean): boolean {
    const on = this.policy.retryOn;
    if (isConnectFailure(reason) && on.includes("connect-failure")) return true;
    if (on.includes("reset-before-request") && !requestStarted) return true;
    if (on.includes("reset")) return true;
    return reason === "remote refused stream reset" && on.includes("refused-stream");
  }

  /**
   * RetryStateImpl::shouldRetryReset → shouldRetry: the back-off delay in ms when the attempt is retried,
   * undefined when it is not (limit reached or the reset does not qualify). Charges Envoy's retry counters.
   */
  shouldRetryReset(reason: ResetReason, requestStarted: boolean): number | undefined {
    if (!this.wouldRetry(reason, requestStarted)) return undefined;
    if (this.retriesRemaining === 0) {
      this.stats.inc("upstream_rq_retry_limit_exceeded");
      this.limitExceeded = true;
      return undefined;
    }
    this.retriesRemaining--;
    this.retried = true;
    this.stats.inc("upstream_rq_retry");
    this.stats.inc("upstream_rq_retry_backoff_exponential");
    return this.nextBackOffMs();
  }

  /** A retried request got response headers: Envoy counts upstream_rq_retry_success (shouldRetry, NoRetry). */
  onResponseHeaders(): void {
    if (this.retried) this.stats.inc("upstream_rq_retry_success");
    this.retried = false;
  }

  /**
   * source/common/common/backoff_strategy.cc JitteredExponentialBackOffStrategy::nextBackOffMs: uniform in
   * [0, interval), the interval doubling up to max_interval.
   */
  private nextBackOffMs(): number {
    const interval = this.nextIntervalMs;
    this.nextIntervalMs = Math.min(interval * 2, this.policy.maxIntervalMs);
    return Math.floor(this.random() * interval);
  }
}
