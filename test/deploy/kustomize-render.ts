// Renders kustomize directories with the kubectl on PATH (kubectl kustomize), parsed into objects.
import { spawnSync } from "node:child_process";
import { parseYaml, repoRoot } from "./yaml-files.ts";
import { isObj, type Json } from "./json-path.ts";

/** Why render checks cannot run here, or undefined when kubectl works. */
export function kubectlUnavailable(): string | undefined {
  const r = spawnSync("kubectl", ["version", "--client"], { encoding: "utf8", timeout: 20_000 });
  if (r.error)
    return `kubectl not runnable (${r.error.message}); install kubectl >= 1.27 to render the overlays`;
  if (r.status !== 0) return `kubectl version failed: ${r.stderr.trim()}`;
  return undefined;
}

export function kustomize(dir: string): Json[] {
  const r = spawnSync("kubectl", ["kustomize", dir], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${r.stderr}`);
  return parseYaml(r.stdout, `kubectl kustomize ${dir}`)
    .map((d) => d.value)
    .filter(isObj);
}
