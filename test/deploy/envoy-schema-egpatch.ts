// Applies an Envoy Gateway EnvoyPatchPolicy's JSONPatch entries to a model of the listener Envoy Gateway generates,
// so the patched listener can be checked as a whole Envoy Listener. Semantics as Envoy Gateway documents and
// implements them (github.com/envoyproxy/gateway internal/utils/jsonpatch): entries apply in order, a jsonPath
// (RFC 9535; the subset $ .a ..a [n] [?(@.a=='v')]) selects nodes, "path" is appended to every match, and a
// jsonPath that matches nothing fails the policy.
import { at, isObj, objs, type Json } from "./json-path.ts";

type Ptr = (string | number)[];

interface Node {
  v: unknown;
  p: Ptr;
}

function children(n: Node): Node[] {
  if (Array.isArray(n.v)) return n.v.map((v, i) => ({ v, p: [...n.p, i] }));
  if (isObj(n.v)) return Object.entries(n.v).map(([k, v]) => ({ v, p: [...n.p, k] }));
  return [];
}

function selfAndDescendants(n: Node): Node[] {
  return [n, ...children(n).flatMap(selfAndDescendants)];
}

function member(n: Node, key: string): Node[] {
  return isObj(n.v) && key in n.v ? [{ v: n.v[key], p: [...n.p, key] }] : [];
}

/** The JSON pointers (as segment lists) of the nodes `expr` selects in `doc`. */
export function selectJsonPath(doc: unknown, expr: string): Ptr[] {
  if (!expr.startsWith("$")) throw new Error(`jsonPath ${expr}: must start with $`);
  let nodes: Node[] = [{ v: doc, p: [] }];
  let rest = expr.slice(1);
  while (rest) {
    let m: RegExpExecArray | null;
    if ((m = /^\.\.(\w+)/.exec(rest))) {
      const key = m[1];
      nodes = nodes.flatMap(selfAndDescendants).flatMap((n) => member(n, key));
    } else if ((m = /^\.(\w+)/.exec(rest))) {
      const key = m[1];
      nodes = nodes.flatMap((n) => member(n, key));
    } else if ((m = /^\[(\d+)\]/.exec(rest))) {
      const i = Number(m[1]);
      nodes = nodes.flatMap((n) =>
        Array.isArray(n.v) && i < n.v.length ? [{ v: n.v[i], p: [...n.p, i] }] : [],
      );
    } else if ((m = /^\[\?\(?@\.(\w+)\s*==\s*(['"])(.*?)\2\)?\]/.exec(rest))) {
      const [, key, , want] = m;
      nodes = nodes.flatMap(children).filter((c) => isObj(c.v) && c.v[key] === want);
    } else throw new Error(`jsonPath ${expr}: cannot read ${JSON.stringify(rest)}`);
    rest = rest.slice(m[0].length);
  }
  return nodes.map((n) => n.p);
}

function pointer(path: string): string[] {
  return path
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function parentOf(doc: unknown, ptr: Ptr, where: string): [Json | unknown[], string | number] {
  let cur = doc;
  for (const k of ptr.slice(0, -1)) {
    cur = Array.isArray(cur) ? cur[Number(k)] : isObj(cur) ? cur[String(k)] : undefined;
    if (cur === undefined) throw new Error(`${where}: /${ptr.join("/")} has no parent`);
  }
  if (!isObj(cur) && !Array.isArray(cur)) throw new Error(`${where}: /${ptr.join("/")} has no parent`);
  return [cur, ptr[ptr.length - 1]];
}

function get(doc: unknown, ptr: Ptr, where: string): unknown {
  const [parent, key] = parentOf(doc, ptr, where);
  const v = Array.isArray(parent) ? parent[Number(key)] : parent[String(key)];
  if (v === undefined) throw new Error(`${where}: nothing at /${ptr.join("/")}`);
  return v;
}

function add(doc: unknown, ptr: Ptr, value: unknown, where: string): void {
  const [parent, key] = parentOf(doc, ptr, where);
  if (!Array.isArray(parent)) parent[String(key)] = value;
  else if (key === "-") parent.push(value);
  else if (Number(key) <= parent.length) parent.splice(Number(key), 0, value);
  else throw new Error(`${where}: index ${key} is past the end`);
}

function remove(doc: unknown, ptr: Ptr, where: string): void {
  get(doc, ptr, where);
  const [parent, key] = parentOf(doc, ptr, where);
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete parent[String(key)];
}

/** Applies the JSONPatch entries in order to `doc` (changed in place). Throws where Envoy Gateway would fail. */
export function applyJsonPatches(doc: unknown, patches: Json[]): void {
  patches.forEach((patch, i) => {
    const op = patch.operation as Json;
    const where = `jsonPatches[${i}] (${op.op})`;
    const path = pointer(String(op.path ?? ""));
    const targets = op.jsonPath !== undefined ? selectJsonPath(doc, String(op.jsonPath)) : [[]];
    if (targets.length === 0) throw new Error(`${where}: jsonPath ${op.jsonPath} matches nothing`);
    for (const base of targets) {
      const ptr = [...base, ...path];
      const clone = (v: unknown) => structuredClone(v);
      switch (op.op) {
        case "add":
          add(doc, ptr, clone(op.value), where);
          break;
        case "replace":
          remove(doc, ptr, where);
          add(doc, ptr, clone(op.value), where);
          break;
        case "remove":
          remove(doc, ptr, where);
          break;
        case "copy":
          add(doc, ptr, clone(get(doc, pointer(String(op.from)), where)), where);
          break;
        case "move": {
          const from = pointer(String(op.from));
          const v = get(doc, from, where);
          remove(doc, from, where);
          add(doc, ptr, v, where);
          break;
        }
        case "test":
          break;
        default:
          throw new Error(`${where}: unknown op`);
      }
    }
  });
}

const WASM = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";

/**
 * The plain-HTTP listener Envoy Gateway generates for Gateway listener `name` with the given EnvoyExtensionPolicies'
 * Wasm filters, in proto field names (as internal/xds/translator/jsonpatch.go marshals it before patching). Shape
 * from internal/xds/translator/testdata/out/xds-ir/wasm.listeners.yaml and wasm.go: a default_filter_chain whose
 * HttpConnectionManager uses rds, one disabled HTTP filter per Wasm entry named
 * "envoy.filters.http.wasm/envoyextensionpolicy/<ns>/<policy>/wasm/<i>" (vm_id the same IR name, the module
 * fetched from Envoy Gateway's server, the config as a StringValue, fail_open only when true), then the router.
 */
export function egListenerModel(name: string, extensionPolicies: Json[]): Json {
  const wasmFilters = extensionPolicies.flatMap((policy) =>
    objs(at(policy, "spec.wasm")).map((w, i) => {
      const ir = `envoyextensionpolicy/${at(policy, "metadata.namespace")}/${at(policy, "metadata.name")}/wasm/${i}`;
      return {
        name: `envoy.filters.http.wasm/${ir}`,
        disabled: true,
        typed_config: {
          "@type": WASM,
          config: {
            name: w.name ?? ir,
            ...(w.rootID !== undefined ? { root_id: w.rootID } : {}),
            vm_config: {
              vm_id: ir,
              runtime: "envoy.wasm.runtime.v8",
              code: {
                remote: {
                  http_uri: {
                    uri: "https://envoy-gateway:18002/module.wasm",
                    cluster: "wasm_cluster",
                    timeout: "10s",
                  },
                  sha256: "0".repeat(64),
                },
              },
            },
            configuration: {
              "@type": "type.googleapis.com/google.protobuf.StringValue",
              value: w.config === undefined ? "" : JSON.stringify(w.config),
            },
            ...(w.failOpen === true ? { fail_open: true } : {}),
          },
        },
      };
    }),
  );
  return {
    name,
    address: { socket_address: { address: "0.0.0.0", port_value: 10080 } },
    default_filter_chain: {
      name,
      filters: [
        {
          name: "envoy.filters.network.http_connection_manager",
          typed_config: {
            "@type":
              "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            stat_prefix: "http",
            rds: { config_source: { ads: {}, resource_api_version: "V3" }, route_config_name: name },
            http_filters: [
              ...wasmFilters,
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
