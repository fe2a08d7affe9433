// Validates Kubernetes objects against pinned upstream schemas (test/fixtures/upstream/k8s): each custom resource
// against the openAPIV3Schema of its CRD version, each built-in object against the Kubernetes OpenAPI definitions.
//
// What the API server does (with kubectl's default --validate=strict) and how it is modelled here:
// - Unknown fields are errors: every object node that lists properties rejects others, unless the node has
//   x-kubernetes-preserve-unknown-fields: true or additionalProperties. A CRD object node with neither properties
//   nor additionalProperties would prune everything, so it accepts no field at all.
// - metadata is ObjectMeta (its OpenAPI definition) everywhere, CRs included, plus the apimachinery name and
//   label rules (k8s-schema-meta.ts).
// - null in a field that is not nullable is dropped before validation (the API server prunes it), so it counts
//   as absent; `default` values are applied before validation, as the API server defaults before it validates.
// - x-kubernetes-int-or-string: integer or string. Quantity: string or number.
// - x-kubernetes-list-type set/map: items resp. map keys must be unique (CRDs only; built-in types leave this to
//   their Go validation, which is not modelled).
// Not modelled, on purpose: x-kubernetes-validations (CEL rules: counted in celRulesSkipped, never evaluated),
// `format` (date-time, int32, ...), Go validation of built-in types beyond their OpenAPI (e.g. container port
// ranges), admission webhooks. Patterns are evaluated as JavaScript regular expressions where the API server uses
// Go's RE2 (k8s-schema-rules.test.ts checks that every pinned pattern compiles as one).
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { parseAllDocuments } from "yaml";
import { repoRoot } from "./yaml-files.ts";
import { checkMetadata } from "./k8s-schema-meta.ts";

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

export const FIXTURES = join(repoRoot, "test/fixtures/upstream/k8s");
const CORE = "k8s-core";
const META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/** Keywords OpenAPI v3 schemas and JSON Schema draft-07 share, passed to ajv unchanged. */
const SHARED = [
  "enum",
  "pattern",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "multipleOf",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minProperties",
  "maxProperties",
  "required",
  "default",
];

/** Built-in definitions whose OpenAPI says less (or other) than what the API server decodes. */
const CORE_OVERRIDES: Record<string, Json> = {
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": { type: ["integer", "string"] },
  // Quantity decodes from JSON numbers too; strings must parse (apimachinery pkg/api/resource/quantity.go
  // parseQuantityString: sign, digits, optional fraction, then a binary-SI, decimal-SI or exponent suffix).
  "io.k8s.apimachinery.pkg.api.resource.Quantity": {
    type: ["string", "number"],
    pattern: "^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$",
  },
  "io.k8s.apimachinery.pkg.apis.meta.v1.Time": { type: "string" },
  "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": { type: "string" },
};

export interface SchemaEntry {
  /** "group/version" (core group: "v1") and kind. */
  apiVersion: string;
  kind: string;
  source: string;
  served: boolean;
  /** The schema as upstream wrote it (for null pruning). */
  raw: Json;
  /** The schema as ajv reads it. */
  schema: Json;
  core: boolean;
}

function coreNode(s: Json): Json {
  if (typeof s.$ref === "string") return { $ref: s.$ref };
  const out: Json = {};
  for (const k of SHARED) if (k in s) out[k] = s[k];
  if (typeof s.type === "string") out.type = s.type;
  if (isObj(s.properties))
    out.properties = Object.fromEntries(
      Object.entries(s.properties).map(([k, v]) => [k, coreNode(v as Json)]),
    );
  if (isObj(s.items)) out.items = coreNode(s.items);
  if (isObj(s.additionalProperties)) out.additionalProperties = coreNode(s.additionalProperties);
  // Strict decoding rejects fields the Go type does not have; objects without properties are opaque.
  else if (isObj(s.properties)) out.additionalProperties = false;
  return out;
}

/** Converts one CRD schema node; `junctor` = inside allOf/anyOf/oneOf/not, where nodes only add validations. */
function crdNode(s: Json, ctx: { cel: number }, opts: { root?: boolean; junctor?: boolean } = {}): Json {
  const out: Json = {};
  for (const k of SHARED) if (k in s) out[k] = s[k];
  // OpenAPI v3.0 spells exclusive bounds as booleans next to minimum/maximum.
  if (s.exclusiveMinimum === true && "minimum" in s) {
    out.exclusiveMinimum = s.minimum;
    delete out.minimum;
  }
  if (s.exclusiveMaximum === true && "maximum" in s) {
    out.exclusiveMaximum = s.maximum;
    delete out.maximum;
  }
  const types: string[] = typeof s.type === "string" ? [s.type] : [];
  if (types.length === 0 && s["x-kubernetes-int-or-string"] === true) types.push("integer", "string");
  if (types.length > 0 && s.nullable === true) types.push("null");
  if (types.length > 0) out.type = types.length === 1 ? types[0] : types;

  const props: Json = {};
  if (isObj(s.properties))
    for (const [k, v] of Object.entries(s.properties))
      props[k] = crdNode(v as Json, ctx, opts.junctor ? { junctor: true } : {});
  if (!opts.junctor && (opts.root || s["x-kubernetes-embedded-resource"] === true)) {
    // The API server always keeps apiVersion, kind and metadata at these nodes, declared or not.
    props.metadata = { $ref: `${CORE}#/definitions/${META}` };
    props.apiVersion ??= { type: "string" };
    props.kind ??= { type: "string" };
  }
  if (Object.keys(props).length > 0) out.properties = props;
  if (isObj(s.items)) out.items = crdNode(s.items, ctx, opts.junctor ? { junctor: true } : {});
  if (isObj(s.additionalProperties))
    out.additionalProperties = crdNode(s.additionalProperties, ctx, opts.junctor ? { junctor: true } : {});
  else if (typeof s.additionalProperties === "boolean") out.additionalProperties = s.additionalProperties;
  else if (
    !opts.junctor &&
    s["x-kubernetes-preserve-unknown-fields"] !== true &&
    (s.type === "object" || isObj(s.properties))
  )
    out.additionalProperties = false;
  for (const j of ["allOf", "anyOf", "oneOf"]) {
    if (!Array.isArray(s[j])) continue;
    // int-or-string's anyOf [{type: integer}, {type: string}] only restates the type set above.
    const list = s[j] as Json[];
    if (s["x-kubernetes-int-or-string"] === true && list.every((x) => Object.keys(x).join() === "type"))
      continue;
    out[j] = list.map((x) => crdNode(x, ctx, { junctor: true }));
  }
  if (isObj(s.not)) out.not = crdNode(s.not, ctx, { junctor: true });
  if (s["x-kubernetes-list-type"] === "set") out.uniqueItems = true;
  if (s["x-kubernetes-list-type"] === "map") out.k8sListMapKeys = s["x-kubernetes-list-map-keys"] ?? [];
  if (Array.isArray(s["x-kubernetes-validations"])) ctx.cel += s["x-kubernetes-validations"].length;
  return out;
}

/** Drops null members whose schema is not nullable, as the API server prunes them before validating. */
export function pruneNulls(
  v: unknown,
  schema: Json | undefined,
  resolve: (s: unknown) => Json | undefined,
): unknown {
  const s = resolve(schema);
  if (Array.isArray(v)) return v.map((x) => pruneNulls(x, resolve(s?.items), resolve));
  if (!isObj(v)) return v;
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) {
    const props = s && isObj(s.properties) ? s.properties : undefined;
    const child = resolve(props && k in props ? props[k] : s?.additionalProperties);
    if (x === null && child?.nullable !== true) continue;
    out[k] = pruneNulls(x, child, resolve);
  }
  return out;
}

function listMapKeyword(ajv: Ajv): void {
  ajv.addKeyword({
    keyword: "k8sListMapKeys",
    type: "array",
    schemaType: "array",
    errors: true,
    validate: function check(keys: string[], data: unknown[]) {
      const seen = new Set<string>();
      for (const item of data) {
        const id = JSON.stringify(keys.map((k) => (isObj(item) ? item[k] : undefined)));
        if (seen.has(id)) {
          (check as unknown as { errors: Partial<ErrorObject>[] }).errors = [
            {
              keyword: "k8sListMapKeys",
              message: `duplicate entry for key ${keys.join(",")}=${id}`,
              params: {},
            },
          ];
          return false;
        }
        seen.add(id);
      }
      return true;
    },
  });
}

function readDocs(file: string): Json[] {
  const text = readFileSync(file, "utf8");
  if (file.endsWith(".json")) return [JSON.parse(text) as Json];
  return parseAllDocuments(text)
    .map((d) => d.toJS() as unknown)
    .filter(isObj);
}

function walkFiles(dir: string): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const full = join(dir, n);
      return statSync(full).isDirectory() ? walkFiles(full) : /\.(ya?ml|json)$/.test(n) ? [full] : [];
    });
}

/** The pinned schemas, keyed "apiVersion kind"; compiled on first use. */
export class SchemaRegistry {
  readonly entries = new Map<string, SchemaEntry>();
  /** CEL rules (x-kubernetes-validations) in the pinned CRDs; none of them is evaluated. */
  celRulesSkipped = 0;
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly coreDefs: Record<string, Json>;
  private readonly coreConverted: Record<string, Json>;

  /** `extraCrds`: CustomResourceDefinitions to add to the pinned ones (the checker's own tests use it). */
  constructor(dir = FIXTURES, extraCrds: Json[] = []) {
    this.ajv = new Ajv({
      allErrors: true,
      strict: false,
      useDefaults: true,
      validateFormats: false,
      validateSchema: false,
      // Compiling the large schemas dominates the run time; unoptimized code compiles several times faster.
      code: { optimize: false },
    });
    listMapKeyword(this.ajv);
    const defsFile = join(dir, "kubernetes/definitions.json");
    this.coreDefs = (
      JSON.parse(readFileSync(defsFile, "utf8")) as { definitions: Record<string, Json> }
    ).definitions;
    this.coreConverted = Object.fromEntries(
      Object.entries(this.coreDefs).map(([n, d]) => [n, CORE_OVERRIDES[n] ?? coreNode(d)]),
    );
    this.ajv.addSchema({ $id: CORE, definitions: this.coreConverted });
    for (const [name, def] of Object.entries(this.coreDefs)) {
      for (const gvk of (def["x-kubernetes-group-version-kind"] as Json[] | undefined) ?? []) {
        const apiVersion = gvk.group ? `${String(gvk.group)}/${String(gvk.version)}` : String(gvk.version);
        this.add({
          apiVersion,
          kind: String(gvk.kind),
          source: `kubernetes/definitions.json ${name}`,
          served: true,
          raw: { $ref: `#/definitions/${name}` },
          schema: { $ref: `${CORE}#/definitions/${name}` },
          core: true,
        });
      }
    }
    const crds = walkFiles(dir).flatMap((file) =>
      readDocs(file).map((doc) => ({ file: file.slice(dir.length + 1), doc })),
    );
    crds.push(...extraCrds.map((doc) => ({ file: "(extra)", doc })));
    for (const { file, doc: crd } of crds) {
      if (crd.kind === "CustomResourceDefinition") {
        const spec = crd.spec as Json;
        const names = spec.names as Json;
        for (const v of spec.versions as Json[]) {
          const raw = (v.schema as Json | undefined)?.openAPIV3Schema;
          if (!isObj(raw)) continue;
          const ctx = { cel: 0 };
          const schema = crdNode(raw, ctx, { root: true });
          this.celRulesSkipped += ctx.cel;
          this.add({
            apiVersion: `${String(spec.group)}/${String(v.name)}`,
            kind: String(names.kind),
            source: file,
            served: v.served === true,
            raw,
            schema,
            core: false,
          });
        }
      }
    }
  }

  private add(e: SchemaEntry): void {
    const key = `${e.apiVersion} ${e.kind}`;
    const old = this.entries.get(key);
    if (old) throw new Error(`${key} is defined twice: ${old.source} and ${e.source}`);
    this.entries.set(key, e);
  }

  private resolver(core: boolean): (s: unknown) => Json | undefined {
    return (s) => {
      let cur = s;
      while (core && isObj(cur) && typeof cur.$ref === "string")
        cur = this.coreDefs[cur.$ref.replace(/^#\/definitions\//, "")];
      return isObj(cur) ? cur : undefined;
    };
  }

  /**
   * Paths of the object nodes in `obj` whose schema rejects unknown fields (as key lists, array indexes as
   * strings), in document order. The self-tests misspell a field in each to prove the check bites there.
   */
  strictPaths(obj: Json): string[][] {
    const e = this.entries.get(`${String(obj.apiVersion)} ${String(obj.kind)}`);
    if (!e) return [];
    const deref = (s: unknown): Json | undefined => {
      let cur = s;
      while (isObj(cur) && typeof cur.$ref === "string")
        cur = this.coreConverted[cur.$ref.replace(/^.*#\/definitions\//, "")];
      return isObj(cur) ? cur : undefined;
    };
    const out: string[][] = [];
    const walk = (v: unknown, schema: unknown, path: string[]) => {
      const s = deref(schema);
      if (!s) return;
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, s.items, [...path, String(i)]));
      if (!isObj(v)) return;
      if (s.additionalProperties === false && Object.keys(v).length > 0) out.push(path);
      const props = isObj(s.properties) ? s.properties : {};
      for (const [k, x] of Object.entries(v))
        walk(x, k in props ? props[k] : s.additionalProperties, [...path, k]);
    };
    walk(obj, e.schema, []);
    return out;
  }

  /** Problems as "field.path: message"; empty when the object is valid. */
  validate(obj: Json): string[] {
    const key = `${String(obj.apiVersion)} ${String(obj.kind)}`;
    const e = this.entries.get(key);
    if (!e)
      return [
        `no pinned upstream schema for ${key}: pin its CRD (or OpenAPI definition) under ` +
          `test/fixtures/upstream/k8s with test/deploy/k8s-schema-pin.ts`,
      ];
    if (!e.served) return [`${key} is not served by its CRD (${e.source})`];
    let fn = this.compiled.get(key);
    if (!fn) {
      fn = this.ajv.compile(e.schema);
      this.compiled.set(key, fn);
    }
    const value = pruneNulls(obj, e.raw, this.resolver(e.core)) as Json;
    const problems = fn(value) ? [] : formatErrors(fn.errors ?? [], value);
    problems.push(...checkMetadata(String(obj.kind), value.metadata));
    return [...new Set(problems)];
  }
}

/** "/spec/ports/0/port" → "spec.ports[0].port". */
export function fieldPath(pointer: string, child?: string): string {
  const parts = pointer
    .split("/")
    .slice(1)
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"));
  if (child !== undefined) parts.push(child);
  return (
    parts.reduce((acc, p) => (/^\d+$/.test(p) ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), "") || "(root)"
  );
}

function valueAt(root: unknown, pointer: string): unknown {
  let cur = root;
  for (const p of pointer.split("/").slice(1)) {
    if (Array.isArray(cur)) cur = cur[Number(p)];
    else if (isObj(cur)) cur = cur[p.replaceAll("~1", "/").replaceAll("~0", "~")];
    else return undefined;
  }
  return cur;
}

function formatErrors(errors: ErrorObject[], root: unknown): string[] {
  return errors.map((e) => {
    const p = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case "additionalProperties":
        return `${fieldPath(e.instancePath, String(p.additionalProperty))}: unknown field`;
      case "required":
        return `${fieldPath(e.instancePath, String(p.missingProperty))}: required field missing`;
      case "enum":
        return `${fieldPath(e.instancePath)}: ${JSON.stringify(valueAt(root, e.instancePath))} is not one of ${JSON.stringify(p.allowedValues)}`;
      case "type":
        return `${fieldPath(e.instancePath)}: must be ${String(p.type)}, got ${JSON.stringify(valueAt(root, e.instancePath))}`;
      default:
        return `${fieldPath(e.instancePath)}: ${e.message ?? e.keyword}`;
    }
  });
}
