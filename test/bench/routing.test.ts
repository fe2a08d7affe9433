// The routing benchmark harness: deterministic for a seed, and a tiny run of every workload and
// every policy (baselines and the real build/filter.wasm through the host) completes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ALL_POLICIES, FILTER_POLICIES, parsePolicyName } from "../../bench/routing/policies.ts";
import { runSweep, type SweepOptions } from "../../bench/routing/sweep.ts";
import { WORKLOADS, workloadByName } from "../../bench/routing/workloads.ts";
import { writeRoutingReport } from "../../bench/report/routing-report.ts";
import { FILTER_WASM_PATH } from "../../bench/routing/filter-policy.ts";

const WASM = readFileSync(FILTER_WASM_PATH);

function tiny(workload: string, policies: string[], qps = [20]): SweepOptions {
  return {
    workload: workloadByName(workload),
    policies,
    qps,
    seed: 7,
    pods: 3,
    preset: "h100-llama3-8b",
    durationMs: 4000,
    warmupMs: 200,
    cooldownMs: 200,
    scrapeIntervalMs: 50,
    pushDelayMs: 5,
    slo: { ttftMs: 2000, tpotMs: 50 },
    wasm: WASM,
  };
}

/** The run without wall-clock fields. */
function stable(run: object): string {
  return JSON.stringify(run, (k, v: unknown) => (k === "environment" || k === "wall_ms" ? undefined : v));
}

test("the same seed gives the same JSON twice; another seed does not", async () => {
  const o = tiny("shared-prefix", ["least-request", "default"], [30]);
  const a = await runSweep(o);
  const b = await runSweep(o);
  assert.equal(stable(a), stable(b));
  const c = await runSweep({ ...o, seed: 8 });
  assert.notEqual(stable(a), stable(c));
});

for (const name of Object.keys(WORKLOADS)) {
  test(`tiny run of ${name} with every policy completes`, async () => {
    const run = await runSweep(tiny(name, [...ALL_POLICIES]));
    assert.equal(run.stages.length, ALL_POLICIES.length);
    for (const s of run.stages) {
      assert.ok(s.requests_measured > 0, `${s.policy}: nothing measured`);
      // The filter may shed (429) or fail closed (503); nothing else may fail, and baselines never do.
      for (const label of Object.keys(s.summary.failures.by_label))
        assert.ok(["429", "503"].includes(label), label);
      if (!FILTER_POLICIES.includes(s.policy as never)) assert.equal(s.summary.failures.count, 0, s.policy);
      assert.ok(s.summary.successes.count > 0, `${s.policy}: no successes`);
      assert.equal(s.summary.successes.count + s.summary.failures.count, s.requests_measured);
      assert.ok(s.summary.successes.latency.time_to_first_token.p50 > 0);
      const share = s.summary.pod_request_share.reduce((x, y) => x + y, 0);
      assert.ok(Math.abs(share - 1) < 1e-9, `${s.policy}: shares sum to ${share}`);
    }
    // Same arrivals for every policy.
    assert.equal(new Set(run.stages.map((s) => s.requests_sent)).size, 1);
  });
}

test("a filter policy carries scheduler params; several filter workers", async () => {
  assert.deepEqual(parsePolicyName("default"), { base: "default", params: {} });
  assert.deepEqual(parsePolicyName("oracle:prefixWeight=8:affinityMinBlocks=1"), {
    base: "oracle",
    params: { prefixWeight: 8, affinityMinBlocks: 1 },
  });
  assert.throws(() => parsePolicyName("round-robin:x=1"), /filter policy/);
  assert.throws(() => parsePolicyName("default:x=abc"), /bad policy param/);
  const run = await runSweep({
    ...tiny("shared-prefix", ["default", "default:prefixWeight=0"], [30]),
    workers: 2,
  });
  assert.equal(run.config.workers, 2);
  assert.deepEqual(
    run.stages.map((s) => s.policy),
    ["default", "default:prefixWeight=0"],
  );
  assert.ok(
    run.stages[0].summary.kv_cache_hit_percent > run.stages[1].summary.kv_cache_hit_percent,
    "without the prefix scorer fewer prompt tokens hit the cache",
  );
});

test("several Envoy replicas: requests are split over separate processes", async () => {
  const one = await runSweep(tiny("shared-prefix", ["default"], [30]));
  const two = await runSweep({ ...tiny("shared-prefix", ["default"], [30]), replicas: 2 });
  assert.equal(two.config.replicas, 2);
  assert.equal(two.stages[0].requests_sent, one.stages[0].requests_sent);
  // Replica 0 alone would route exactly like one replica; the second one sees half the requests with its
  // own prefix index and in-flight counts, so the placements differ.
  assert.notDeepEqual(two.stages[0].summary.pod_request_share, one.stages[0].summary.pod_request_share);
});

test("the report writes JSON, Markdown, SVG and PNG", async () => {
  const dir = mkdtempSync(join(tmpdir(), "routing-report-"));
  try {
    const run = await runSweep(tiny("sharegpt", ["round-robin", "random"], [10, 20]));
    const files = await writeRoutingReport(run, dir);
    assert.equal(files.length, 2 + 6 * 2);
    const json = JSON.parse(readFileSync(files[0], "utf8")) as {
      stages: { summary: { successes: { latency: object } } }[];
    };
    assert.ok("normalized_time_per_output_token" in json.stages[0].summary.successes.latency);
    assert.match(readFileSync(files[1], "utf8"), /\| 20 \| random \|/);
    const png = readFileSync(files.find((f) => f.endsWith(".png"))!);
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
