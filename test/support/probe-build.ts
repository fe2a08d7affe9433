// Rebuilds a test probe wasm (pure AssemblyScript modules compiled with plain asc) when it is missing or
// older than its sources, into a private file renamed into place, so test files running concurrently never
// read a half-written module. Tests therefore always exercise the real compiled code.
import { mkdirSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { newestMtime } from "../../scripts/local-stack/filter-build.ts";

const repoRoot = new URL("../..", import.meta.url).pathname;

/** Same flags as the matching `npm run build:*-probe` script. Returns the wasm path. */
export function ensureProbeBuilt(name: string, sourceDirs: string[]): string {
  const wasmPath = join(repoRoot, `build/${name}.wasm`);
  let built = 0;
  try {
    built = statSync(wasmPath).mtimeMs;
  } catch {
    built = 0;
  }
  const newest = Math.max(...sourceDirs.map((d) => newestMtime(join(repoRoot, d))));
  if (built >= newest) return wasmPath;
  mkdirSync(join(repoRoot, "build"), { recursive: true });
  const tmp = `${wasmPath}.${process.pid}.tmp`;
  const asc = join(repoRoot, "node_modules/assemblyscript/bin/asc.js");
  const args = [`assembly/testing/${name}.ts`, "--config", `assembly/testing/asconfig.${name}.json`];
  execFileSync(process.execPath, [asc, ...args, "--target", "release", "--outFile", tmp], {
    cwd: repoRoot,
    stdio: "inherit",
  });
  renameSync(tmp, wasmPath);
  return wasmPath;
}
