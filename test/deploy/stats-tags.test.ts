// The filter's metric labels reach Prometheus only through stats_config tag regexes. Every shipped Envoy
// configuration must carry the same ones (gateway/stats-tags.ts), valid for Envoy 1.35, covering every label the
// filter writes (assembly/metrics.ts), and docs/deploy.md must list every metric.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { readYamlOne, repoRoot } from "./yaml-files.ts";
import { checkEnvoyJson } from "./envoy-schema.ts";
import { METRIC_LABELS, statsConfigYaml } from "../../gateway/stats-tags.ts";
import { readShippedEnvoy } from "../../scripts/local-stack/gateway-config.ts";
import { join } from "node:path";

const EXPECTED = (parseYaml(statsConfigYaml()) as { stats_config: Record<string, unknown> }).stats_config;
const BOOTSTRAPS = [
  "envoy/envoy.yaml",
  "envoy/envoy-override-host.yaml",
  "envoy/envoy-pull.yaml",
  "deploy/overlays/standalone-envoy/envoy-template.yaml",
];
const read = (f: string) => readFileSync(join(repoRoot, f), "utf8");

for (const f of BOOTSTRAPS) {
  test(`${f} carries the filter's stats_config`, () => {
    assert.deepEqual((readYamlOne(f) as { stats_config: unknown }).stats_config, EXPECTED);
  });
}

test("the gateway takes its stats_config from the shipped bootstrap", () => {
  const sc = readShippedEnvoy(join(repoRoot, "envoy/envoy-override-host.yaml")).statsConfig;
  assert.deepEqual(
    sc.statsTags?.map((t) => t.tagName),
    [...METRIC_LABELS],
  );
  assert.equal(sc.histogramBucketSettings?.length, 2);
});

test("Envoy Gateway: the EnvoyProxy merges the same stats_config, a valid bootstrap fragment", () => {
  const ep = readYamlOne("deploy/envoy-gateway/envoyproxy.yaml") as {
    spec: { bootstrap: { type: string; value: string } };
  };
  assert.equal(ep.spec.bootstrap.type, "Merge");
  const value = parseYaml(ep.spec.bootstrap.value) as Record<string, unknown>;
  assert.deepEqual(value.stats_config, EXPECTED);
  assert.deepEqual(checkEnvoyJson(value).errors, []);
  const gw = readYamlOne("deploy/envoy-gateway/gateway.yaml") as {
    spec: { infrastructure: { parametersRef: { kind: string; name: string } } };
  };
  assert.deepEqual(gw.spec.infrastructure.parametersRef, {
    group: "gateway.envoyproxy.io",
    kind: "EnvoyProxy",
    name: "epp-envoy-proxy",
  });
});

test("Istio: the bootstrap override carries the same tags plus the wasmcustom. inclusion prefix", () => {
  const cm = readYamlOne("deploy/istio/stats-bootstrap.yaml") as { data: Record<string, string> };
  const value = JSON.parse(cm.data["custom_bootstrap.json"]!) as {
    stats_config: Record<string, unknown> & { stats_matcher: unknown };
  };
  const { stats_matcher, ...rest } = value.stats_config;
  assert.deepEqual(rest, EXPECTED);
  assert.deepEqual(stats_matcher, { inclusion_list: { patterns: [{ prefix: "wasmcustom." }] } });
  assert.deepEqual(checkEnvoyJson(value).errors, []);
});

test("the filter writes exactly the labels the regexes know", () => {
  const src = read("assembly/metrics.ts");
  const block = /const LABEL_NAMES: string\[\] = \[([^\]]*)\]/.exec(src)![1]!;
  const names: string[] = [...block.matchAll(/"([a-z_]+)"/g)].map((m) => m[1]!);
  for (const m of src.matchAll(/"\.([a-z_]+)\." \+/g)) assert.ok(names.includes(m[1]!), m[1]);
  assert.deepEqual(names, [...METRIC_LABELS]);
});

test("docs/deploy.md lists every metric the filter defines", () => {
  // The data path's metrics and flow control's (assembly/flow-control/metrics.ts).
  const src = read("assembly/metrics.ts") + read("assembly/flow-control/metrics.ts");
  const docs = read("docs/deploy.md");
  const metrics = [...src.matchAll(/^export const [A-Z_]+ = "((?:inference|epp_wasm)_[a-z_]+)";$/gm)].map(
    (m) => m[1]!,
  );
  assert.ok(metrics.length >= 10);
  for (const m of metrics) assert.ok(docs.includes(`\`${m}\``), `${m} is not in docs/deploy.md`);
});
