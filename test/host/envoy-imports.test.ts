// build/filter.wasm would load in Envoy: our verifier (host/verify.ts) finds no problem, and it agrees
// with the shared checker script when that is present.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { verifyModule } from "../../host/index.ts";
import { requirePrerequisite, skipUnlessCI } from "../support/prereq.ts";

const FILTER = new URL("../../build/filter.wasm", import.meta.url).pathname;
// The shared checker lives beside the clone (CI checks out shared/ next to the repository).
const CHECKER = new URL("../../../shared/tools/check-envoy-imports.mjs", import.meta.url).pathname;
const noFilter = existsSync(FILTER) ? undefined : "build/filter.wasm (npm run build:wasm)";
const noChecker = existsSync(CHECKER)
  ? undefined
  : `the shared checker ${CHECKER} (shared/ beside the clone)`;

test("build/filter.wasm passes Envoy's import/export verification", { skip: skipUnlessCI(noFilter) }, () => {
  requirePrerequisite(noFilter);
  const r = verifyModule(readFileSync(FILTER));
  assert.deepEqual(r.problems, []);
  assert.equal(r.abi, "0.2.1");
  assert.ok(r.exports.includes("malloc"));
  assert.ok(r.exports.includes("memory"));
});

test("our verdict agrees with the shared checker", { skip: skipUnlessCI(noFilter ?? noChecker) }, () => {
  requirePrerequisite(noFilter ?? noChecker);
  const out = spawnSync(process.execPath, [CHECKER, FILTER], { encoding: "utf8" });
  const ours = verifyModule(readFileSync(FILTER)).problems.length === 0;
  assert.equal(out.status === 0, ours, out.stdout + out.stderr);
});
