// Reads an EndpointPickerConfig (GIE v1.5 `inference.networking.x-k8s.io/v1alpha1` or llm-d Router
// `llm-d.ai/v1alpha1`) and validates it against the plugin catalogue, producing the PLUGINS section the
// snapshot carries, and with the flowControl feature gate the FLOW_CONTROL section (flow-control.ts). Any
// problem refuses the whole file with one message naming the file, the plugin and the field; upstream's
// loader decodes strictly too (unknown fields are errors), so files it accepts and we implement load
// unchanged. Accepted but unused (docs/deploy.md, "Scheduling config"): dataLayer and the data-layer/parser
// plugin types (SUBSTITUTED_TYPES), feature gates other than flowControl, parser naming openai-parser.
// Refused because silently ignoring them would change behaviour: flowControl settings without the gate,
// flow-control policies we do not implement, other parsers, llm-d's fallbackProfile.
import { createHash } from "node:crypto";
import { parseAllDocuments } from "yaml";
import { DEFAULT_SCHEDULER } from "../snapshot/types.ts";
import type {
  FlowControlSection,
  PluginParamValue,
  SchedulingPlugin,
  SchedulingProfile,
  SchedulingSection,
} from "../snapshot/types.ts";
import { CATALOGUE, UPSTREAM_UNSUPPORTED } from "./catalogue.ts";
import type { ParamSpec, PluginSpec } from "./catalogue-types.ts";
import { parseDurationMs } from "./duration.ts";
import { FLOW_POLICY_TYPES, flowControlSettings, readFlowControl } from "./flow-control.ts";

export const API_VERSIONS: readonly string[] = [
  "inference.networking.x-k8s.io/v1alpha1",
  "llm-d.ai/v1alpha1",
];

/**
 * Upstream plugin types whose job this project does elsewhere, accepted and left out of the snapshot:
 * the sidecar's collector is the data layer, and the filter parses OpenAI request bodies itself.
 */
export const SUBSTITUTED_TYPES: Readonly<Record<string, string>> = {
  "metrics-data-source": "the sidecar scrapes model-server metrics itself",
  "core-metrics-extractor": "the sidecar scrapes model-server metrics itself",
  "openai-parser": "the filter parses OpenAI request bodies itself",
};

/** Stable reasons, used as the rejection metric's label. */
export type ConfigRejectReason =
  | "parse_error"
  | "bad_document"
  | "unknown_field"
  | "unknown_type"
  | "unsupported_type"
  | "unknown_parameter"
  | "bad_parameter"
  | "bad_weight"
  | "unknown_plugin_ref"
  | "duplicate_name"
  | "bad_profile"
  | "bad_handler"
  | "bad_detector"
  | "unsupported_feature"
  | "bad_flow_control"
  | "not_found";

export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(
    readonly file: string,
    readonly plugin: string | undefined,
    readonly field: string,
    readonly reason: ConfigRejectReason,
    detail: string,
  ) {
    super(`${file}: ${plugin === undefined ? "" : `plugin "${plugin}", `}field ${field}: ${detail}`);
  }
}

export interface Thresholds {
  queueThreshold: number;
  /** 0..1 */
  kvThreshold: number;
  metricsStalenessMs: number;
}

export interface LoadedConfig {
  /** Where it came from ("config/scheduling/default.yaml", "configmap inference/epp-config key config.yaml"). */
  source: string;
  /** The SCHEDULER record's profile name: the file's base name or the ConfigMap's name. */
  displayName: string;
  /** The PLUGINS section. */
  section: SchedulingSection;
  /** The FLOW_CONTROL section: present only when featureGates turns flow control on. */
  flowControl?: FlowControlSection;
  /** The saturation detector's limits, also written into the SCHEDULER record for older readers. */
  thresholds: Thresholds;
  /** First 16 hex digits of the SHA-256 of the text. */
  hash: string;
  /** Fields and plugins accepted but not used, one line each. */
  notes: string[];
}

export interface LoadOptions {
  /** Where the text came from, named in every message. */
  source: string;
  displayName: string;
  catalogue?: readonly PluginSpec[];
  unsupported?: readonly string[];
}

export function configHash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const TOP_FIELDS = new Set([
  "apiVersion",
  "kind",
  "featureGates",
  "plugins",
  "schedulingProfiles",
  "saturationDetector",
  "dataLayer",
  "flowControl",
  "parser",
]);
const SCHEDULING_KINDS = new Set(["scorer", "filter", "picker"]);

/** Loads one config text; throws ConfigError. */
export function loadConfig(text: string, opts: LoadOptions): LoadedConfig {
  const catalogue = opts.catalogue ?? CATALOGUE;
  const unsupported = opts.unsupported ?? UPSTREAM_UNSUPPORTED;
  const file = opts.source;
  const err = (plugin: string | undefined, field: string, reason: ConfigRejectReason, detail: string) =>
    new ConfigError(file, plugin, field, reason, detail);
  const byType = new Map(catalogue.map((p) => [p.type, p]));
  const supported = () => catalogue.map((p) => p.type).join(", ");
  const notes: string[] = [];

  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw err(undefined, "(document)", "bad_document", "not a YAML document");
  const real = docs.filter((d) => d.contents !== null || d.errors.length > 0);
  for (const d of real)
    if (d.errors.length > 0)
      throw err(undefined, "(document)", "parse_error", d.errors[0]!.message.split("\n")[0]!);
  if (real.length !== 1)
    throw err(undefined, "(document)", "bad_document", `expected one YAML document, found ${real.length}`);
  const root: unknown = real[0]!.toJS();
  if (!isObj(root)) throw err(undefined, "(document)", "bad_document", "not a mapping");

  for (const k of Object.keys(root))
    if (!TOP_FIELDS.has(k))
      throw err(undefined, k, "unknown_field", `unknown field (known: ${[...TOP_FIELDS].join(", ")})`);
  if (typeof root.apiVersion !== "string" || !API_VERSIONS.includes(root.apiVersion))
    throw err(undefined, "apiVersion", "bad_document", `expected one of ${API_VERSIONS.join(", ")}`);
  if (root.kind !== "EndpointPickerConfig")
    throw err(undefined, "kind", "bad_document", "expected EndpointPickerConfig");

  // featureGates: "flowControl" turns flow control on (llm-d also writes "flowControl=true" / "=false").
  let flowGate = false;
  if (root.featureGates !== undefined && root.featureGates !== null) {
    if (!Array.isArray(root.featureGates) || !root.featureGates.every((g) => typeof g === "string"))
      throw err(undefined, "featureGates", "bad_document", "expected a list of strings");
    for (const g of root.featureGates as string[]) {
      const [gate, value] = g.split("=", 2);
      if (gate !== "flowControl") {
        notes.push(`featureGates: ${g} ignored`);
        continue;
      }
      if (value !== undefined && value !== "true" && value !== "false")
        throw err(undefined, "featureGates", "bad_document", `${g}: expected flowControl, =true or =false`);
      flowGate = value !== "false";
    }
  }
  // A flowControl block the gate leaves off would be ignored upstream; here it is an error, so nobody
  // believes requests are queued when they are not. llm-d's flowControl.saturationDetector is read either way.
  if (root.flowControl !== undefined && root.flowControl !== null && !isObj(root.flowControl))
    throw err(undefined, "flowControl", "bad_document", "expected a mapping");
  const flowSettings = flowControlSettings(root.flowControl);
  if (!flowGate && flowSettings.length > 0)
    throw err(
      undefined,
      `flowControl.${flowSettings[0]}`,
      "bad_flow_control",
      "flowControl settings apply only with featureGates: [flowControl]; add the gate or remove them",
    );
  if (root.dataLayer !== undefined) notes.push("dataLayer ignored: the sidecar scrapes metrics itself");

  // plugins[]
  if (!Array.isArray(root.plugins)) throw err(undefined, "plugins", "bad_document", "expected a list");
  const defined = new Map<string, { spec?: PluginSpec; index: number; type: string }>();
  const plugins: SchedulingPlugin[] = [];
  root.plugins.forEach((raw: unknown, i: number) => {
    const at = `plugins[${i}]`;
    if (!isObj(raw)) throw err(undefined, at, "bad_document", "expected a mapping");
    for (const k of Object.keys(raw))
      if (k !== "name" && k !== "type" && k !== "parameters")
        throw err(undefined, `${at}.${k}`, "unknown_field", "unknown field (known: name, type, parameters)");
    if (typeof raw.type !== "string" || raw.type === "")
      throw err(undefined, `${at}.type`, "bad_document", "missing a type");
    const type = raw.type;
    if (raw.name !== undefined && raw.name !== null && (typeof raw.name !== "string" || raw.name === ""))
      throw err(undefined, `${at}.name`, "bad_document", "expected a non-empty string");
    const name = typeof raw.name === "string" ? raw.name : type;
    if (defined.has(name)) throw err(name, `${at}.name`, "duplicate_name", "duplicate plugin name");
    const spec = byType.get(type);
    if (spec === undefined) {
      // Flow-control policies are named by the flowControl block, not by profiles: kept by name only.
      if (FLOW_POLICY_TYPES.has(type)) {
        if (!flowGate)
          throw err(name, `${at}.type`, "bad_flow_control", `${type} needs featureGates: [flowControl]`);
        if (raw.parameters !== undefined && raw.parameters !== null)
          throw err(name, `${at}.parameters`, "unknown_parameter", `${type} takes no parameters`);
        defined.set(name, { index: -1, type });
        return;
      }
      if (Object.hasOwn(SUBSTITUTED_TYPES, type)) {
        notes.push(`plugin ${name} (${type}) ignored: ${SUBSTITUTED_TYPES[type]}`);
        defined.set(name, { index: -1, type });
        return;
      }
      const known = unsupported.includes(type);
      throw err(
        name,
        `${at}.type`,
        known ? "unsupported_type" : "unknown_type",
        `${known ? "upstream type" : "unknown type"} ${type} is not implemented; supported: ${supported()}`,
      );
    }
    const params = readParams(raw.parameters, spec, (field, reason, detail) =>
      err(name, `${at}.parameters${field}`, reason, detail),
    );
    defined.set(name, { spec, index: plugins.length, type });
    plugins.push({ type, name, params });
  });
  if (plugins.length > 0xfffe) throw err(undefined, "plugins", "bad_document", "too many plugins");

  // schedulingProfiles[]: absent → one `default` profile of every filter, scorer and picker (upstream's rule).
  const profiles: SchedulingProfile[] = [];
  const rawProfiles = root.schedulingProfiles;
  if (
    rawProfiles === undefined ||
    rawProfiles === null ||
    (Array.isArray(rawProfiles) && rawProfiles.length === 0)
  ) {
    const entries = plugins.flatMap((p, index) =>
      SCHEDULING_KINDS.has(byType.get(p.type)!.kind) ? [{ plugin: index, weight: 1 }] : [],
    );
    profiles.push({ name: "default", entries });
  } else {
    if (!Array.isArray(rawProfiles))
      throw err(undefined, "schedulingProfiles", "bad_document", "expected a list");
    rawProfiles.forEach((raw: unknown, i: number) => profiles.push(readProfile(raw, i)));
  }
  if (profiles.length > 255)
    throw err(undefined, "schedulingProfiles", "bad_profile", "more than 255 profiles");

  function readProfile(raw: unknown, i: number): SchedulingProfile {
    const at = `schedulingProfiles[${i}]`;
    if (!isObj(raw)) throw err(undefined, at, "bad_document", "expected a mapping");
    for (const k of Object.keys(raw)) {
      if (k === "fallbackProfile")
        throw err(
          undefined,
          `${at}.fallbackProfile`,
          "unsupported_feature",
          "fallback profiles are not implemented",
        );
      if (k !== "name" && k !== "plugins")
        throw err(undefined, `${at}.${k}`, "unknown_field", "unknown field (known: name, plugins)");
    }
    if (typeof raw.name !== "string" || raw.name === "")
      throw err(undefined, `${at}.name`, "bad_profile", "missing a name");
    const pname = raw.name;
    if (profiles.some((p) => p.name === pname))
      throw err(undefined, `${at}.name`, "duplicate_name", `duplicate profile name ${pname}`);
    if (!Array.isArray(raw.plugins)) throw err(undefined, `${at}.plugins`, "bad_profile", "expected a list");
    const entries: { plugin: number; weight: number }[] = [];
    let picker = false;
    raw.plugins.forEach((e: unknown, j: number) => {
      const eat = `${at}.plugins[${j}]`;
      if (!isObj(e)) throw err(undefined, eat, "bad_document", "expected a mapping");
      for (const k of Object.keys(e))
        if (k !== "pluginRef" && k !== "weight")
          throw err(undefined, `${eat}.${k}`, "unknown_field", "unknown field (known: pluginRef, weight)");
      if (typeof e.pluginRef !== "string" || e.pluginRef === "")
        throw err(undefined, `${eat}.pluginRef`, "unknown_plugin_ref", "missing a pluginRef");
      const ref = e.pluginRef;
      const d = defined.get(ref);
      if (d === undefined)
        throw err(ref, `${eat}.pluginRef`, "unknown_plugin_ref", `no plugin named ${ref} in plugins[]`);
      if (d.spec === undefined || !SCHEDULING_KINDS.has(d.spec.kind))
        throw err(
          ref,
          `${eat}.pluginRef`,
          "bad_profile",
          `a ${d.spec?.kind ?? d.type} cannot be in a profile (filters, scorers and pickers can)`,
        );
      let weight = 1;
      if (e.weight !== undefined && e.weight !== null) {
        if (typeof e.weight !== "number" || !Number.isFinite(e.weight))
          throw err(ref, `${eat}.weight`, "bad_weight", `expected a number, got ${JSON.stringify(e.weight)}`);
        if (e.weight < 0) throw err(ref, `${eat}.weight`, "bad_weight", `negative weight ${e.weight}`);
        weight = e.weight;
      }
      if (d.spec.kind === "picker") {
        if (picker) throw err(ref, `${eat}.pluginRef`, "bad_profile", "a profile has at most one picker");
        picker = true;
      }
      entries.push({ plugin: d.index, weight });
    });
    // No picker: upstream adds one (the configured picker, else max-score-picker, which the filter defaults to).
    if (!picker) {
      const first = plugins.findIndex((p) => byType.get(p.type)!.kind === "picker");
      if (first >= 0) entries.push({ plugin: first, weight: 1 });
    }
    if (entries.length > 255) throw err(undefined, `${at}.plugins`, "bad_profile", "more than 255 entries");
    return { name: pname, entries };
  }

  // The profile handler is whichever plugin is one (upstream finds it by interface, at most one).
  const handlers = plugins.flatMap((p, i) => (byType.get(p.type)!.kind === "profile-handler" ? [i] : []));
  if (handlers.length > 1)
    throw err(plugins[handlers[1]!]!.name, "plugins", "bad_handler", "more than one profile handler");
  const handler = handlers.length === 1 ? handlers[0]! : null;
  if ((handler === null || plugins[handler]!.type === "single-profile-handler") && profiles.length > 1)
    throw err(
      handler === null ? undefined : plugins[handler]!.name,
      "schedulingProfiles",
      "bad_handler",
      "single-profile-handler runs exactly one profile",
    );

  // saturationDetector: default `utilization-detector`, which a plugin of that name configures.
  // llm-d v0.10 moved it to flowControl.saturationDetector, which wins when both are set (its loader's rule).
  let saturation: number | null = null;
  const nested = isObj(root.flowControl) ? root.flowControl.saturationDetector : undefined;
  const sdField =
    nested !== undefined && nested !== null ? "flowControl.saturationDetector" : "saturationDetector";
  const sd = sdField === "saturationDetector" ? root.saturationDetector : nested;
  let sdRef = "utilization-detector";
  if (sd !== undefined && sd !== null) {
    if (!isObj(sd)) throw err(undefined, sdField, "bad_document", "expected a mapping");
    for (const k of Object.keys(sd))
      if (k !== "pluginRef")
        throw err(undefined, `${sdField}.${k}`, "unknown_field", "unknown field (known: pluginRef)");
    if (typeof sd.pluginRef === "string" && sd.pluginRef !== "") sdRef = sd.pluginRef;
  }
  const sdPlugin = defined.get(sdRef);
  if (sdPlugin === undefined) {
    if (sdRef !== "utilization-detector")
      throw err(sdRef, `${sdField}.pluginRef`, "unknown_plugin_ref", `no plugin named ${sdRef} in plugins[]`);
  } else {
    if (sdPlugin.spec?.kind !== "saturation-detector")
      throw err(
        sdRef,
        `${sdField}.pluginRef`,
        "bad_detector",
        `${sdPlugin.type} is not a saturation detector`,
      );
    saturation = sdPlugin.index;
  }

  // parser: only OpenAI bodies are parsed.
  const parser = root.parser;
  if (parser !== undefined && parser !== null) {
    const ref = isObj(parser) ? parser.pluginRef : undefined;
    const type = typeof ref === "string" ? (defined.get(ref)?.type ?? ref) : undefined;
    if (type !== "openai-parser")
      throw err(
        typeof ref === "string" ? ref : undefined,
        "parser.pluginRef",
        "unsupported_feature",
        "only openai-parser is supported",
      );
  }

  const flowControl = flowGate
    ? readFlowControl({
        raw: root.flowControl,
        apiVersion: root.apiVersion,
        pluginType: (ref) => defined.get(ref)?.type,
        fail: (field, detail, notImplemented) =>
          err(undefined, field, notImplemented === true ? "unsupported_feature" : "bad_flow_control", detail),
      })
    : undefined;

  const section: SchedulingSection = { plugins, profiles, handler, saturation };
  return {
    source: file,
    displayName: opts.displayName,
    section,
    ...(flowControl === undefined ? {} : { flowControl }),
    thresholds: thresholdsOf(section, byType),
    hash: configHash(text),
    notes,
  };
}

/** Flattens nested parameter maps with dots and checks each value against the catalogue. */
function readParams(
  raw: unknown,
  spec: PluginSpec,
  err: (field: string, reason: ConfigRejectReason, detail: string) => ConfigError,
): Record<string, PluginParamValue> {
  const out: Record<string, PluginParamValue> = {};
  if (raw === undefined || raw === null) return out;
  if (!isObj(raw)) throw err("", "bad_parameter", "expected a mapping");
  const walk = (o: Obj, prefix: string): void => {
    for (const [k, v] of Object.entries(o)) {
      const key = prefix + k;
      if (isObj(v) && !Object.hasOwn(spec.params, key)) {
        walk(v, `${key}.`);
        continue;
      }
      const p = spec.params[key];
      if (p === undefined) {
        const known = Object.keys(spec.params);
        throw err(
          `.${key}`,
          "unknown_parameter",
          `unknown parameter of ${spec.type} (${known.length === 0 ? "it takes none" : `known: ${known.join(", ")}`})`,
        );
      }
      out[key] = paramValue(v, p, (detail) => err(`.${key}`, "bad_parameter", detail));
    }
  };
  walk(raw, "");
  return out;
}

function paramValue(v: unknown, p: ParamSpec, bad: (detail: string) => ConfigError): PluginParamValue {
  const t = p.type;
  const got = `got ${JSON.stringify(v)}`;
  switch (t.kind) {
    case "number":
    case "integer": {
      if (typeof v !== "number" || !Number.isFinite(v) || (t.kind === "integer" && !Number.isInteger(v)))
        throw bad(`expected ${t.kind === "integer" ? "an integer" : "a number"}, ${got}`);
      if ((t.min !== undefined && v < t.min) || (t.max !== undefined && v > t.max))
        throw bad(`expected ${t.min ?? "-∞"}..${t.max ?? "∞"}, ${got}`);
      return v;
    }
    case "boolean":
      if (typeof v !== "boolean") throw bad(`expected true or false, ${got}`);
      return v;
    case "string":
      if (typeof v !== "string") throw bad(`expected a string, ${got}`);
      return v;
    case "enum":
      if (typeof v !== "string" || !t.values.includes(v))
        throw bad(`expected one of ${t.values.join(", ")}, ${got}`);
      return v;
    case "duration": {
      const ms = typeof v === "string" ? parseDurationMs(v) : undefined;
      if (ms === undefined || ms < 0) throw bad(`expected a duration such as "200ms", ${got}`);
      return ms;
    }
  }
}

/** The detector's limits, or GIE's defaults when it is not utilization-detector. */
function thresholdsOf(section: SchedulingSection, byType: Map<string, PluginSpec>): Thresholds {
  const t: Thresholds = {
    queueThreshold: DEFAULT_SCHEDULER.queueThreshold,
    kvThreshold: DEFAULT_SCHEDULER.kvThreshold,
    metricsStalenessMs: DEFAULT_SCHEDULER.metricsStalenessMs,
  };
  const det = section.saturation === null ? undefined : section.plugins[section.saturation];
  if (det !== undefined && det.type !== "utilization-detector") return t;
  const spec = byType.get("utilization-detector");
  const param = (key: string): PluginParamValue | undefined => {
    if (det !== undefined && Object.hasOwn(det.params, key)) return det.params[key];
    const d = spec?.params[key]?.default;
    return typeof d === "string" ? parseDurationMs(d) : d;
  };
  const q = param("queueDepthThreshold");
  const kv = param("kvCacheUtilThreshold");
  const st = param("metricsStalenessThreshold");
  if (typeof q === "number") t.queueThreshold = Math.min(0xffffffff, Math.round(q));
  if (typeof kv === "number") t.kvThreshold = Math.min(1, Math.max(0, kv));
  if (typeof st === "number") t.metricsStalenessMs = Math.min(0xffffffff, Math.round(st));
  return t;
}
