// Static checks for the Envoy Gateway and Istio setups: the patches that make the control planes run the filter
// (allow_on_headers_stop_iteration, failure_policy, a control port the public listener does not serve), and the
// routing that makes the gateway's cluster parse what the filter writes. Names here mirror what the control planes
// generate; deploy/envoy-gateway/*.yaml and deploy/istio/*.yaml cite the upstream sources.
import { at, isObj, objs, str, type Json } from "./json-path.ts";
import {
  checkDestination,
  checkOverrideHostPolicy,
  checkPlugin,
  checkWasmFilter,
  DESTINATION_HEADER,
  overrideHostPolicy,
  parsePlugin,
  ROOT_ID,
  routeRetry,
  wasmFromPluginConfig,
  type ClusterKind,
  type RetryInfo,
  type Role,
} from "./envoy-checks.ts";
import { describe } from "./k8s-checks.ts";
import { applyOperation, type PatchOperation } from "./json-patch.ts";

export const ALLOW_STOP_ITERATION = "allow_on_headers_stop_iteration";
export const WASM_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
const LISTENER_TYPE = "type.googleapis.com/envoy.config.listener.v3.Listener";
const HCM = "envoy.filters.network.http_connection_manager";
/** Ports Envoy Gateway's proxy pods already use: admin, stats, shutdown manager, readiness (internal/xds/bootstrap). */
export const EG_RESERVED_PORTS = [19000, 19001, 19002, 19003];
/** The filter's default maxBodyBytes (assembly/config.ts): a gateway buffer below it turns big prompts into 413. */
export const MIN_BUFFER_BYTES = 4 << 20;
/** Envoy Gateway's retry defaults when a BackendTrafficPolicy has retry but leaves these unset (retry_types.go). */
const EG_DEFAULT_RETRIES = 2;
const EG_DEFAULT_TRIGGERS = [
  "connect-failure",
  "refused-stream",
  "unavailable",
  "cancelled",
  "retriable-status-codes",
];

function ns(o: Json): string {
  return str(at(o, "metadata.namespace")) ?? "default";
}

/** Two plugin configurations name the same pool (key order aside: kustomize sorts object keys). */
function samePool(a: Json | undefined, b: Json | undefined): boolean {
  return (
    at(a, "pool.namespace") === at(b, "pool.namespace") &&
    at(a, "pool.name") === at(b, "pool.name") &&
    at(a, "pool.name") !== undefined
  );
}

function named(list: Json[], kind: string, name: unknown, namespace?: string): Json | undefined {
  return list.find(
    (o) =>
      o.kind === kind && at(o, "metadata.name") === name && (namespace === undefined || ns(o) === namespace),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Envoy Gateway

/** Envoy Gateway's HTTP filter name for entry `index` of an EnvoyExtensionPolicy's spec.wasm. */
export function egWasmFilterName(policy: Json, index: number): string {
  return `envoy.filters.http.wasm/envoyextensionpolicy/${ns(policy)}/${String(at(policy, "metadata.name"))}/wasm/${index}`;
}

/** The container port Envoy Gateway binds for a Gateway listener port (below 1024: + 10000). */
export function egContainerPort(port: number): number {
  return port < 1024 ? port + 10000 : port;
}

/**
 * Envoy Gateway's xDS names for one Gateway listener: the default "<ns>/<gateway>/<listener>", and with the
 * XDSNameSchemeV2 runtime flag "tcp-<Gateway listener port>" (internal/xds/translator/listener.go
 * xdsListenerName is given the ExternalPort, i.e. the Gateway's port, not the container port).
 */
export function egListenerNamesOf(gateway: Json, listener: Json): string[] {
  return [
    `${ns(gateway)}/${String(at(gateway, "metadata.name"))}/${String(listener.name)}`,
    `tcp-${Number(listener.port)}`,
  ];
}

export function egListenerNames(gateway: Json): string[] {
  return objs(at(gateway, "spec.listeners")).flatMap((l) => egListenerNamesOf(gateway, l));
}

/**
 * A listener shaped like the one Envoy Gateway generates for a plain-HTTP Gateway listener whose routes use the
 * policy's Wasm entry (github.com/envoyproxy/gateway v1.9.0: internal/xds/translator/listener.go,
 * internal/xds/translator/wasm.go; internal/xds/translator/testdata/out/xds-ir/wasm.listeners.yaml shows one),
 * in the proto field names an EnvoyPatchPolicy sees. Only the parts our patches and checks touch.
 */
export function egModelListener(gateway: Json, listener: Json, policy: Json, index: number): Json {
  const name = egListenerNamesOf(gateway, listener)[0];
  const port = egContainerPort(Number(listener.port));
  const entry = objs(at(policy, "spec.wasm"))[index];
  const irName = egWasmFilterName(policy, index).replace("envoy.filters.http.wasm/", "");
  const config: Json = {
    name: str(entry?.name) ?? irName,
    root_id: entry?.rootID,
    vm_config: {
      vm_id: irName,
      runtime: "envoy.wasm.runtime.v8",
      code: {
        remote: {
          http_uri: {
            uri: "https://envoy-gateway.envoy-gateway-system.svc.cluster.local:18002/unguessable.wasm",
            cluster: "wasm_cluster",
            timeout: "10s",
          },
        },
      },
    },
    configuration: {
      "@type": "type.googleapis.com/google.protobuf.StringValue",
      value: JSON.stringify(entry?.config ?? {}),
    },
  };
  // protojson leaves out false booleans.
  if (entry?.failOpen === true) config.fail_open = true;
  return {
    name,
    address: { socket_address: { address: "0.0.0.0", port_value: port } },
    default_filter_chain: {
      name,
      filters: [
        {
          name: HCM,
          typed_config: {
            "@type":
              "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix: `http-${port}`,
            rds: { config_source: { ads: {}, resource_api_version: "V3" }, route_config_name: name },
            http_filters: [
              {
                name: egWasmFilterName(policy, index),
                disabled: true,
                typed_config: { "@type": WASM_FILTER_TYPE, config },
              },
              {
                name: "envoy.filters.http.router",
                typed_config: {
                  "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                },
              },
            ],
          },
        },
      ],
    },
    per_connection_buffer_limit_bytes: 32768,
  };
}

function chainHcm(chain: Json): Json | undefined {
  const f = objs(chain.filters).find((x) => x.name === HCM);
  return isObj(f?.typed_config) ? f.typed_config : undefined;
}

function chainWasm(chain: Json, filterName: string): Json | undefined {
  return objs(chainHcm(chain)?.http_filters).find((f) => f.name === filterName);
}

/**
 * The listener after our patches: the public default chain runs the data plugin (enabled per route), and exactly
 * one extra chain, selected by destination port on an additional address, runs the same filter (same vm_id, same
 * module) with the control plugin and serves no route. Returns that control port.
 */
export function checkEgPatchedListener(
  listener: Json,
  filterName: string,
  where: string,
): { controlPort?: number; problems: string[] } {
  const problems: string[] = [];
  const dataPort = Number(at(listener, "address.socket_address.port_value"));
  const dataFilter = isObj(listener.default_filter_chain)
    ? chainWasm(listener.default_filter_chain, filterName)
    : undefined;
  if (!dataFilter) return { problems: [`${where}: the public chain has no filter ${filterName}`] };
  const data = wasmFromPluginConfig(`${where} public chain`, at(dataFilter, "typed_config.config"));
  problems.push(...checkWasmFilter(data, "data"));

  const control = objs(listener.filter_chains).filter((c) => chainWasm(c, filterName));
  if (control.length !== 1)
    return {
      problems: [
        ...problems,
        `${where}: expected one control chain with the filter, found ${control.length}`,
      ],
    };
  const chain = control[0];
  const port = Number(at(chain, "filter_chain_match.destination_port"));
  const extra = objs(listener.additional_addresses).map((a) =>
    Number(at(a, "address.socket_address.port_value")),
  );
  if (!extra.includes(port))
    problems.push(`${where}: the control chain matches port ${port}, which the listener does not bind`);
  if (port === dataPort)
    problems.push(`${where}: the control port must differ from the public port ${dataPort}`);
  if (EG_RESERVED_PORTS.includes(port))
    problems.push(`${where}: port ${port} is one of Envoy Gateway's own (${EG_RESERVED_PORTS.join(", ")})`);
  const hcm = chainHcm(chain);
  if (hcm?.rds !== undefined || !isObj(hcm?.route_config))
    problems.push(`${where}: the control chain must have its own route table, not the public one (rds)`);
  const routes = objs(at(hcm, "route_config.virtual_hosts")).flatMap((vh) => objs(vh.routes));
  if (routes.some((r) => r.direct_response === undefined))
    problems.push(`${where}: the control chain must route nowhere (direct_response only)`);
  const filter = chainWasm(chain, filterName)!;
  if (filter.disabled === true)
    problems.push(`${where}: the control chain's filter is disabled (no route there enables it)`);
  const w = wasmFromPluginConfig(`${where} control chain`, at(filter, "typed_config.config"));
  problems.push(...checkWasmFilter(w, "control"));
  if (w.vmId !== data.vmId || w.code !== data.code)
    problems.push(
      `${where}: the control chain must run the same module with the same vm_id as the public chain`,
    );
  if (!samePool(w.plugin, data.plugin))
    problems.push(`${where}: the control and data plugin configurations must name the same pool`);
  return { controlPort: port, problems };
}

/** Applies an EnvoyPatchPolicy's listener patches in order, as Envoy Gateway does. */
export function applyEgPatches(patch: Json, listener: Json): { listener: Json; errors: string[] } {
  const out = structuredClone(listener);
  const errors: string[] = [];
  for (const [i, p] of objs(at(patch, "spec.jsonPatches")).entries()) {
    if (p.type !== LISTENER_TYPE || p.name !== listener.name) continue;
    try {
      applyOperation(out, p.operation as PatchOperation);
    } catch (e) {
      errors.push(`${describe(patch)} jsonPatches[${i}]: ${(e as Error).message}`);
    }
  }
  return { listener: out, errors };
}

/** The filter names a jsonPath selects with [?(@.name=='…')]. */
function namesInJsonPath(jsonPath: string): string[] {
  return [...jsonPath.matchAll(/@\.name\s*==\s*(['"])(.*?)\1/g)].map((m) => m[2]);
}

/**
 * The EnvoyPatchPolicy must target the Gateway the EnvoyExtensionPolicy attaches to, patch one of its listeners,
 * set allow_on_headers_stop_iteration: true and failure_policy: FAIL_CLOSED on the policy's generated filter, and
 * give that listener a control port. The patches are applied to a model of the generated listener and the result
 * is checked (checkEgPatchedListener).
 */
export function checkEnvoyPatchPolicy(patch: Json, extensionPolicy: Json, gateways: Json[]): string[] {
  return egPatchPolicyResult(patch, extensionPolicy, gateways).problems;
}

/** The control port the EnvoyPatchPolicy gives the Gateway's proxies (undefined when its patches fail). */
export function egControlPort(patch: Json, extensionPolicy: Json, gateways: Json[]): number | undefined {
  return egPatchPolicyResult(patch, extensionPolicy, gateways).controlPort;
}

function egPatchPolicyResult(
  patch: Json,
  extensionPolicy: Json,
  gateways: Json[],
): { controlPort?: number; problems: string[] } {
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
    return { problems };
  }
  const attached = objs(at(extensionPolicy, "spec.targetRefs")).some(
    (r) => r.kind === "Gateway" && r.name === at(gateway, "metadata.name"),
  );
  if (!attached || ns(extensionPolicy) !== ns(gateway))
    problems.push(`${who}: ${describe(extensionPolicy)} does not attach to ${describe(gateway)}`);

  const index = objs(at(extensionPolicy, "spec.wasm")).findIndex((w) => w.rootID === ROOT_ID);
  if (index < 0)
    return {
      problems: [...problems, `${describe(extensionPolicy)}: no spec.wasm entry with rootID ${ROOT_ID}`],
    };
  const filter = egWasmFilterName(extensionPolicy, index);
  const patches = objs(at(patch, "spec.jsonPatches"));
  const listeners = objs(at(gateway, "spec.listeners"));
  if (new Set(patches.map((p) => p.name)).size > 1)
    problems.push(`${who}: every patch must address the same listener (one naming scheme)`);
  for (const p of patches) {
    if (p.type !== LISTENER_TYPE) problems.push(`${who}: patch type must be ${LISTENER_TYPE}`);
    if (!listeners.some((l) => egListenerNamesOf(gateway, l).includes(String(p.name))))
      problems.push(
        `${who}: listener ${String(p.name)} is not one of ${egListenerNames(gateway).join(", ")}`,
      );
  }
  for (const [field, value] of [
    [ALLOW_STOP_ITERATION, true],
    ["failure_policy", "FAIL_CLOSED"],
  ] as const) {
    const setting = patches.filter((p) => isObj(p.operation) && at(p, "operation.path") === `/${field}`);
    if (setting.length === 0) problems.push(`${who}: no JSON patch sets ${field}`);
    for (const p of setting) {
      const op = p.operation as Json;
      const jsonPath = String(op.jsonPath ?? "");
      if (op.op !== "add" && op.op !== "replace") problems.push(`${who}: op must be add or replace`);
      const names = namesInJsonPath(jsonPath);
      if (names.length !== 1 || names[0] !== filter)
        problems.push(
          `${who}: jsonPath must select the filter ${filter}, selects ${names.join(", ") || "none"}`,
        );
      if (!(jsonPath + String(op.path)).endsWith(`.typed_config.config/${field}`))
        problems.push(`${who}: must set typed_config.config.${field}, sets ${jsonPath}${String(op.path)}`);
      if (op.value !== value) problems.push(`${who}: ${field} must be set to ${String(value)}`);
    }
  }
  // Run the patches against the listener Envoy Gateway generates for the patched Gateway listener.
  const target = listeners.find((l) =>
    patches.some((p) => egListenerNamesOf(gateway, l).includes(String(p.name))),
  );
  if (!target) return { problems };
  const model = egModelListener(gateway, target, extensionPolicy, index);
  // Under XDSNameSchemeV2 the same patches address "tcp-<port>"; the model carries the name the patches use.
  const patchedName = String(patches[0]?.name ?? model.name);
  model.name = patchedName;
  const { listener, errors } = applyEgPatches(patch, model);
  if (errors.length > 0) return { problems: [...problems, ...errors] };
  const result = checkEgPatchedListener(listener, filter, `${who} (applied)`);
  return { controlPort: result.controlPort, problems: [...problems, ...result.problems] };
}

/** Kubernetes quantity ("8Mi", "32768", "1G") in bytes; NaN when it is not one. */
export function quantityBytes(q: unknown): number {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (!m) return NaN;
  const unit: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Number(m[1]) * (m[2] ? unit[m[2]] : 1);
}

function targets(policy: Json, kind: string, name: unknown): boolean {
  return objs(at(policy, "spec.targetRefs")).some((r) => r.kind === kind && r.name === name);
}

/**
 * The Envoy Gateway routing: inference routes go to a Service (never an InferencePool: with Envoy AI Gateway that
 * builds an ORIGINAL_DST cluster and a fail-closed ext_proc to the pool's endpoint picker) whose cluster a
 * BackendTrafficPolicy turns into override_host on the destination header, with retries that walk the filter's
 * fallbacks; the data plugin asks for that shape and enables no control path; a ClientTrafficPolicy raises Envoy
 * Gateway's 32 KiB listener buffer.
 */
export function checkEnvoyGatewayRouting(objects: Json[]): string[] {
  const problems: string[] = [];
  const policy = objects.find((o) => o.kind === "EnvoyExtensionPolicy");
  const entry = objs(at(policy, "spec.wasm")).find((w) => w.rootID === ROOT_ID);
  if (!policy || !entry) return ["no EnvoyExtensionPolicy with a Wasm entry of rootID " + ROOT_ID];
  const who = describe(policy);
  const plugin = isObj(entry.config) ? entry.config : undefined;
  problems.push(...checkPlugin(plugin, "config is not an object", `${who} config`, "data"));
  if (entry.failOpen !== false) problems.push(`${who}: failOpen must be false (fail closed)`);

  for (const route of objects.filter((o) => o.kind === "HTTPRoute")) {
    const rwho = describe(route);
    const backends = objs(at(route, "spec.rules")).flatMap((r) => objs(r.backendRefs));
    if (backends.length === 0) problems.push(`${rwho}: no backend`);
    for (const b of backends) {
      if (b.kind === "InferencePool") {
        problems.push(
          `${rwho}: an InferencePool backend makes Envoy AI Gateway build an ORIGINAL_DST cluster and an ext_proc ` +
            "to the pool's endpoint picker; route to the model Service instead",
        );
        continue;
      }
      if ((b.kind ?? "Service") !== "Service" || (b.group ?? "") !== "") {
        problems.push(`${rwho}: backend ${String(b.kind)} ${String(b.name)} is not a Service`);
        continue;
      }
      const svc = named(objects, "Service", b.name, str(b.namespace) ?? ns(route));
      if (!svc) problems.push(`${rwho}: Service ${String(b.name)} not found`);
      else if (!objs(at(svc, "spec.ports")).some((p) => p.port === b.port))
        problems.push(`${rwho}: Service ${String(b.name)} has no port ${String(b.port)}`);
    }
    const btp = objects.find(
      (o) => o.kind === "BackendTrafficPolicy" && targets(o, "HTTPRoute", at(route, "metadata.name")),
    );
    if (!btp) {
      problems.push(`${rwho}: no BackendTrafficPolicy makes its cluster honour ${DESTINATION_HEADER}`);
      continue;
    }
    const headers = objs(at(btp, "spec.loadBalancer.endpointOverride.extractFrom")).map((s) => s.header);
    if (!headers.includes(DESTINATION_HEADER))
      problems.push(`${describe(btp)}: loadBalancer.endpointOverride must extract ${DESTINATION_HEADER}`);
    if (!str(at(btp, "spec.loadBalancer.type")))
      problems.push(`${describe(btp)}: loadBalancer.type (the fallback policy) is required`);
    const retry = at(btp, "spec.retry");
    const info: RetryInfo | undefined = isObj(retry)
      ? {
          retryOn: (at(retry, "retryOn.triggers") as string[] | undefined) ?? EG_DEFAULT_TRIGGERS,
          numRetries: typeof retry.numRetries === "number" ? retry.numRetries : EG_DEFAULT_RETRIES,
        }
      : undefined;
    problems.push(...checkDestination("override_host", plugin, info, describe(btp)));
  }

  for (const gw of objects.filter((o) => o.kind === "Gateway")) {
    const ctp = objects.find(
      (o) => o.kind === "ClientTrafficPolicy" && targets(o, "Gateway", at(gw, "metadata.name")),
    );
    const bytes = quantityBytes(at(ctp, "spec.connection.bufferLimit"));
    const needed = Math.max(MIN_BUFFER_BYTES, Number(plugin?.maxBodyBytes ?? 0));
    if (!ctp)
      problems.push(`${describe(gw)}: no ClientTrafficPolicy raises Envoy Gateway's 32 KiB buffer limit`);
    else if (!(bytes >= needed))
      problems.push(
        `${describe(ctp)}: connection.bufferLimit must be at least ${needed} bytes (the filter's body limit)`,
      );
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Istio

export interface IstioWasmFilter {
  extension: Json | undefined;
  httpFilter: Json | undefined;
  /** The plugin configuration JSON, parsed (undefined when it is not valid JSON). */
  plugin: Json | undefined;
  /** The listener port the HTTP filter is inserted on (undefined: every listener). */
  port: number | undefined;
}

export function istioWasmFilter(envoyFilter: Json): IstioWasmFilter {
  const patches = objs(at(envoyFilter, "spec.configPatches"));
  const extension = patches.find(
    (p) => p.applyTo === "EXTENSION_CONFIG" && at(p, "patch.value.typed_config.@type") === WASM_FILTER_TYPE,
  );
  const name = at(extension, "patch.value.name");
  const httpFilter = patches.find((p) => p.applyTo === "HTTP_FILTER" && at(p, "patch.value.name") === name);
  const { plugin } = parsePlugin(at(extension, "patch.value.typed_config.config.configuration.value"));
  const port = at(httpFilter, "match.listener.portNumber");
  return { extension, httpFilter, plugin, port: typeof port === "number" ? port : undefined };
}

/** The Istio EnvoyFilters that define our Wasm filter. */
export function istioWasmFilters(objects: Json[]): Json[] {
  return objects.filter((o) => o.kind === "EnvoyFilter" && istioWasmFilter(o).extension);
}

/**
 * One Istio EnvoyFilter adds the Wasm filter as an ECDS extension config "<namespace>.<name>" (flag set, failing
 * closed, plugin configuration for `role`) and an HTTP filter before the router, on one listener port, that
 * fetches it by that name, on the gateway pods `selector` picks.
 */
export function checkIstioWasmFilter(envoyFilter: Json, selector: Json, role: Role = "data"): string[] {
  const who = describe(envoyFilter);
  const problems: string[] = [];
  const { extension, httpFilter, port } = istioWasmFilter(envoyFilter);
  if (!extension) return [`${who}: no EXTENSION_CONFIG patch with a ${WASM_FILTER_TYPE} config`];
  const name = String(at(extension, "patch.value.name"));
  const expected = `${ns(envoyFilter)}.${String(at(envoyFilter, "metadata.name"))}`;
  if (name !== expected) problems.push(`${who}: extension config is named ${name}, expected ${expected}`);
  if (at(extension, "patch.operation") !== "ADD")
    problems.push(`${who}: EXTENSION_CONFIG patches only take effect with operation ADD`);
  const config = at(extension, "patch.value.typed_config.config");
  problems.push(...checkWasmFilter(wasmFromPluginConfig(`${who} (ECDS ${name})`, config), role));
  if (
    !/^oci:\/\/[\w.-]+(:\d+)?\/[\w./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/.test(
      String(at(config, "vm_config.code.remote.http_uri.uri")),
    )
  )
    problems.push(`${who}: the module must come from an oci:// image`);

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
    if (port === undefined)
      problems.push(
        `${who}: the HTTP filter must name its listener port (data and control listeners differ)`,
      );
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

function serverPorts(gateway: Json): number[] {
  return objs(at(gateway, "spec.servers")).map((s) => Number(at(s, "port.number")));
}

/** An Istio EnvoyFilter CLUSTER patch, as the ClusterKind it gives the cluster it matches or adds. */
function istioClusterKind(patch: Json, where: string): { kind?: ClusterKind; problems: string[] } {
  const value = at(patch, "patch.value");
  if (at(value, "type") === "ORIGINAL_DST") {
    const problems: string[] = [];
    if (at(value, "original_dst_lb_config.use_http_header") !== true)
      problems.push(`${where}: original_dst_lb_config.use_http_header must be true`);
    if (at(value, "original_dst_lb_config.http_header_name") !== DESTINATION_HEADER)
      problems.push(`${where}: http_header_name must be ${DESTINATION_HEADER}`);
    return { kind: "original_dst", problems };
  }
  const override = overrideHostPolicy(value);
  if (!override) return { problems: [`${where}: neither ORIGINAL_DST nor the override_host policy`] };
  const problems = checkOverrideHostPolicy(override, where);
  if (at(patch, "patch.operation") !== "MERGE")
    problems.push(`${where}: override_host goes onto Istio's EDS cluster with operation MERGE`);
  if (at(value, "lb_policy") !== "CLUSTER_PROVIDED")
    problems.push(`${where}: lb_policy must be CLUSTER_PROVIDED next to load_balancing_policy`);
  return { kind: "override_host", problems };
}

/**
 * The Istio gateway setup: the data filter (no control path) on the public server's port and the control filter
 * on a separate server's port that no VirtualService binds, one vm_id and module; every VirtualService route goes
 * to a cluster an EnvoyFilter makes parse the filter's shape, with retries that fit it; both listeners' buffers
 * raised. Returns the control port as well.
 */
export function checkIstioSetup(objects: Json[]): { controlPort?: number; problems: string[] } {
  const problems: string[] = [];
  const filters = istioWasmFilters(objects).map((f) => ({ f, ...istioWasmFilter(f) }));
  const data = filters.filter(
    (x) => x.plugin && x.plugin.controlPath === undefined && x.plugin.controlToken === undefined,
  );
  const control = filters.filter((x) => !data.includes(x));
  if (data.length !== 1 || control.length !== 1)
    return {
      problems: [
        `expected one data and one control Wasm EnvoyFilter, found ${data.length} and ${control.length}`,
      ],
    };
  const [d, c] = [data[0], control[0]];
  const gateways = objects.filter(
    (o) => o.kind === "Gateway" && String(o.apiVersion).startsWith("networking.istio.io"),
  );
  const services = objects.filter((o) => o.kind === "VirtualService");
  const bound = new Set(services.flatMap((vs) => (at(vs, "spec.gateways") as string[] | undefined) ?? []));
  const isBound = (g: Json) =>
    bound.has(`${ns(g)}/${String(at(g, "metadata.name"))}`) || bound.has(String(at(g, "metadata.name")));
  for (const x of [d, c]) {
    const selector = at(gateways[0], "spec.selector") as Json;
    problems.push(...checkIstioWasmFilter(x.f, selector, x === d ? "data" : "control"));
  }
  const cfg = (x: typeof d) => at(x.extension, "patch.value.typed_config.config");
  if (
    at(cfg(d), "vm_config.vm_id") !== at(cfg(c), "vm_config.vm_id") ||
    at(cfg(d), "vm_config.code.remote.http_uri.uri") !== at(cfg(c), "vm_config.code.remote.http_uri.uri")
  )
    problems.push(
      "the data and control filters must share one vm_id and module (the snapshot lives per vm_id)",
    );
  if (!samePool(d.plugin, c.plugin)) problems.push("the data and control filters must name the same pool");
  const publicPorts = gateways.filter(isBound).flatMap(serverPorts);
  const controlGateways = gateways.filter((g) => serverPorts(g).includes(c.port ?? -1));
  if (d.port === undefined || !publicPorts.includes(d.port))
    problems.push(
      `the data filter's port ${String(d.port)} is not a server port of a Gateway a VirtualService binds`,
    );
  if (controlGateways.length !== 1 || controlGateways.some(isBound) || c.port === d.port)
    problems.push(
      `the control port ${String(c.port)} must be its own Gateway server that no VirtualService binds`,
    );

  const patches = objects
    .filter((o) => o.kind === "EnvoyFilter")
    .flatMap((f) => objs(at(f, "spec.configPatches")).map((p) => ({ f, p })));
  for (const vs of services)
    for (const h of objs(at(vs, "spec.http"))) {
      const where = `${describe(vs)} route ${String(h.name)}`;
      for (const dest of objs(h.route)) {
        const host = at(dest, "destination.host");
        const port = at(dest, "destination.port.number");
        const cluster = patches.find(
          ({ p }) =>
            p.applyTo === "CLUSTER" &&
            at(p, "match.cluster.service") === host &&
            at(p, "match.cluster.portNumber") === port,
        );
        const routePatch = patches.find(
          ({ p }) =>
            p.applyTo === "HTTP_ROUTE" && at(p, "match.routeConfiguration.vhost.route.name") === h.name,
        );
        const added = routePatch
          ? patches.find(
              ({ p }) =>
                p.applyTo === "CLUSTER" &&
                at(p, "patch.value.name") === at(routePatch.p, "patch.value.route.cluster"),
            )
          : undefined;
        const source = added ?? cluster;
        if (!source) {
          problems.push(
            `${where}: no EnvoyFilter makes the cluster of ${String(host)}:${String(port)} honour ${DESTINATION_HEADER}`,
          );
          continue;
        }
        const { kind, problems: clusterProblems } = istioClusterKind(
          source.p,
          `${describe(source.f)} CLUSTER`,
        );
        problems.push(...clusterProblems);
        const retries = at(h, "retries");
        const retry: RetryInfo | undefined = routePatch
          ? routeRetry(at(routePatch.p, "patch.value") as Json)
          : isObj(retries)
            ? {
                retryOn: String(retries.retryOn ?? "")
                  .split(",")
                  .map((t) => t.trim())
                  .filter(Boolean),
                numRetries: typeof retries.attempts === "number" ? retries.attempts : undefined,
              }
            : undefined;
        if (kind) problems.push(...checkDestination(kind, d.plugin, retry, where));
      }
    }

  for (const port of [d.port, c.port]) {
    const limit = patches.find(
      ({ p }) => p.applyTo === "LISTENER" && at(p, "match.listener.portNumber") === port,
    );
    const bytes = Number(at(limit?.p, "patch.value.per_connection_buffer_limit_bytes"));
    if (!(bytes >= MIN_BUFFER_BYTES))
      problems.push(
        `listener port ${String(port)}: per_connection_buffer_limit_bytes must be at least ${MIN_BUFFER_BYTES}`,
      );
  }
  return { controlPort: c.port, problems };
}
