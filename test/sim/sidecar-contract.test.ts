// Contract: the sidecar's engine mappings read what the simulator exposes (vLLM and SGLang names).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  ENGINE_MAPPINGS,
  extractMetrics,
  mappingMetricNames,
  nameFilterQuery,
} from "../../sidecar/collector/engines.ts";
import { requestedNames, restrictToNames } from "../../sim/http/name-filter.ts";
import { VirtualClock } from "../../sim/clock/virtual-clock.ts";
import { Engine } from "../../sim/engine/engine.ts";
import { presetConfig } from "../../sim/engine/presets.ts";

function busyEngine(flavor: "vllm" | "sglang"): Engine {
  const clock = new VirtualClock();
  const config = presetConfig("fast", { maxLoras: 1, numGpuBlocks: 1000 });
  const engine = new Engine({ config, clock, flavor, loraModules: ["a", "b"] });
  engine.submit({ promptTokens: 100, maxTokens: 100, lora: "a" });
  clock.runUntil(10);
  engine.submit({ promptTokens: 100, maxTokens: 100, lora: "b" }); // skipped: max_loras 1
  engine.submit({ promptTokens: 100, maxTokens: 100 });
  clock.runUntil(60); // past the 20 ms cold adapter load
  return engine;
}

test("sidecar vLLM mapping extracts queue, running, KV, block geometry and LoRA sets", () => {
  const engine = busyEngine("vllm");
  const result = extractMetrics(engine.metricsText(), ENGINE_MAPPINGS.vllm);
  assert.ok(result.ok, result.ok ? "" : result.error);
  const m = result.metrics;
  assert.equal(m.running, 2);
  assert.equal(m.waiting, 1);
  assert.equal(m.kvUsage, engine.kvUsage());
  assert.equal(m.kvBlockSize, 16);
  assert.equal(m.kvBlockCount, 1000);
  assert.equal(m.maxLoras, 1);
  assert.deepEqual(m.runningAdapters, ["a"]);
  assert.deepEqual(m.waitingAdapters, ["b"]);
});

test("sidecar SGLang mapping extracts the same state from sglang: names", () => {
  const engine = busyEngine("sglang");
  const result = extractMetrics(engine.metricsText(), ENGINE_MAPPINGS.sglang);
  assert.ok(result.ok, result.ok ? "" : result.error);
  assert.equal(result.metrics.running, 2);
  assert.equal(result.metrics.waiting, 1);
  assert.equal(result.metrics.kvBlockSize, 16);
  assert.equal(result.metrics.kvBlockCount, 1000);
  assert.ok(result.metrics.kvUsage > 0);
});

test("a name[]-filtered page (as prometheus_client serves it) yields the same metrics, far smaller", () => {
  for (const flavor of ["vllm", "sglang"] as const) {
    const engine = busyEngine(flavor);
    const mapping = ENGINE_MAPPINGS[flavor];
    const full = engine.metricsText();
    const names = requestedNames(`/metrics?${nameFilterQuery(mapping)}`);
    assert.deepEqual(names, mappingMetricNames(mapping), "the query round-trips through URL decoding");
    const page = restrictToNames(full, names!);
    assert.ok(page.length * 4 < full.length, `${flavor}: ${page.length} of ${full.length} bytes`);
    assert.match(page, /^# TYPE \S+ gauge$/m, "HELP/TYPE of kept families stay");
    assert.doesNotMatch(page, /_bucket\{/, "histograms are gone");
    const a = extractMetrics(full, mapping);
    const b = extractMetrics(page, mapping);
    assert.ok(a.ok && b.ok);
    assert.deepEqual(b.metrics, a.metrics);
  }
  assert.equal(requestedNames("/metrics"), undefined);
  assert.equal(requestedNames("/metrics?x=1"), undefined);
});
