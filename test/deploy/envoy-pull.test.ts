// The shipped pull-mode configurations: envoy/envoy-pull.yaml (standalone Envoy, no control listener, a STATIC
// cluster for the sidecar) and deploy/overlays/envoy-gateway-pull (Envoy Gateway, the sidecar's cluster added by an
// EnvoyPatchPolicy). The static checks accept pull mode only with a cluster the http_call can reach.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readYamlOne, readYaml } from "./yaml-files.ts";
import { at, isObj, objs, type Json } from "./json-path.ts";
import { checkEnvoyConfig, listeners } from "./envoy-checks.ts";
import { checkEnvoyJson } from "./envoy-schema.ts";
import { kustomize, kustomizeSkip } from "./kustomize-render.ts";

const FILE = "envoy/envoy-pull.yaml";

function dataPlugin(config: unknown): Json {
  return listeners(config).find((l) => l.name === "data")!.wasm[0]!.plugin!;
}

/** A copy of envoy-pull.yaml with the data plugin's configuration edited. */
function withPlugin(edit: (p: Json) => void): unknown {
  const config = structuredClone(readYamlOne(FILE)) as Json;
  const l = objs(at(config, "static_resources.listeners")).find((x) => x.name === "data")!;
  const wasm = objs(at(objs(at(l, "filter_chains"))[0], "filters"))
    .map((f) => f.typed_config)
    .filter(isObj)
    .flatMap((hcm) => objs(hcm.http_filters))
    .find((f) => f.name === "envoy.filters.http.wasm")!;
  const cfg = at(wasm, "typed_config.config.configuration") as Json;
  const plugin = JSON.parse(String(cfg.value)) as Json;
  edit(plugin);
  cfg.value = JSON.stringify(plugin);
  return config;
}

test("envoy-pull.yaml: no control listener, the data plugin pulls through the STATIC epp-sidecar cluster", () => {
  const config = readYamlOne(FILE);
  assert.deepEqual(checkEnvoyConfig(config), []);
  assert.deepEqual(
    listeners(config).map((l) => l.name),
    ["data"],
  );
  const pull = dataPlugin(config).pull as Json;
  assert.equal(pull.cluster, "epp-sidecar");
  const cluster = objs(at(config, "static_resources.clusters")).find((c) => c.name === "epp-sidecar")!;
  assert.equal(cluster.type, "STATIC");
  assert.deepEqual(
    at(
      objs(at(objs(at(cluster, "load_assignment.endpoints"))[0], "lb_endpoints"))[0],
      "endpoint.address.socket_address",
    ),
    {
      address: "127.0.0.1",
      port_value: 9090,
    },
  );
});

test("the static checks refuse pull configs that could not pull, and data plugins that neither pull nor get pushes", () => {
  const noCluster = structuredClone(readYamlOne(FILE)) as Json;
  const res = at(noCluster, "static_resources") as Json;
  res.clusters = objs(res.clusters).filter((c) => c.name !== "epp-sidecar");
  assert.ok(
    checkEnvoyConfig(noCluster).some((p) => /pull.cluster epp-sidecar is not a cluster here/.test(p)),
  );
  const routed = withPlugin((p) => ((p.pull as Json).cluster = "inference_pool"));
  assert.ok(
    checkEnvoyConfig(routed).some((p) => /must not be the cluster the route sends clients to/.test(p)),
  );
  const noPull = withPlugin((p) => delete p.pull);
  assert.ok(checkEnvoyConfig(noPull).some((p) => /no loopback control listener/.test(p)));
  const badInterval = withPlugin((p) => ((p.pull as Json).intervalMs = 5));
  assert.ok(checkEnvoyConfig(badInterval).some((p) => /pull.intervalMs must be 10..60000/.test(p)));
  const token = withPlugin((p) => (p.controlToken = "t"));
  assert.ok(checkEnvoyConfig(token).some((p) => /must not enable the control path/.test(p)));
});

test("Envoy Gateway pull: the added epp-sidecar cluster is a valid Envoy 1.35 Cluster", () => {
  const policy = readYaml("deploy/overlays/envoy-gateway-pull/envoypatchpolicy.yaml")[0]!.value;
  const patches = objs(at(policy, "spec.jsonPatches"));
  const add = patches.find((p) => p.type === "type.googleapis.com/envoy.config.cluster.v3.Cluster")!;
  // op add with no path and no jsonPath: Envoy Gateway adds the value as a whole resource.
  assert.equal(at(add, "operation.op"), "add");
  assert.equal(at(add, "operation.path"), undefined);
  assert.equal(at(add, "operation.jsonPath"), undefined);
  const value = at(add, "operation.value") as Json;
  assert.equal(value.name, add.name);
  const report = checkEnvoyJson(value, "envoy.config.cluster.v3.Cluster");
  assert.deepEqual(report.errors, []);
  assert.deepEqual(report.deprecated, []);
  // No control port: the policy patches only the filter settings.
  assert.ok(patches.every((p) => at(p, "operation.path") !== "/additional_addresses"));
});

test(
  "Envoy Gateway pull overlay renders: the filter pulls from the added cluster; no control-port patch",
  { skip: kustomizeSkip() },
  () => {
    const objects = kustomize("deploy/overlays/envoy-gateway-pull");
    const patchPolicies = objects.filter((o) => o.kind === "EnvoyPatchPolicy");
    assert.deepEqual(
      patchPolicies.map((p) => at(p, "metadata.name")),
      ["epp-filter-patches-pull"],
    );
    const ext = objects.find((o) => o.kind === "EnvoyExtensionPolicy")!;
    const pull = at(objs(at(ext, "spec.wasm"))[0], "config.pull") as Json;
    const cluster = objs(at(patchPolicies[0], "spec.jsonPatches")).find((p) =>
      String(p.type).endsWith("Cluster"),
    )!;
    assert.equal(pull.cluster, cluster.name);
    // The sidecar is pushed to nobody: no selector for proxy pods.
    const deployment = objects.find((o) => o.kind === "Deployment" && at(o, "metadata.name") === "epp")!;
    const args = (at(objs(at(deployment, "spec.template.spec.containers"))[0], "args") as string[]) ?? [];
    assert.ok(
      args.every((a) => !a.startsWith("--envoy")),
      args.join(" "),
    );
  },
);
