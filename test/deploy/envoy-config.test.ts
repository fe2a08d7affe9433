// The Envoy bootstraps we ship: one Wasm module on data and control listeners with one vm_id, a destination
// cluster that honours x-gateway-destination-endpoint, and plugin configs the filter accepts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readYamlOne } from "./yaml-files.ts";
import { at, objs } from "./json-path.ts";
import { checkEnvoyConfig, controlListener, dataListeners, listeners, ROOT_ID } from "./envoy-checks.ts";

const CONFIGS = [
  "envoy/envoy.yaml",
  "envoy/envoy-override-host.yaml",
  "deploy/overlays/standalone-envoy/envoy-template.yaml",
];

for (const file of CONFIGS) {
  test(`${file} wires the filter, the shared vm_id and the destination cluster`, () => {
    assert.deepEqual(checkEnvoyConfig(readYamlOne(file)), []);
  });
}

test("envoy.yaml routes through the ORIGINAL_DST cluster named as in GIE", () => {
  const config = readYamlOne("envoy/envoy.yaml");
  const clusters = objs(at(config, "static_resources.clusters"));
  const odst = clusters.find((c) => c.name === "original_destination_cluster");
  assert.ok(odst, "original_destination_cluster exists");
  assert.equal(odst.type, "ORIGINAL_DST");
  const control = controlListener(config);
  assert.ok(control);
  assert.equal(control.port, 19001);
  assert.deepEqual(
    dataListeners(config).map((l) => [l.address, l.port]),
    [["0.0.0.0", 8080]],
  );
  assert.equal(control.wasm[0].rootId, ROOT_ID);
  assert.equal(control.wasm[0].code, "build/filter.wasm");
});

test("envoy-override-host.yaml uses the override_host policy on a STATIC cluster with a fallback", () => {
  const config = readYamlOne("envoy/envoy-override-host.yaml");
  const cluster = objs(at(config, "static_resources.clusters"))[0];
  assert.equal(cluster.type, "STATIC");
  assert.equal(
    at(cluster, "load_balancing_policy.policies.0.typed_extension_config.name"),
    "envoy.load_balancing_policies.override_host",
  );
});

test("the Kubernetes template is envoy.yaml with only the token, pool and module path templated", () => {
  const local = JSON.stringify(readYamlOne("envoy/envoy.yaml"));
  const template = JSON.stringify(readYamlOne("deploy/overlays/standalone-envoy/envoy-template.yaml"))
    .replaceAll("${EPP_CONTROL_TOKEN}", "dev-token-change-me")
    .replaceAll("${EPP_POOL_NAMESPACE}", "default")
    .replaceAll("${EPP_POOL_NAME}", "local-pool")
    .replaceAll("/etc/envoy/wasm/filter.wasm", "build/filter.wasm");
  assert.equal(template, local);
  const wasm = listeners(readYamlOne("deploy/overlays/standalone-envoy/envoy-template.yaml")).flatMap(
    (l) => l.wasm,
  );
  for (const w of wasm) assert.equal(w.plugin?.controlToken, "${EPP_CONTROL_TOKEN}");
});
