// Pure normalization and validation of raw Kubernetes objects (from the API or from YAML files) into the
// records the inventory works with. An object that breaks a rule the CRD schema states is rejected whole
// with the offending field named, so a bad resource can never half-apply.
import type { Criticality, EngineType, FailureMode } from "../snapshot/types.ts";
import { ENGINES } from "../snapshot/types.ts";
import { ANNOTATIONS, GROUP_LLMD, GROUP_V1, GROUP_X } from "./types.ts";
import type { InvalidResource, PoolSpec } from "./types.ts";

/** The loose shape of anything that came out of JSON or YAML. */
export interface RawObject {
  apiVersion?: unknown;
  kind?: unknown;
  metadata?: {
    name?: unknown;
    namespace?: unknown;
    creationTimestamp?: unknown;
    deletionTimestamp?: unknown;
    resourceVersion?: unknown;
    labels?: unknown;
    annotations?: unknown;
  };
  spec?: unknown;
  status?: unknown;
}

export interface Meta {
  namespace: string;
  name: string;
  /** ms since epoch; objects without one (file mode) sort as newest-possible ties by name. */
  createdMs: number;
}

export interface PoolRecord {
  kind: "InferencePool";
  meta: Meta;
  spec: PoolSpec;
}
export interface ModelRecord {
  kind: "InferenceModel";
  meta: Meta;
  poolName: string;
  modelName: string;
  criticality: Criticality;
  targets: { name: string; weight: number }[];
}
/** The API group an objective or rewrite came from: the same kind exists under both (select.ts decides). */
export type PolicyGroup = typeof GROUP_X | typeof GROUP_LLMD;

export interface ObjectiveRecord {
  kind: "InferenceObjective";
  group: PolicyGroup;
  meta: Meta;
  poolName: string;
  priority: number | null;
}
export interface RewriteRecord {
  kind: "InferenceModelRewrite";
  group: PolicyGroup;
  meta: Meta;
  poolName: string;
  rules: { matches: string[]; targets: { model: string; weight: number }[] }[];
}
export interface PodRecord {
  kind: "Pod";
  meta: Meta;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  podIP: string;
  /** PodReady condition True and no deletionTimestamp. */
  ready: boolean;
}
export interface ConfigMapRecord {
  kind: "ConfigMap";
  meta: Meta;
  data: Record<string, string>;
}
export type InventoryRecord =
  PoolRecord | ModelRecord | ObjectiveRecord | RewriteRecord | PodRecord | ConfigMapRecord;

export type NormalizeResult =
  | { ok: true; record: InventoryRecord }
  | { ok: false; invalid: InvalidResource }
  /** Not a kind/version the inventory reads. */
  | { ok: false; invalid?: undefined };

class FieldError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

function fail(field: string, reason: string, message: string): never {
  throw new FieldError(field, reason, message);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown, field: string, opts: { max?: number; optional?: boolean } = {}): string {
  if (v === undefined || v === null) {
    if (opts.optional) return "";
    fail(field, "missing", `${field} is required`);
  }
  if (typeof v !== "string" || v === "") fail(field, "invalid", `${field} must be a non-empty string`);
  if (opts.max !== undefined && v.length > opts.max)
    fail(field, "too_long", `${field} exceeds ${opts.max} characters`);
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v)) fail(field, "invalid", `${field} must be an integer`);
  if (v < min || v > max) fail(field, "out_of_range", `${field} must be within ${min}..${max}`);
  return v;
}

function stringMap(v: unknown, field: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (!isObject(v)) fail(field, "invalid", `${field} must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    // YAML turns `true`/`8000` into non-strings; Kubernetes would have rejected them, we accept their text.
    if (typeof val === "string" || typeof val === "number" || typeof val === "boolean") out[k] = String(val);
    else fail(`${field}.${k}`, "invalid", `${field}.${k} must be a string`);
  }
  return out;
}

function timestampMs(v: unknown): number {
  if (v instanceof Date) return v.getTime();
  if (typeof v === "string") {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  return Number.MAX_SAFE_INTEGER;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

function selector(v: unknown, field: string): Record<string, string> {
  if (v === undefined || v === null) fail(field, "missing_selector", `${field} is required`);
  const map = stringMap(v, field);
  const keys = Object.keys(map);
  if (keys.length === 0) fail(field, "missing_selector", `${field} must have at least one label`);
  if (keys.length > 64) fail(field, "too_many", `${field} allows at most 64 labels`);
  for (const k of keys) {
    if (k.length > 253 || !LABEL_KEY.test(k)) fail(`${field}.${k}`, "invalid_label", `bad label key "${k}"`);
    if (map[k]!.length > 63 || !LABEL_VALUE.test(map[k]!))
      fail(`${field}.${k}`, "invalid_label", `bad label value "${map[k]}"`);
  }
  return map;
}

function failureMode(v: unknown, field: string): FailureMode {
  if (v === undefined || v === null) return "FailClose";
  if (v !== "FailOpen" && v !== "FailClose")
    fail(field, "invalid_failure_mode", `${field} must be FailOpen or FailClose`);
  return v;
}

function meta(obj: RawObject): Meta {
  const m = obj.metadata;
  if (!isObject(m)) fail("metadata", "missing", "metadata is required");
  return {
    name: str(m.name, "metadata.name"),
    namespace: typeof m.namespace === "string" && m.namespace !== "" ? m.namespace : "default",
    createdMs: timestampMs(m.creationTimestamp),
  };
}

function poolAnnotations(obj: RawObject): PoolSpec["annotations"] {
  const a = stringMap(obj.metadata?.annotations, "metadata.annotations");
  const out: PoolSpec["annotations"] = { strictModels: a[ANNOTATIONS.strictModels] === "true" };
  const engine = a[ANNOTATIONS.engine];
  if (engine !== undefined) {
    if (!ENGINES.includes(engine as EngineType))
      fail(
        `metadata.annotations.${ANNOTATIONS.engine}`,
        "unknown_engine",
        `engine must be one of ${ENGINES.join(", ")}`,
      );
    out.engine = engine as EngineType;
  }
  const port = a[ANNOTATIONS.metricsPort];
  if (port !== undefined)
    out.metricsPort = int(Number(port), `metadata.annotations.${ANNOTATIONS.metricsPort}`, 1, 65535);
  const path = a[ANNOTATIONS.metricsPath];
  if (path !== undefined) {
    if (!path.startsWith("/"))
      fail(`metadata.annotations.${ANNOTATIONS.metricsPath}`, "invalid", "metrics path must start with /");
    out.metricsPath = path;
  }
  const config = a[ANNOTATIONS.config];
  if (config !== undefined) {
    const [configMap, key, extra] = config.split("/");
    if (!configMap || extra !== undefined || key === "")
      fail(`metadata.annotations.${ANNOTATIONS.config}`, "invalid", 'must be "CONFIGMAP" or "CONFIGMAP/KEY"');
    out.config = key === undefined ? { configMap } : { configMap, key };
  }
  const nameFilter = a[ANNOTATIONS.metricsNameFilter];
  if (nameFilter !== undefined) {
    if (nameFilter !== "true" && nameFilter !== "false")
      fail(`metadata.annotations.${ANNOTATIONS.metricsNameFilter}`, "invalid", 'must be "true" or "false"');
    out.metricsNameFilter = nameFilter === "true";
  }
  return out;
}

function poolV1(obj: RawObject, m: Meta): PoolRecord {
  const spec = obj.spec;
  if (!isObject(spec)) fail("spec", "missing", "spec is required");
  if (!isObject(spec.selector)) fail("spec.selector", "missing_selector", "spec.selector is required");
  const sel = selector(spec.selector.matchLabels, "spec.selector.matchLabels");
  const ports = spec.targetPorts;
  if (!Array.isArray(ports) || ports.length === 0)
    fail("spec.targetPorts", "bad_ports", "spec.targetPorts needs 1..8 entries");
  if (ports.length > 8) fail("spec.targetPorts", "bad_ports", "spec.targetPorts allows at most 8 entries");
  const targetPorts = ports.map((p: unknown, i) => {
    const field = `spec.targetPorts[${i}].number`;
    if (!isObject(p)) fail(field, "bad_ports", `${field} is required`);
    try {
      return int(p.number, field, 1, 65535);
    } catch (e) {
      throw e instanceof FieldError ? new FieldError(field, "bad_ports", e.message) : e;
    }
  });
  if (new Set(targetPorts).size !== targetPorts.length)
    fail("spec.targetPorts", "bad_ports", "port numbers must be unique");
  const ref = spec.endpointPickerRef;
  const mode = isObject(ref)
    ? failureMode(ref.failureMode, "spec.endpointPickerRef.failureMode")
    : "FailClose";
  // GIE v1.6's enum; the API server enforces it, file mode needs the same check.
  const app = spec.appProtocol;
  if (app !== undefined && app !== "http" && app !== "kubernetes.io/h2c")
    fail("spec.appProtocol", "invalid", 'spec.appProtocol must be "http" or "kubernetes.io/h2c"');
  return {
    kind: "InferencePool",
    meta: m,
    spec: {
      namespace: m.namespace,
      name: m.name,
      apiGroup: GROUP_V1,
      apiVersion: "v1",
      selector: sel,
      targetPorts,
      failureMode: mode,
      annotations: poolAnnotations(obj),
      ...(app === "kubernetes.io/h2c" ? { appProtocol: app } : {}),
    },
  };
}

function poolV1alpha2(obj: RawObject, m: Meta): PoolRecord {
  const spec = obj.spec;
  if (!isObject(spec)) fail("spec", "missing", "spec is required");
  const sel = selector(spec.selector, "spec.selector");
  let port: number;
  try {
    port = int(spec.targetPortNumber, "spec.targetPortNumber", 1, 65535);
  } catch (e) {
    throw e instanceof FieldError ? new FieldError(e.field, "bad_ports", e.message) : e;
  }
  const ref = spec.extensionRef;
  const mode = isObject(ref) ? failureMode(ref.failureMode, "spec.extensionRef.failureMode") : "FailClose";
  return {
    kind: "InferencePool",
    meta: m,
    spec: {
      namespace: m.namespace,
      name: m.name,
      apiGroup: GROUP_X,
      apiVersion: "v1alpha2",
      selector: sel,
      targetPorts: [port],
      failureMode: mode,
      annotations: poolAnnotations(obj),
    },
  };
}

function poolRefName(spec: Record<string, unknown>): string {
  if (!isObject(spec.poolRef)) fail("spec.poolRef", "missing_pool_ref", "spec.poolRef is required");
  return str(spec.poolRef.name, "spec.poolRef.name", { max: 253 });
}

const CRITICALITIES: readonly string[] = ["Critical", "Standard", "Sheddable"];

/** Weights must be set on every entry or on none (upstream's CEL rule). */
function allOrNoneWeights(list: Record<string, unknown>[], field: string): boolean {
  const set = list.filter((t) => t.weight !== undefined && t.weight !== null).length;
  if (set !== 0 && set !== list.length)
    fail(field, "partial_weights", `${field}: weights must be set on all entries or on none`);
  return set > 0;
}

function model(obj: RawObject, m: Meta): ModelRecord {
  const spec = obj.spec;
  if (!isObject(spec)) fail("spec", "missing", "spec is required");
  const modelName = str(spec.modelName, "spec.modelName", { max: 256 });
  let criticality: Criticality = "Unset";
  if (spec.criticality !== undefined && spec.criticality !== null) {
    if (typeof spec.criticality !== "string" || !CRITICALITIES.includes(spec.criticality))
      fail(
        "spec.criticality",
        "unknown_criticality",
        "spec.criticality must be Critical, Standard or Sheddable",
      );
    criticality = spec.criticality as Criticality;
  }
  const raw = spec.targetModels ?? [];
  if (!Array.isArray(raw)) fail("spec.targetModels", "invalid", "spec.targetModels must be a list");
  if (raw.length > 10) fail("spec.targetModels", "too_many", "spec.targetModels allows at most 10 entries");
  raw.forEach((t, i) => isObject(t) || fail(`spec.targetModels[${i}]`, "invalid", "must be an object"));
  const list = raw as Record<string, unknown>[];
  const weighted = allOrNoneWeights(list, "spec.targetModels");
  const targets = list.map((t, i) => ({
    name: str(t.name, `spec.targetModels[${i}].name`, { max: 253 }),
    weight: weighted ? int(t.weight, `spec.targetModels[${i}].weight`, 1, 1_000_000) : 0,
  }));
  return { kind: "InferenceModel", meta: m, poolName: poolRefName(spec), modelName, criticality, targets };
}

function groupOf(obj: RawObject): PolicyGroup {
  return String(obj.apiVersion).startsWith(`${GROUP_LLMD}/`) ? GROUP_LLMD : GROUP_X;
}

function objective(obj: RawObject, m: Meta): ObjectiveRecord {
  const spec = obj.spec;
  if (!isObject(spec)) fail("spec", "missing", "spec is required");
  const p = spec.priority;
  const priority = p === undefined || p === null ? null : int(p, "spec.priority", -(2 ** 31), 2 ** 31 - 1);
  return { kind: "InferenceObjective", group: groupOf(obj), meta: m, poolName: poolRefName(spec), priority };
}

function rewrite(obj: RawObject, m: Meta): RewriteRecord {
  const spec = obj.spec;
  if (!isObject(spec)) fail("spec", "missing", "spec is required");
  const rawRules = spec.rules ?? [];
  if (!Array.isArray(rawRules)) fail("spec.rules", "invalid", "spec.rules must be a list");
  const rules = rawRules.map((r: unknown, i) => {
    const f = `spec.rules[${i}]`;
    if (!isObject(r)) fail(f, "invalid", `${f} must be an object`);
    const matches = r.matches ?? [];
    if (!Array.isArray(matches) || matches.length > 16)
      fail(`${f}.matches`, "invalid", "matches must be a list of ≤ 16");
    const names = matches.map((mt: unknown, j) => {
      const mf = `${f}.matches[${j}].model`;
      if (!isObject(mt) || !isObject(mt.model)) fail(mf, "missing", `${mf} is required`);
      if (mt.model.type !== undefined && mt.model.type !== "Exact")
        fail(`${mf}.type`, "unknown_match_type", "only Exact");
      return str(mt.model.value, `${mf}.value`, { max: 256 });
    });
    const targets = r.targets;
    if (!Array.isArray(targets) || targets.length === 0 || targets.length > 16)
      fail(`${f}.targets`, "invalid", `${f}.targets needs 1..16 entries`);
    targets.forEach((t, j) => isObject(t) || fail(`${f}.targets[${j}]`, "invalid", "must be an object"));
    const list = targets as Record<string, unknown>[];
    const weighted = allOrNoneWeights(list, `${f}.targets`);
    return {
      matches: names,
      targets: list.map((t, j) => ({
        model: str(t.modelRewrite, `${f}.targets[${j}].modelRewrite`, { max: 256 }),
        weight: weighted ? int(t.weight, `${f}.targets[${j}].weight`, 1, 1_000_000) : 1,
      })),
    };
  });
  return { kind: "InferenceModelRewrite", group: groupOf(obj), meta: m, poolName: poolRefName(spec), rules };
}

function pod(obj: RawObject, m: Meta): PodRecord {
  const status = isObject(obj.status) ? obj.status : {};
  const conditions = Array.isArray(status.conditions) ? status.conditions : [];
  const readyCond = conditions.some((c: unknown) => isObject(c) && c.type === "Ready" && c.status === "True");
  const deleting = obj.metadata?.deletionTimestamp !== undefined && obj.metadata?.deletionTimestamp !== null;
  return {
    kind: "Pod",
    meta: m,
    labels: stringMap(obj.metadata?.labels, "metadata.labels"),
    annotations: stringMap(obj.metadata?.annotations, "metadata.annotations"),
    podIP: typeof status.podIP === "string" ? status.podIP : "",
    ready: readyCond && !deleting,
  };
}

function configMap(obj: RawObject & { data?: unknown }, m: Meta): ConfigMapRecord {
  return { kind: "ConfigMap", meta: m, data: stringMap(obj.data, "data") };
}

/** "group/version" and kind → the normalizer for it. */
const NORMALIZERS: Record<string, (obj: RawObject, m: Meta) => InventoryRecord> = {
  [`${GROUP_V1}/v1/InferencePool`]: poolV1,
  [`${GROUP_X}/v1alpha2/InferencePool`]: poolV1alpha2,
  [`${GROUP_X}/v1alpha2/InferenceModel`]: model,
  [`${GROUP_X}/v1alpha2/InferenceObjective`]: objective,
  [`${GROUP_X}/v1alpha2/InferenceModelRewrite`]: rewrite,
  // llm-d Router v0.10.0 ships the same v1alpha2 schemas under its own group (config/crd/bases/llm-d.ai_*.yaml).
  [`${GROUP_LLMD}/v1alpha2/InferenceObjective`]: objective,
  [`${GROUP_LLMD}/v1alpha2/InferenceModelRewrite`]: rewrite,
  ["v1/Pod"]: pod,
  ["v1/ConfigMap"]: configMap,
};

export function isKnownKind(apiVersion: string, kind: string): boolean {
  return `${apiVersion}/${kind}` in NORMALIZERS;
}

export function normalize(obj: RawObject): NormalizeResult {
  const key = `${String(obj.apiVersion)}/${String(obj.kind)}`;
  const fn = NORMALIZERS[key];
  if (fn === undefined) return { ok: false };
  const kind = String(obj.kind);
  const name = typeof obj.metadata?.name === "string" ? obj.metadata.name : "?";
  const namespace = typeof obj.metadata?.namespace === "string" ? obj.metadata.namespace : "default";
  try {
    return { ok: true, record: fn(obj, meta(obj)) };
  } catch (e) {
    if (!(e instanceof FieldError)) throw e;
    return {
      ok: false,
      invalid: { kind, namespace, name, field: e.field, reason: e.reason, message: e.message },
    };
  }
}
