// The gateway configuration derived from our Envoy bootstraps (scripts/local-stack/gateway-config.ts): what it
// carries over, and that it refuses what the gateway does not model instead of dropping it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, stringify } from "yaml";
import { normalizeConfig } from "../../gateway/config.ts";
import {
  gatewayConfigFromEnvoy,
  ORIGINAL_DST_BOOTSTRAP,
  OVERRIDE_HOST_BOOTSTRAP,
} from "../../scripts/local-stack/gateway-config.ts";

const ports = { listeners: { data: { port: 0 }, control: { port: 0 } }, wasm: "build/filter.wasm" };

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** A copy of a shipped bootstrap with `edit` applied, in a temporary file. */
function edited(file: string, edit: (doc: Obj) => void): { path: string; done: () => void } {
  const doc = parseYaml(readFileSync(file, "utf8")) as Obj;
  edit(doc);
  const dir = mkdtempSync(join(tmpdir(), "epp-gw-config-"));
  const path = join(dir, "envoy.yaml");
  writeFileSync(path, stringify(doc));
  return { path, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const dataRoute = (doc: Obj): Obj =>
  doc.static_resources.listeners.find((l: Obj) => l.name === "data").filter_chains[0].filters[0].typed_config
    .route_config.virtual_hosts[0].routes[0].route;

test("envoy.yaml → ORIGINAL_DST, its retry policy, per-listener plugin configs; control-only fields stay on control", () => {
  const cfg = normalizeConfig(gatewayConfigFromEnvoy(ORIGINAL_DST_BOOTSTRAP, ports));
  assert.equal(cfg.cluster.type, "ORIGINAL_DST");
  assert.ok(cfg.retryPolicy);
  const data = cfg.listeners.find((l) => l.name === "data")!;
  const control = cfg.listeners.find((l) => l.name === "control")!;
  const dataPlugin = data.pluginConfig as Obj;
  assert.equal(dataPlugin.destinationMode, "original_dst");
  assert.equal(dataPlugin.controlToken, undefined);
  assert.equal(dataPlugin.controlPath, undefined);
  assert.equal(typeof (control.pluginConfig as Obj).controlToken, "string");
  assert.deepEqual(control.directResponse, { status: 404 });
  assert.equal(data.directResponse, undefined);
});

test("envoy-override-host.yaml → override_host with the given endpoints; numRetries covers the fallbacks", () => {
  const cfg = normalizeConfig(
    gatewayConfigFromEnvoy(OVERRIDE_HOST_BOOTSTRAP, {
      ...ports,
      endpoints: ["127.0.0.1:9001", "127.0.0.1:9002"],
    }),
  );
  assert.equal(cfg.cluster.type, "override_host");
  assert.deepEqual(cfg.cluster.type === "override_host" && cfg.cluster.endpoints, [
    "127.0.0.1:9001",
    "127.0.0.1:9002",
  ]);
  const plugin = cfg.listeners.find((l) => l.name === "data")!.pluginConfig as Obj;
  assert.equal(plugin.destinationMode, "override_host");
  assert.ok(cfg.retryPolicy!.numRetries >= Number(plugin.maxFallbacks));
  // Without endpoints, the bootstrap's own STATIC list.
  const shipped = normalizeConfig(gatewayConfigFromEnvoy(OVERRIDE_HOST_BOOTSTRAP, ports)).cluster;
  assert.ok(shipped.type === "override_host" && shipped.endpoints.length > 0);
});

test("overrides: plugin fields apply, destination fields are the bootstrap's", () => {
  const cfg = gatewayConfigFromEnvoy(ORIGINAL_DST_BOOTSTRAP, {
    ...ports,
    pluginConfig: { controlToken: "t", failureMode: "FailOpen" },
  }) as { listeners: Array<{ name: string; pluginConfig: Obj }> };
  const [data, control] = ["data", "control"].map(
    (n) => cfg.listeners.find((l) => l.name === n)!.pluginConfig,
  );
  assert.equal(data!.failureMode, "FailOpen");
  assert.equal(data!.controlToken, undefined);
  assert.equal(control!.controlToken, "t");
  assert.throws(
    () => gatewayConfigFromEnvoy(ORIGINAL_DST_BOOTSTRAP, { ...ports, pluginConfig: { maxFallbacks: 3 } }),
    /must not set maxFallbacks/,
  );
});

test("what the gateway does not model is an error, not dropped", () => {
  const cases: Array<[string, (d: Obj) => void, RegExp]> = [
    [
      ORIGINAL_DST_BOOTSTRAP,
      (d) => (dataRoute(d).retry_policy.per_try_timeout = "1s"),
      /retry_policy.per_try_timeout is not modelled/,
    ],
    [
      ORIGINAL_DST_BOOTSTRAP,
      (d) => (d.static_resources.clusters[0].type = "STRICT_DNS"),
      /models ORIGINAL_DST or envoy.load_balancing_policies.override_host/,
    ],
    [
      ORIGINAL_DST_BOOTSTRAP,
      (d) => (d.static_resources.clusters[0].original_dst_lb_config.http_header_name = "x-other"),
      /must use_http_header on x-gateway-destination-endpoint/,
    ],
    [
      OVERRIDE_HOST_BOOTSTRAP,
      (d) =>
        (d.static_resources.clusters[0].load_balancing_policy.policies[0].typed_extension_config.typed_config.fallback_policy.policies[0].typed_extension_config.name =
          "envoy.load_balancing_policies.least_request"),
      /fallback must be round robin/,
    ],
  ];
  for (const [file, edit, re] of cases) {
    const copy = edited(file, edit);
    try {
      assert.throws(() => gatewayConfigFromEnvoy(copy.path, ports), re);
    } finally {
      copy.done();
    }
  }
});
