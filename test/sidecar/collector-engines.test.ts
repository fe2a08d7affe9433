import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  ENGINE_MAPPINGS,
  engineFromName,
  extractMetrics,
  mappingMetricNames,
  parseSelector,
} from "../../sidecar/collector/engines.ts";

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/metrics/${name}.txt`, import.meta.url), "utf8");

test("engines: vLLM page maps queue, running, KV, LoRA (newest non-empty series) and cache config", () => {
  const r = extractMetrics(fixture("vllm"), ENGINE_MAPPINGS.vllm);
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.metrics, {
    waiting: 3,
    running: 14,
    kvUsage: 0.45231,
    maxLoras: 4,
    kvBlockSize: 16,
    kvBlockCount: 12873,
    runningAdapters: ["sql-lora", "tweet-summary-1"],
    waitingAdapters: ["tweet-summary-2"],
  });
  assert.deepEqual(r.warnings, []);
});

test("engines: vLLM falls back to gpu_cache_usage_perc; optional metrics default to 0 / empty", () => {
  const r = extractMetrics(fixture("vllm-legacy"), ENGINE_MAPPINGS.vllm);
  assert.ok(r.ok);
  assert.deepEqual(r.metrics, {
    waiting: 0,
    running: 7,
    kvUsage: 0.2107,
    maxLoras: 0,
    kvBlockSize: 0,
    kvBlockCount: 0,
    runningAdapters: [],
    waitingAdapters: [],
  });
});

test("engines: SGLang", () => {
  const r = extractMetrics(fixture("sglang"), ENGINE_MAPPINGS.sglang);
  assert.ok(r.ok);
  assert.deepEqual(
    { ...r.metrics },
    {
      waiting: 5,
      running: 22,
      kvUsage: 0.61,
      maxLoras: 0,
      kvBlockSize: 1,
      kvBlockCount: 30000,
      runningAdapters: [],
      waitingAdapters: [],
    },
  );
});

test("engines: trtllm-serve", () => {
  const r = extractMetrics(fixture("trtllm-serve"), ENGINE_MAPPINGS["trtllm-serve"]);
  assert.ok(r.ok);
  assert.equal(r.metrics.waiting, 2);
  assert.equal(r.metrics.running, 48);
  assert.equal(r.metrics.kvUsage, 0.875);
  assert.equal(r.metrics.kvBlockSize, 32);
  assert.equal(r.metrics.kvBlockCount, 9216);
});

test("engines: Triton TRT-LLM selects series by label", () => {
  const r = extractMetrics(fixture("triton-trtllm"), ENGINE_MAPPINGS["triton-trtllm"]);
  assert.ok(r.ok);
  assert.equal(r.metrics.waiting, 4);
  assert.equal(r.metrics.running, 17);
  assert.equal(r.metrics.kvUsage, 0.3125);
  assert.equal(r.metrics.kvBlockSize, 64);
  assert.equal(r.metrics.kvBlockCount, 4096);
});

test("engines: the wrong mapping or a garbage page is a failed scrape naming what is missing", () => {
  const wrong = extractMetrics(fixture("sglang"), ENGINE_MAPPINGS.vllm);
  assert.ok(!wrong.ok);
  assert.match(wrong.error, /missing waiting, running, kvUsage/);
  const garbage = extractMetrics("<html><body>502 Bad Gateway</body></html>\n", ENGINE_MAPPINGS.vllm);
  assert.ok(!garbage.ok);
  assert.match(garbage.error, /unparsable/);
  const nan = extractMetrics(
    "vllm:num_requests_waiting NaN\nvllm:num_requests_running 1\nvllm:kv_cache_usage_perc 0",
    ENGINE_MAPPINGS.vllm,
  );
  assert.ok(!nan.ok, "NaN queue length is not a usable value");
});

test("engines: values are clamped and data-parallel series combine (sum counts, max KV)", () => {
  const text = [
    'vllm:num_requests_waiting{engine="0"} 2',
    'vllm:num_requests_waiting{engine="1"} 3',
    'vllm:num_requests_running{engine="0"} -4',
    'vllm:kv_cache_usage_perc{engine="0"} 0.2',
    'vllm:kv_cache_usage_perc{engine="1"} 1.7',
  ].join("\n");
  const r = extractMetrics(text, ENGINE_MAPPINGS.vllm);
  assert.ok(r.ok);
  assert.equal(r.metrics.waiting, 5);
  assert.equal(r.metrics.running, 0);
  assert.equal(r.metrics.kvUsage, 1);
});

test("engines: selectors are data; engine names from the GIE pod label", () => {
  assert.deepEqual(parseSelector('nv_trt_llm_request_metrics{request_type=waiting, model="x"}'), {
    name: "nv_trt_llm_request_metrics",
    labels: { request_type: "waiting", model: "x" },
  });
  assert.throws(() => parseSelector("bad name"), /invalid metric selector/);
  assert.equal(engineFromName("triton-tensorrt-llm"), "triton-trtllm");
  assert.equal(engineFromName("SGLang"), "sglang");
  assert.equal(engineFromName("tgi"), undefined);
  assert.deepEqual([...mappingMetricNames(ENGINE_MAPPINGS.vllm)].sort(), [
    "vllm:cache_config_info",
    "vllm:gpu_cache_usage_perc",
    "vllm:kv_cache_usage_perc",
    "vllm:lora_requests_info",
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
  ]);
});
