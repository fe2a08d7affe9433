// `npm start -- --envoy`: without an envoy binary it stops at once with one line saying what is missing; with
// one (a stub here: no real Envoy on this machine) the supervisor starts it on the generated bootstrap, points the
// sidecar at its control listener, and Ctrl-C stops it with everything else.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { portIsFree } from "../../scripts/local-stack/ports.ts";
import { filterIsStale } from "../../scripts/local-stack/filter-build.ts";
import { repoRoot as ROOT, stackPorts, startArgs, startLocalStack } from "../support/local-stack.ts";
import { checkEnvoyConfig, controlListener, dataListeners } from "../deploy/envoy-checks.ts";

test("npm start -- --envoy without an envoy binary exits at once with a one-line explanation", async () => {
  const ports = await stackPorts(1);
  const emptyPath = mkdtempSync(join(tmpdir(), "epp-no-envoy-"));
  try {
    const r = spawnSync(process.execPath, [...startArgs(ports, 1), "--envoy"], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, PATH: emptyPath },
    });
    assert.equal(r.status, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], /^npm start: --envoy needs an envoy binary/);
    assert.match(lines[0], /--envoy-bin/);
    assert.match(lines[0], /without --envoy, npm start runs the built-in gateway/);
    // Nothing was started (no build, no "local stack is up", no child's output); spawnSync's timeout bounds it.
    assert.equal(r.stdout, "");
  } finally {
    rmSync(emptyPath, { recursive: true, force: true });
  }
});

// Stands in for Envoy: records its argv, checks the bootstrap exists, then serves what the stack waits for —
// admin /ready, 204 on the control listener (snapshot accepted), 200 on the data listener — until SIGTERM.
const STUB = `
const fs = require("node:fs");
const http = require("node:http");
const args = process.argv.slice(2);
const file = args[args.indexOf("-c") + 1];
fs.writeFileSync(process.env.STUB_ENVOY_RECORD, JSON.stringify({ args, pid: process.pid, configExists: fs.existsSync(file) }));
if (!fs.existsSync(file)) process.exit(3);
const config = JSON.parse(fs.readFileSync(file, "utf8"));
const serve = (port, host, status, body) =>
  http.createServer((req, res) => { req.resume(); req.on("end", () => res.writeHead(status).end(body)); }).listen(port, host);
serve(config.admin.address.socket_address.port_value, "127.0.0.1", 200, "LIVE");
for (const l of config.static_resources.listeners) {
  const a = l.address.socket_address;
  serve(a.port_value, a.address, l.name === "control" ? 204 : 200, l.name === "control" ? undefined : "{}");
}
process.on("SIGTERM", () => process.exit(0));
`;

const filterStale = filterIsStale();

test(
  "npm start -- --envoy-bin runs Envoy on the generated bootstrap and Ctrl-C stops it",
  { skip: filterStale && "build/filter.wasm is older than assembly/: npm start would rebuild it" },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "epp-stub-envoy-"));
    const bin = join(dir, "envoy");
    const record = join(dir, "record.json");
    writeFileSync(bin, `#!${process.execPath}\n${STUB}`);
    chmodSync(bin, 0o755);
    let stub: { args: string[]; pid: number; configExists: boolean } | undefined;
    let exitCode: number | null | undefined;
    const stack = await startLocalStack({
      pods: 1,
      extraArgs: ["--envoy-bin", bin],
      env: { ...process.env, STUB_ENVOY_RECORD: record },
    }).catch((err: unknown) => {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    });
    const { port, controlPort, sidecarPort, simBase } = stack.ports;
    const output = stack.output();
    try {
      assert.match(output, new RegExp(`Envoy ${bin.replaceAll("/", "\\/")}, override_host cluster`));
      assert.match(output, /admin {10}http:\/\/127\.0\.0\.1:\d+\/stats\/prometheus/);
      assert.match(output, /envoy \(pid \d+\)/);
      assert.doesNotMatch(output, /gateway \(pid/, "the built-in gateway is not started");
      stub = JSON.parse(readFileSync(record, "utf8")) as typeof stub;
      assert.ok(stub);
      assert.equal(stub.configExists, true);
      const configFile = stub.args[stub.args.indexOf("-c") + 1];
      assert.deepEqual(stub.args, ["-c", configFile, "--log-level", "warn", "--disable-hot-restart"]);
      const config: unknown = JSON.parse(readFileSync(configFile, "utf8"));
      assert.deepEqual(checkEnvoyConfig(config), []);
      assert.equal(controlListener(config)?.port, controlPort);
      assert.deepEqual(
        dataListeners(config).map((l) => l.port),
        [port],
      );
      assert.equal(controlListener(config)?.wasm[0].code, join(ROOT, "build/filter.wasm"));
      // The sidecar is ready only after the control listener accepted a snapshot: it pushes to Envoy.
      assert.equal((await fetch(`http://127.0.0.1:${sidecarPort}/readyz`)).status, 200);
    } finally {
      exitCode = await stack.interrupt();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(exitCode, 0, stack.output());
    assert.ok(stub);
    assert.throws(() => process.kill(stub.pid, 0), "the Envoy process is gone after Ctrl-C");
    assert.equal(existsSync(stub.args[stub.args.indexOf("-c") + 1]), false, "the bootstrap file is removed");
    for (const p of [port, controlPort, sidecarPort, simBase]) {
      assert.equal(await portIsFree(p), true, `port ${p} still in use after Ctrl-C`);
    }
  },
);
