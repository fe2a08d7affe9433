// The Envoy bootstraps we ship: one Wasm module on data and control listeners with one vm_id, a destination
// cluster that honours x-gateway-destination-endpoint in the shape the filter writes for it, and the control path
// enabled only on the loopback listener.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readYamlOne } from "./yaml-files.ts";
import { at, objs } from "./json-path.ts";
import {
  CONTROL_FIELDS,
  checkEnvoyConfig,
  controlListener,
  dataListeners,
  listeners,
  routeRetry,
  ROOT_ID,
} from "./envoy-checks.ts";

const CONFIGS = [
  "envoy/envoy.yaml",
  "envoy/envoy-override-host.yaml",
  "envoy/envoy-h2c.yaml",
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
  // ORIGINAL_DST parses one ip:port: the filter writes exactly one, and a retry can only reach the same pod.
  const [data] = dataListeners(config);
  assert.equal(data.wasm[0].plugin?.destinationMode, "original_dst");
  assert.equal(data.wasm[0].plugin?.maxFallbacks, 0);
  assert.equal(data.wasm[0].failurePolicy, "FAIL_CLOSED");
});

test("only the loopback control listener's plugin enables the control path", () => {
  for (const file of CONFIGS) {
    const config = readYamlOne(file);
    const control = controlListener(config);
    assert.ok(control, `${file}: a control listener`);
    assert.equal(control.address, "127.0.0.1");
    assert.equal(control.wasm[0].plugin?.controlPath, "/epp/v1/snapshot");
    for (const l of dataListeners(config))
      for (const w of l.wasm)
        assert.deepEqual(
          CONTROL_FIELDS.filter((f) => w.plugin?.[f] !== undefined),
          [],
          `${file}: listener ${l.name} carries no control field`,
        );
  }
});

test("envoy-override-host.yaml: override_host on a STATIC cluster, the list shape, retries that walk it", () => {
  const config = readYamlOne("envoy/envoy-override-host.yaml");
  const cluster = objs(at(config, "static_resources.clusters"))[0];
  assert.equal(cluster.type, "STATIC");
  assert.equal(
    at(cluster, "load_balancing_policy.policies.0.typed_extension_config.name"),
    "envoy.load_balancing_policies.override_host",
  );
  const [data] = dataListeners(config);
  const plugin = data.wasm[0].plugin!;
  assert.equal(plugin.destinationMode, "override_host");
  const route = objs(at(data.hcm[0], "route_config.virtual_hosts.0.routes"))[0];
  const retry = routeRetry(route)!;
  assert.deepEqual(retry.retryOn, ["connect-failure", "reset-before-request"]);
  assert.ok(retry.numRetries! >= Number(plugin.maxFallbacks), "one retry per fallback");
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
  const config = readYamlOne("deploy/overlays/standalone-envoy/envoy-template.yaml");
  assert.equal(controlListener(config)?.wasm[0].plugin?.controlToken, "${EPP_CONTROL_TOKEN}");
  for (const w of wasm) assert.ok(!JSON.stringify(w.plugin).includes("dev-token"), "no development token");
});
