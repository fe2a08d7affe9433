// The static checkers must be able to fail: each broken variant of a shipped file is caught.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readYamlOne, parseYaml } from "./yaml-files.ts";
import { at, type Json } from "./json-path.ts";
import { checkEnvoyConfig } from "./envoy-checks.ts";
import { checkCrd, checkCrossReferences, checkObjectShape } from "./k8s-checks.ts";
import { checkEnvoyPatchPolicy, checkIstioWasmFilter } from "./gateway-checks.ts";

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

function egPatchWith(mutate: (patch: Json, policy: Json, gateway: Json) => void): string[] {
  const patch = structuredClone(readYamlOne("deploy/envoy-gateway/envoypatchpolicy.yaml")) as Json;
  const policy = structuredClone(readYamlOne("deploy/envoy-gateway/envoyextensionpolicy.yaml")) as Json;
  const gateway = structuredClone(readYamlOne("deploy/envoy-gateway/gateway.yaml")) as Json;
  mutate(patch, policy, gateway);
  return checkEnvoyPatchPolicy(patch, policy, [gateway]);
}

function egOperation(patch: Json): Json {
  return at(patch, "spec.jsonPatches.0.operation") as Json;
}

test("EnvoyPatchPolicy checks catch a renamed policy, a false value, a wrong listener and a missing Gateway", () => {
  const renamed = egPatchWith((_, policy) => ((policy.metadata as Json).name = "other-filter"));
  assert.ok(
    renamed.some((p) =>
      p.includes(
        "must select the filter envoy.filters.http.wasm/envoyextensionpolicy/inference/other-filter/wasm/0",
      ),
    ),
    renamed.join("\n"),
  );
  const wrongIndex = egPatchWith((patch) => {
    const op = egOperation(patch);
    op.jsonPath = String(op.jsonPath).replace("/wasm/0", "/wasm/1");
  });
  assert.ok(
    wrongIndex.some((p) => p.includes("must select the filter")),
    wrongIndex.join("\n"),
  );
  const off = egPatchWith((patch) => (egOperation(patch).value = false));
  assert.ok(
    off.some((p) => p.includes("must be set to true")),
    off.join("\n"),
  );
  const listener = egPatchWith(
    (patch) => ((at(patch, "spec.jsonPatches.0") as Json).name = "inference/inference-gateway/https"),
  );
  assert.ok(
    listener.some((p) => p.includes("is not one of")),
    listener.join("\n"),
  );
  const field = egPatchWith((patch) => (egOperation(patch).path = "/allow_on_headers_stop_iteration_typo"));
  assert.ok(
    field.some((p) => p.includes("must set typed_config.config.allow_on_headers_stop_iteration")),
    field.join("\n"),
  );
  const noGateway = egPatchWith((patch) => ((at(patch, "spec.targetRef") as Json).name = "ghost"));
  assert.ok(
    noGateway.some((p) => p.includes("targetRef must name a Gateway")),
    noGateway.join("\n"),
  );
});

function istioWith(mutate: (envoyFilter: Json) => void): string[] {
  const envoyFilter = structuredClone(readYamlOne("deploy/istio/wasm-filter.yaml")) as Json;
  mutate(envoyFilter);
  return checkIstioWasmFilter(envoyFilter, { istio: "ingressgateway" });
}

function istioPatch(envoyFilter: Json, applyTo: string): Json {
  return (at(envoyFilter, "spec.configPatches") as Json[]).find((p) => p.applyTo === applyTo)!;
}

test("Istio EnvoyFilter checks catch a false flag, a MERGE, a dangling filter name and another selector", () => {
  const off = istioWith(
    (f) =>
      ((
        at(istioPatch(f, "EXTENSION_CONFIG"), "patch.value.typed_config.config") as Json
      ).allow_on_headers_stop_iteration = false),
  );
  assert.ok(
    off.some((p) => p.includes("allow_on_headers_stop_iteration must be true")),
    off.join("\n"),
  );
  const merge = istioWith((f) => ((istioPatch(f, "EXTENSION_CONFIG").patch as Json).operation = "MERGE"));
  assert.ok(
    merge.some((p) => p.includes("operation ADD")),
    merge.join("\n"),
  );
  const dangling = istioWith(
    (f) => ((at(istioPatch(f, "HTTP_FILTER"), "patch.value") as Json).name = "istio-system.other"),
  );
  assert.ok(
    dangling.some((p) => p.includes("no HTTP_FILTER patch named istio-system.epp-filter")),
    dangling.join("\n"),
  );
  const renamed = istioWith((f) => ((f.metadata as Json).name = "picker"));
  assert.ok(
    renamed.some((p) => p.includes("expected istio-system.picker")),
    renamed.join("\n"),
  );
  const selector = istioWith((f) => ((at(f, "spec.workloadSelector") as Json).labels = { app: "other" }));
  assert.ok(
    selector.some((p) => p.includes("workloadSelector")),
    selector.join("\n"),
  );
  const token = istioWith((f) => {
    const cfg = at(
      istioPatch(f, "EXTENSION_CONFIG"),
      "patch.value.typed_config.config.configuration",
    ) as Json;
    cfg.value = String(cfg.value).replace('"controlToken":"set-by-kustomize-from-secret",', "");
  });
  assert.ok(
    token.some((p) => p.includes("controlToken")),
    token.join("\n"),
  );
});
