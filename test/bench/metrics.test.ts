// Metric definitions (inference-perf's) on hand-computed cases.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  distribution,
  meetsSlo,
  ntpotMs,
  percentile,
  sloMiss,
  summarizeStage,
  tpotMs,
  type RequestRecord,
} from "../../bench/report/metrics.ts";
import { niceTicks, lineChartSvg } from "../../bench/report/svg.ts";

function rec(p: Partial<RequestRecord>): RequestRecord {
  return {
    sendMs: 0,
    status: 200,
    pod: 0,
    promptTokens: 100,
    outputTokens: 11,
    cachedTokens: 0,
    ttftMs: 100,
    e2eMs: 600,
    preemptions: 0,
    ...p,
  };
}

test("TPOT excludes the first token; NTPOT divides E2E by all output tokens", () => {
  const r = rec({ ttftMs: 100, e2eMs: 600, outputTokens: 11 });
  assert.equal(tpotMs(r), 50); // (600 − 100) / (11 − 1)
  assert.equal(ntpotMs(r), 600 / 11);
  assert.equal(tpotMs(rec({ outputTokens: 1 })), undefined, "one output token has no TPOT");
});

test("nearest-rank percentiles and the distribution block", () => {
  const xs = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 50), 5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90), 9);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 10);
  assert.deepEqual(distribution(xs), { mean: 5.5, min: 1, p50: 5, p90: 9, p95: 10, p99: 10, max: 10 });
  assert.deepEqual(distribution([]), { mean: 0, min: 0, p50: 0, p90: 0, p95: 0, p99: 0, max: 0 });
});

test("SLO: both TTFT and TPOT must hold; failures never count", () => {
  const slo = { ttftMs: 200, tpotMs: 40 };
  assert.equal(meetsSlo(rec({ ttftMs: 100, e2eMs: 400, outputTokens: 11 }), slo), true); // TPOT 30
  assert.equal(meetsSlo(rec({ ttftMs: 100, e2eMs: 600, outputTokens: 11 }), slo), false); // TPOT 50
  assert.equal(meetsSlo(rec({ ttftMs: 300, e2eMs: 400, outputTokens: 11 }), slo), false);
  assert.equal(meetsSlo(rec({ status: 429, ttftMs: 0, e2eMs: 0 }), slo), false);
});

test("SLO attainment says which SLO each request missed, per stage and per pod", () => {
  const slo = { ttftMs: 200, tpotMs: 40 };
  const records = [
    rec({ pod: 0, ttftMs: 100, e2eMs: 400 }), // met (TPOT 30)
    rec({ pod: 0, ttftMs: 300, e2eMs: 600 }), // TTFT only (TPOT 30)
    rec({ pod: 1, ttftMs: 100, e2eMs: 600 }), // TPOT only (50)
    rec({ pod: 1, ttftMs: 300, e2eMs: 900 }), // both (TPOT 60)
    rec({ status: 429, pod: -1, ttftMs: 0, e2eMs: 0, outputTokens: 0 }),
  ];
  assert.deepEqual(
    records.map((r) => sloMiss(r, slo)),
    ["met", "ttft", "tpot", "both", "refused"],
  );
  const s = summarizeStage(records, [], 1000, 2, slo);
  assert.deepEqual(s.slo, {
    ttft_ms: 200,
    tpot_ms: 40,
    requests: 5,
    met: 1,
    attainment_percent: 20,
    missed_ttft_only: 1,
    missed_tpot_only: 1,
    missed_both: 1,
    refused: 1,
  });
  assert.equal(s.successes.throughput.goodput_requests_per_sec, 1);
  assert.deepEqual(s.pod_slo_met_percent, [50, 0]);
  assert.deepEqual(s.pod_tpot_p50_ms, [30, 50]);
});

test("stage summary: throughput over the window, goodput, hit rate, shares, failures by label", () => {
  const records = [
    rec({
      pod: 0,
      promptTokens: 100,
      cachedTokens: 50,
      outputTokens: 11,
      ttftMs: 100,
      e2eMs: 400,
      preemptions: 1,
    }),
    rec({ pod: 1, promptTokens: 300, cachedTokens: 0, outputTokens: 21, ttftMs: 100, e2eMs: 1100 }), // TPOT 50 > 40
    rec({ pod: 1, promptTokens: 100, cachedTokens: 100, outputTokens: 2, ttftMs: 10, e2eMs: 30 }),
    rec({ status: 429, pod: -1, promptTokens: 0, outputTokens: 0 }),
    rec({ status: 503, pod: -1, promptTokens: 0, outputTokens: 0 }),
    rec({ status: 429, pod: -1, promptTokens: 0, outputTokens: 0 }),
  ];
  const s = summarizeStage(records, [10, 20, 30, 40], 2000, 3, { ttftMs: 200, tpotMs: 40 });
  assert.equal(s.successes.count, 3);
  assert.deepEqual(s.failures, { count: 3, by_label: { "429": 2, "503": 1 } });
  const t = s.successes.throughput;
  assert.equal(t.requests_per_sec, 1.5); // 3 in 2 s
  assert.equal(t.input_tokens_per_sec, 250); // 500 / 2
  assert.equal(t.output_tokens_per_sec, 17); // 34 / 2
  assert.equal(t.total_tokens_per_sec, 267);
  assert.equal(t.goodput_requests_per_sec, 1); // requests 1 and 3
  assert.equal(s.kv_cache_hit_percent, 30); // 150 / 500
  assert.equal(s.preemptions, 1);
  assert.deepEqual(s.pod_request_share, [1 / 3, 2 / 3, 0]);
  assert.equal(s.successes.latency.inter_token_latency.mean, 25);
  assert.equal(s.successes.latency.time_per_output_token.p50, 30); // TPOTs 30, 50, 20
  assert.equal(s.successes.latency.request_latency.max, 1100);
});

test("plot axes cover the data and the SVG names every series", () => {
  assert.deepEqual(niceTicks(0, 900), [0, 200, 400, 600, 800, 1000]);
  const svg = lineChartSvg({
    title: "t <x>",
    xLabel: "x",
    yLabel: "y",
    series: [
      {
        name: "a&b",
        points: [
          [1, 2],
          [3, 4],
        ],
      },
    ],
  });
  assert.match(svg, /^<svg /);
  assert.match(svg, /a&amp;b/);
  assert.match(svg, /t &lt;x&gt;/);
});
