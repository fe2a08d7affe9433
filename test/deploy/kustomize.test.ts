// Every kustomize target renders with `kubectl kustomize`, and the rendered objects pass the same checks as the
// source files plus the cross-references that only exist after rendering (hashed ConfigMap names, patches).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import { at, flagValues, isObj, objs, str, type Json } from "./json-path.ts";
import {
  allContainers,
  checkCrd,
  checkCrossReferences,
  checkObjectShape,
  describe,
  grantedPermissions,
  podSpecs,
} from "./k8s-checks.ts";
import { checkEnvoyConfig, controlListener, dataListeners, CONTROL_PATH, ROOT_ID } from "./envoy-checks.ts";
import { kustomizeAll, kustomizeSkip, kustomizeTargets } from "./kustomize-render.ts";
import {
  checkEnvoyGatewayRouting,
  checkEnvoyPatchPolicy,
  checkIstioSetup,
  egControlPort,
  istioWasmFilter,
} from "./gateway-checks.ts";
import { parseYaml } from "./yaml-files.ts";

// Every directory under deploy/ with a kustomization.yaml (globbed, so new targets are checked too).
const TARGETS = kustomizeTargets();
const SIDECAR_SA = "epp-sidecar";
const PERMISSIONS = new Set(
  [
    "inference.networking.k8s.io/inferencepools",
    "inference.networking.x-k8s.io/inferencepools",
    "inference.networking.x-k8s.io/inferencemodels",
    "inference.networking.x-k8s.io/inferenceobjectives",
    "inference.networking.x-k8s.io/inferencemodelrewrites",
    "llm-d.ai/inferenceobjectives",
    "llm-d.ai/inferencemodelrewrites",
    "/pods",
    // Per-pool scheduling configs (epp-wasm.io/config).
    "/configmaps",
  ].flatMap((r) => ["get", "list", "watch"].map((v) => `${r}:${v}`)),
);

// Skips (with the reason) when kubectl is missing, except under CI, where the renders fail naming it.
const skip = kustomizeSkip();
const rendered = new Map<string, Json[]>();

before(async () => {
  if (skip) return;
  for (const [t, list] of await kustomizeAll(TARGETS)) rendered.set(t, list);
});

function objects(target: string): Json[] {
  const o = rendered.get(target);
  assert.ok(o, `${target} was rendered (has a kustomization.yaml)`);
  return o;
}

function one(list: Json[], kind: string, name?: string): Json {
  const found = list.filter(
    (o) => o.kind === kind && (name === undefined || at(o, "metadata.name") === name),
  );
  assert.equal(found.length, 1, `exactly one ${kind} ${name ?? ""}`);
  return found[0];
}

function container(workload: Json, name: string): Json {
  const c = allContainers(at(workload, "spec.template.spec") as Json).find((x) => x.name === name);
  assert.ok(c, `${describe(workload)} has container ${name}`);
  return c;
}

/** The volume behind a mount path of a container, e.g. which volume holds /etc/envoy/wasm/filter.wasm. */
function volumeAt(c: Json, path: string): string | undefined {
  const m = objs(c.volumeMounts)
    .filter((x) => path === x.mountPath || path.startsWith(String(x.mountPath) + "/"))
    .sort((a, b) => String(b.mountPath).length - String(a.mountPath).length)[0];
  return m ? String(m.name) : undefined;
}

for (const target of TARGETS) {
  test(`${target} renders with kubectl kustomize and passes the object checks`, { skip }, () => {
    const list = objects(target);
    assert.ok(list.length > 0, "renders objects");
    const problems = [
      ...list.flatMap((o) => checkObjectShape(o, `${target}: ${describe(o)}`)),
      ...list.filter((o) => o.kind === "CustomResourceDefinition").flatMap((o) => checkCrd(o, describe(o))),
      ...checkCrossReferences(list),
    ];
    assert.deepEqual(problems, []);
  });
}

for (const overlay of [
  "deploy/overlays/envoy-gateway",
  "deploy/overlays/standalone-envoy",
  "deploy/overlays/istio",
]) {
  test(
    `${overlay}: the sidecar may read exactly the inference CRs, pods and ConfigMaps, nothing else`,
    { skip },
    () => {
      const list = objects(overlay);
      assert.equal(list.filter((o) => o.kind === "ClusterRoleBinding").length, 0, "no cluster-wide grants");
      const bindings = list.filter(
        (o) =>
          o.kind === "RoleBinding" &&
          objs(o.subjects).some((s) => s.kind === "ServiceAccount" && s.name === SIDECAR_SA),
      );
      const roles = bindings.map((b) =>
        one(
          list.filter((o) => at(o, "metadata.namespace") === at(b, "metadata.namespace")),
          "Role",
          String(at(b, "roleRef.name")),
        ),
      );
      const granted = grantedPermissions(roles);
      for (const p of granted) assert.ok(PERMISSIONS.has(p), `unexpected permission ${p}`);
      const deployment = one(list, "Deployment", "epp");
      const ns = String(at(deployment, "metadata.namespace"));
      const local = grantedPermissions(roles.filter((r) => at(r, "metadata.namespace") === ns));
      assert.deepEqual(
        [...local].sort(),
        [...PERMISSIONS].sort(),
        "all needed permissions in the sidecar's namespace",
      );
      assert.equal(at(deployment, "spec.template.spec.serviceAccountName"), SIDECAR_SA);
    },
  );
}

test("standalone-envoy: Envoy, its ConfigMap, the init containers and the sidecar agree", { skip }, () => {
  const list = objects("deploy/overlays/standalone-envoy");
  const deployment = one(list, "Deployment", "epp");
  const spec = at(deployment, "spec.template.spec") as Json;
  const envoy = container(deployment, "envoy");
  const sidecar = container(deployment, "sidecar");
  const render = container(deployment, "render-envoy-config");
  const install = container(deployment, "install-filter");

  // The ConfigMap the template volume points at holds an Envoy config that passes every Envoy check.
  const templateVolume = objs(spec.volumes).find((v) => v.name === volumeAt(render, "/etc/envoy/template"));
  const cm = one(list, "ConfigMap", String(at(templateVolume, "configMap.name")));
  const template = parseYaml(String((cm.data as Json)["envoy-template.yaml"]), "envoy-config ConfigMap")[0]
    .value;
  assert.deepEqual(checkEnvoyConfig(template), []);
  assert.match(String(render.args), /\/etc\/envoy\/template\/envoy-template\.yaml/);

  // Envoy reads the file the render step writes, from the same volume.
  const configPath = flagValues(envoy.args, "-c")[0];
  assert.match(String(render.args), new RegExp(`> ${configPath.replaceAll(".", "\\.")}`));
  assert.equal(volumeAt(envoy, configPath), volumeAt(render, configPath));
  // ... and loads the module from the file install-filter copies, again through one shared volume.
  const wasmPath = controlListener(template)!.wasm[0].code;
  assert.deepEqual(install.args, [wasmPath]);
  assert.equal(volumeAt(envoy, wasmPath), volumeAt(install, wasmPath));
  assert.ok(volumeAt(envoy, wasmPath), "the module path is mounted in the envoy container");
  // The render step reads the token from the same Secret the sidecar reads.
  const secretOf = (c: Json, path: string) =>
    at(
      objs(spec.volumes).find((v) => v.name === volumeAt(c, path)),
      "secret.secretName",
    );
  const tokenFile = flagValues(sidecar.args, "--token-file")[0];
  assert.ok(secretOf(sidecar, tokenFile), "the sidecar's token file comes from a Secret");
  assert.equal(secretOf(render, "/var/run/epp/token"), secretOf(sidecar, tokenFile));
  assert.match(String(render.args), /\/var\/run\/epp\/token/);

  // The sidecar pushes to the control listener; the Service targets the data listener.
  const control = controlListener(template)!;
  assert.deepEqual(flagValues(sidecar.args, "--envoy"), [`http://127.0.0.1:${control.port}`]);
  assert.deepEqual(
    flagValues(envoy.args, "--envoy"),
    [],
    "sidecar flags landed on the sidecar, not on Envoy",
  );
  assert.deepEqual(flagValues(sidecar.args, "--control-path"), [CONTROL_PATH]);
  assert.equal(at(control.wasm[0].plugin, "pool.name"), "${EPP_POOL_NAME}");
  const renderEnv = Object.fromEntries(objs(render.env).map((e) => [e.name, e.value]));
  assert.equal(
    flagValues(sidecar.args, "--pool-name")[0],
    renderEnv.EPP_POOL_NAME,
    "render and sidecar name one pool",
  );
  assert.match(String(render.args), /\$\{EPP_POOL_NAME\}\|\$EPP_POOL_NAME/);
  const dataPort = dataListeners(template)[0].port;
  assert.ok(objs(envoy.ports).some((p) => p.containerPort === dataPort));
  const svc = one(list, "Service", "epp-gateway");
  assert.equal(at(svc, "spec.ports.0.targetPort"), dataPort);
});

test("envoy-gateway: policies, routes, pool, token and push discovery agree", { skip }, () => {
  const list = objects("deploy/overlays/envoy-gateway");
  const policy = one(list, "EnvoyExtensionPolicy");
  const gateway = one(list, "Gateway");
  const patch = one(list, "EnvoyPatchPolicy");
  // The patch policy (flags on the generated filter, the control port) and the routing, as rendered.
  assert.deepEqual(checkEnvoyPatchPolicy(patch, policy, list), []);
  assert.deepEqual(checkEnvoyGatewayRouting(list), []);
  const pool = one(list, "InferencePool");
  const secret = one(list, "Secret", "epp-control-token");
  const wasm = objs(at(policy, "spec.wasm"));
  assert.equal(wasm.length, 1);
  const w = wasm[0];
  assert.equal(w.rootID, ROOT_ID);
  assert.equal(at(w, "code.type"), "Image");
  assert.match(String(at(w, "code.image.url")), /^[\w.-]+(:\d+)?\/[\w./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/);
  const config = w.config as Json;
  assert.ok(isObj(config));
  assert.deepEqual(config.pool, {
    namespace: at(pool, "metadata.namespace"),
    name: at(pool, "metadata.name"),
  });
  // The token is copied from the Secret into the control chain's plugin configuration (the last JSON patch).
  const controlPlugin = JSON.parse(
    String(at(objs(at(patch, "spec.jsonPatches")).at(-1), "operation.value")),
  ) as Json;
  assert.equal(controlPlugin.controlToken, at(secret, "stringData.token"), "token copied from the Secret");
  assert.equal(controlPlugin.controlPath, CONTROL_PATH);
  assert.deepEqual(controlPlugin.pool, config.pool);

  const gwName = String(at(gateway, "metadata.name"));
  const gwNs = String(at(gateway, "metadata.namespace"));
  for (const ref of objs(at(policy, "spec.targetRefs")))
    assert.deepEqual([ref.kind, ref.name], ["Gateway", gwName]);
  const listenerNames = objs(at(gateway, "spec.listeners")).map((l) => l.name);
  for (const r of list.filter((o) => o.kind === "HTTPRoute"))
    for (const p of objs(at(r, "spec.parentRefs"))) {
      assert.equal(p.name, gwName);
      if (p.sectionName !== undefined) assert.ok(listenerNames.includes(p.sectionName));
    }

  // Push discovery: selector on Envoy Gateway's owner labels, port = the control port the patch policy adds.
  const deployment = one(list, "Deployment", "epp");
  const sidecar = container(deployment, "sidecar");
  const selector = flagValues(sidecar.args, "--envoy-selector")[0];
  assert.ok(selector, "--envoy-selector is set");
  const labels = Object.fromEntries(selector.split(",").map((kv) => kv.split("=")));
  assert.equal(labels["gateway.envoyproxy.io/owning-gateway-name"], gwName);
  assert.equal(labels["gateway.envoyproxy.io/owning-gateway-namespace"], gwNs);
  assert.deepEqual(flagValues(sidecar.args, "--envoy-port"), [String(egControlPort(patch, policy, list))]);
  assert.equal(flagValues(sidecar.args, "--pool-name")[0], at(pool, "metadata.name"));
  // The sidecar may list pods where the proxies run.
  const envoyNs =
    flagValues(sidecar.args, "--envoy-namespace")[0] ?? str(at(deployment, "metadata.namespace"));
  const rolesThere = list.filter((o) => o.kind === "Role" && at(o, "metadata.namespace") === envoyNs);
  assert.ok(grantedPermissions(rolesThere).has("/pods:list"), `pods readable in ${envoyNs}`);
  assert.ok(podSpecs(list).length === 1, "only the sidecar runs as a pod; Envoy Gateway owns the proxies");
});

test("istio: Wasm EnvoyFilters, override_host routing, token and push discovery agree", { skip }, () => {
  const list = objects("deploy/overlays/istio");
  assert.equal(
    list.filter((o) => o.kind === "WasmPlugin").length,
    0,
    "no WasmPlugin next to the EnvoyFilter",
  );
  const { controlPort, problems } = checkIstioSetup(list);
  assert.deepEqual(problems, []);
  const wasmFilter = one(list, "EnvoyFilter", "epp-filter");
  const controlFilter = one(list, "EnvoyFilter", "epp-filter-control");
  const secret = one(list, "Secret", "epp-control-token");
  const config = istioWasmFilter(controlFilter).plugin;
  assert.ok(config, "the plugin configuration is a JSON object");
  assert.equal(config.controlToken, at(secret, "stringData.token"), "token copied from the Secret");
  assert.equal(config.controlPath, CONTROL_PATH);
  assert.equal(
    istioWasmFilter(wasmFilter).plugin?.controlToken,
    undefined,
    "no token on the public listener",
  );
  assert.ok(str(at(config, "pool.name")) && str(at(config, "pool.namespace")));

  const sidecar = container(one(list, "Deployment", "epp"), "sidecar");
  const selector = flagValues(sidecar.args, "--envoy-selector")[0];
  const [key, value] = selector.split("=");
  for (const f of [wasmFilter, controlFilter])
    assert.deepEqual(
      at(f, "spec.workloadSelector.labels"),
      { [key]: value },
      "the sidecar pushes to the pods the filter runs in",
    );
  const envoyNs = flagValues(sidecar.args, "--envoy-namespace")[0];
  assert.equal(at(wasmFilter, "metadata.namespace"), envoyNs);
  assert.deepEqual(flagValues(sidecar.args, "--envoy-port"), [String(controlPort)]);
  assert.equal(
    at(config, "pool.name"),
    flagValues(sidecar.args, "--pool-name")[0],
    "filter and sidecar name one pool",
  );
  assert.equal(at(config, "pool.namespace"), at(one(list, "Deployment", "epp"), "metadata.namespace"));
  const rolesThere = list.filter((o) => o.kind === "Role" && at(o, "metadata.namespace") === envoyNs);
  assert.ok(grantedPermissions(rolesThere).has("/pods:list"), `pods readable in ${envoyNs}`);
});

for (const overlay of [
  "deploy/overlays/envoy-gateway",
  "deploy/overlays/standalone-envoy",
  "deploy/overlays/istio",
]) {
  test(`${overlay}: the token placeholder appears only where the token belongs`, { skip }, () => {
    // docs/deploy.md substitutes the placeholder in the rendered output with sed; anywhere else it would leak.
    const placeholder = String(at(one(objects(overlay), "Secret", "epp-control-token"), "stringData.token"));
    const holders = objects(overlay)
      .filter((o) => JSON.stringify(o).includes(placeholder))
      .map((o) => `${String(o.kind)}/${String(at(o, "metadata.name"))}`)
      .sort();
    // Only the control listener's plugin configuration carries the token.
    const allowed = [
      "EnvoyPatchPolicy/epp-filter-patches",
      "Secret/epp-control-token",
      "EnvoyFilter/epp-filter-control",
    ];
    assert.ok(holders.includes("Secret/epp-control-token"));
    for (const h of holders) assert.ok(allowed.includes(h), `${h} contains the token placeholder`);
  });
}
