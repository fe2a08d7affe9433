// build/filter.wasm would load in Envoy: our verifier (host/verify.ts) finds no problem, and it agrees
// with the shared checker script when that is present.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { verifyModule } from "../../host/index.ts";

const FILTER = new URL("../../build/filter.wasm", import.meta.url).pathname;
const CHECKER = "/work/shared/tools/check-envoy-imports.mjs";

test(
  "build/filter.wasm passes Envoy's import/export verification",
  { skip: !existsSync(FILTER) && "run npm run build:wasm" },
  () => {
    const r = verifyModule(readFileSync(FILTER));
    assert.deepEqual(r.problems, []);
    assert.equal(r.abi, "0.2.1");
    assert.ok(r.exports.includes("malloc"));
    assert.ok(r.exports.includes("memory"));
  },
);

test(
  "our verdict agrees with the shared checker",
  { skip: (!existsSync(FILTER) || !existsSync(CHECKER)) && "checker or build missing" },
  () => {
    const out = spawnSync(process.execPath, [CHECKER, FILTER], { encoding: "utf8" });
    const ours = verifyModule(readFileSync(FILTER)).problems.length === 0;
    assert.equal(out.status === 0, ours, out.stdout + out.stderr);
  },
);
