// The engine's timing follows its preset's step-time formula, and KV pressure behaves like vLLM.
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

for (const preset of ["h100-llama3-8b", "a100-40g-llama2-7b"]) {
  test(`${preset}: idle TTFT of a 256-token prompt matches the formula within 5%`, () => {
    const config = presetConfig(preset);
    const clock = new VirtualClock();
    const engine = new Engine({ config, clock });
    const r = engine.submit({ promptTokens: 256, maxTokens: 1 });
    clock.runAll();
    const expected = stepTimeMs(config.step, {
      prefillTokens: 256,
      decodeKvTokens: 0,
      batchSize: 1,
      hasLora: false,
    });
    within(r.firstTokenMs - r.arrivalMs, expected, 0.05, "TTFT ms");
  });

  // The A100 preset's 2810 blocks hold 45k tokens, so 64 sequences of 1k would preempt.
  const context = preset === "h100-llama3-8b" ? 1000 : 480;
  for (const batch of [1, 64]) {
    test(`${preset}: decode step at batch ${batch} (${context}-token context) matches the formula within 5%`, () => {
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
        const expected = stepTimeMs(config.step, {
          prefillTokens: 0,
          decodeKvTokens: s.kv,
          batchSize: s.b,
          hasLora: false,
        });
        within(s.ms, expected, 0.05, "decode step ms");
      }
      if (preset === "h100-llama3-8b") {
        // Reference §4: batch 1 × 1k ≈ 6–7 ms; batch 64 × 1k ≈ 9–10 ms.
        const ms = decodeSteps[0].ms;
        if (batch === 1) assert.ok(ms >= 6 && ms <= 7, `batch 1 step ${ms}`);
        else assert.ok(ms >= 9 && ms <= 10, `batch 64 step ${ms}`);
      }
    });
  }
}

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
