// bench:summary: means over seeds with half the range, rows in workload → QPS → policy order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spread, summarize, summaryMarkdown } from "../../bench/routing/summary.ts";
import type { RoutingRun } from "../../bench/routing/sweep.ts";

function run(workload: string, seed: number, stages: [string, number, number][]): RoutingRun {
  return {
    workload: { name: workload },
    config: { seed, policies: [...new Set(stages.map(([p]) => p))] },
    stages: stages.map(([policy, qps, goodput]) => ({
      policy,
      qps,
      summary: {
        successes: {
          latency: {
            time_to_first_token: { p90: goodput * 2 },
            normalized_time_per_output_token: { p90: goodput / 10 },
          },
          throughput: { goodput_requests_per_sec: goodput },
        },
      },
    })),
  } as unknown as RoutingRun;
}

test("spread is the mean and half the range", () => {
  assert.deepEqual(spread([1, 2, 6]), { mean: 3, half: 2.5, n: 3 });
});

test("summarize groups stages by workload, QPS and policy across seeds", () => {
  const rows = summarize([
    run("b", 2, [
      ["x", 20, 10],
      ["y", 20, 30],
    ]),
    run("b", 1, [
      ["x", 20, 20],
      ["y", 20, 50],
      ["x", 10, 5],
    ]),
    run("a", 1, [["x", 10, 1]]),
  ]);
  assert.deepEqual(
    rows.map((r) => [r.workload, r.qps, r.policy, r.seeds, r.goodput.mean, r.goodput.half]),
    [
      ["b", 10, "x", [1], 5, 0],
      ["b", 20, "x", [1, 2], 15, 5],
      ["b", 20, "y", [1, 2], 40, 10],
      ["a", 10, "x", [1], 1, 0],
    ],
  );
  assert.match(
    summaryMarkdown(rows),
    /\| b \| 20 \| y \| 40\.0 ± 10\.0 \| 80 ± 20 \| 4\.0 ± 1\.0 \| 1, 2 \|/,
  );
});
