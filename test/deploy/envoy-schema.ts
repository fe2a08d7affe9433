// Strict check of an Envoy config (a parsed YAML/JSON tree) against the Envoy 1.35 API protos pinned in
// test/fixtures/upstream/envoy-api/ (scripts/pin-envoy-protos.ts), read the way Envoy reads its bootstrap: YAML
// becomes JSON, which protobuf's JSON parser loads with unknown fields rejected and case-insensitive enum names
// (envoyproxy/envoy source/common/protobuf/yaml_utility.cc, MessageUtil::loadFromYaml and loadFromJsonNoThrow);
// then the PGV rules run (envoy-schema-rules.ts). So: field names in proto or lowerCamel form, proto3 JSON mapping
// of scalars, enums and well-known types, "@type" resolved for every Any (typed_config), oneofs with one member.
// Deprecated fields are reported apart: Envoy warns about them, and fails on those disallowed by default.
// Known gap: Envoy's YAML reader (yaml-cpp) also takes yes/no/on/off as booleans; the yaml package does not.
import { readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, join } from "node:path";
import protobuf from "protobufjs";
import { repoRoot } from "./yaml-files.ts";
import { isObj, type Json } from "./json-path.ts";
import {
  checkCount,
  checkValue,
  fieldRules,
  itemRules,
  oneofRequired,
  requiresPresence,
  type Checked,
  type Rules,
} from "./envoy-schema-rules.ts";

export const API_DIR = join(repoRoot, "test/fixtures/upstream/envoy-api");
export const BOOTSTRAP = "envoy.config.bootstrap.v3.Bootstrap";

export interface SchemaReport {
  /** "path: problem" for everything Envoy 1.35 would refuse to load. */
  errors: string[];
  /** "path: ..." for each deprecated field or enum value the config uses. */
  deprecated: string[];
}

let api: protobuf.Root | undefined;

function protoFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    if (statSync(full).isDirectory()) return protoFiles(full);
    return name.endsWith(".proto") ? [full] : [];
  });
}

/** The pinned API, parsed once per process (~0.4 s). */
export function envoyApi(): protobuf.Root {
  if (api) return api;
  // descriptor.proto comes with protobufjs (validate.proto and the annotations extend its options); the other
  // google/protobuf imports are built into protobufjs.
  const descriptor = createRequire(import.meta.url).resolve("protobufjs/google/protobuf/descriptor.proto");
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) =>
    isAbsolute(target)
      ? target
      : target === "google/protobuf/descriptor.proto"
        ? descriptor
        : join(API_DIR, target);
  root.loadSync(protoFiles(API_DIR), { keepCase: true });
  root.resolveAll();
  api = root;
  return root;
}

export function lookupMessage(name: string): protobuf.Type | undefined {
  const t = envoyApi().lookup(`.${name.replace(/^\./, "")}`);
  return t instanceof protobuf.Type ? t : undefined;
}

/**
 * Checks `value` as the JSON form of message `typeName` (the bootstrap by default). `rules: false` skips the PGV
 * rules, for fragments that are merged into a whole message before Envoy sees it.
 */
export function checkEnvoyJson(
  value: unknown,
  messageType = BOOTSTRAP,
  opts: { rules?: boolean } = {},
): SchemaReport {
  const type = lookupMessage(messageType);
  if (!type) throw new Error(`${messageType} is not in the pinned Envoy API`);
  const ctx: Ctx = { errors: [], deprecated: [], rules: opts.rules ?? true };
  message(ctx, type, value, "");
  return { errors: ctx.errors, deprecated: ctx.deprecated };
}

interface Ctx {
  errors: string[];
  deprecated: string[];
  /** False inside a message PGV skips ((validate.rules).message.skip). */
  rules: boolean;
}

const typeName = (t: protobuf.ReflectionObject) => t.fullName.slice(1);
const child = (path: string, key: string) => (path ? `${path}.${key}` : key);
const show = (v: unknown) => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

function fail(ctx: Ctx, path: string, problem: string): void {
  ctx.errors.push(`${path || "(top level)"}: ${problem}`);
}

function failRules(ctx: Ctx, path: string, rules: Rules | undefined, value: Checked): void {
  if (ctx.rules) for (const p of checkValue(rules, value)) fail(ctx, path, `${p} (validate.rules)`);
}

/** protoc's json_name: snake_case to lowerCamel. */
function jsonName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

const fieldIndex = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

function fieldsByName(type: protobuf.Type): Map<string, protobuf.Field> {
  let index = fieldIndex.get(type);
  if (!index) {
    index = new Map();
    for (const f of type.fieldsArray) {
      index.set(f.name, f);
      index.set(jsonName(f.name), f);
    }
    fieldIndex.set(type, index);
  }
  return index;
}

// --- messages ---

function message(ctx: Ctx, type: protobuf.Type, v: unknown, path: string): Checked {
  const special = WELL_KNOWN[type.fullName];
  if (special) return special(ctx, type, v, path);
  if (!isObj(v)) {
    fail(ctx, path, `expected an object (${typeName(type)}), got ${show(v)}`);
    return { kind: "message" };
  }
  fields(ctx, type, v, path, new Set());
  return { kind: "message" };
}

function fields(ctx: Ctx, type: protobuf.Type, v: Json, path: string, skip: Set<string>): void {
  const index = fieldsByName(type);
  const set = new Map<protobuf.Field, string>();
  for (const [key, value] of Object.entries(v)) {
    if (skip.has(key)) continue;
    const p = child(path, key);
    const field = index.get(key);
    if (!field) {
      fail(ctx, p, `unknown field "${key}" in ${typeName(type)}`);
      continue;
    }
    if (set.has(field)) {
      fail(ctx, p, `"${key}" and "${set.get(field)}" are the same field`);
      continue;
    }
    // null leaves a field unset, except where null is a value (google.protobuf.Value).
    if (value === null && field.resolvedType?.fullName !== ".google.protobuf.Value") continue;
    set.set(field, key);
    if (field.options?.deprecated) ctx.deprecated.push(`${p}: deprecated field of ${typeName(type)}`);
    if (field.options?.["(envoy.annotations.disallowed_by_default)"])
      fail(ctx, p, `deprecated and disallowed by default in ${typeName(type)}`);
    fieldValue(ctx, field, value, p);
  }
  for (const oneof of type.oneofsArray) {
    const members = oneof.fieldsArray.filter((f) => set.has(f)).map((f) => set.get(f));
    if (members.length > 1)
      fail(ctx, path, `oneof ${oneof.name} of ${typeName(type)} has ${members.join(" and ")}`);
    if (members.length === 0 && ctx.rules && oneofRequired(oneof))
      fail(ctx, path, `needs one of ${oneof.fieldsArray.map((f) => f.name).join(", ")} (validate.required)`);
  }
  if (ctx.rules && !type.options?.["(validate.disabled)"])
    for (const f of type.fieldsArray) if (!set.has(f)) unsetField(ctx, f, child(path, f.name));
}

/** PGV checks a proto3 field that is not set too: scalars hold their default value. */
function unsetField(ctx: Ctx, field: protobuf.Field, path: string): void {
  const rules = fieldRules(field);
  if (!rules || field.partOf) return; // oneof members and proto3 optional fields are checked only when set
  if (field.map) return void failCount(ctx, path, rules, "map", 0);
  if (field.repeated) return void failCount(ctx, path, rules, "repeated", 0);
  const t = field.resolvedType;
  if (t instanceof protobuf.Type) {
    if (requiresPresence(rules))
      fail(ctx, path, `is required by ${typeName(field.parent!)} (validate.rules)`);
    return;
  }
  const value: Checked =
    t instanceof protobuf.Enum
      ? { kind: "enum", v: 0, defined: t.valuesById[0] !== undefined }
      : (scalar(field.type, defaultOf(field.type)).checked ?? { kind: "message" });
  for (const p of checkValue(rules, value))
    fail(ctx, path, `is unset, and the default ${p} (validate.rules)`);
}

function defaultOf(type: string): unknown {
  return type === "string" || type === "bytes" ? "" : type === "bool" ? false : 0;
}

function failCount(ctx: Ctx, path: string, rules: Rules, kind: "repeated" | "map", n: number): void {
  if (ctx.rules) for (const p of checkCount(rules, kind, n)) fail(ctx, path, `${p} (validate.rules)`);
}

function fieldValue(ctx: Ctx, field: protobuf.Field, v: unknown, path: string): void {
  const rules = fieldRules(field);
  if (field.map) {
    if (!isObj(v)) return fail(ctx, path, `expected an object (map), got ${show(v)}`);
    const keyType = field instanceof protobuf.MapField ? field.keyType : "string";
    for (const [k, item] of Object.entries(v)) {
      const p = child(path, k);
      const key = scalar(
        keyType,
        keyType === "string" ? k : k === "true" || k === "false" ? k === "true" : k,
      );
      if (key.error) fail(ctx, p, `bad map key: ${key.error}`);
      else failRules(ctx, p, itemRules(rules, "keys"), key.checked!);
      if (item === null) fail(ctx, p, "null map value");
      else element(ctx, field, item, p, itemRules(rules, "values"));
    }
    return failCount(ctx, path, rules ?? {}, "map", Object.keys(v).length);
  }
  if (field.repeated) {
    if (!Array.isArray(v)) return fail(ctx, path, `expected a list, got ${show(v)}`);
    v.forEach((item, i) => {
      if (item === null) fail(ctx, `${path}[${i}]`, "null list item");
      else element(ctx, field, item, `${path}[${i}]`, itemRules(rules, "items"));
    });
    return failCount(ctx, path, rules ?? {}, "repeated", v.length);
  }
  element(ctx, field, v, path, rules);
}

function element(ctx: Ctx, field: protobuf.Field, v: unknown, path: string, rules: Rules | undefined): void {
  const t = field.resolvedType;
  let checked: Checked | undefined;
  if (t instanceof protobuf.Type) {
    const skip = rules?.message?.skip === true;
    const saved = ctx.rules;
    if (skip) ctx.rules = false;
    checked = message(ctx, t, v, path);
    ctx.rules = saved;
  } else if (t instanceof protobuf.Enum) checked = enumValue(ctx, t, v, path);
  else {
    const s = scalar(field.type, v);
    if (s.error) fail(ctx, path, s.error);
    checked = s.checked;
  }
  if (checked) failRules(ctx, path, rules, checked);
}

function enumValue(ctx: Ctx, e: protobuf.Enum, v: unknown, path: string): Checked | undefined {
  let name: string | undefined;
  let num: number;
  if (typeof v === "string") {
    // Envoy parses with case_insensitive_enum_parsing: a name that is not found is tried in upper case.
    name = v in e.values ? v : v.toUpperCase() in e.values ? v.toUpperCase() : undefined;
    if (name === undefined) {
      fail(ctx, path, `unknown value ${show(v)} of enum ${typeName(e)}`);
      return undefined;
    }
    num = e.values[name];
  } else if (typeof v === "number" && Number.isInteger(v) && Math.abs(v) < 2 ** 31) {
    num = v; // proto3 enums are open: any int32 parses
    name = e.valuesById[v];
  } else {
    fail(ctx, path, `expected a ${typeName(e)} name or number, got ${show(v)}`);
    return undefined;
  }
  const options = name ? e.valuesOptions?.[name] : undefined;
  if (options?.deprecated) ctx.deprecated.push(`${path}: ${name} is a deprecated value of ${typeName(e)}`);
  if (options?.["(envoy.annotations.disallowed_by_default_enum)"])
    fail(ctx, path, `${name} is deprecated and disallowed by default in ${typeName(e)}`);
  return { kind: "enum", v: num, defined: name !== undefined };
}

// --- scalars ---

const INT_RANGE: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

const NUMBER_STRING = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

interface ScalarResult {
  checked?: Checked;
  error?: string;
}

/** proto3 JSON for one scalar: 64-bit integers may be strings, floats may be "NaN"/"Infinity", bytes are base64. */
function scalar(type: string, v: unknown): ScalarResult {
  const expected = (what: string): ScalarResult => ({ error: `expected ${what} (${type}), got ${show(v)}` });
  switch (type) {
    case "string":
      return typeof v === "string" ? { checked: { kind: "string", v } } : expected("a string");
    case "bool":
      return typeof v === "boolean" ? { checked: { kind: "bool", v } } : expected("true or false");
    case "bytes":
      return typeof v === "string" && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v)
        ? { checked: { kind: "bytes", length: Buffer.from(v, "base64").length } }
        : expected("a base64 string");
    case "double":
    case "float": {
      let n: number;
      if (typeof v === "number") n = v;
      else if (
        typeof v === "string" &&
        (NUMBER_STRING.test(v) || ["NaN", "Infinity", "-Infinity"].includes(v))
      )
        n = Number(v);
      else return expected("a number");
      if (type === "float" && Number.isFinite(n) && Math.abs(n) > 3.4028234663852886e38)
        return expected("a number in float range");
      return { checked: { kind: "number", v: n } };
    }
    default: {
      const range = INT_RANGE[type];
      if (!range) return { error: `unsupported scalar type ${type}` };
      let n: bigint;
      if (typeof v === "number" && Number.isInteger(v)) n = BigInt(v);
      else if (typeof v === "string" && /^-?\d+$/.test(v)) n = BigInt(v);
      else return expected("an integer");
      if (n < range[0] || n > range[1]) return expected(`an integer in [${range[0]}, ${range[1]}]`);
      return { checked: { kind: "number", v: Number(n) } };
    }
  }
}

// --- well-known types with their own JSON form ---

type Special = (ctx: Ctx, type: protobuf.Type, v: unknown, path: string) => Checked;

const MAX_DURATION_SECONDS = 315_576_000_000n;

function any(ctx: Ctx, _type: protobuf.Type, v: unknown, path: string): Checked {
  if (!isObj(v)) {
    fail(ctx, path, `expected an object with "@type" (google.protobuf.Any), got ${show(v)}`);
    return { kind: "message" };
  }
  const url = v["@type"];
  if (typeof url !== "string" || !url.includes("/")) {
    fail(ctx, child(path, "@type"), `expected a type URL (".../package.Message"), got ${show(url)}`);
    return { kind: "message" };
  }
  const type = lookupMessage(url.slice(url.lastIndexOf("/") + 1));
  if (!type) {
    fail(
      ctx,
      child(path, "@type"),
      `unknown @type ${JSON.stringify(url)}: not a message of the pinned Envoy 1.35 API ` +
        "(if Envoy has it, add its .proto to ROOTS in scripts/pin-envoy-protos.ts)",
    );
    return { kind: "any", url };
  }
  // An Any holding a type with a special JSON form carries it under "value"; other types are inlined.
  if (WELL_KNOWN[type.fullName]) {
    for (const k of Object.keys(v))
      if (k !== "@type" && k !== "value")
        fail(ctx, child(path, k), `unknown field "${k}" in Any(${typeName(type)})`);
    if ("value" in v) message(ctx, type, v.value, child(path, "value"));
  } else fields(ctx, type, v, path, new Set(["@type"]));
  return { kind: "any", url };
}

function duration(ctx: Ctx, _type: protobuf.Type, v: unknown, path: string): Checked {
  const m = typeof v === "string" ? /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(v) : null;
  if (!m || BigInt(m[2]) > MAX_DURATION_SECONDS) {
    fail(
      ctx,
      path,
      `expected a duration such as "2s" or "0.250s" (google.protobuf.Duration), got ${show(v)}`,
    );
    return { kind: "message" };
  }
  const nanos = BigInt(m[2]) * 1_000_000_000n + BigInt((m[3] ?? "").padEnd(9, "0"));
  return { kind: "duration", nanos: m[1] ? -nanos : nanos };
}

function expectJson(test: (v: unknown) => boolean, what: string): Special {
  return (ctx, type, v, path) => {
    if (!test(v)) fail(ctx, path, `expected ${what} (${typeName(type)}), got ${show(v)}`);
    return { kind: "message" };
  };
}

function wrapper(ctx: Ctx, type: protobuf.Type, v: unknown, path: string): Checked {
  const s = scalar(type.fields.value.type, v);
  if (s.error) fail(ctx, path, s.error);
  return s.checked ?? { kind: "message" };
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

const WELL_KNOWN: Record<string, Special> = {
  ".google.protobuf.Any": any,
  ".google.protobuf.Duration": duration,
  ".google.protobuf.Timestamp": expectJson(
    (v) => typeof v === "string" && RFC3339.test(v),
    "an RFC 3339 time",
  ),
  ".google.protobuf.FieldMask": expectJson((v) => typeof v === "string", "a comma-separated field list"),
  ".google.protobuf.Struct": expectJson(isObj, "an object"),
  ".google.protobuf.ListValue": expectJson(Array.isArray, "a list"),
  ".google.protobuf.Value": expectJson((v) => v !== undefined, "any JSON value"),
  ...Object.fromEntries(
    ["Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool", "String", "Bytes"].map((w) => [
      `.google.protobuf.${w}Value`,
      wrapper,
    ]),
  ),
};
