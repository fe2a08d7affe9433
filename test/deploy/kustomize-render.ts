// Renders kustomize directories with the kubectl on PATH (kubectl kustomize), parsed into objects.
import { execFile, spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseYaml, repoRoot } from "./yaml-files.ts";
import { isObj, type Json } from "./json-path.ts";

// CI must render deploy/: there a missing kubectl fails the render tests instead of skipping them.
import { inCI } from "../support/prereq.ts";

const NEEDED =
  "kubectl >= 1.27 (kustomize v5 built in; bash .ci/run installs one when the machine has none). " +
  "Debian's kubernetes-client (kubectl 1.20, kustomize v2) cannot read deploy/";

let cached: { why: string | undefined } | undefined;

/** Why render checks cannot run here, or undefined when kubectl and its built-in kustomize are adequate. */
export function kubectlUnavailable(): string | undefined {
  if (cached) return cached.why;
  const r = spawnSync("kubectl", ["version", "--client", "-o", "json"], {
    encoding: "utf8",
    timeout: 20_000,
  });
  let why: string | undefined;
  if (r.error) why = `kubectl not runnable (${r.error.message}); needs ${NEEDED}`;
  else if (r.status !== 0) why = `kubectl version failed: ${r.stderr.trim()}; needs ${NEEDED}`;
  else {
    const v = JSON.parse(r.stdout) as { clientVersion?: { gitVersion?: string }; kustomizeVersion?: string };
    const major = Number(/^v(\d+)\./.exec(v.kustomizeVersion ?? "")?.[1] ?? 0);
    if (major < 5)
      why = `kubectl ${v.clientVersion?.gitVersion ?? "?"} has kustomize ${v.kustomizeVersion ?? "(none reported)"}; needs ${NEEDED}`;
  }
  cached = { why };
  return why;
}

/**
 * The `skip` option for render tests: the reason outside CI (printed with the skip), undefined when kubectl
 * works or under CI (where kustomize() then throws the reason, so the tests fail and name the missing tool).
 */
export function kustomizeSkip(): string | undefined {
  const why = kubectlUnavailable();
  return why && !inCI ? why : undefined;
}

/** Renders several targets at once (each kubectl run mostly waits on its own start-up). */
export async function kustomizeAll(dirs: string[]): Promise<Map<string, Json[]>> {
  const why = kubectlUnavailable();
  if (why) throw new Error(`cannot render ${dirs.join(", ")}: ${why}`);
  const one = (dir: string) =>
    new Promise<Json[]>((resolve, reject) => {
      execFile(
        "kubectl",
        ["kustomize", dir],
        { cwd: repoRoot, encoding: "utf8", timeout: 60_000, maxBuffer: 64 << 20 },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`kubectl kustomize ${dir} failed:\n${stderr || err.message}`));
          else
            resolve(
              parseYaml(stdout, `kubectl kustomize ${dir}`)
                .map((d) => d.value)
                .filter(isObj),
            );
        },
      );
    });
  const out = await Promise.all(dirs.map(one));
  return new Map(dirs.map((d, i) => [d, out[i]]));
}

export function kustomize(dir: string): Json[] {
  const why = kubectlUnavailable();
  if (why) throw new Error(`cannot render ${dir}: ${why}`);
  const r = spawnSync("kubectl", ["kustomize", dir], { cwd: repoRoot, encoding: "utf8", timeout: 60_000 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${r.stderr}`);
  return parseYaml(r.stdout, `kubectl kustomize ${dir}`)
    .map((d) => d.value)
    .filter(isObj);
}

/** Directories under `root` holding a kustomization.yaml, repository-relative, parents first. */
export function kustomizeTargets(root = "deploy"): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (existsSync(join(repoRoot, dir, "kustomization.yaml"))) out.push(dir);
    for (const n of readdirSync(join(repoRoot, dir)).sort())
      if (statSync(join(repoRoot, dir, n)).isDirectory()) walk(join(dir, n));
  };
  walk(root);
  return out;
}
