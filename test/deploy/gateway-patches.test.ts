// Envoy Gateway and Istio run the filter with allow_on_headers_stop_iteration: the EnvoyPatchPolicy patches the
// filter Envoy Gateway generates for our EnvoyExtensionPolicy, and the Istio EnvoyFilter defines the filter with the
// flag. Checked on the source files; kustomize.test.ts checks the rendered overlays.
import { test } from "node:test";
import assert from "node:assert/strict";
import { listYamlFiles, readYaml, readYamlOne } from "./yaml-files.ts";
import { at, objs, type Json } from "./json-path.ts";
import {
  checkEnvoyPatchPolicy,
  checkIstioWasmFilter,
  egWasmFilterName,
  istioWasmFilter,
} from "./gateway-checks.ts";
import { CONTROL_PATH, ROOT_ID } from "./envoy-checks.ts";

function objects(file: string): Json[] {
  return readYaml(file).map((d) => d.value as Json);
}

function one(list: Json[], kind: string, name?: string): Json {
  const found = list.filter(
    (o) => o.kind === kind && (name === undefined || at(o, "metadata.name") === name),
  );
  assert.equal(found.length, 1, `exactly one ${kind} ${name ?? ""}`);
  return found[0];
}

test("envoy-gateway: the EnvoyPatchPolicy sets allow_on_headers_stop_iteration on the policy's Wasm filter", () => {
  const patch = readYamlOne("deploy/envoy-gateway/envoypatchpolicy.yaml") as Json;
  const policy = readYamlOne("deploy/envoy-gateway/envoyextensionpolicy.yaml") as Json;
  const gateway = readYamlOne("deploy/envoy-gateway/gateway.yaml") as Json;
  assert.equal(patch.kind, "EnvoyPatchPolicy");
  assert.equal(patch.apiVersion, "gateway.envoyproxy.io/v1alpha1");
  assert.deepEqual(checkEnvoyPatchPolicy(patch, policy, [gateway]), []);
  // The names Envoy Gateway generates for these objects, spelled out.
  assert.equal(
    egWasmFilterName(policy, 0),
    "envoy.filters.http.wasm/envoyextensionpolicy/inference/epp-filter/wasm/0",
  );
  assert.equal(at(patch, "spec.jsonPatches.0.name"), "inference/inference-gateway/http");
});

test("envoy-gateway: the kustomization ships the patch policy with the extension policy", () => {
  const k = readYamlOne("deploy/envoy-gateway/kustomization.yaml") as Json;
  const resources = k.resources as string[];
  assert.ok(resources.includes("envoyextensionpolicy.yaml"));
  assert.ok(resources.includes("envoypatchpolicy.yaml"));
});

test("istio: the EnvoyFilter defines the filter with the flag, fetched by name, on the ingress gateway pods", () => {
  const envoyFilter = readYamlOne("deploy/istio/wasm-filter.yaml") as Json;
  const routing = objects("deploy/istio/routing.yaml");
  const selector = at(one(routing, "Gateway"), "spec.selector") as Json;
  assert.deepEqual(checkIstioWasmFilter(envoyFilter, selector), []);
  // The same pods get the ORIGINAL_DST cluster the filter's header steers.
  assert.deepEqual(
    at(one(routing, "EnvoyFilter", "epp-original-dst"), "spec.workloadSelector.labels"),
    selector,
  );
  const { extension, httpFilter, plugin } = istioWasmFilter(envoyFilter);
  assert.equal(at(extension, "patch.value.name"), "istio-system.epp-filter");
  assert.equal(at(httpFilter, "patch.value.name"), "istio-system.epp-filter");
  assert.equal(at(plugin, "controlPath"), CONTROL_PATH);
  assert.equal(at(extension, "patch.value.typed_config.config.root_id"), ROOT_ID);
  // The overlay's replacement writes the token into field 3 of the string split at '"'.
  const raw = String(at(extension, "patch.value.typed_config.config.configuration.value"));
  assert.equal(raw.split('"')[3], at(plugin, "controlToken"));
  const k = readYamlOne("deploy/istio/kustomization.yaml") as Json;
  assert.ok((k.resources as string[]).includes("wasm-filter.yaml"));
});

test("no WasmPlugin ships: it cannot set allow_on_headers_stop_iteration, and a second copy would hang bodies", () => {
  const plugins = listYamlFiles(["deploy"])
    .flatMap((f) => readYaml(f))
    .filter((d) => (d.value as Json | null)?.kind === "WasmPlugin")
    .map((d) => d.file);
  assert.deepEqual(plugins, []);
  // Every Istio patch that names the filter names the one the EnvoyFilter defines.
  const envoyFilter = readYamlOne("deploy/istio/wasm-filter.yaml") as Json;
  for (const p of objs(at(envoyFilter, "spec.configPatches")))
    assert.equal(at(p, "patch.value.name"), "istio-system.epp-filter");
});
