// Envoy Gateway and Istio run the filter with allow_on_headers_stop_iteration and failure_policy FAIL_CLOSED, keep
// the control path off the public listener, and route to a cluster that parses the filter's destination list
// (override_host) with retries that walk it. Checked on the source files, and for Envoy Gateway by applying our
// EnvoyPatchPolicy to a model of the listener Envoy Gateway generates; kustomize.test.ts checks the rendered overlays.
import { test } from "node:test";
import assert from "node:assert/strict";
import { listYamlFiles, readYaml, readYamlOne } from "./yaml-files.ts";
import { at, flagValues, objs, type Json } from "./json-path.ts";
import {
  applyEgPatches,
  checkEgPatchedListener,
  checkEnvoyGatewayRouting,
  checkEnvoyPatchPolicy,
  checkIstioSetup,
  egControlPort,
  egListenerNames,
  egModelListener,
  egWasmFilterName,
  istioWasmFilter,
  istioWasmFilters,
} from "./gateway-checks.ts";
import { CONTROL_PATH, ROOT_ID } from "./envoy-checks.ts";
import { checkControlPortPolicy } from "./k8s-checks.ts";
import { kustomize, kustomizeSkip } from "./kustomize-render.ts";

function objects(...files: string[]): Json[] {
  return files.flatMap((f) => readYaml(f).map((d) => d.value as Json));
}

function one(list: Json[], kind: string, name?: string): Json {
  const found = list.filter(
    (o) => o.kind === kind && (name === undefined || at(o, "metadata.name") === name),
  );
  assert.equal(found.length, 1, `exactly one ${kind} ${name ?? ""}`);
  return found[0];
}

const EG_FILES = [
  "deploy/model-pool/inferencepool.yaml",
  "deploy/model-pool/service.yaml",
  "deploy/envoy-gateway/gateway.yaml",
  "deploy/envoy-gateway/httproute.yaml",
  "deploy/envoy-gateway/backendtrafficpolicy.yaml",
  "deploy/envoy-gateway/clienttrafficpolicy.yaml",
  "deploy/envoy-gateway/envoyextensionpolicy.yaml",
  "deploy/envoy-gateway/envoypatchpolicy.yaml",
];
const ISTIO_FILES = [
  "deploy/model-pool/inferencepool.yaml",
  "deploy/model-pool/service.yaml",
  "deploy/istio/routing.yaml",
  "deploy/istio/wasm-filter.yaml",
];

test("envoy-gateway: the EnvoyPatchPolicy sets the filter's flags and adds the control port", () => {
  const list = objects(...EG_FILES);
  const patch = one(list, "EnvoyPatchPolicy");
  const policy = one(list, "EnvoyExtensionPolicy");
  const gateway = one(list, "Gateway");
  assert.equal(patch.apiVersion, "gateway.envoyproxy.io/v1alpha1");
  assert.deepEqual(checkEnvoyPatchPolicy(patch, policy, [gateway]), []);
  // The names Envoy Gateway generates for these objects, spelled out.
  assert.equal(
    egWasmFilterName(policy, 0),
    "envoy.filters.http.wasm/envoyextensionpolicy/inference/epp-filter/wasm/0",
  );
  assert.equal(at(patch, "spec.jsonPatches.0.name"), "inference/inference-gateway/http");
  // XDSNameSchemeV2 names the listener after the Gateway port, not the container port 10080.
  assert.deepEqual(egListenerNames(gateway), ["inference/inference-gateway/http", "tcp-80"]);
  assert.equal(egControlPort(patch, policy, [gateway]), 19101);
});

test("envoy-gateway: applied to Envoy Gateway's listener, the public chain has no control path, the control chain does", () => {
  const list = objects(...EG_FILES);
  const policy = one(list, "EnvoyExtensionPolicy");
  const gateway = one(list, "Gateway");
  const model = egModelListener(gateway, objs(at(gateway, "spec.listeners"))[0], policy, 0);
  const { listener, errors } = applyEgPatches(one(list, "EnvoyPatchPolicy"), model);
  assert.deepEqual(errors, []);
  const filter = egWasmFilterName(policy, 0);
  assert.deepEqual(checkEgPatchedListener(listener, filter, "applied").problems, []);
  const wasmOf = (chain: unknown) =>
    objs(at(chain, "filters.0.typed_config.http_filters")).find((f) => f.name === filter)!;
  const pub = wasmOf(listener.default_filter_chain);
  const control = wasmOf(at(listener, "filter_chains.0"));
  const plugin = (f: Json) => JSON.parse(String(at(f, "typed_config.config.configuration.value"))) as Json;
  assert.equal(plugin(pub).controlPath, undefined);
  assert.equal(plugin(pub).controlToken, undefined);
  assert.equal(plugin(control).controlPath, CONTROL_PATH);
  assert.equal(
    at(pub, "typed_config.config.vm_config.vm_id"),
    at(control, "typed_config.config.vm_config.vm_id"),
  );
  assert.equal(at(pub, "disabled"), true, "routes still enable the public copy");
  assert.equal(at(control, "disabled"), false);
  assert.equal(at(listener, "filter_chains.0.filter_chain_match.destination_port"), 19101);
  assert.equal(at(listener, "filter_chains.0.filters.0.typed_config.rds"), undefined);
  assert.ok(
    at(listener, "default_filter_chain.filters.0.typed_config.rds"),
    "the public chain keeps its routes",
  );
});

test("envoy-gateway: the route goes to the model Service with override_host, retries and a raised buffer", () => {
  const list = objects(...EG_FILES);
  assert.deepEqual(checkEnvoyGatewayRouting(list), []);
  const route = one(list, "HTTPRoute");
  assert.deepEqual(at(route, "spec.rules.0.backendRefs.0.kind"), "Service");
  assert.equal(
    list.filter((o) => o.kind === "HTTPRoute").length,
    1,
    "no control route on the public listener",
  );
  const config = at(one(list, "EnvoyExtensionPolicy"), "spec.wasm.0.config") as Json;
  assert.equal(config.destinationMode, "override_host");
  assert.equal(config.controlToken, undefined);
  const btp = one(list, "BackendTrafficPolicy");
  assert.deepEqual(at(btp, "spec.retry.retryOn.triggers"), ["connect-failure", "reset-before-request"]);
  assert.equal(at(one(list, "ClientTrafficPolicy"), "spec.connection.bufferLimit"), "8Mi");
  // The Service the route uses selects exactly the pool's pods on its port.
  const pool = one(list, "InferencePool");
  const svc = one(list, "Service", "vllm-llama3-8b");
  assert.deepEqual(at(svc, "spec.selector"), at(pool, "spec.selector.matchLabels"));
  assert.equal(at(svc, "spec.ports.0.targetPort"), at(pool, "spec.targetPorts.0.number"));
});

test("envoy-gateway: the kustomization ships every policy", () => {
  const k = readYamlOne("deploy/envoy-gateway/kustomization.yaml") as Json;
  const resources = k.resources as string[];
  for (const f of EG_FILES.filter((f) => f.startsWith("deploy/envoy-gateway/")))
    assert.ok(resources.includes(f.replace("deploy/envoy-gateway/", "")), f);
  assert.ok(resources.includes("../model-pool"));
});

test("istio: data and control filters on their own ports, override_host on the model Service, 3 retries", () => {
  const list = objects(...ISTIO_FILES);
  const { controlPort, problems } = checkIstioSetup(list);
  assert.deepEqual(problems, []);
  assert.equal(controlPort, 19101);
  const filters = istioWasmFilters(list).map(istioWasmFilter);
  assert.deepEqual(
    filters.map((f) => [f.port, f.plugin?.controlPath ?? null]),
    [
      [80, null],
      [19101, CONTROL_PATH],
    ],
    "port 80 (istio/gateway chart) serves data only; 19101 the control path",
  );
  for (const f of filters) {
    assert.equal(at(f.extension, "patch.value.typed_config.config.root_id"), ROOT_ID);
    assert.equal(f.plugin?.destinationMode, "override_host");
  }
  // The overlay's replacement writes the token into field 3 of the control string split at '"'.
  const control = filters[1];
  const raw = String(at(control.extension, "patch.value.typed_config.config.configuration.value"));
  assert.equal(raw.split('"')[3], control.plugin?.controlToken);
  const k = readYamlOne("deploy/istio/kustomization.yaml") as Json;
  assert.deepEqual(k.resources, [
    "../model-pool",
    "wasm-filter.yaml",
    "routing.yaml",
    "stats-bootstrap.yaml",
  ]);
});

test("no WasmPlugin ships: it cannot set allow_on_headers_stop_iteration, and a second copy would hang bodies", () => {
  const plugins = listYamlFiles(["deploy"])
    .flatMap((f) => readYaml(f))
    .filter((d) => (d.value as Json | null)?.kind === "WasmPlugin")
    .map((d) => d.file);
  assert.deepEqual(plugins, []);
});

// Skips with the reason outside CI; under CI kustomize() throws it, so the tests fail naming kubectl.
const skip = kustomizeSkip();

for (const [overlay, podLabels, port] of [
  [
    "deploy/overlays/envoy-gateway",
    {
      "gateway.envoyproxy.io/owning-gateway-name": "inference-gateway",
      "gateway.envoyproxy.io/owning-gateway-namespace": "inference",
    },
    10080,
  ],
  ["deploy/overlays/istio", { istio: "ingressgateway" }, 80],
] as const) {
  test(`${overlay}: the sidecar pushes to the control port, which only its pods may open`, { skip }, () => {
    const list = kustomize(overlay);
    const deployment = one(list, "Deployment", "epp");
    const sidecar = objs(at(deployment, "spec.template.spec.containers")).find((c) => c.name === "sidecar")!;
    const controlPort = overlay.endsWith("istio")
      ? checkIstioSetup(list).controlPort
      : egControlPort(one(list, "EnvoyPatchPolicy"), one(list, "EnvoyExtensionPolicy"), list);
    assert.ok(controlPort);
    assert.deepEqual(flagValues(sidecar.args, "--envoy-port"), [String(controlPort)]);
    const problems = checkControlPortPolicy(one(list, "NetworkPolicy"), {
      podLabels,
      controlPort,
      openPorts: [port],
      sidecarNamespace: String(at(deployment, "metadata.namespace")),
      sidecarLabels: at(deployment, "spec.template.metadata.labels") as Json,
    });
    assert.deepEqual(problems, []);
    // The token from the Secret lands in the control plugin configuration, and only there.
    const token = String(at(one(list, "Secret", "epp-control-token"), "stringData.token"));
    const holders = list
      .filter((o) => JSON.stringify(o).includes(token))
      .map((o) => `${String(o.kind)}/${String(at(o, "metadata.name"))}`)
      .sort();
    assert.deepEqual(
      holders,
      overlay.endsWith("istio")
        ? ["EnvoyFilter/epp-filter-control", "Secret/epp-control-token"]
        : ["EnvoyPatchPolicy/epp-filter-patches", "Secret/epp-control-token"],
    );
  });
}
