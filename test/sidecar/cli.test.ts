// The epp-sidecar CLI as users run it: bad flag values stop it at once with exit code 2 and one line naming
// the flag (and the EPP_* variable mirrors the flag), before anything is watched or scraped.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = new URL("../..", import.meta.url).pathname;

function run(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["bin/epp-sidecar.mjs", ...args], {
    cwd: ROOT,
    encoding: "utf8",
    timeout: 30_000,
    env: { ...process.env, EPP_CONTROL_TOKEN: "t", ...env },
  });
}

test("epp-sidecar: --metrics-name-filter accepts only true or false, from the flag or EPP_METRICS_NAME_FILTER", () => {
  const dir = mkdtempSync(join(tmpdir(), "epp-cli-"));
  try {
    const base = ["--manifests", dir, "--envoy", "http://127.0.0.1:1"];
    const bad = run([...base, "--metrics-name-filter", "maybe"]);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /--metrics-name-filter must be true or false, got maybe/);
    const badEnv = run(base, { EPP_METRICS_NAME_FILTER: "no" });
    assert.equal(badEnv.status, 2, badEnv.stderr);
    assert.match(badEnv.stderr, /--metrics-name-filter must be true or false, got no/);
    const help = run(["--help"]);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--metrics-name-filter[\s\S]*env EPP_METRICS_NAME_FILTER/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("epp-sidecar: --envoy-admin must be a URL (flag or EPP_ENVOY_ADMIN); --envoy-admin-port needs --envoy-selector", () => {
  const dir = mkdtempSync(join(tmpdir(), "epp-cli-"));
  try {
    const base = ["--manifests", dir, "--envoy", "http://127.0.0.1:1"];
    const bad = run([...base, "--envoy-admin", "not a url"]);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /--envoy-admin: Invalid URL/);
    const badEnv = run(base, { EPP_ENVOY_ADMIN: "http://127.0.0.1:9901,nope" });
    assert.equal(badEnv.status, 2, badEnv.stderr);
    assert.match(badEnv.stderr, /--envoy-admin: Invalid URL/);
    const noSelector = run([...base, "--envoy-admin-port", "19001"]);
    assert.equal(noSelector.status, 2, noSelector.stderr);
    assert.match(noSelector.stderr, /--envoy-admin-port needs --envoy-selector/);
    const help = run(["--help"]);
    assert.match(help.stdout, /--envoy-admin [\s\S]*env EPP_ENVOY_ADMIN\n[\s\S]*--envoy-admin-port/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
