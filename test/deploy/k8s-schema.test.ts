// Every Kubernetes object we ship validates against the pinned upstream schema of its kind and version
// (test/fixtures/upstream/k8s; k8s-schema.ts says what is modelled and what is not), deploy/crds ships exactly
// the pinned upstream GIE CRDs, and the checker itself rejects a misspelled field in every kind we ship.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { FIXTURES, SchemaRegistry, fieldPath } from "./k8s-schema.ts";
import {
  localStackObjects,
  shippedSourceObjects,
  renderedObjects,
  type Located,
} from "./k8s-schema-objects.ts";
import { kustomizeAll, kustomizeSkip, kustomizeTargets } from "./kustomize-render.ts";
import { describe } from "./k8s-checks.ts";
import { isObj, type Json } from "./json-path.ts";
import { repoRoot } from "./yaml-files.ts";
import { normalize } from "../../sidecar/inventory/resources.ts";

const registry = new SchemaRegistry();
const skip = kustomizeSkip();
const shipped = shippedSourceObjects();
const localStack = localStackObjects();
const GIE = join(FIXTURES, "gateway-api-inference-extension");
const LLMD = join(FIXTURES, "llm-d-router");

function problems(list: Located[]): string[] {
  return list.flatMap(({ where, obj }) =>
    registry.validate(obj).map((p) => `${where} ${describe(obj)}: ${p}`),
  );
}

const kindOf = (o: Json) => `${String(o.apiVersion)} ${String(o.kind)}`;

/** A plausible typo of `key`: its 2nd and 3rd letters swapped (or its last letter doubled). */
function misspell(key: string): string {
  const swapped = key.length >= 3 ? key[0] + key[2] + key[1] + key.slice(3) : key;
  return swapped === key ? key + key.at(-1) : swapped;
}

function nodeAt(obj: unknown, path: string[]): Json {
  const v = path.reduce<unknown>((cur, k) => (Array.isArray(cur) ? cur[Number(k)] : (cur as Json)[k]), obj);
  assert.ok(isObj(v));
  return v;
}

/**
 * Misspells, in copies of one object per kind, metadata.name and a field of the deepest node whose schema rejects
 * unknown fields; returns every case the checker did not report by the misspelled field's path.
 */
function uncaughtMisspellings(list: Located[]): string[] {
  const byKind = new Map<string, Located>();
  for (const o of list) if (!byKind.has(kindOf(o.obj))) byKind.set(kindOf(o.obj), o);
  const missed: string[] = [];
  for (const [kind, { where, obj }] of byKind) {
    const meta = structuredClone(obj);
    const m = meta.metadata as Json;
    m.nmae = m.name;
    delete m.name;
    if (!registry.validate(meta).includes("metadata.nmae: unknown field"))
      missed.push(`${kind} (${where}): metadata.nmae`);

    const paths = registry.strictPaths(obj);
    const deepest = paths.reduce((a, b) => (b.length > a.length ? b : a), []);
    if ("spec" in obj && deepest.length < 2)
      missed.push(`${kind}: strict nodes only at ${JSON.stringify(paths)}`);
    const copy = structuredClone(obj);
    const node = nodeAt(copy, deepest);
    const key = Object.keys(node).find((k) => node[k] !== null);
    if (!key) continue;
    const typo = misspell(key);
    node[typo] = node[key];
    delete node[key];
    const expected = `${fieldPath(deepest.length > 0 ? "/" + deepest.join("/") : "", typo)}: unknown field`;
    const got = registry.validate(copy);
    if (!got.includes(expected))
      missed.push(`${kind} (${where}): expected "${expected}", got ${JSON.stringify(got)}`);
  }
  return missed;
}

test("shipped YAML objects (deploy/, examples/, envoy/manifests/) match their pinned upstream schemas", (t) => {
  assert.ok(shipped.length >= 20, `found only ${shipped.length} objects`);
  assert.deepEqual(problems(shipped), []);
  t.diagnostic(
    `${registry.celRulesSkipped} CEL rules (x-kubernetes-validations) in the pinned CRDs are not evaluated`,
  );
});

test("the objects npm start feeds the sidecar (file mode) match their pinned upstream schemas", () => {
  assert.ok(
    localStack.some((o) => o.obj.kind === "Pod") && localStack.some((o) => o.obj.kind === "InferencePool"),
  );
  assert.deepEqual(problems(localStack), []);
});

test("a misspelled field fails validation, named by its path, in every kind shipped as YAML", () => {
  const kinds = new Set([...shipped, ...localStack].map((o) => kindOf(o.obj)));
  assert.ok(kinds.size >= 15, `kinds: ${[...kinds].join(", ")}`);
  assert.deepEqual(uncaughtMisspellings([...shipped, ...localStack]), []);
});

test(
  "every kustomize target under deploy/ renders to objects that match their pinned upstream schemas",
  { skip },
  async () => {
    const targets = kustomizeTargets();
    assert.ok(targets.length >= 3, `kustomize targets: ${targets.join(", ")}`);
    const rendered = [...(await kustomizeAll(targets))].flatMap(([t, list]) => renderedObjects(t, list));
    assert.deepEqual(problems(rendered), []);
    // Kinds that only exist after rendering (generated ConfigMaps, ...) get the misspelling check here.
    const seen = new Set([...shipped, ...localStack].map((o) => kindOf(o.obj)));
    assert.deepEqual(uncaughtMisspellings(rendered.filter((o) => !seen.has(kindOf(o.obj)))), []);
  },
);

test("deploy/crds ships the pinned upstream GIE and llm-d Router CRD files byte for byte, and lists each one", () => {
  const crdFiles = (dir: string) =>
    readdirSync(dir)
      .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
      .sort();
  const deployDir = join(repoRoot, "deploy/crds");
  const pinned = [GIE, LLMD].flatMap((dir) => crdFiles(dir).map((f) => ({ dir, f })));
  assert.deepEqual(crdFiles(deployDir), pinned.map(({ f }) => f).sort());
  for (const { dir, f } of pinned)
    assert.ok(
      readFileSync(join(deployDir, f)).equals(readFileSync(join(dir, f))),
      `deploy/crds/${f} differs from ${join(dir, f)}`,
    );
  const k = parse(readFileSync(join(deployDir, "kustomization.yaml"), "utf8")) as Json;
  assert.deepEqual([...(k.resources as string[])].sort(), pinned.map(({ f }) => f).sort());
});

test("every pinned upstream source has a README with repository, tag, commit and licence, and its LICENSE", () => {
  const dirs = readdirSync(FIXTURES, { withFileTypes: true }).filter((d) => d.isDirectory());
  assert.ok(dirs.length >= 5);
  for (const d of dirs) {
    const readme = readFileSync(join(FIXTURES, d.name, "README.md"), "utf8");
    assert.match(readme, /Source repository: https:\/\/github\.com\/[\w.-]+\/[\w.-]+/, d.name);
    assert.match(readme, /Apache License 2\.0/, d.name);
    assert.match(readme, /\| [\w.-]+ \| [0-9a-f]{40} \|/, `${d.name}: tag and commit`);
    assert.match(readFileSync(join(FIXTURES, d.name, "LICENSE"), "utf8"), /Apache License\s+Version 2\.0/);
  }
});

test("the sidecar accepts every shipped inference object and Pod that the upstream schemas accept", () => {
  const rejected = [...shipped, ...localStack]
    .filter(
      ({ obj }) =>
        /^inference\.networking\.(x-)?k8s\.io\//.test(String(obj.apiVersion)) || obj.kind === "Pod",
    )
    .filter(({ obj }) => registry.validate(obj).length === 0)
    .map(({ where, obj }) => ({ where, r: normalize(obj) }))
    .filter(({ r }) => !r.ok)
    .map(({ where, r }) => `${where}: ${JSON.stringify(r)}`);
  assert.deepEqual(rejected, []);
});
