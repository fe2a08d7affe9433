// envoy/docker-compose.yaml cannot run here (no Docker engine), so every name it shares with envoy.yaml,
// the manifests it mounts and the Dockerfiles it builds is checked by reading.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join, posix } from "node:path";
import { readYaml, readYamlOne, repoRoot } from "./yaml-files.ts";
import { at, arr, flagValues, isObj, objs, str, type Json } from "./json-path.ts";
import { controlListener, dataListeners, CONTROL_PATH } from "./envoy-checks.ts";
import { parseManifests } from "../../sidecar/inventory/files.ts";
import { normalize } from "../../sidecar/inventory/resources.ts";

const compose = readYamlOne("envoy/docker-compose.yaml");
const envoyConfig = readYamlOne("envoy/envoy.yaml");
const services = at(compose, "services") as Json;

function service(name: string): Json {
  const s = services[name];
  assert.ok(isObj(s), `service ${name} exists`);
  return s;
}

/** Compose short volume syntax "src:dst[:mode]" → [src, dst]. */
function mounts(s: Json): [string, string][] {
  return arr(s.volumes).map((v) => {
    const [src, dst] = String(v).split(":");
    return [src, dst];
  });
}

function simServices(): Json[] {
  return Object.keys(services)
    .filter((n) => n.startsWith("sim-"))
    .map(service);
}

test("compose: Envoy runs envoy.yaml unchanged and finds the filter where envoy.yaml looks for it", () => {
  const envoy = service("envoy");
  const configPath = flagValues(envoy.command, "-c")[0];
  assert.ok(configPath, "envoy is started with -c");
  assert.ok(mounts(envoy).some(([src, dst]) => src === "./envoy.yaml" && dst === configPath));
  const wasmFile = controlListener(envoyConfig)!.wasm[0].code;
  const resolved = posix.resolve(String(envoy.working_dir), wasmFile);
  const wasmMount = mounts(envoy).find(([src]) => src === "wasm");
  assert.ok(wasmMount, "envoy mounts the wasm volume");
  assert.equal(posix.dirname(resolved), wasmMount[1]);
  // The installer writes exactly that file into the same volume.
  const installer = service("filter-installer");
  assert.deepEqual(installer.command, [resolved]);
  assert.ok(mounts(installer).some(([src, dst]) => src === "wasm" && dst === wasmMount[1]));
  assert.deepEqual(at(envoy, "depends_on.filter-installer.condition"), "service_completed_successfully");
});

test("compose: the sidecar shares Envoy's network namespace and pushes to the control listener", () => {
  const sidecar = service("sidecar");
  const control = controlListener(envoyConfig)!;
  assert.equal(sidecar.network_mode, "service:envoy");
  const targets = flagValues(sidecar.command, "--envoy");
  assert.deepEqual(targets, [`http://${control.address}:${control.port}`]);
  assert.deepEqual(flagValues(sidecar.command, "--control-path"), [CONTROL_PATH]);
  const plugin = control.wasm[0].plugin!;
  assert.equal(at(sidecar, "environment.EPP_CONTROL_TOKEN"), plugin.controlToken);
  assert.deepEqual(flagValues(sidecar.command, "--pool-namespace"), [at(plugin, "pool.namespace")]);
  assert.deepEqual(flagValues(sidecar.command, "--pool-name"), [at(plugin, "pool.name")]);
});

test("compose: published ports are Envoy's data listener and the sidecar's metrics port", () => {
  const envoy = service("envoy");
  const sidecarPort = flagValues(service("sidecar").command, "--port")[0];
  const published = arr(envoy.ports).map((p) => String(p).split(":").map(Number));
  const dataPort = dataListeners(envoyConfig)[0].port;
  assert.ok(
    published.some(([, inner]) => inner === dataPort),
    `data port ${dataPort} published`,
  );
  assert.ok(
    published.some(([, inner]) => inner === Number(sidecarPort)),
    `sidecar port ${sidecarPort} published`,
  );
});

test("compose: the file-mode manifests describe the simulated pods at their compose addresses", () => {
  const sidecar = service("sidecar");
  const manifestsDir = flagValues(sidecar.command, "--manifests")[0];
  const mount = mounts(sidecar).find(([, dst]) => dst === manifestsDir);
  assert.ok(mount, "manifests dir is mounted");
  const hostDir = join(repoRoot, "envoy", mount[0]);
  const objects = readdirSync(hostDir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => readYaml(`envoy/${mount[0].replace(/^\.\//, "")}/${f}`).map((d) => d.value))
    .filter(isObj);

  const pool = objects.find((o) => o.kind === "InferencePool");
  assert.ok(pool, "an InferencePool");
  assert.equal(at(pool, "metadata.name"), flagValues(sidecar.command, "--pool-name")[0]);
  assert.equal(at(pool, "metadata.namespace"), flagValues(sidecar.command, "--pool-namespace")[0]);
  const selector = at(pool, "spec.selector.matchLabels") as Json;
  const poolPorts = objs(at(pool, "spec.targetPorts")).map((p) => p.number);

  const pods = objects.filter((o) => o.kind === "Pod");
  const sims = simServices();
  assert.equal(pods.length, sims.length, "one Pod object per simulated pod");
  const simIps = sims.map((s) => at(s, "networks.epp.ipv4_address"));
  for (const pod of pods) {
    assert.ok(
      Object.entries(selector).every(([k, v]) => at(pod, `metadata.labels.${k}`) === v),
      "pod matches pool",
    );
    assert.ok(simIps.includes(at(pod, "status.podIP")), `pod IP ${String(at(pod, "status.podIP"))} is a sim`);
  }
  for (const s of sims) {
    assert.deepEqual(poolPorts, [Number(flagValues(s.command, "--base-port")[0])]);
    assert.deepEqual(flagValues(s.command, "--host"), ["0.0.0.0"]);
  }
  for (const o of objects.filter((x) => String(x.kind).startsWith("Inference") && x.kind !== "InferencePool"))
    assert.equal(
      at(o, "spec.poolRef.name"),
      at(pool, "metadata.name"),
      `${String(o.kind)} refers to the pool`,
    );
});

test("compose: fixed addresses lie in the declared subnet and every build names an existing Dockerfile", () => {
  const subnet = str(at(compose, "networks.epp.ipam.config.0.subnet"));
  assert.equal(subnet, "172.30.0.0/24");
  const ips = Object.values(services)
    .map((s) => at(s, "networks.epp.ipv4_address"))
    .filter((ip): ip is string => typeof ip === "string");
  assert.equal(new Set(ips).size, ips.length, "addresses are unique");
  for (const ip of ips) assert.match(ip, /^172\.30\.0\.\d+$/);
  const builds = Object.values(services)
    .map((s) => at(s, "build"))
    .filter(isObj);
  assert.ok(builds.length >= 3);
  for (const b of builds) {
    const context = join(repoRoot, "envoy", String(b.context));
    assert.ok(existsSync(join(context, String(b.dockerfile))), `${String(b.dockerfile)} exists`);
  }
});

test("compose: the sidecar's own file-mode reader accepts every manifest, and all pods are ready", () => {
  const dir = join(repoRoot, "envoy", "manifests");
  const records = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseManifests(readFileSync(join(dir, f), "utf8"), f))
    .map((o) => normalize(o));
  assert.ok(records.length >= 6);
  for (const r of records) assert.ok(r.ok, `rejected: ${JSON.stringify(r.ok ? undefined : r.invalid)}`);
  const pods = records.flatMap((r) => (r.ok && r.record.kind === "Pod" ? [r.record] : []));
  assert.equal(pods.length, 4);
  for (const p of pods) assert.equal(p.ready, true, `${p.meta.name} ready`);
});
