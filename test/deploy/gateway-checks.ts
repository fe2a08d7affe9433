// Static checks for the objects that make Envoy Gateway and Istio run the filter with
// allow_on_headers_stop_iteration: the EnvoyPatchPolicy that patches Envoy Gateway's generated Wasm filter, and the
// Istio EnvoyFilter that defines the filter over ECDS. Names here mirror what the control planes generate; see
// deploy/envoy-gateway/envoypatchpolicy.yaml and deploy/istio/wasm-filter.yaml for the sources.
import { at, isObj, objs, str, type Json } from "./json-path.ts";
import { checkPluginConfig, ROOT_ID } from "./envoy-checks.ts";
import { describe } from "./k8s-checks.ts";

export const ALLOW_STOP_ITERATION = "allow_on_headers_stop_iteration";
export const WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener";

function ns(o: Json): string {
  return str(at(o, "metadata.namespace")) ?? "default";
}

/** Envoy Gateway's HTTP filter name for entry `index` of an EnvoyExtensionPolicy's spec.wasm. */
export function egWasmFilterName(policy: Json, index: number): string {
  return `envoy.filters.http.wasm/envoyextensionpolicy/${ns(policy)}/${String(at(policy, "metadata.name"))}/wasm/${index}`;
}

/** Envoy Gateway's xDS listener names for a Gateway: the default scheme, and XDSNameSchemeV2 ("tcp-<port>"). */
export function egListenerNames(gateway: Json): string[] {
  return objs(at(gateway, "spec.listeners")).flatMap((l) => {
    const port = Number(l.port);
    const containerPort = port < 1024 ? port + 10000 : port;
    return [
      `${ns(gateway)}/${String(at(gateway, "metadata.name"))}/${String(l.name)}`,
      `tcp-${containerPort}`,
    ];
  });
}

/** The filter names a jsonPath selects with [?(@.name=='…')]. */
function namesInJsonPath(jsonPath: string): string[] {
  return [...jsonPath.matchAll(/@\.name\s*==\s*(['"])(.*?)\1/g)].map((m) => m[2]);
}

/**
 * The EnvoyPatchPolicy must target the Gateway the EnvoyExtensionPolicy attaches to, patch one of its listeners,
 * select the generated filter of the policy's epp entry by name, and add allow_on_headers_stop_iteration: true to
 * that filter's PluginConfig (typed_config.config).
 */
export function checkEnvoyPatchPolicy(patch: Json, extensionPolicy: Json, gateways: Json[]): string[] {
  const who = describe(patch);
  const problems: string[] = [];
  if (at(patch, "spec.type") !== "JSONPatch") problems.push(`${who}: spec.type must be JSONPatch`);
  const ref = at(patch, "spec.targetRef");
  const gateway = gateways.find(
    (g) => g.kind === "Gateway" && at(g, "metadata.name") === at(ref, "name") && ns(g) === ns(patch),
  );
  if (at(ref, "kind") !== "Gateway" || at(ref, "group") !== "gateway.networking.k8s.io" || !gateway) {
    problems.push(
      `${who}: targetRef must name a Gateway in namespace ${ns(patch)}, got ${JSON.stringify(ref)}`,
    );
    return problems;
  }
  const attached = objs(at(extensionPolicy, "spec.targetRefs")).some(
    (r) => r.kind === "Gateway" && r.name === at(gateway, "metadata.name"),
  );
  if (!attached || ns(extensionPolicy) !== ns(gateway))
    problems.push(`${who}: ${describe(extensionPolicy)} does not attach to ${describe(gateway)}`);

  const index = objs(at(extensionPolicy, "spec.wasm")).findIndex((w) => w.rootID === ROOT_ID);
  if (index < 0) problems.push(`${describe(extensionPolicy)}: no spec.wasm entry with rootID ${ROOT_ID}`);
  const filter = egWasmFilterName(extensionPolicy, index);
  const listeners = egListenerNames(gateway);
  const patches = objs(at(patch, "spec.jsonPatches"));
  const setting = patches.filter(
    (p) => isObj(p.operation) && JSON.stringify(p.operation).includes(ALLOW_STOP_ITERATION),
  );
  if (setting.length === 0) problems.push(`${who}: no JSON patch sets ${ALLOW_STOP_ITERATION}`);
  for (const p of setting) {
    const op = p.operation as Json;
    const jsonPath = String(op.jsonPath ?? "");
    if (p.type !== LISTENER_TYPE) problems.push(`${who}: patch type must be ${LISTENER_TYPE}`);
    if (!listeners.includes(String(p.name)))
      problems.push(`${who}: listener ${String(p.name)} is not one of ${listeners.join(", ")}`);
    if (op.op !== "add" && op.op !== "replace") problems.push(`${who}: op must be add or replace`);
    const names = namesInJsonPath(jsonPath);
    if (names.length !== 1 || names[0] !== filter)
      problems.push(
        `${who}: jsonPath must select the filter ${filter}, selects ${names.join(", ") || "none"}`,
      );
    const target = jsonPath + (str(op.path) ?? "");
    if (!target.endsWith(`.typed_config.config/${ALLOW_STOP_ITERATION}`))
      problems.push(`${who}: must set typed_config.config.${ALLOW_STOP_ITERATION}, sets ${target}`);
    if (op.value !== true) problems.push(`${who}: ${ALLOW_STOP_ITERATION} must be set to true`);
  }
  return problems;
}

export interface IstioWasmFilter {
  extension: Json | undefined;
  httpFilter: Json | undefined;
  /** The plugin configuration JSON, parsed (undefined when it is not valid JSON). */
  plugin: Json | undefined;
}

export function istioWasmFilter(envoyFilter: Json): IstioWasmFilter {
  const patches = objs(at(envoyFilter, "spec.configPatches"));
  const extension = patches.find(
    (p) => p.applyTo === "EXTENSION_CONFIG" && at(p, "patch.value.typed_config.@type") === WASM_FILTER_TYPE,
  );
  const name = at(extension, "patch.value.name");
  const httpFilter = patches.find((p) => p.applyTo === "HTTP_FILTER" && at(p, "patch.value.name") === name);
  let plugin: Json | undefined;
  try {
    const parsed: unknown = JSON.parse(
      String(at(extension, "patch.value.typed_config.config.configuration.value")),
    );
    if (isObj(parsed)) plugin = parsed;
  } catch {
    plugin = undefined;
  }
  return { extension, httpFilter, plugin };
}

/**
 * The Istio EnvoyFilter adds the Wasm filter as an ECDS extension config "<namespace>.<name>" (with the flag set)
 * and an HTTP filter before the router that fetches it by that name, on the gateway pods `selector` picks.
 */
export function checkIstioWasmFilter(envoyFilter: Json, selector: Json): string[] {
  const who = describe(envoyFilter);
  const problems: string[] = [];
  const { extension, httpFilter, plugin } = istioWasmFilter(envoyFilter);
  if (!extension) return [`${who}: no EXTENSION_CONFIG patch with a ${WASM_FILTER_TYPE} config`];
  const name = String(at(extension, "patch.value.name"));
  const expected = `${ns(envoyFilter)}.${String(at(envoyFilter, "metadata.name"))}`;
  if (name !== expected) problems.push(`${who}: extension config is named ${name}, expected ${expected}`);
  if (at(extension, "patch.operation") !== "ADD")
    problems.push(`${who}: EXTENSION_CONFIG patches only take effect with operation ADD`);
  const config = at(extension, "patch.value.typed_config.config");
  if (at(config, ALLOW_STOP_ITERATION) !== true)
    problems.push(`${who}: config.${ALLOW_STOP_ITERATION} must be true`);
  if (at(config, "root_id") !== ROOT_ID) problems.push(`${who}: root_id must be ${ROOT_ID}`);
  if (at(config, "vm_config.runtime") !== "envoy.wasm.runtime.v8")
    problems.push(`${who}: runtime must be V8`);
  if (at(config, "failure_policy") !== "FAIL_CLOSED" || at(config, "fail_open") === true)
    problems.push(`${who}: the filter must fail closed (failure_policy FAIL_CLOSED)`);
  if (
    !/^oci:\/\/[\w.-]+(:\d+)?\/[\w./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/.test(
      String(at(config, "vm_config.code.remote.http_uri.uri")),
    )
  )
    problems.push(`${who}: the module must come from an oci:// image`);
  problems.push(
    ...checkPluginConfig({
      listener: "(ECDS)",
      name,
      rootId: String(at(config, "root_id")),
      vmId: String(at(config, "vm_config.vm_id")),
      runtime: String(at(config, "vm_config.runtime")),
      code: String(at(config, "vm_config.code.remote.http_uri.uri")),
      failOpen: at(config, "fail_open"),
      allowOnHeadersStopIteration: at(config, ALLOW_STOP_ITERATION),
      plugin,
      pluginError: plugin ? undefined : "plugin configuration is not a JSON object",
    }).map((p) => `${who}: ${p}`),
  );

  if (!httpFilter) problems.push(`${who}: no HTTP_FILTER patch named ${name} (the extension config's name)`);
  else {
    if (
      at(httpFilter, "patch.operation") !== "INSERT_BEFORE" ||
      at(httpFilter, "match.listener.filterChain.filter.subFilter.name") !== "envoy.filters.http.router"
    )
      problems.push(`${who}: the HTTP filter must be inserted before envoy.filters.http.router`);
    const types = at(httpFilter, "patch.value.config_discovery.type_urls");
    if (!Array.isArray(types) || !types.includes(WASM_FILTER_TYPE))
      problems.push(`${who}: the HTTP filter must fetch a ${WASM_FILTER_TYPE} over config_discovery`);
    if (at(httpFilter, "patch.value.typed_config") !== undefined)
      problems.push(`${who}: the HTTP filter must reference the extension config, not inline a config`);
  }
  for (const p of [extension, httpFilter].filter(isObj))
    if (at(p, "match.context") !== "GATEWAY") problems.push(`${who}: patches must match context GATEWAY`);

  const labels = at(envoyFilter, "spec.workloadSelector.labels");
  if (JSON.stringify(labels) !== JSON.stringify(selector))
    problems.push(
      `${who}: workloadSelector ${JSON.stringify(labels)} must equal ${JSON.stringify(selector)}`,
    );
  return problems;
}
