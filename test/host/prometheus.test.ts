// Envoy's /stats/prometheus for Wasm stats (host/prometheus.ts) with the shipped stats_config.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MetricStore, VmMetrics } from "../../host/metrics.ts";
import { prometheusName, renderPrometheus, TagProducer } from "../../host/prometheus.ts";
import { statsConfig } from "../../gateway/stats-tags.ts";

const producer = new TagProducer(statsConfig().statsTags);

test("tag extraction: the shipped regexes cut `.label.value` pairs out, values may hold dots", () => {
  assert.deepEqual(
    producer.produce(
      "wasmcustom.inference_objective_request_total.model_name.food-review.target_model_name.food-review-v1",
    ),
    {
      name: "wasmcustom.inference_objective_request_total",
      tags: [
        ["model_name", "food-review"],
        ["target_model_name", "food-review-v1"],
      ],
    },
  );
  assert.deepEqual(
    producer.produce(
      "wasmcustom.epp_wasm_requests_total.model_name.meta-llama/Llama-3.1-8B.target_model_name.a.b" +
        ".objective.__none__.outcome.routed",
    ),
    {
      name: "wasmcustom.epp_wasm_requests_total",
      tags: [
        ["model_name", "meta-llama/Llama-3.1-8B"],
        ["target_model_name", "a.b"],
        ["objective", "__none__"],
        ["outcome", "routed"],
      ],
    },
  );
  assert.deepEqual(producer.produce("wasmcustom.epp_wasm_endpoint_picks_total.endpoint.10.0.0.1:8000"), {
    name: "wasmcustom.epp_wasm_endpoint_picks_total",
    tags: [["endpoint", "10.0.0.1:8000"]],
  });
  // Anchored on the namespace: Envoy's own stats are untouched.
  assert.deepEqual(producer.produce("cluster.x.model_name.y"), { name: "cluster.x.model_name.y", tags: [] });
});

test("tag extraction: the second group is the value, the first is cut; one group means both", () => {
  const p = new TagProducer([
    { tagName: "a", regex: "(_a=([0-9]+))" },
    { tagName: "b", regex: "\\.(b[0-9])" },
  ]);
  // Only group 1 is cut: the dot before b7 stays.
  assert.deepEqual(p.produce("wasmcustom.x_a=12.b7.y"), {
    name: "wasmcustom.x..y",
    tags: [
      ["a", "12"],
      ["b", "b7"],
    ],
  });
});

test("naming: the wasmcustom namespace is dropped without an envoy_ prefix, names sanitised, digit-first dropped", () => {
  assert.equal(prometheusName("wasmcustom.a.b-c"), "a_b_c");
  assert.equal(prometheusName("wasmcustom.9lives"), null);
  assert.equal(prometheusName("cluster.x.upstream_rq_total"), "envoy_cluster_x_upstream_rq_total");
});

test("render: counters and histograms with the shipped buckets, one TYPE line per family, escaped values", () => {
  const store = new MetricStore();
  const vm = new VmMetrics(store);
  const inc = (name: string, by: bigint) => vm.increment(vm.define(0, name).id!, by);
  inc("inference_objective_request_total.model_name.m.target_model_name.t", 3n);
  inc('inference_objective_request_total.model_name.q"x.target_model_name.t', 1n);
  const h = vm.define(2, "inference_extension_scheduler_e2e_duration_microseconds").id!;
  for (const v of [4n, 30n, 30n, 70000n]) vm.record(h, v);
  const text = renderPrometheus(store, statsConfig());
  assert.equal(
    text
      .split("\n")
      .filter((l) => l.startsWith("# TYPE"))
      .join("\n"),
    "# TYPE inference_objective_request_total counter\n" +
      "# TYPE inference_extension_scheduler_e2e_duration_microseconds histogram",
  );
  assert.match(text, /^inference_objective_request_total\{model_name="m",target_model_name="t"\} 3$/m);
  assert.match(text, /^inference_objective_request_total\{model_name="q\\"x",target_model_name="t"\} 1$/m);
  const d = "inference_extension_scheduler_e2e_duration_microseconds";
  assert.match(text, new RegExp(`^${d}_bucket\\{le="5"\\} 1$`, "m"));
  assert.match(text, new RegExp(`^${d}_bucket\\{le="50"\\} 3$`, "m"));
  assert.match(text, new RegExp(`^${d}_bucket\\{le="50000"\\} 3$`, "m"));
  assert.match(text, new RegExp(`^${d}_bucket\\{le="\\+Inf"\\} 4$`, "m"));
  assert.match(text, new RegExp(`^${d}_sum\\{\\} 70064$`, "m"));
  assert.match(text, new RegExp(`^${d}_count\\{\\} 4$`, "m"));
});
