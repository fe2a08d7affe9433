// Is build/filter.wasm older than its sources? `npm start` rebuilds it then; tests that must not trigger a
// rebuild skip instead. Modification times are enough: sources only change by editing.
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const ROOT = new URL("../..", import.meta.url).pathname;

/** Newest modification time of any file below `dir`. */
export function newestMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const full = join(dir, name);
    const st = statSync(full);
    newest = Math.max(newest, st.isDirectory() ? newestMtime(full) : st.mtimeMs);
  }
  return newest;
}

export function filterIsStale(): boolean {
  const wasm = join(ROOT, "build/filter.wasm");
  return !existsSync(wasm) || statSync(wasm).mtimeMs < newestMtime(join(ROOT, "assembly"));
}

export function buildFilterIfNeeded(): void {
  if (!filterIsStale()) return;
  console.log("building build/filter.wasm …");
  const r = spawnSync("npm", ["run", "--silent", "build:wasm"], { cwd: ROOT, stdio: "inherit" });
  if (r.status !== 0) throw new Error("building the filter failed (npm run build:wasm)");
}
