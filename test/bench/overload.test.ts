// The overload workload (issue 22's benchmark): its generator holds to the documented statistics, the
// per-band report's arithmetic, and a short stage of each compared policy through the real filter —
// flow control holds requests in Envoy and the tick on the virtual clock dispatches or expires them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { OVERLOAD, WORKLOADS } from "../../bench/routing/workloads.ts";
import { bandReport, jain, maxMinShares } from "../../bench/report/bands.ts";
import { bandSummaryMarkdown, bandCdfSvg, bandMarkdown } from "../../bench/report/band-tables.ts";
import { runSweep } from "../../bench/routing/sweep.ts";
import { FILTER_WASM_PATH, FLOW_CONTROL_POLICY } from "../../bench/routing/filter-policy.ts";
import { loadConfig } from "../../sidecar/scheduling-config/load.ts";
import { shippedConfigPath } from "../../sidecar/scheduling-config/shipped.ts";
import type { RequestRecord } from "../../bench/report/metrics.ts";

const w = WORKLOADS.overload;

test("overload: on/off bursts at 1.5–3× the given capacity, 0.25× between, 1.25× on average", () => {
  const qps = 50;
  const secs = 1000;
  const items = w.generate(qps, secs * 1000, 4);
  const meanFactor = ((OVERLOAD.burstFactor[0] + OVERLOAD.burstFactor[1]) / 2 + OVERLOAD.offFactor) / 2;
  assert.ok(Math.abs(items.length / secs / qps - meanFactor) < 0.05, `${items.length / secs / qps}`);
  // Whole seconds: the busiest are bursts (≤ 3× plus Poisson noise), the quietest are off periods.
  const perSecond = new Array<number>(secs).fill(0);
  for (const it of items) perSecond[Math.floor(it.arrivalMs / 1000)]++;
  const sorted = perSecond.sort((a, b) => a - b);
  assert.ok(sorted[Math.floor(secs * 0.99)] <= 3.6 * qps, `p99 ${sorted[Math.floor(secs * 0.99)]}`);
  assert.ok(sorted[Math.floor(secs * 0.9)] >= 1.5 * qps, `p90 ${sorted[Math.floor(secs * 0.9)]}`);
  assert.ok(sorted[Math.floor(secs * 0.1)] <= 0.5 * qps, `p10 ${sorted[Math.floor(secs * 0.1)]}`);
  // The burst schedule is the seed's, whatever the rate (as bursty's): twice the rate, twice per second.
  const per = (rate: number) => {
    const n = new Array<number>(10).fill(0);
    for (const it of w.generate(rate, 10_000, 4)) n[Math.floor(it.arrivalMs / 1000)]++;
    return n;
  };
  const [slow, fast] = [per(1000), per(2000)];
  for (let s = 0; s < 10; s++)
    assert.ok(Math.abs(fast[s] / (2 * slow[s]) - 1) < 0.25, `${s}: ${slow[s]} ${fast[s]}`);
});

test("overload: a Critical / Standard / Sheddable mix and three fairness ids, one sending 5× each other", () => {
  const items = w.generate(200, 200_000, 5);
  const share = (f: (i: (typeof items)[number]) => boolean) => items.filter(f).length / items.length;
  for (const b of OVERLOAD.bands)
    assert.ok(Math.abs(share((i) => i.objective === b.name) - b.weight) < 0.01, b.name);
  const [noisy, b, c] = OVERLOAD.tenants.map((t) => share((i) => i.fairnessId === t.id));
  assert.ok(Math.abs(noisy / b - 5) < 0.3 && Math.abs(noisy / c - 5) < 0.3, `${noisy} ${b} ${c}`);
  // Band and tenant are drawn independently: the noisy id's share is the same in every band.
  const crit = items.filter((i) => i.objective === "critical");
  assert.ok(
    Math.abs(crit.filter((i) => i.fairnessId === "tenant-noisy").length / crit.length - 5 / 7) < 0.02,
  );
  assert.deepEqual(w.fairnessIds, ["tenant-noisy", "tenant-b", "tenant-c"]);
  // The objectives' priorities are the bands of the shipped flow-control config.
  const path = shippedConfigPath("flow-control");
  const fc = loadConfig(readFileSync(path, "utf8"), {
    source: path,
    displayName: "flow-control",
  }).flowControl!;
  assert.deepEqual(
    w.objectives!.map((o) => o.priority),
    fc.bands.map((band) => band.priority),
  );
  assert.ok(
    w.objectives!.some((o) => o.priority < 0),
    "one band is sheddable",
  );
});

test("Jain's index and max-min shares", () => {
  assert.equal(jain([1, 1, 1]), 1);
  assert.ok(Math.abs(jain([5, 1, 1]) - 49 / 81) < 1e-12);
  assert.deepEqual(maxMinShares(90, [10, 10, 100]), [10, 10, 70]);
  assert.deepEqual(maxMinShares(30, [50, 50, 50]), [10, 10, 10]);
  assert.deepEqual(maxMinShares(0, [5, 5]), [0, 0]);
});

test("bandReport: rejected at arrival vs expired after waiting, queue time of the served, per-id shares", () => {
  const r = (band: string, tenant: string, status: number, waitMs: number, ttftMs = 100): RequestRecord => ({
    sendMs: 500,
    status,
    pod: status === 200 ? 0 : -1,
    promptTokens: 10,
    outputTokens: 10,
    cachedTokens: 0,
    ttftMs,
    e2eMs: ttftMs + 90,
    preemptions: 0,
    band,
    tenant,
    waitMs,
  });
  const rep = bandReport(
    [
      r("hi", "a", 200, 0),
      r("hi", "b", 200, 40, 140),
      r("lo", "a", 429, 0),
      r("lo", "a", 429, 5000),
      r("lo", "b", 200, 10, 3000),
    ],
    {
      objectives: [
        { name: "hi", priority: 1 },
        { name: "lo", priority: -1 },
      ],
      fairnessIds: ["a", "b"],
    },
    1000,
    { ttftMs: 2000, tpotMs: 50 },
  );
  const [hi, lo] = rep.bands;
  assert.deepEqual([hi.served, hi.rejected, hi.expired, hi.goodput_rps], [2, 0, 0, 2]);
  assert.deepEqual([lo.served, lo.rejected, lo.expired, lo.goodput_rps], [1, 1, 1, 0]);
  assert.equal(hi.queue_p90_ms, 40);
  assert.equal(rep.all.requests, 5);
  // a asked 3, b 2; served 3: in "hi" each got its one; in "lo" b's one served is within b's share.
  assert.deepEqual(
    rep.tenants.map((t) => [t.id, t.served_rps, t.fair_share_rps]),
    [
      ["a", 1, 1.5],
      ["b", 2, 1.5],
    ],
  );
  assert.ok(Math.abs(rep.noisy_over_fair_share - 1 / 1.5) < 1e-12);
});

test("a short overload stage: flow control holds and dispatches requests, shedding-only does not", async () => {
  const run = await runSweep({
    workload: w,
    policies: ["default", FLOW_CONTROL_POLICY, `${FLOW_CONTROL_POLICY}:ttlMs@-10=500`, "k8s-service"],
    qps: [150],
    seed: 3,
    pods: 2,
    preset: "h100-llama3-8b",
    durationMs: 6000,
    warmupMs: 1000,
    cooldownMs: 1000,
    scrapeIntervalMs: 50,
    pushDelayMs: 5,
    slo: { ttftMs: 2000, tpotMs: 50 },
    wasm: readFileSync(FILTER_WASM_PATH),
  });
  const [shed, fc, fcShort, svc] = run.stages.map((s) => s.bands!);
  // Shedding only: nothing waits; sheddable requests are refused at arrival.
  assert.equal(shed.all.queue_p90_ms, 0);
  assert.equal(shed.all.expired, 0);
  assert.ok(shed.bands[2].rejected > 0);
  assert.equal(shed.bands[0].rejected + shed.bands[1].rejected, 0);
  // Flow control: requests wait in Envoy and are then served; the Critical band waits least.
  assert.ok(fc.all.queue_p90_ms > 0);
  assert.ok(fc.bands[0].queue_p90_ms <= fc.bands[2].queue_p90_ms);
  assert.ok(fc.bands[0].ttft_p90_ms < shed.bands[0].ttft_p90_ms, "critical faster with flow control");
  assert.equal(fc.bands[0].served, fc.bands[0].requests);
  // A shorter sheddable TTL expires more of them, after waiting (not at arrival).
  assert.ok(fcShort.bands[2].expired >= fc.bands[2].expired && fcShort.bands[2].expired > 0);
  // k8s-service neither holds nor refuses.
  assert.equal(svc.all.served, svc.all.requests);
  // Every request finished and is counted once.
  for (const s of run.stages) assert.equal(s.bands!.all.requests, s.requests_measured);
  assert.match(bandMarkdown(run.stages), /\| 150 \| default\+flow-control \| critical \|/);
  const md = bandSummaryMarkdown([run]);
  assert.match(md, /critical p90 TTFT vs default/);
  assert.match(bandCdfSvg([run], 150), /<svg/);
});
