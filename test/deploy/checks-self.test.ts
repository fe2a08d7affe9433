// The static checkers must be able to fail: each broken variant of a shipped file is caught.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readYamlOne, parseYaml } from "./yaml-files.ts";
import { at, type Json } from "./json-path.ts";
import { checkEnvoyConfig } from "./envoy-checks.ts";
import { checkCrd, checkCrossReferences, checkObjectShape } from "./k8s-checks.ts";

function envoyWith(mutate: (c: Json) => void): string[] {
  const config = structuredClone(readYamlOne("envoy/envoy.yaml")) as Json;
  mutate(config);
  return checkEnvoyConfig(config);
}

function wasmConfig(c: Json, listener: number): Json {
  return at(
    c,
    `static_resources.listeners.${listener}.filter_chains.0.filters.0.typed_config.http_filters.0.typed_config.config`,
  ) as Json;
}

test("envoy checks catch a control listener on another vm_id", () => {
  const problems = envoyWith((c) => ((wasmConfig(c, 1).vm_config as Json).vm_id = "other"));
  assert.ok(
    problems.some((p) => p.includes("share one vm_id")),
    problems.join("\n"),
  );
});

test("envoy checks catch a wrong destination header, a missing cluster and a public admin", () => {
  assert.ok(
    envoyWith(
      (c) =>
        ((at(c, "static_resources.clusters.0.original_dst_lb_config") as Json).http_header_name = "x-dst"),
    ).some((p) => p.includes("http_header_name")),
  );
  assert.ok(
    envoyWith((c) => ((at(c, "static_resources.clusters.0") as Json).name = "renamed")).some((p) =>
      p.includes("unknown cluster original_destination_cluster"),
    ),
  );
  assert.ok(
    envoyWith((c) => ((at(c, "admin.address.socket_address") as Json).address = "0.0.0.0")).some((p) =>
      p.includes("admin"),
    ),
  );
});

test("envoy checks catch plugin JSON without controlToken or pool, and broken JSON", () => {
  const noToken = envoyWith((c) => {
    const cfg = wasmConfig(c, 0);
    const plugin = JSON.parse(String(at(cfg, "configuration.value"))) as Json;
    delete plugin.controlToken;
    delete plugin.pool;
    (cfg.configuration as Json).value = JSON.stringify(plugin);
  });
  assert.ok(noToken.some((p) => p.includes("controlToken")));
  assert.ok(noToken.some((p) => p.includes("pool.namespace")));
  const broken = envoyWith((c) => ((wasmConfig(c, 0).configuration as Json).value = "{pool:"));
  assert.ok(broken.some((p) => p.includes("not JSON")));
});

test("object checks catch missing metadata.name and a non-structural CRD", () => {
  assert.deepEqual(checkObjectShape({ apiVersion: "v1", kind: "Secret", metadata: {} }, "x"), [
    "x: Secret has no metadata.name",
  ]);
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "things.example.com" },
    spec: {
      versions: [
        {
          name: "v1",
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  properties: { list: { type: "array" }, free: {}, bag: { type: "object" } },
                },
              },
            },
          },
        },
      ],
    },
  };
  const problems = checkCrd(crd, "crd");
  assert.ok(
    problems.some((p) => p.includes("list: array without items")),
    problems.join("\n"),
  );
  assert.ok(problems.some((p) => p.includes("free: no type")));
  assert.ok(problems.some((p) => p.includes("bag: object without properties")));
});

test("cross-reference checks catch a missing ServiceAccount, Secret, ConfigMap and a wrong targetPort", () => {
  const docs = parseYaml(
    `apiVersion: apps/v1
kind: Deployment
metadata: { name: d, namespace: n }
spec:
  template:
    metadata: { labels: { app: a } }
    spec:
      serviceAccountName: ghost
      containers:
        - name: c
          ports: [{ containerPort: 9090 }]
          volumeMounts: [{ name: cfg, mountPath: /c }, { name: undeclared, mountPath: /u }]
      volumes:
        - { name: cfg, configMap: { name: missing-cm } }
        - { name: tok, secret: { secretName: missing-secret } }
---
apiVersion: v1
kind: Service
metadata: { name: s, namespace: n }
spec: { selector: { app: a }, ports: [{ port: 80, targetPort: 8080 }] }
`,
    "inline",
  ).map((d) => d.value as Json);
  const problems = checkCrossReferences(docs).join("\n");
  for (const expected of [
    "ServiceAccount ghost",
    "Secret missing-secret",
    "ConfigMap missing-cm",
    "undeclared",
    "targetPort 8080",
  ])
    assert.ok(problems.includes(expected), `expected a problem naming ${expected}:\n${problems}`);
});

test("envoy checks catch a Wasm filter without allow_on_headers_stop_iteration", () => {
  for (const listener of [0, 1]) {
    const problems = envoyWith((c) => delete wasmConfig(c, listener).allow_on_headers_stop_iteration);
    assert.ok(
      problems.some((p) => p.includes("allow_on_headers_stop_iteration must be true")),
      problems.join("\n"),
    );
  }
});
