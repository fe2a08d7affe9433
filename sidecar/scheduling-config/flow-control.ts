// The `flowControl:` block of an EndpointPickerConfig → the FLOW_CONTROL snapshot section
// (docs/scheduling.md, "Flow control"). Field names are upstream's: GIE v1.5.0
// apix/config/v1alpha1/endpointpickerconfig_types.go FlowControlConfig / PriorityBandConfig, and llm-d Router
// v0.10.0's copy of it (same file), which adds defaultNegativePriorityBand, saturationDetector and
// enableEviction. Defaults and refusals:
// - maxBytes / maxRequests (Kubernetes quantities): 0 or absent = no pool-wide limit (as upstream).
// - per band maxBytes / maxRequests: 0 or absent = DEFAULT_FLOW_BAND (5,000 requests, 1 GiB; upstream's
//   registry/config.go treats 0 as unset too, with 1e9 bytes and, in llm-d v0.10, 5,000 requests).
// - defaultRequestTTL: absent = none for GIE files; llm-d v0.10 documents 60s, so its files get 60s.
// - requestTTL per band is ours (upstream has none): 0 or absent = defaultRequestTTL.
// - fairnessPolicyRef: one policy for every band (the filter applies one); bands that name none follow the
//   one that does; none named = round-robin over fairness ids (issue 22; upstream's default is global-strict).
// - orderingPolicyRef other than fcfs-ordering-policy, usageLimitPolicyPluginRef other than the static
//   default, defaultNegativePriorityBand and enableEviction: true are refused, never ignored.
import { DEFAULT_FLOW_BAND, MAX_FLOW_BANDS } from "../snapshot/types.ts";
import type { FairnessPolicy, FlowBand, FlowBandLimits, FlowControlSection } from "../snapshot/types.ts";
import { parseDurationMs } from "./duration.ts";
import { quantityValue } from "./quantity.ts";

/** Policy plugin types a config may declare in plugins[] (with no parameters) and name from a band. */
export const FAIRNESS_TYPES: Readonly<Record<string, FairnessPolicy>> = {
  "round-robin-fairness-policy": "round-robin",
  "global-strict-fairness-policy": "global-strict",
};
export const ORDERING_TYPE = "fcfs-ordering-policy";
/** Upstream's default usage-limit policy (threshold 1.0, no gating): what the filter does anyway. */
const STATIC_USAGE_LIMIT = "static-usage-limit-policy";
export const FLOW_POLICY_TYPES: ReadonlySet<string> = new Set([
  ...Object.keys(FAIRNESS_TYPES),
  ORDERING_TYPE,
]);

export const DEFAULT_FAIRNESS: FairnessPolicy = "round-robin";
/** llm-d Router v0.10 FlowControlConfig.DefaultRequestTTL: "If omitted, it defaults to 60s". */
const LLM_D_DEFAULT_TTL_MS = 60_000;

const FIELDS = new Set([
  "maxBytes",
  "maxRequests",
  "defaultRequestTTL",
  "defaultPriorityBand",
  "priorityBands",
  "usageLimitPolicyPluginRef",
  "defaultNegativePriorityBand",
  "saturationDetector",
  "enableEviction",
]);
const BAND_FIELDS = new Set([
  "priority",
  "maxBytes",
  "maxRequests",
  "requestTTL",
  "fairnessPolicyRef",
  "orderingPolicyRef",
]);

export type FlowFail = (field: string, detail: string, notImplemented?: boolean) => Error;

export interface FlowControlInput {
  /** The `flowControl:` value (undefined or null = all defaults). */
  raw: unknown;
  apiVersion: string;
  /** The type of the plugin named `ref` in plugins[], undefined when none has that name. */
  pluginType: (ref: string) => string | undefined;
  fail: FlowFail;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** The `flowControl:` keys other than saturationDetector (which llm-d honours without the gate). */
export function flowControlSettings(raw: unknown): string[] {
  return isObj(raw) ? Object.keys(raw).filter((k) => k !== "saturationDetector") : [];
}

export function readFlowControl(input: FlowControlInput): FlowControlSection {
  const { fail } = input;
  const raw = input.raw ?? {};
  if (!isObj(raw)) throw fail("flowControl", "expected a mapping");
  for (const k of Object.keys(raw))
    if (!FIELDS.has(k)) throw fail(`flowControl.${k}`, `unknown field (known: ${[...FIELDS].join(", ")})`);
  if (raw.defaultNegativePriorityBand !== undefined && raw.defaultNegativePriorityBand !== null)
    throw fail(
      "flowControl.defaultNegativePriorityBand",
      "a separate template for negative priorities is not implemented; list those priorities in priorityBands",
      true,
    );
  if (raw.enableEviction !== undefined && raw.enableEviction !== null && raw.enableEviction !== false)
    throw fail("flowControl.enableEviction", "evicting in-flight requests is not implemented", true);
  const usage = raw.usageLimitPolicyPluginRef;
  if (usage !== undefined && usage !== null && usage !== "") {
    if (typeof usage !== "string") throw fail("flowControl.usageLimitPolicyPluginRef", "expected a string");
    if ((input.pluginType(usage) ?? usage) !== STATIC_USAGE_LIMIT)
      throw fail(
        "flowControl.usageLimitPolicyPluginRef",
        `only ${STATIC_USAGE_LIMIT} (the default) is implemented`,
        true,
      );
  }

  const fairness: { policy: FairnessPolicy; field: string }[] = [];
  const band = (v: unknown, at: string, template: boolean): FlowBand => {
    if (!isObj(v)) throw fail(at, "expected a mapping");
    for (const k of Object.keys(v))
      if (!BAND_FIELDS.has(k))
        throw fail(`${at}.${k}`, `unknown field (known: ${[...BAND_FIELDS].join(", ")})`);
    let priority = 0;
    if (template) {
      if (v.priority !== undefined) throw fail(`${at}.priority`, "the default band takes no priority");
    } else {
      if (typeof v.priority !== "number" || !Number.isInteger(v.priority))
        throw fail(`${at}.priority`, `expected an integer, got ${JSON.stringify(v.priority)}`);
      if (v.priority < -0x80000000 || v.priority > 0x7fffffff)
        throw fail(`${at}.priority`, `${v.priority} is outside the 32-bit range`);
      priority = v.priority;
    }
    const limits: FlowBandLimits = {
      maxRequests:
        quantity(v.maxRequests, `${at}.maxRequests`, 0xffffffff, fail) || DEFAULT_FLOW_BAND.maxRequests,
      maxBytes:
        quantity(v.maxBytes, `${at}.maxBytes`, Number.MAX_SAFE_INTEGER, fail) || DEFAULT_FLOW_BAND.maxBytes,
      ttlMs: ttl(v.requestTTL, `${at}.requestTTL`, 0, fail),
    };
    const ordering = policyRef(v.orderingPolicyRef, `${at}.orderingPolicyRef`, input);
    if (ordering !== undefined && ordering !== ORDERING_TYPE)
      throw fail(`${at}.orderingPolicyRef`, `only ${ORDERING_TYPE} is implemented, got ${ordering}`, true);
    const f = policyRef(v.fairnessPolicyRef, `${at}.fairnessPolicyRef`, input);
    if (f !== undefined) {
      const policy = FAIRNESS_TYPES[f];
      if (policy === undefined)
        throw fail(
          `${at}.fairnessPolicyRef`,
          `expected one of ${Object.keys(FAIRNESS_TYPES).join(", ")}, got ${f}`,
        );
      const first = fairness[0];
      if (first !== undefined && first.policy !== policy)
        throw fail(
          `${at}.fairnessPolicyRef`,
          `every band must use one fairness policy (${first.field} names ${first.policy})`,
          true,
        );
      fairness.push({ policy, field: `${at}.fairnessPolicyRef` });
    }
    return { priority, ...limits };
  };

  const defaultTtl = input.apiVersion === "llm-d.ai/v1alpha1" ? LLM_D_DEFAULT_TTL_MS : 0;
  const out: FlowControlSection = {
    maxRequests: quantity(raw.maxRequests, "flowControl.maxRequests", 0xffffffff, fail),
    maxBytes: quantity(raw.maxBytes, "flowControl.maxBytes", Number.MAX_SAFE_INTEGER, fail),
    defaultTtlMs: ttl(raw.defaultRequestTTL, "flowControl.defaultRequestTTL", defaultTtl, fail),
    fairness: DEFAULT_FAIRNESS,
    defaultBand: {
      maxRequests: DEFAULT_FLOW_BAND.maxRequests,
      maxBytes: DEFAULT_FLOW_BAND.maxBytes,
      ttlMs: 0,
    },
    bands: [],
  };
  if (raw.defaultPriorityBand !== undefined && raw.defaultPriorityBand !== null) {
    const { priority: _, ...limits } = band(raw.defaultPriorityBand, "flowControl.defaultPriorityBand", true);
    out.defaultBand = limits;
  }
  const list = raw.priorityBands ?? [];
  if (!Array.isArray(list)) throw fail("flowControl.priorityBands", "expected a list");
  if (list.length > MAX_FLOW_BANDS)
    throw fail("flowControl.priorityBands", `${list.length} bands, the limit is ${MAX_FLOW_BANDS}`);
  const seen = new Map<number, number>();
  list.forEach((v: unknown, i: number) => {
    const at = `flowControl.priorityBands[${i}]`;
    const b = band(v, at, false);
    const dup = seen.get(b.priority);
    if (dup !== undefined)
      throw fail(`${at}.priority`, `priority ${b.priority} is also flowControl.priorityBands[${dup}]'s`);
    seen.set(b.priority, i);
    out.bands.push(b);
  });
  out.bands.sort((a, b) => b.priority - a.priority);
  if (fairness[0] !== undefined) out.fairness = fairness[0].policy;
  return out;
}

/** A band's policy reference → the plugin type it names (a declared plugin's name, or the type itself). */
function policyRef(v: unknown, field: string, input: FlowControlInput): string | undefined {
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw input.fail(field, `expected a plugin name, got ${JSON.stringify(v)}`);
  return input.pluginType(v) ?? v;
}

/** A Kubernetes quantity, 0..max; absent = 0. */
function quantity(v: unknown, field: string, max: number, fail: FlowFail): number {
  if (v === undefined || v === null) return 0;
  const q = quantityValue(v);
  if (q === undefined)
    throw fail(
      field,
      `expected a number or a Kubernetes quantity such as "10Gi" or "5k", got ${JSON.stringify(v)}`,
    );
  if (q < 0n) throw fail(field, `must not be negative, got ${JSON.stringify(v)}`);
  if (q > BigInt(max)) throw fail(field, `${JSON.stringify(v)} is more than the limit ${max}`);
  return Number(q);
}

/** A Go duration → whole milliseconds (rounded up, so a tiny TTL is not "none"); absent = `dflt`. */
function ttl(v: unknown, field: string, dflt: number, fail: FlowFail): number {
  if (v === undefined || v === null) return dflt;
  const ms = typeof v === "string" ? parseDurationMs(v) : undefined;
  if (ms === undefined) throw fail(field, `expected a duration such as "30s", got ${JSON.stringify(v)}`);
  if (ms < 0) throw fail(field, `must not be negative, got ${JSON.stringify(v)}`);
  const whole = Math.ceil(ms);
  if (whole > 0xffffffff) throw fail(field, `${JSON.stringify(v)} is longer than ${0xffffffff} ms`);
  return whole;
}
