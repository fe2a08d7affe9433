// The protoc-gen-validate constraints ((validate.rules), (validate.required)) that Envoy checks on every config it
// loads (MessageUtil::validate runs the generated C++ Validate()). A subset: the rules the C++ templates of PGV
// v1.0.4 implement for strings, numbers, bools, enums, durations, Any, repeated and map fields, and required
// messages and oneofs. Not checked: well_known_regex (the C++ templates skip it too), ip/hostname/address,
// timestamp bounds, unique items and no_sparse.
import type protobuf from "protobufjs";

// protobufjs hands option values over untyped.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Rules = Record<string, any>;

/** A field value reduced to what PGV compares. */
export type Checked =
  | { kind: "string"; v: string }
  | { kind: "bytes"; length: number }
  | { kind: "number"; v: number }
  | { kind: "bool"; v: boolean }
  | { kind: "enum"; v: number; defined: boolean }
  | { kind: "duration"; nanos: bigint }
  | { kind: "any"; url: string }
  | { kind: "message" };

const NUMERIC = [
  "int32",
  "int64",
  "uint32",
  "uint64",
  "sint32",
  "sint64",
  "fixed32",
  "fixed64",
  "sfixed32",
  "sfixed64",
  "float",
  "double",
];

function merge(into: Rules, from: Rules): Rules {
  for (const [k, v] of Object.entries(from)) {
    if (typeof v === "object" && v !== null && !Array.isArray(v) && typeof into[k] === "object")
      merge(into[k] as Rules, v as Rules);
    else into[k] = v;
  }
  return into;
}

/** A field's (validate.rules), merged from every option statement that sets part of them. */
export function fieldRules(field: protobuf.Field): Rules | undefined {
  const parts = (field.parsedOptions ?? []).filter((o) => "(validate.rules)" in o);
  if (parts.length === 0) return undefined;
  return parts.reduce((acc: Rules, o) => merge(acc, o["(validate.rules)"] as Rules), {});
}

export function oneofRequired(oneof: protobuf.OneOf): boolean {
  return oneof.options?.["(validate.required)"] === true;
}

/** Whether the rules make an unset message field an error. */
export function requiresPresence(rules: Rules | undefined): boolean {
  return ["message", "duration", "timestamp", "any"].some((k) => rules?.[k]?.required === true);
}

function durationNanos(d: unknown): bigint {
  const o = (d ?? {}) as { seconds?: number | string; nanos?: number };
  return BigInt(o.seconds ?? 0) * 1_000_000_000n + BigInt(o.nanos ?? 0);
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

/** Bounds as PGV reads them: gt/gte with lt/lte is a range, or (when the upper bound is lower) its outside. */
function bounds<T extends number | bigint>(
  r: Rules,
  value: T,
  conv: (x: unknown) => T,
  fmt: (x: T) => string,
): string | undefined {
  const lower =
    r.gt !== undefined
      ? { v: conv(r.gt), strict: true }
      : r.gte !== undefined
        ? { v: conv(r.gte), strict: false }
        : undefined;
  const upper =
    r.lt !== undefined
      ? { v: conv(r.lt), strict: true }
      : r.lte !== undefined
        ? { v: conv(r.lte), strict: false }
        : undefined;
  const aboveLower = lower && (lower.strict ? value > lower.v : value >= lower.v);
  const belowUpper = upper && (upper.strict ? value < upper.v : value <= upper.v);
  const show = (b: { v: T; strict: boolean } | undefined, op: string) =>
    b ? `${op}${b.strict ? "" : "="} ${fmt(b.v)}` : "";
  if (lower && upper) {
    const inside = upper.v >= lower.v;
    const ok = inside ? aboveLower && belowUpper : aboveLower || belowUpper;
    return ok ? undefined : `must be ${inside ? "" : "outside "}${show(lower, ">")} and ${show(upper, "<")}`;
  }
  if (lower && !aboveLower) return `must be ${show(lower, ">")}`;
  if (upper && !belowUpper) return `must be ${show(upper, "<")}`;
  return undefined;
}

function constIn<T>(r: Rules, value: T, conv: (x: unknown) => T, show: (x: T) => string): string[] {
  const out: string[] = [];
  if (r.const !== undefined && conv(r.const) !== value) out.push(`must equal ${show(conv(r.const))}`);
  const allowed = list(r.in).map(conv);
  if (allowed.length > 0 && !allowed.includes(value))
    out.push(`must be one of ${allowed.map(show).join(", ")}`);
  if (list(r.not_in).map(conv).includes(value)) out.push(`must not be ${show(value)}`);
  return out;
}

function stringRules(r: Rules, s: string): string[] {
  if (r.ignore_empty && s === "") return [];
  const out = constIn(r, s, String, (x) => JSON.stringify(x));
  const chars = [...s].length;
  const bytes = Buffer.byteLength(s);
  if (r.len !== undefined && chars !== Number(r.len)) out.push(`must be ${r.len} characters`);
  if (r.min_len !== undefined && chars < Number(r.min_len))
    out.push(`must be at least ${r.min_len} characters`);
  if (r.max_len !== undefined && chars > Number(r.max_len))
    out.push(`must be at most ${r.max_len} characters`);
  if (r.len_bytes !== undefined && bytes !== Number(r.len_bytes)) out.push(`must be ${r.len_bytes} bytes`);
  if (r.min_bytes !== undefined && bytes < Number(r.min_bytes))
    out.push(`must be at least ${r.min_bytes} bytes`);
  if (r.max_bytes !== undefined && bytes > Number(r.max_bytes))
    out.push(`must be at most ${r.max_bytes} bytes`);
  if (r.prefix !== undefined && !s.startsWith(r.prefix))
    out.push(`must start with ${JSON.stringify(r.prefix)}`);
  if (r.suffix !== undefined && !s.endsWith(r.suffix)) out.push(`must end with ${JSON.stringify(r.suffix)}`);
  if (r.contains !== undefined && !s.includes(r.contains))
    out.push(`must contain ${JSON.stringify(r.contains)}`);
  if (r.not_contains !== undefined && s.includes(r.not_contains))
    out.push(`must not contain ${JSON.stringify(r.not_contains)}`);
  // RE2 full match; the patterns Envoy uses are also valid JavaScript.
  if (r.pattern !== undefined && !new RegExp(`^(?:${r.pattern})$`, "u").test(s))
    out.push(`must match /${r.pattern}/`);
  return out;
}

/** Rule violations of one value (a singular field, a list item or a map value). */
export function checkValue(rules: Rules | undefined, value: Checked): string[] {
  if (!rules) return [];
  switch (value.kind) {
    case "string":
      return rules.string ? stringRules(rules.string as Rules, value.v) : [];
    case "bytes": {
      const r = rules.bytes as Rules | undefined;
      if (!r || (r.ignore_empty && value.length === 0)) return [];
      const out: string[] = [];
      if (r.min_len !== undefined && value.length < Number(r.min_len))
        out.push(`must be at least ${r.min_len} bytes`);
      if (r.max_len !== undefined && value.length > Number(r.max_len))
        out.push(`must be at most ${r.max_len} bytes`);
      return out;
    }
    case "number": {
      const key = NUMERIC.find((k) => rules[k] !== undefined);
      if (!key) return [];
      const r = rules[key] as Rules;
      if (r.ignore_empty && value.v === 0) return [];
      const out = constIn(r, value.v, Number, String);
      const b = bounds(r, value.v, Number, String);
      return b ? [...out, b] : out;
    }
    case "bool":
      return rules.bool?.const !== undefined && rules.bool.const !== value.v
        ? [`must be ${rules.bool.const}`]
        : [];
    case "enum": {
      const r = rules.enum as Rules | undefined;
      if (!r) return [];
      const out = constIn(r, value.v, Number, String);
      if (r.defined_only && !value.defined) out.push("must be a defined enum value");
      return out;
    }
    case "duration": {
      const r = rules.duration as Rules | undefined;
      if (!r) return [];
      const show = (n: bigint) => `${Number(n) / 1e9}s`;
      const out = constIn(r, value.nanos, durationNanos, show);
      const b = bounds(r, value.nanos, durationNanos, show);
      return b ? [...out, b] : out;
    }
    case "any": {
      const r = rules.any as Rules | undefined;
      return r ? constIn({ in: r.in, not_in: r.not_in }, value.url, String, (x) => x) : [];
    }
    default:
      return [];
  }
}

/** Rule violations of a repeated field's item count (items themselves go through checkValue). */
export function checkCount(rules: Rules | undefined, kind: "repeated" | "map", count: number): string[] {
  const r = rules?.[kind] as Rules | undefined;
  if (!r || (r.ignore_empty && count === 0)) return [];
  const [min, max, noun] =
    kind === "repeated" ? [r.min_items, r.max_items, "items"] : [r.min_pairs, r.max_pairs, "entries"];
  const out: string[] = [];
  if (min !== undefined && count < Number(min)) out.push(`needs at least ${min} ${noun}`);
  if (max !== undefined && count > Number(max)) out.push(`allows at most ${max} ${noun}`);
  return out;
}

/** The rules that apply to each item of a repeated field, or to each key and value of a map. */
export function itemRules(rules: Rules | undefined, part: "items" | "keys" | "values"): Rules | undefined {
  return (part === "items" ? rules?.repeated?.items : rules?.map?.[part]) as Rules | undefined;
}
