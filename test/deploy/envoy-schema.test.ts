// Every Envoy config we ship or generate parses strictly as Envoy 1.35's API (test/fixtures/upstream/envoy-api):
// no unknown fields, right value types, known "@type"s, PGV rules met, no deprecated fields. The file lists are
// found at run time, so new bootstraps and patches are checked without touching this test.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { readYamlOne, repoRoot } from "./yaml-files.ts";
import { at } from "./json-path.ts";
import { checkEnvoyJson, envoyApi } from "./envoy-schema.ts";
import {
  envoyDirBootstraps,
  extensionPolicies,
  gatewayPatchValues,
  istioPatchValues,
  overlayTemplates,
  patchedListener,
  renderedBootstrap,
  SAMPLE_TOKEN,
  type EnvoyObject,
} from "./envoy-schema-sources.ts";
import { writeLocalEnvoyConfig } from "../../scripts/local-stack/envoy.ts";

const LISTENER = "envoy.config.listener.v3.Listener";

const loadStarted = performance.now();
envoyApi();
const loadMs = performance.now() - loadStarted;

/** The `npm start -- --envoy` bootstrap, read back from the file Envoy is started with. */
function startBootstrap(): unknown {
  const { dir, file } = writeLocalEnvoyConfig({
    port: 18080,
    controlPort: 18081,
    adminPort: 19911,
    wasm: join(repoRoot, "build/filter.wasm"),
    pluginConfig: { pool: { namespace: "default", name: "local-pool" }, controlToken: SAMPLE_TOKEN },
  });
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const BOOTSTRAPS: { source: string; value: () => unknown }[] = [
  ...envoyDirBootstraps().map((f) => ({ source: f, value: () => readYamlOne(f) })),
  ...overlayTemplates().map((d) => ({
    source: `${d}/envoy-template.yaml (rendered)`,
    value: () => renderedBootstrap(d),
  })),
  { source: "npm start -- --envoy bootstrap", value: startBootstrap },
];

test("the pinned Envoy API loads fast enough to check configs in npm test", () => {
  assert.ok(loadMs < 4000, `loading the protos took ${loadMs.toFixed(0)} ms`);
  assert.ok(BOOTSTRAPS.length >= 4, "envoy/*.yaml, the standalone template and the npm start bootstrap");
});

for (const b of BOOTSTRAPS) {
  test(`${b.source} is a valid Envoy 1.35 bootstrap`, () => {
    const report = checkEnvoyJson(b.value());
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.deprecated, [], "deprecated fields (Envoy warns, later releases remove them)");
  });
}

const ISTIO = istioPatchValues();
const GATEWAY = gatewayPatchValues();
const PATCHES: EnvoyObject[] = [...ISTIO, ...GATEWAY];

test("the Istio EnvoyFilter and Envoy Gateway EnvoyPatchPolicy patches are found", () => {
  assert.ok(ISTIO.length > 0);
  assert.ok(GATEWAY.some((p) => !p.skip));
});

for (const p of PATCHES) {
  const what = p.skip ? "checked" : `a valid ${p.type.split(".").pop()}${p.rules ? "" : " fragment"}`;
  test(`${p.source} is ${what}`, { skip: p.skip }, () => {
    const report = checkEnvoyJson(p.value(), p.type, { rules: p.rules });
    assert.deepEqual(report.errors, []);
    assert.deepEqual(report.deprecated, []);
  });
}

// --- the checker itself ---

type Tree = Record<string, unknown> | unknown[];

/** The first place (depth first) where an object has `key`, as the checker prints paths. */
function find(
  tree: unknown,
  key: string,
  path = "",
): { parent: Record<string, unknown>; path: string } | undefined {
  if (Array.isArray(tree)) {
    for (let i = 0; i < tree.length; i++) {
      const hit = find(tree[i], key, `${path}[${i}]`);
      if (hit) return hit;
    }
  } else if (typeof tree === "object" && tree !== null) {
    const o = tree as Record<string, unknown>;
    if (key in o) return { parent: o, path: path ? `${path}.${key}` : key };
    for (const [k, v] of Object.entries(o)) {
      const hit = find(v, key, path ? `${path}.${k}` : k);
      if (hit) return hit;
    }
  }
  return undefined;
}

/** A copy of `tree` with `edit` applied where `key` first occurs; returns the copy and that path. */
function mutate(tree: unknown, key: string, edit: (parent: Record<string, unknown>) => void): [Tree, string] {
  const copy = structuredClone(tree) as Tree;
  const hit = find(copy, key);
  assert.ok(hit, `no ${key} to mutate`);
  edit(hit.parent);
  return [copy, hit.path];
}

function rename(o: Record<string, unknown>, from: string, to: string): void {
  o[to] = o[from];
  delete o[from];
}

function errorsOf(tree: unknown): string[] {
  return checkEnvoyJson(tree).errors;
}

for (const b of BOOTSTRAPS) {
  test(`checker: a misspelled field, a wrong type and an unknown @type in ${b.source} fail`, () => {
    const config = b.value();
    const [misspelled, at] = mutate(config, "stat_prefix", (o) => rename(o, "stat_prefix", "stat_prefx"));
    const typo = at.replace(/stat_prefix$/, "stat_prefx");
    assert.ok(
      errorsOf(misspelled).some((e) => e.startsWith(`${typo}: unknown field "stat_prefx"`)),
      `${typo} reported: ${errorsOf(misspelled).join("; ")}`,
    );
    const [wrongType, portPath] = mutate(config, "port_value", (o) => (o.port_value = "eighty"));
    assert.ok(errorsOf(wrongType).some((e) => e.startsWith(`${portPath}: expected an integer (uint32)`)));
    const [unknownType, typePath] = mutate(config, "@type", (o) => (o["@type"] = `${o["@type"]}Typo`));
    assert.ok(errorsOf(unknownType).some((e) => e.startsWith(`${typePath}: unknown @type`)));
  });
}

for (const p of PATCHES.filter((x) => !x.skip)) {
  test(`checker: a misspelled field in ${p.source} fails`, () => {
    const value = structuredClone(p.value()) as Record<string, unknown>;
    const key = Object.keys(value).find((k) => k !== "@type" && k !== "name") ?? "name";
    rename(value, key, `${key}x`);
    const errors = checkEnvoyJson(value, p.type, { rules: p.rules }).errors;
    assert.ok(
      errors.some((e) => e.startsWith(`${key}x: unknown field "${key}x"`)),
      errors.join("; "),
    );
  });
}

test("checker: proto3 JSON forms Envoy accepts pass", () => {
  const config = readYamlOne("envoy/envoy.yaml");
  // lowerCamel field names, integers as strings, enums by number, fractional durations.
  const [camel] = mutate(config, "stat_prefix", (o) => rename(o, "stat_prefix", "statPrefix"));
  assert.deepEqual(errorsOf(camel), []);
  const [stringPort] = mutate(config, "port_value", (o) => (o.port_value = "8080"));
  assert.deepEqual(errorsOf(stringPort), []);
  const [enumNumber] = mutate(config, "lb_policy", (o) => (o.lb_policy = 0));
  assert.deepEqual(errorsOf(enumNumber), []);
  const [enumLower] = mutate(config, "lb_policy", (o) => (o.lb_policy = "cluster_provided"));
  assert.deepEqual(errorsOf(enumLower), [], "Envoy parses enum names case-insensitively");
  const [fraction] = mutate(config, "connect_timeout", (o) => (o.connect_timeout = "0.250s"));
  assert.deepEqual(errorsOf(fraction), []);
  const [unset] = mutate(
    config,
    "per_connection_buffer_limit_bytes",
    (o) => (o.per_connection_buffer_limit_bytes = null),
  );
  assert.deepEqual(errorsOf(unset), [], "null leaves a field unset");
});

test("checker: type, enum, duration, oneof and duplicate-name errors name the path", () => {
  const config = readYamlOne("envoy/envoy.yaml");
  const cases: [string, (o: Record<string, unknown>) => void, RegExp][] = [
    ["connect_timeout", (o) => (o.connect_timeout = 2), /connect_timeout: expected a duration such as "2s"/],
    ["connect_timeout", (o) => (o.connect_timeout = "2"), /connect_timeout: expected a duration/],
    [
      "lb_policy",
      (o) => (o.lb_policy = "CLUSTER_PROVIDE"),
      /lb_policy: unknown value "CLUSTER_PROVIDE" of enum/,
    ],
    [
      "use_http_header",
      (o) => (o.use_http_header = "true"),
      /use_http_header: expected true or false \(bool\)/,
    ],
    ["domains", (o) => (o.domains = "*"), /domains: expected a list/],
    [
      "stat_prefix",
      (o) => (o.statPrefix = "again"),
      /statPrefix: "statPrefix" and "stat_prefix" are the same field/,
    ],
    [
      "route_config",
      (o) => (o.rds = { route_config_name: "x" }),
      /oneof route_specifier of .*HttpConnectionManager/,
    ],
    ["timeout", (o) => (o.timeout = { seconds: 1 }), /route\.timeout: expected a duration/],
  ];
  for (const [key, edit, expected] of cases) {
    const errors = errorsOf(mutate(config, key, edit)[0]);
    assert.ok(
      errors.some((e) => expected.test(e)),
      `${key}: ${expected} not in ${JSON.stringify(errors)}`,
    );
  }
});

test("checker: Any holding a well-known type, and an Any without a usable @type", () => {
  const config = readYamlOne("envoy/envoy.yaml");
  const [wrongValue, path] = mutate(config, "configuration", (o) => {
    (o.configuration as Record<string, unknown>).value = { not: "a string" };
  });
  assert.ok(errorsOf(wrongValue).some((e) => e.startsWith(`${path}.value: expected a string`)));
  const [extra] = mutate(config, "configuration", (o) => {
    (o.configuration as Record<string, unknown>).extra = 1;
  });
  assert.ok(errorsOf(extra).some((e) => /configuration\.extra: unknown field "extra" in Any/.test(e)));
  const [noType] = mutate(config, "@type", (o) => delete o["@type"]);
  assert.ok(errorsOf(noType).some((e) => /@type: expected a type URL/.test(e)));
});

test("checker: PGV rules (required, min_len, duration gt, enum defined_only, min_items)", () => {
  const config = readYamlOne("envoy/envoy.yaml");
  const cases: [string, (o: Record<string, unknown>) => void, RegExp][] = [
    [
      "stat_prefix",
      (o) => delete o.stat_prefix,
      /stat_prefix: is unset, and the default must be at least 1 char/,
    ],
    [
      "connect_timeout",
      (o) => (o.connect_timeout = "0s"),
      /connect_timeout: must be > 0s \(validate\.rules\)/,
    ],
    ["lb_policy", (o) => (o.lb_policy = 42), /lb_policy: must be a defined enum value/],
    ["route_config", (o) => delete o.route_config, /needs one of rds, route_config, scoped_routes/],
    [
      "socket_address",
      (o) => delete o.socket_address,
      /needs one of socket_address, pipe, envoy_internal_address/,
    ],
    ["domains", (o) => (o.domains = []), /domains: needs at least 1 items/],
  ];
  for (const [key, edit, expected] of cases) {
    const errors = errorsOf(mutate(config, key, edit)[0]);
    assert.ok(
      errors.some((e) => expected.test(e)),
      `${key}: ${expected} not in ${JSON.stringify(errors)}`,
    );
  }
});

test("checker: Envoy Gateway patches are applied the way Envoy Gateway applies them", () => {
  const policy = readYamlOne("deploy/envoy-gateway/envoypatchpolicy.yaml") as Record<string, unknown>;
  const patches = at(policy, "spec.jsonPatches") as { name: string; operation: Record<string, unknown> }[];
  // An "add" of one field inside a node a jsonPath selects.
  const i = patches.findIndex(
    (p) => p.operation.op === "add" && p.operation.jsonPath && /^\/\w+$/.test(String(p.operation.path)),
  );
  assert.ok(i >= 0, "the policy has an add of one field under a jsonPath");
  const { name, operation } = patches[i];
  const edited = (edit: (op: Record<string, unknown>) => void) => {
    const copy = structuredClone(policy);
    edit(at(copy, `spec.jsonPatches.${i}.operation`) as Record<string, unknown>);
    return patchedListener(copy, extensionPolicies(), name);
  };
  // A misspelled field in a patch is an unknown field of the patched listener.
  const errors = checkEnvoyJson(
    edited((op) => (op.path = `${op.path}x`)),
    LISTENER,
  ).errors;
  const field = `${String(operation.path).slice(1)}x`;
  assert.ok(
    errors.some((e) => e.includes(`unknown field "${field}"`)),
    errors.join("; "),
  );
  // A jsonPath that selects nothing fails, as Envoy Gateway fails the policy.
  assert.throws(
    () => edited((op) => (op.jsonPath = String(op.jsonPath).replace(/==\s*'/, "=='no-such-"))),
    /matches nothing/,
  );
});

test("checker: deprecated fields are reported apart from errors", () => {
  const config = readYamlOne("envoy/envoy.yaml");
  const [old, path] = mutate(config, "root_id", (o) => (o.fail_open = false));
  const report = checkEnvoyJson(old);
  assert.deepEqual(report.errors, []);
  assert.ok(report.deprecated.some((d) => d.startsWith(path.replace(/root_id$/, "fail_open"))));
});
