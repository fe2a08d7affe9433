// The engine's timing follows the published fits its presets name, and KV pressure behaves like vLLM.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../sim/clock/virtual-clock.ts";
import { Engine } from "../../sim/engine/engine.ts";
import { presetConfig } from "../../sim/engine/presets.ts";
import { stepTimeMs } from "../../sim/engine/step-time.ts";

const within = (actual: number, expected: number, rel: number, what: string) =>
  assert.ok(
    Math.abs(actual - expected) <= rel * expected,
    `${what}: ${actual.toFixed(3)} vs ${expected.toFixed(3)}`,
  );

// The published fits each preset claims to follow, written out here by hand (docs/simulator.md, "Step-time
// model and presets"), so a drift in the engine, its step-time function or a preset's numbers shows up;
// comparing the engine with stepTimeMs, which it calls itself, could not.
const PUBLISHED = {
  // Reference §4 (vLLM V1, H100-80GB, Llama-3.1-8B BF16): 6 + 0.03·P + 4e-7·P² + 0.045·Kk + 0.008·B ms.
  "h100-llama3-8b": {
    prefillMs: (tokens: number) => 6 + 0.03 * tokens + 4e-7 * tokens * tokens + 0.008,
    decodeMs: (batch: number, kvK: number) => 6 + 0.045 * kvK + 0.008 * batch,
  },
  // GIE simpy fit (A100-40GB, Llama-2-7B): prefill max(40, 19.69 + 0.06769·T), decode 14 + 0.1026·B + 0.535·Kk.
  "a100-40g-llama2-7b": {
    prefillMs: (tokens: number) => Math.max(40, 19.69 + 0.06769 * tokens),
    decodeMs: (batch: number, kvK: number) => 14 + 0.1026 * batch + 0.535 * kvK,
  },
} as const;

for (const preset of ["h100-llama3-8b", "a100-40g-llama2-7b"] as const) {
  const fit = PUBLISHED[preset];
  test(`${preset}: idle TTFT of a 256-token prompt matches the published fit within 5%`, () => {
    const config = presetConfig(preset);
    const clock = new VirtualClock();
    const engine = new Engine({ config, clock });
    const r = engine.submit({ promptTokens: 256, maxTokens: 1 });
    clock.runAll();
    within(r.firstTokenMs - r.arrivalMs, fit.prefillMs(256), 0.05, "TTFT ms");
  });

  // The A100 preset's 2810 blocks hold 45k tokens, so 64 sequences of 1k would preempt.
  const context = preset === "h100-llama3-8b" ? 1000 : 480;
  for (const batch of [1, 64]) {
    test(`${preset}: decode step at batch ${batch} (${context}-token context) matches the published fit within 5%`, () => {
      const config = presetConfig(preset);
      const clock = new VirtualClock();
      const engine = new Engine({ config, clock });
      const decodeSteps: { ms: number; kv: number; b: number }[] = [];
      engine.onStep = (scheduled, _start, ms) => {
        if (scheduled.length !== batch) return;
        if (!scheduled.every((r) => r.generated >= 2)) return; // pure decode: every prefill done
        decodeSteps.push({ ms, kv: scheduled.reduce((s, r) => s + r.numComputed, 0), b: scheduled.length });
      };
      for (let i = 0; i < batch; i++) engine.submit({ promptTokens: context, maxTokens: 120 });
      clock.runAll();
      assert.ok(decodeSteps.length >= 10, `saw ${decodeSteps.length} pure decode steps`);
      for (const s of decodeSteps) {
        // The KV the step decodes over is at least the prompts it holds.
        assert.ok(s.kv >= s.b * context, `kv ${s.kv} for ${s.b} × ${context}`);
        within(s.ms, fit.decodeMs(s.b, s.kv / 1000), 0.05, "decode step ms");
      }
      if (preset === "h100-llama3-8b") {
        // docs/simulator.md: batch 1 × 1k → 6.05 ms; batch 64 × 1k → 9.4 ms.
        within(decodeSteps[0].ms, batch === 1 ? 6.05 : 9.4, 0.02, `batch ${batch} first decode step`);
      }
    });
  }
}

test("h100-llama3-8b: a 256-token prompt at idle gives 13.7 ms TTFT (docs/simulator.md)", () => {
  const clock = new VirtualClock();
  const engine = new Engine({ config: presetConfig("h100-llama3-8b"), clock });
  const r = engine.submit({ promptTokens: 256, maxTokens: 1 });
  clock.runAll();
  within(r.firstTokenMs - r.arrivalMs, 13.7, 0.01, "TTFT ms");
});

test("KV-saturating load: preemptions happen and kv_cache_usage_perc approaches 1", () => {
  const config = presetConfig("fast", { numGpuBlocks: 400, maxNumSeqs: 64 });
  const clock = new VirtualClock();
  const engine = new Engine({ config, clock });
  let maxUsage = 0;
  engine.onStep = () => (maxUsage = Math.max(maxUsage, engine.kvUsage()));
  // 40 requests × (200 + 300) tokens need ~1250 blocks; the pool has 400.
  for (let i = 0; i < 40; i++) engine.submit({ promptTokens: 200, maxTokens: 300 });
  clock.runAll();
  assert.ok(engine.stats.preemptions > 0, `preemptions ${engine.stats.preemptions}`);
  assert.ok(maxUsage >= 0.97, `max usage ${maxUsage}`);
  assert.match(engine.metricsText(), /^vllm:num_preemptions_total\{[^}]*\} [1-9]/m);
  assert.equal(engine.pool.freeBlocks, 400);
});

test("time per output token grows with batch size and KV (decode is memory-bound)", () => {
  const m = presetConfig("h100-llama3-8b").step;
  const small = stepTimeMs(m, { prefillTokens: 0, decodeKvTokens: 1000, batchSize: 1, hasLora: false });
  const big = stepTimeMs(m, { prefillTokens: 0, decodeKvTokens: 450_000, batchSize: 450, hasLora: false });
  assert.ok(small < 7 && big > 25 && big < 31, `${small} / ${big}`);
});

test("kvPreemptThreshold 0.9 (GIE simpy option) keeps usage at or below 90%", () => {
  const config = presetConfig("fast", { numGpuBlocks: 400, maxNumSeqs: 64, kvPreemptThreshold: 0.9 });
  const clock = new VirtualClock();
  const engine = new Engine({ config, clock });
  let maxUsage = 0;
  engine.onStep = () => (maxUsage = Math.max(maxUsage, engine.kvUsage()));
  for (let i = 0; i < 40; i++) engine.submit({ promptTokens: 200, maxTokens: 300 });
  clock.runAll();
  assert.ok(engine.stats.preemptions > 0);
  assert.ok(maxUsage <= 0.9 && maxUsage > 0.85, `max usage ${maxUsage}`);
  assert.equal(engine.inFlight, 0);
});
