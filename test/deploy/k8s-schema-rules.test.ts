// The checker's model of the API server's structural-schema rules, on a small made-up CRD: unknown fields,
// preserve-unknown-fields, int-or-string, null pruning, defaults, list-type set/map, metadata, CEL (skipped).
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "yaml";
import { SchemaRegistry } from "./k8s-schema.ts";
import { isObj } from "./json-path.ts";
import type { Json } from "./json-path.ts";

const WIDGETS = parse(`
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: { name: widgets.example.com }
spec:
  group: example.com
  scope: Namespaced
  names: { kind: Widget, plural: widgets }
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              required: [port, mode]
              properties:
                port: { x-kubernetes-int-or-string: true, anyOf: [{ type: integer }, { type: string }] }
                mode: { type: string, enum: [Fast, Slow], default: Fast }
                free:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                  properties: { known: { type: string } }
                opaque: { type: object }
                labels: { type: object, additionalProperties: { type: string } }
                note: { type: string, nullable: true }
                items:
                  type: array
                  x-kubernetes-list-type: map
                  x-kubernetes-list-map-keys: [name]
                  items: { type: object, required: [name], properties: { name: { type: string }, size: { type: integer } } }
                tags: { type: array, x-kubernetes-list-type: set, items: { type: string } }
                rule:
                  type: string
                  x-kubernetes-validations: [{ rule: "self != 'forbidden'", message: no }]
    - name: v0
      served: false
      storage: false
      schema: { openAPIV3Schema: { type: object } }
`) as Json;

const registry = new SchemaRegistry(undefined, [WIDGETS]);

function widget(spec: Json, metadata: Json = { name: "w", namespace: "default" }): Json {
  return { apiVersion: "example.com/v1", kind: "Widget", metadata, spec };
}
const check = (spec: Json, metadata?: Json) => registry.validate(widget({ port: 80, ...spec }, metadata));

test("valid objects pass: int-or-string both ways, defaults applied before required, free-form maps", () => {
  assert.deepEqual(check({}), [], "mode is defaulted, so its required check passes");
  assert.deepEqual(check({ port: "http" }), []);
  assert.deepEqual(check({ free: { known: "a", anything: { nested: 1 } } }), []);
  assert.deepEqual(check({ labels: { a: "b" }, note: null, tags: ["a", "b"] }), []);
  assert.deepEqual(check({ items: [{ name: "a" }, { name: "b", size: 2 }] }), []);
});

test("unknown fields are errors wherever the schema does not preserve them, and are named", () => {
  assert.deepEqual(check({ prot: 1 }), ["spec.prot: unknown field"]);
  assert.deepEqual(check({ opaque: { x: 1 } }), ["spec.opaque.x: unknown field"]);
  assert.deepEqual(check({ items: [{ name: "a", szie: 1 }] }), ["spec.items[0].szie: unknown field"]);
  assert.deepEqual(registry.validate({ ...widget({ port: 1 }), sepc: {} }), ["sepc: unknown field"]);
});

test("types, enums, nulls and list types", () => {
  assert.deepEqual(check({ port: true }), ["spec.port: must be integer,string, got true"]);
  assert.deepEqual(check({ mode: "Bogus" }), ['spec.mode: "Bogus" is not one of ["Fast","Slow"]']);
  assert.deepEqual(check({ free: { known: 1 } }), ["spec.free.known: must be string, got 1"]);
  // null in a non-nullable field is pruned: here it leaves a required field missing.
  assert.deepEqual(check({ port: null }), ["spec.port: required field missing"]);
  assert.deepEqual(check({ mode: null }), [], "pruned, then defaulted");
  assert.equal(check({ tags: ["a", "a"] }).length, 1);
  assert.match(
    check({ items: [{ name: "a" }, { name: "a" }] })[0],
    /^spec\.items: duplicate entry for key name/,
  );
});

test("metadata is ObjectMeta plus the apimachinery name and label rules", () => {
  assert.deepEqual(check({}, { nmae: "w" }), ["metadata.nmae: unknown field"]);
  assert.deepEqual(check({}, { name: "Bad_Name" }), [
    'metadata.name: "Bad_Name" must be a DNS-1123 subdomain',
  ]);
  assert.deepEqual(check({}, { name: "w", labels: { "bad key!": "v", ok: "not ok!" } }), [
    'metadata.labels: key "bad key!" is not a qualified name',
    'metadata.labels.ok: "not ok!" is not a valid label value',
  ]);
  assert.deepEqual(check({}, { name: "w", labels: { app: 1 } }), [
    "metadata.labels.app: must be string, got 1",
  ]);
  assert.deepEqual(
    check({}, { name: "w", creationTimestamp: null }),
    [],
    "null pruned like kubectl's output",
  );
});

test("versions: unserved and unknown ones are reported; CEL rules are counted, never evaluated", () => {
  assert.match(registry.validate({ ...widget({ port: 1 }), apiVersion: "example.com/v0" })[0], /not served/);
  assert.match(
    registry.validate({ ...widget({ port: 1 }), apiVersion: "example.com/v9" })[0],
    /no pinned upstream schema/,
  );
  assert.deepEqual(check({ rule: "forbidden" }), [], "CEL is out of scope");
  assert.ok(registry.celRulesSkipped >= 1);
});

test("built-in kinds: unknown fields, IntOrString, Quantity, required fields", () => {
  const deployment = (container: Json): Json => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "d" },
    spec: {
      selector: { matchLabels: { app: "a" } },
      template: {
        metadata: { labels: { app: "a" } },
        spec: { containers: [{ name: "c", image: "i", ...container }] },
      },
    },
  });
  assert.deepEqual(registry.validate(deployment({ resources: { limits: { cpu: 1, memory: "1Gi" } } })), []);
  assert.deepEqual(
    registry.validate(
      deployment({ ports: [{ containerPort: 80 }], livenessProbe: { httpGet: { port: "http" } } }),
    ),
    [],
  );
  assert.deepEqual(registry.validate(deployment({ imagePullPolicyy: "Always" })), [
    "spec.template.spec.containers[0].imagePullPolicyy: unknown field",
  ]);
  assert.deepEqual(registry.validate(deployment({ resources: { limits: { cpu: "lots" } } })), [
    "spec.template.spec.containers[0].resources.limits.cpu: must match pattern " +
      '"^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?$"',
  ]);
  assert.deepEqual(registry.validate(deployment({ name: undefined })), [
    "spec.template.spec.containers[0].name: required field missing",
  ]);
  const svc = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "Svc.1" },
    spec: { ports: [{ port: 80 }] },
  };
  assert.deepEqual(registry.validate(svc), ['metadata.name: "Svc.1" must be a DNS-1035 label']);
});

test("every pattern in the pinned schemas compiles as a JavaScript regular expression", () => {
  const patterns = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (isObj(v))
      for (const [k, x] of Object.entries(v)) {
        if (k === "pattern" && typeof x === "string") patterns.add(x);
        else walk(x);
      }
  };
  for (const e of registry.entries.values()) if (!e.core) walk(e.raw);
  assert.ok(patterns.size >= 10, `${patterns.size} patterns`);
  const broken = [...patterns].filter((p) => {
    try {
      new RegExp(p, "u");
      return false;
    } catch {
      return true;
    }
  });
  assert.deepEqual(broken, []);
});
