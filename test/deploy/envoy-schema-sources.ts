// Where the Envoy API objects we ship live, turned into (message type, JSON value) pairs for envoy-schema.ts:
// bootstraps in envoy/, the standalone overlay's template as its init container renders it, and the Envoy objects
// inside Istio EnvoyFilter and Envoy Gateway EnvoyPatchPolicy patches.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { at, isObj, objs, type Json } from "./json-path.ts";
import { listYamlFiles, parseYaml, readYaml, repoRoot } from "./yaml-files.ts";
import { BOOTSTRAP } from "./envoy-schema.ts";
import { applyJsonPatches, egListenerModel } from "./envoy-schema-egpatch.ts";

export interface EnvoyObject {
  /** Where it comes from, for test names and messages. */
  source: string;
  type: string;
  value: () => unknown;
  /** False for fragments merged into a larger message (PGV rules need the whole message). */
  rules: boolean;
  /** Why this object is not checked, when it is not. */
  skip?: string;
}

/** Files in envoy/ that are not Envoy bootstraps. */
const NOT_BOOTSTRAPS = /^(docker-)?compose[^/]*\.ya?ml$/;

/** Every bootstrap in envoy/ (top level: manifests/ holds Kubernetes objects). */
export function envoyDirBootstraps(): string[] {
  return readdirSync(join(repoRoot, "envoy"))
    .filter((f) => /\.(ya?ml|json)$/.test(f) && !NOT_BOOTSTRAPS.test(f))
    .sort()
    .map((f) => `envoy/${f}`);
}

/** A control token of the shape the render step accepts ([A-Za-z0-9._~+/=-]{32,}), using its odd characters. */
export const SAMPLE_TOKEN = "Zm9vYmFy+/=~._-0123456789abcdef0123456789";

/**
 * An overlay's envoy-template.yaml as its init container writes it: the pod spec's sed expressions
 * s|${NAME}|$var|g with $var taken from the container's env (literal value), the token read from the Secret, or the
 * namespace the overlay deploys into. Throws when a ${...} placeholder is left over.
 */
export function renderOverlayTemplate(overlayDir: string): string {
  const template = readFileSync(join(repoRoot, overlayDir, "envoy-template.yaml"), "utf8");
  const pods = readYaml(join(overlayDir, "envoy-pod.yaml")).map((d) => d.value);
  const init = pods
    .flatMap((p) => objs(at(p, "spec.template.spec.initContainers")))
    .find((c) => JSON.stringify(c).includes("envoy-template.yaml"));
  if (!init) throw new Error(`${overlayDir}/envoy-pod.yaml: no init container renders envoy-template.yaml`);
  const script = [init.command, init.args].flat().map(String).join("\n");
  const env = new Map(objs(init.env).map((e) => [String(e.name), e.value]));
  let rendered = template;
  for (const m of script.matchAll(/s\|\\\$\{(\w+)\}\|\$(\w+)\|g/g)) {
    const [, placeholder, variable] = m;
    const literal = env.get(variable);
    const value = typeof literal === "string" ? literal : variable === "token" ? SAMPLE_TOKEN : "inference";
    rendered = rendered.replaceAll(`\${${placeholder}}`, value);
  }
  const left = rendered.match(/\$\{\w+\}/);
  if (left) throw new Error(`${overlayDir}: ${left[0]} is not replaced by the render step`);
  return rendered;
}

export function overlayTemplates(): string[] {
  return listYamlFiles(["deploy"])
    .filter((f) => f.endsWith("/envoy-template.yaml"))
    .map((f) => f.slice(0, -"/envoy-template.yaml".length));
}

export function renderedBootstrap(overlayDir: string): unknown {
  const docs = parseYaml(renderOverlayTemplate(overlayDir), `${overlayDir}/envoy-template.yaml (rendered)`);
  if (docs.length !== 1) throw new Error(`${overlayDir}: expected one rendered document`);
  return docs[0].value;
}

// Istio parses an EnvoyFilter patch value as the message its applyTo names
// (github.com/istio/istio pkg/config/xds/xds.go BuildXDSObjectFromStruct).
const ISTIO_APPLY_TO: Record<string, string> = {
  CLUSTER: "envoy.config.cluster.v3.Cluster",
  LISTENER: "envoy.config.listener.v3.Listener",
  ROUTE_CONFIGURATION: "envoy.config.route.v3.RouteConfiguration",
  FILTER_CHAIN: "envoy.config.listener.v3.FilterChain",
  HTTP_FILTER: "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
  NETWORK_FILTER: "envoy.config.listener.v3.Filter",
  VIRTUAL_HOST: "envoy.config.route.v3.VirtualHost",
  HTTP_ROUTE: "envoy.config.route.v3.Route",
  EXTENSION_CONFIG: "envoy.config.core.v3.TypedExtensionConfig",
  BOOTSTRAP,
  LISTENER_FILTER: "envoy.config.listener.v3.ListenerFilter",
};

const KINDS = ["EnvoyFilter", "EnvoyPatchPolicy", "EnvoyExtensionPolicy"] as const;
let deployDocs: { file: string; value: unknown }[] | undefined;

/** The objects of `kind` under deploy/, parsed once per process and only from files that mention such a kind. */
function manifests(kind: (typeof KINDS)[number]): { file: string; value: Json }[] {
  const mentions = new RegExp(`^kind:\\s*(${KINDS.join("|")})\\s*$`, "m");
  deployDocs ??= listYamlFiles(["deploy"])
    .filter((file) => mentions.test(readFileSync(join(repoRoot, file), "utf8")))
    .flatMap((file) => readYaml(file).map((d) => ({ file, value: d.value })));
  return deployDocs.filter(
    (d): d is { file: string; value: Json } => isObj(d.value) && d.value.kind === kind,
  );
}

/** The Envoy objects in every Istio EnvoyFilter under deploy/. MERGE values are fragments. */
export function istioPatchValues(): EnvoyObject[] {
  return manifests("EnvoyFilter").flatMap(({ file, value }) =>
    objs(at(value, "spec.configPatches")).flatMap((p, i) => {
      const v = at(p, "patch.value");
      if (v === undefined) return [];
      const applyTo = String(p.applyTo);
      // An unmapped applyTo fails its test (checkEnvoyJson rejects the type name).
      const type = ISTIO_APPLY_TO[applyTo] ?? `(no Envoy message type for applyTo ${applyTo})`;
      const source = `${file} ${at(value, "metadata.name")} configPatches[${i}] (${applyTo})`;
      const merge = at(p, "patch.operation") === "MERGE";
      const agent = istioAgentView(v);
      // A remote Wasm module never reaches Envoy: check the value as written without the rules, and as the agent
      // hands it to Envoy with them.
      if (agent !== v)
        return [
          { source, type, value: () => v, rules: false },
          { source: `${source} after istio-agent`, type, value: () => agent, rules: !merge },
        ];
      return [{ source, type, value: () => v, rules: !merge }];
    }),
  );
}

/**
 * The istio-agent downloads a Wasm module that an ECDS config fetches remotely and replaces vm_config.code with the
 * local file before Envoy sees the config (github.com/istio/istio pkg/wasm/convert.go: tryUnmarshal takes a Wasm
 * typed_config, convert rewrites the remote fetch to a local file). Returns the value unchanged otherwise.
 */
function istioAgentView(value: unknown): unknown {
  const code = at(value, "typed_config.config.vm_config.code");
  if (!isObj(code) || code.remote === undefined) return value;
  const copy = structuredClone(value) as Json;
  const vm = at(copy, "typed_config.config.vm_config") as Json;
  vm.code = { local: { filename: "/var/lib/istio/data/module.wasm" } };
  return copy;
}

const LISTENER = "envoy.config.listener.v3.Listener";
const LISTENER_URL = `type.googleapis.com/${LISTENER}`;

/**
 * Envoy Gateway's listener `name`, modelled from the EnvoyExtensionPolicies that target its Gateway, with the
 * patch policy's entries for that listener applied. Throws where Envoy Gateway would reject the patches.
 */
export function patchedListener(patchPolicy: Json, extensionPolicies: Json[], name: string): Json {
  const gateway = name.split("/")[1];
  const targeting = extensionPolicies.filter((e) =>
    [at(e, "spec.targetRef"), ...objs(at(e, "spec.targetRefs"))].some(
      (t) => isObj(t) && t.kind === "Gateway" && t.name === gateway,
    ),
  );
  const listener = egListenerModel(name, targeting);
  const patches = objs(at(patchPolicy, "spec.jsonPatches"));
  applyJsonPatches(
    listener,
    patches.filter((p) => p.type === LISTENER_URL && p.name === name),
  );
  return listener;
}

export function extensionPolicies(): Json[] {
  return manifests("EnvoyExtensionPolicy").map((m) => m.value);
}

/** Every listener an EnvoyPatchPolicy under deploy/ patches, patched; other resource types are not modelled. */
export function gatewayPatchValues(): EnvoyObject[] {
  return manifests("EnvoyPatchPolicy").flatMap(({ file, value }) => {
    const policy = `${file} ${at(value, "metadata.name")}`;
    const patches = objs(at(value, "spec.jsonPatches"));
    const names = [...new Set(patches.filter((p) => p.type === LISTENER_URL).map((p) => String(p.name)))];
    return [
      ...names.map((name) => ({
        source: `${policy} applied to Envoy Gateway's listener ${name}`,
        type: LISTENER,
        value: () => patchedListener(value, extensionPolicies(), name),
        rules: true,
      })),
      ...patches
        .filter((p) => p.type !== LISTENER_URL)
        .map((p) => ({
          source: `${policy} ${p.type} ${p.name}`,
          type: "",
          value: () => undefined,
          rules: false,
          skip: "only Listener patches are modelled",
        })),
    ];
  });
}
