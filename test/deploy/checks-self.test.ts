// The static checkers must be able to fail: each broken variant of a shipped file is caught.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readYaml, readYamlOne, parseYaml } from "./yaml-files.ts";
import { at, type Json } from "./json-path.ts";
import { checkEnvoyConfig } from "./envoy-checks.ts";
import { checkControlPortPolicy, checkCrd, checkCrossReferences, checkObjectShape } from "./k8s-checks.ts";
import {
  checkEnvoyGatewayRouting,
  checkEnvoyPatchPolicy,
  checkIstioSetup,
  checkIstioWasmFilter,
} from "./gateway-checks.ts";

function envoyWith(mutate: (c: Json) => void, file = "envoy/envoy.yaml"): string[] {
  const config = structuredClone(readYamlOne(file)) as Json;
  mutate(config);
  return checkEnvoyConfig(config);
}

/** Asserts that some problem contains `text`, showing all of them otherwise. */
function refuses(problems: string[], text: string): void {
  assert.ok(
    problems.some((p) => p.includes(text)),
    `expected a problem containing "${text}", got:\n${problems.join("\n")}`,
  );
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

/** Rewrites the plugin configuration of listener `listener`'s Wasm filter. */
function plugin(c: Json, listener: number, edit: (p: Json) => void): void {
  const cfg = wasmConfig(c, listener);
  const p = JSON.parse(String(at(cfg, "configuration.value"))) as Json;
  edit(p);
  (cfg.configuration as Json).value = JSON.stringify(p);
}

function dataRoute(c: Json): Json {
  return at(
    c,
    "static_resources.listeners.0.filter_chains.0.filters.0.typed_config.route_config.virtual_hosts.0.routes.0.route",
  ) as Json;
}

test("envoy checks catch a control listener without token, a pool-less plugin, and broken JSON", () => {
  const noToken = envoyWith((c) =>
    plugin(c, 1, (p) => {
      delete p.controlToken;
      delete p.pool;
    }),
  );
  refuses(noToken, "controlToken");
  refuses(noToken, "pool.namespace");
  refuses(
    envoyWith((c) => ((wasmConfig(c, 0).configuration as Json).value = "{pool:")),
    "not JSON",
  );
});

test("envoy checks refuse a data listener whose plugin enables the control path", () => {
  refuses(
    envoyWith((c) => plugin(c, 0, (p) => (p.controlPath = "/epp/v1/snapshot"))),
    "must not enable the control path (found controlPath)",
  );
  refuses(
    envoyWith((c) => plugin(c, 0, (p) => (p.controlToken = "t"))),
    "must not enable the control path (found controlToken)",
  );
});

test("envoy checks refuse an ORIGINAL_DST cluster fed a list: override_host mode or maxFallbacks > 0", () => {
  refuses(
    envoyWith((c) => plugin(c, 0, (p) => (p.destinationMode = "override_host"))),
    "ORIGINAL_DST cluster parses one ip:port, so destinationMode must be original_dst",
  );
  refuses(
    envoyWith((c) => plugin(c, 0, (p) => (p.maxFallbacks = 3))),
    "an ORIGINAL_DST cluster needs maxFallbacks 0",
  );
  refuses(
    envoyWith((c) => plugin(c, 0, (p) => delete p.destinationMode)),
    "destinationMode must be set",
  );
});

test("envoy checks refuse an override_host cluster without retries that walk the list, or fed one address", () => {
  const file = "envoy/envoy-override-host.yaml";
  refuses(
    envoyWith((c) => delete dataRoute(c).retry_policy, file),
    "override_host needs a retry policy",
  );
  refuses(
    envoyWith((c) => ((dataRoute(c).retry_policy as Json).num_retries = 1), file),
    "num_retries 1 < maxFallbacks 3",
  );
  refuses(
    envoyWith((c) => plugin(c, 0, (p) => (p.destinationMode = "original_dst")), file),
    "destinationMode must be override_host",
  );
});

test("envoy checks refuse fail_open, a missing failure_policy, and retry_on reset", () => {
  refuses(
    envoyWith((c) => (wasmConfig(c, 0).fail_open = false)),
    "fail_open is deprecated",
  );
  refuses(
    envoyWith((c) => delete wasmConfig(c, 1).failure_policy),
    "failure_policy must be FAIL_CLOSED",
  );
  refuses(
    envoyWith((c) => ((dataRoute(c).retry_policy as Json).retry_on = "connect-failure,reset")),
    'retry_on "reset" also retries',
  );
  refuses(
    envoyWith((c) => ((dataRoute(c).retry_policy as Json).retry_on = "connect-failure")),
    "retries must trigger on reset-before-request",
  );
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

const EG_FILES = [
  "deploy/model-pool/inferencepool.yaml",
  "deploy/model-pool/service.yaml",
  "deploy/envoy-gateway/gateway.yaml",
  "deploy/envoy-gateway/httproute.yaml",
  "deploy/envoy-gateway/backendtrafficpolicy.yaml",
  "deploy/envoy-gateway/clienttrafficpolicy.yaml",
  "deploy/envoy-gateway/envoyextensionpolicy.yaml",
  "deploy/envoy-gateway/envoypatchpolicy.yaml",
];

function egObjects(): Json[] {
  return EG_FILES.flatMap((f) => readYaml(f).map((d) => structuredClone(d.value) as Json));
}

function find(list: Json[], kind: string): Json {
  return list.find((o) => o.kind === kind)!;
}

function egPatchWith(mutate: (patch: Json, policy: Json, gateway: Json) => void): string[] {
  const list = egObjects();
  const [patch, policy, gateway] = [
    find(list, "EnvoyPatchPolicy"),
    find(list, "EnvoyExtensionPolicy"),
    find(list, "Gateway"),
  ];
  mutate(patch, policy, gateway);
  return checkEnvoyPatchPolicy(patch, policy, [gateway]);
}

function egOperation(patch: Json, i = 0): Json {
  return at(patch, `spec.jsonPatches.${i}.operation`) as Json;
}

function egPatches(patch: Json): Json[] {
  return at(patch, "spec.jsonPatches") as Json[];
}

test("EnvoyPatchPolicy checks catch a renamed policy, a false value, a wrong listener and a missing Gateway", () => {
  refuses(
    egPatchWith((_, policy) => ((policy.metadata as Json).name = "other-filter")),
    "must select the filter envoy.filters.http.wasm/envoyextensionpolicy/inference/other-filter/wasm/0",
  );
  refuses(
    egPatchWith((patch) => {
      const op = egOperation(patch);
      op.jsonPath = String(op.jsonPath).replace("/wasm/0", "/wasm/1");
    }),
    "must select the filter",
  );
  refuses(
    egPatchWith((patch) => (egOperation(patch).value = false)),
    "allow_on_headers_stop_iteration must be set to true",
  );
  refuses(
    egPatchWith((patch) => {
      for (const p of egPatches(patch)) p.name = "inference/inference-gateway/https";
    }),
    "is not one of",
  );
  // XDSNameSchemeV2 names the listener after the Gateway port (tcp-80), not the container port.
  refuses(
    egPatchWith((patch) => {
      for (const p of egPatches(patch)) p.name = "tcp-10080";
    }),
    "listener tcp-10080 is not one of inference/inference-gateway/http, tcp-80",
  );
  assert.deepEqual(
    egPatchWith((patch) => {
      for (const p of egPatches(patch)) p.name = "tcp-80";
    }),
    [],
  );
  refuses(
    egPatchWith((patch) => (egOperation(patch).path = "/allow_on_headers_stop_iteration_typo")),
    "no JSON patch sets allow_on_headers_stop_iteration",
  );
  refuses(
    egPatchWith((patch) => (egOperation(patch, 1).value = "FAIL_OPEN")),
    "failure_policy must be set to FAIL_CLOSED",
  );
  refuses(
    egPatchWith((patch) => ((at(patch, "spec.targetRef") as Json).name = "ghost")),
    "targetRef must name a Gateway",
  );
});

test("EnvoyPatchPolicy checks refuse a control chain that cannot work or is not private", () => {
  const withoutOp = (match: (o: Json) => boolean) =>
    egPatchWith((patch) => {
      const list = egPatches(patch);
      list.splice(
        list.findIndex((p) => match(p.operation as Json)),
        1,
      );
    });
  // No filter_chains array to copy into: the copy fails, as it would in Envoy Gateway.
  refuses(
    withoutOp((o) => o.path === "/filter_chains"),
    "missing parent",
  );
  // The control chain keeps the public routes.
  refuses(
    withoutOp((o) => o.op === "remove"),
    "must have its own route table",
  );
  // Still disabled: no route on the control chain enables it.
  refuses(
    withoutOp((o) => o.path === "/disabled"),
    "the control chain's filter is disabled",
  );
  // The copy keeps the data plugin configuration: no control path, no token.
  refuses(
    withoutOp((o) => o.path === "/value"),
    "controlPath must be /epp/v1/snapshot",
  );
  // A control port Envoy Gateway already uses.
  refuses(
    egPatchWith((patch) => {
      for (const p of egPatches(patch)) {
        const o = p.operation as Json;
        if (o.path === "/additional_addresses")
          ((o.value as Json[])[0].address as Json).socket_address = { address: "0.0.0.0", port_value: 19001 };
        if (o.path === "/filter_chains/0/filter_chain_match") o.value = { destination_port: 19001 };
      }
    }),
    "port 19001 is one of Envoy Gateway's own",
  );
});

test("Envoy Gateway routing checks refuse an InferencePool backend, missing retries or override, a small buffer", () => {
  const withList = (mutate: (list: Json[]) => void) => {
    const list = egObjects();
    mutate(list);
    return checkEnvoyGatewayRouting(list);
  };
  refuses(
    withList((list) => {
      const ref = at(find(list, "HTTPRoute"), "spec.rules.0.backendRefs.0") as Json;
      Object.assign(ref, { group: "inference.networking.k8s.io", kind: "InferencePool", port: undefined });
    }),
    "an InferencePool backend makes Envoy AI Gateway build an ORIGINAL_DST cluster",
  );
  refuses(
    withList((list) => delete (find(list, "BackendTrafficPolicy").spec as Json).retry),
    "override_host needs a retry policy",
  );
  refuses(
    withList((list) => ((at(find(list, "BackendTrafficPolicy"), "spec.retry") as Json).numRetries = 1)),
    "num_retries 1 < maxFallbacks 3",
  );
  refuses(
    withList(
      (list) =>
        ((at(find(list, "BackendTrafficPolicy"), "spec.retry.retryOn") as Json).triggers = [
          "connect-failure",
          "reset",
        ]),
    ),
    'retry_on "reset"',
  );
  refuses(
    withList(
      (list) => delete (at(find(list, "BackendTrafficPolicy"), "spec.loadBalancer") as Json).endpointOverride,
    ),
    "loadBalancer.endpointOverride must extract x-gateway-destination-endpoint",
  );
  refuses(
    withList(
      (list) => ((at(find(list, "ClientTrafficPolicy"), "spec.connection") as Json).bufferLimit = "32Ki"),
    ),
    "connection.bufferLimit must be at least",
  );
  refuses(
    withList((list) => list.splice(list.indexOf(find(list, "ClientTrafficPolicy")), 1)),
    "no ClientTrafficPolicy raises",
  );
  refuses(
    withList(
      (list) => ((at(find(list, "EnvoyExtensionPolicy"), "spec.wasm.0.config") as Json).controlToken = "t"),
    ),
    "must not enable the control path",
  );
  refuses(
    withList((list) => ((at(find(list, "EnvoyExtensionPolicy"), "spec.wasm.0") as Json).failOpen = true)),
    "failOpen must be false",
  );
  refuses(
    withList(
      (list) =>
        ((at(find(list, "EnvoyExtensionPolicy"), "spec.wasm.0.config") as Json).destinationMode =
          "original_dst"),
    ),
    "destinationMode must be override_host",
  );
});

function istioObjects(): Json[] {
  return ["deploy/istio/routing.yaml", "deploy/istio/wasm-filter.yaml"].flatMap((f) =>
    readYaml(f).map((d) => structuredClone(d.value) as Json),
  );
}

function envoyFilter(list: Json[], name: string): Json {
  return list.find((o) => o.kind === "EnvoyFilter" && at(o, "metadata.name") === name)!;
}

function istioPatch(f: Json, applyTo: string): Json {
  return (at(f, "spec.configPatches") as Json[]).find((p) => p.applyTo === applyTo)!;
}

function istioPlugin(f: Json, edit: (p: Json) => void): void {
  const cfg = at(istioPatch(f, "EXTENSION_CONFIG"), "patch.value.typed_config.config.configuration") as Json;
  const p = JSON.parse(String(cfg.value)) as Json;
  edit(p);
  cfg.value = JSON.stringify(p);
}

function istioWith(mutate: (list: Json[]) => void): string[] {
  const list = istioObjects();
  mutate(list);
  return checkIstioSetup(list).problems;
}

test("Istio EnvoyFilter checks catch a false flag, a MERGE, a dangling filter name and another selector", () => {
  const check = (mutate: (f: Json) => void) => {
    const f = structuredClone(readYaml("deploy/istio/wasm-filter.yaml")[0].value) as Json;
    mutate(f);
    return checkIstioWasmFilter(f, { istio: "ingressgateway" }, "data");
  };
  refuses(
    check(
      (f) =>
        ((at(istioPatch(f, "EXTENSION_CONFIG"), "patch.value.typed_config.config") as Json)[
          "allow_on_headers_stop_iteration"
        ] = false),
    ),
    "allow_on_headers_stop_iteration must be true",
  );
  refuses(
    check((f) => ((istioPatch(f, "EXTENSION_CONFIG").patch as Json).operation = "MERGE")),
    "operation ADD",
  );
  refuses(
    check((f) => ((at(istioPatch(f, "HTTP_FILTER"), "patch.value") as Json).name = "istio-system.other")),
    "no HTTP_FILTER patch named istio-system.epp-filter",
  );
  refuses(
    check((f) => ((f.metadata as Json).name = "picker")),
    "expected istio-system.picker",
  );
  refuses(
    check((f) => ((at(f, "spec.workloadSelector") as Json).labels = { app: "other" })),
    "workloadSelector",
  );
  refuses(
    check(
      (f) =>
        ((at(istioPatch(f, "EXTENSION_CONFIG"), "patch.value.typed_config.config") as Json).failure_policy =
          "FAIL_OPEN"),
    ),
    "failure_policy must be FAIL_CLOSED",
  );
  refuses(
    check((f) => delete (at(istioPatch(f, "HTTP_FILTER"), "match.listener") as Json).portNumber),
    "must name its listener port",
  );
});

test("Istio setup checks refuse the control path on the public port, ORIGINAL_DST lists and unsafe retries", () => {
  refuses(
    istioWith((list) =>
      istioPlugin(envoyFilter(list, "epp-filter"), (p) => (p.controlPath = "/epp/v1/snapshot")),
    ),
    "expected one data and one control Wasm EnvoyFilter",
  );
  refuses(
    istioWith((list) => istioPlugin(envoyFilter(list, "epp-filter-control"), (p) => delete p.controlToken)),
    "controlToken",
  );
  // Port 8080 is only the legacy istio-ingress chart's; the istio/gateway chart listens on 80.
  refuses(
    istioWith(
      (list) =>
        ((
          at(istioPatch(envoyFilter(list, "epp-filter"), "HTTP_FILTER"), "match.listener") as Json
        ).portNumber = 8080),
    ),
    "the data filter's port 8080 is not a server port",
  );
  refuses(
    istioWith((list) => {
      const vs = list.find((o) => o.kind === "VirtualService")!;
      (vs.spec as Json).gateways = ["inference/inference-gateway", "inference/epp-control"];
    }),
    "must be its own Gateway server that no VirtualService binds",
  );
  // The former design: an ORIGINAL_DST cluster fed the override_host list.
  refuses(
    istioWith((list) => {
      const f = envoyFilter(list, "epp-override-host");
      (f.spec as Json).configPatches = [
        {
          applyTo: "CLUSTER",
          match: { context: "GATEWAY" },
          patch: {
            operation: "ADD",
            value: {
              name: "original_destination_cluster",
              type: "ORIGINAL_DST",
              lb_policy: "CLUSTER_PROVIDED",
              original_dst_lb_config: {
                use_http_header: true,
                http_header_name: "x-gateway-destination-endpoint",
              },
            },
          },
        },
        {
          applyTo: "HTTP_ROUTE",
          match: { context: "GATEWAY", routeConfiguration: { vhost: { route: { name: "inference" } } } },
          patch: {
            operation: "MERGE",
            value: {
              route: {
                cluster: "original_destination_cluster",
                retry_policy: { retry_on: "connect-failure,refused-stream,reset", num_retries: 2 },
              },
            },
          },
        },
      ];
    }),
    "ORIGINAL_DST cluster parses one ip:port",
  );
  refuses(
    istioWith((list) => {
      const h = at(
        list.find((o) => o.kind === "VirtualService"),
        "spec.http.0",
      ) as Json;
      (h.retries as Json).retryOn = "connect-failure,reset";
    }),
    'retry_on "reset"',
  );
  refuses(
    istioWith(
      (list) =>
        delete (
          at(
            list.find((o) => o.kind === "VirtualService"),
            "spec.http.0",
          ) as Json
        ).retries,
    ),
    "override_host needs a retry policy",
  );
  refuses(
    istioWith((list) => list.splice(list.indexOf(envoyFilter(list, "epp-buffer-limit")), 1)),
    "per_connection_buffer_limit_bytes must be at least",
  );
});

test("control-port NetworkPolicy checks refuse a port open to everyone and a closed public port", () => {
  const policy = () =>
    structuredClone(readYamlOne("deploy/overlays/istio/control-port-networkpolicy.yaml")) as Json;
  const want = {
    podLabels: { istio: "ingressgateway" },
    controlPort: 19101,
    openPorts: [80],
    sidecarNamespace: "inference",
    sidecarLabels: { "app.kubernetes.io/name": "epp" },
  };
  assert.deepEqual(checkControlPortPolicy(policy(), want), []);
  const open = policy();
  ((at(open, "spec.ingress.0.ports") as Json[])[0] as Json).endPort = 65535;
  refuses(checkControlPortPolicy(open, want), "open to more than the sidecar's pods");
  const closed = policy();
  ((at(closed, "spec.ingress.0.ports") as Json[])[0] as Json).endPort = 79;
  refuses(checkControlPortPolicy(closed, want), "port 80 is no longer open to everyone");
  const anyone = policy();
  delete (at(anyone, "spec.ingress.1") as Json).from;
  refuses(checkControlPortPolicy(anyone, want), "open to more than the sidecar's pods");
});

test("cross-reference checks refuse a model Service whose port is not the pool's target port", () => {
  const list = ["deploy/model-pool/inferencepool.yaml", "deploy/model-pool/service.yaml"].flatMap((f) =>
    readYaml(f).map((d) => structuredClone(d.value) as Json),
  );
  assert.deepEqual(checkCrossReferences(list), []);
  (at(find(list, "Service"), "spec.ports.0") as Json).targetPort = 9000;
  refuses(
    checkCrossReferences(list),
    "targetPort 9000 is not a target port of InferencePool inference/vllm-llama3-8b",
  );
});
