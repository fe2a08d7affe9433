// `npm start -- --envoy` runs Envoy with a bootstrap derived from envoy/envoy.yaml (or, given the pods' addresses,
// envoy/envoy-override-host.yaml): it must pass the same checks, point at the real module and carry the local
// stack's ports and plugin configuration, with the control path only on the control listener.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { at, objs } from "./json-path.ts";
import { checkEnvoyConfig, controlListener, dataListeners, listeners } from "./envoy-checks.ts";
import { repoRoot } from "./yaml-files.ts";
import {
  envoyArgs,
  findEnvoy,
  localEnvoyConfig,
  writeLocalEnvoyConfig,
  type LocalEnvoyOptions,
} from "../../scripts/local-stack/envoy.ts";

const OPTIONS: LocalEnvoyOptions = {
  port: 18080,
  controlPort: 18081,
  adminPort: 19911,
  wasm: join(repoRoot, "build/filter.wasm"),
  pluginConfig: {
    pool: { namespace: "default", name: "local-pool" },
    controlToken: "a".repeat(48),
    failureMode: "FailClose",
  },
};

test("the --envoy bootstrap passes the envoy/envoy.yaml checks with the local ports, module and token", () => {
  const config = localEnvoyConfig(OPTIONS);
  assert.deepEqual(checkEnvoyConfig(config), []);
  assert.equal(at(config, "admin.address.socket_address.port_value"), OPTIONS.adminPort);
  assert.equal(at(config, "admin.address.socket_address.address"), "127.0.0.1");
  const control = controlListener(config);
  assert.ok(control);
  assert.equal(control.port, OPTIONS.controlPort);
  assert.deepEqual(
    dataListeners(config).map((l) => l.port),
    [OPTIONS.port],
  );
  const filters = listeners(config).flatMap((l) => l.wasm);
  assert.equal(filters.length, 2, "data and control listeners both run the filter");
  for (const w of filters) {
    assert.equal(w.code, join(repoRoot, "build/filter.wasm"), "absolute path of the real module");
    assert.equal(w.allowOnHeadersStopIteration, true);
    assert.equal(w.vmId, control.wasm[0].vmId);
    assert.deepEqual(w.plugin?.pool, OPTIONS.pluginConfig.pool);
    assert.equal(w.plugin?.failureMode, "FailClose");
    assert.equal(w.plugin?.destinationMode, "original_dst", "one ip:port for the ORIGINAL_DST cluster");
  }
  // The token and the control path reach only the loopback control listener.
  assert.equal(control.wasm[0].plugin?.controlToken, OPTIONS.pluginConfig.controlToken);
  assert.equal(control.wasm[0].plugin?.controlPath, "/epp/v1/snapshot", "kept from envoy/envoy.yaml");
  const [data] = dataListeners(config);
  assert.equal(data.wasm[0].plugin?.controlToken, undefined);
  assert.equal(data.wasm[0].plugin?.controlPath, undefined);
  // envoy/envoy.yaml itself is untouched (its development token stays).
  assert.match(readFileSync(join(repoRoot, "envoy/envoy.yaml"), "utf8"), /dev-token-change-me/);
});

test("given the pods' addresses, the bootstrap is envoy-override-host.yaml listing exactly those pods", () => {
  const endpoints = [
    { address: "127.0.0.1", port: 18001 },
    { address: "127.0.0.1", port: 18002 },
  ];
  const config = localEnvoyConfig({ ...OPTIONS, endpoints });
  assert.deepEqual(checkEnvoyConfig(config), []);
  const cluster = objs(at(config, "static_resources.clusters"))[0];
  assert.equal(cluster.type, "STATIC");
  assert.deepEqual(
    objs(at(cluster, "load_assignment.endpoints.0.lb_endpoints")).map((e) => [
      at(e, "endpoint.address.socket_address.address"),
      at(e, "endpoint.address.socket_address.port_value"),
    ]),
    endpoints.map((e) => [e.address, e.port]),
  );
  assert.equal(dataListeners(config)[0].wasm[0].plugin?.destinationMode, "override_host");
  // The cluster type decides the destination shape; a caller cannot contradict it.
  assert.throws(
    () =>
      localEnvoyConfig({
        ...OPTIONS,
        pluginConfig: { ...OPTIONS.pluginConfig, destinationMode: "override_host" },
      }),
    /must not set destinationMode/,
  );
  assert.throws(() => localEnvoyConfig({ ...OPTIONS, endpoints: [] }), /at least one pod/);
});

test("the --envoy bootstrap is written to a temporary JSON file Envoy is started with", () => {
  const { dir, file } = writeLocalEnvoyConfig(OPTIONS);
  try {
    assert.ok(file.endsWith(".json"));
    assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), localEnvoyConfig(OPTIONS));
    assert.deepEqual(envoyArgs(file).slice(0, 4), ["-c", file, "--log-level", "warn"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("findEnvoy: PATH lookup, --envoy-bin, and a one-line explanation when there is no envoy", () => {
  const empty = mkdtempSync(join(tmpdir(), "epp-no-envoy-"));
  const withEnvoy = mkdtempSync(join(tmpdir(), "epp-with-envoy-"));
  try {
    assert.throws(
      () => findEnvoy(undefined, empty),
      (e: Error) =>
        !e.message.includes("\n") &&
        /no.*envoy|envoy.*PATH/i.test(e.message) &&
        e.message.includes("--envoy-bin") &&
        e.message.includes("built-in gateway"),
    );
    const bin = join(withEnvoy, "envoy");
    writeFileSync(bin, "#!/bin/sh\n");
    assert.throws(() => findEnvoy(undefined, withEnvoy), /none is on PATH/, "not executable yet");
    chmodSync(bin, 0o755);
    assert.equal(findEnvoy(undefined, `${empty}:${withEnvoy}`), bin);
    assert.equal(findEnvoy(bin, empty), bin);
    assert.throws(
      () => findEnvoy(join(empty, "missing"), withEnvoy),
      /--envoy-bin .* is not an executable file/,
    );
    assert.ok(existsSync(bin));
  } finally {
    rmSync(empty, { recursive: true, force: true });
    rmSync(withEnvoy, { recursive: true, force: true });
  }
});
