// Counters and histograms an engine accumulates; metrics.ts renders them.
import {
  Histogram,
  REQUEST_LATENCY_BUCKETS,
  TOKEN_COUNT_BUCKETS,
  TPOT_BUCKETS,
  TTFT_BUCKETS,
} from "./histogram.ts";
import type { EngineRequest, FinishReason } from "./request.ts";

export class EngineStats {
  steps = 0;
  preemptions = 0;
  prefixQueries = 0;
  prefixHits = 0;
  promptTokens = 0;
  generationTokens = 0;
  readonly finishedByReason = new Map<FinishReason, number>();
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly tpot = new Histogram(TPOT_BUCKETS);
  readonly itl = new Histogram(TPOT_BUCKETS);
  readonly e2e = new Histogram(REQUEST_LATENCY_BUCKETS);
  readonly queueTime = new Histogram(REQUEST_LATENCY_BUCKETS);
  readonly promptLen = new Histogram(TOKEN_COUNT_BUCKETS);
  readonly generationLen = new Histogram(TOKEN_COUNT_BUCKETS);

  recordFinished(r: EngineRequest, reason: FinishReason, nowMs: number): void {
    this.finishedByReason.set(reason, (this.finishedByReason.get(reason) ?? 0) + 1);
    this.e2e.observe((nowMs - r.arrivalMs) / 1000);
    this.promptLen.observe(r.promptLen);
    this.generationLen.observe(r.generated);
  }
}
