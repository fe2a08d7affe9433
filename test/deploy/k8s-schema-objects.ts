// Finds every Kubernetes object we ship, by globbing the folders (so new manifests are picked up without
// editing a list): YAML under deploy/, examples/ and envoy/manifests/, minus the files kustomize reads as
// patches or generator inputs (partial objects, checked once rendered), and the kustomize targets under deploy/.
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { parse } from "yaml";
import { listYamlFiles, readYaml, repoRoot } from "./yaml-files.ts";
import { looksLikeK8sObject } from "./k8s-checks.ts";
import { objs, str, type Json } from "./json-path.ts";
import { writeLocalManifests } from "../../scripts/local-stack/manifests.ts";
import { kustomizeTargets } from "./kustomize-render.ts";

export const SHIPPED_OBJECT_DIRS = ["deploy", "examples", "envoy/manifests"];
/** Build inputs, not API objects. */
const NOT_API_OBJECTS = new Set(["Kustomization", "Component"]);

export interface Located {
  where: string;
  obj: Json;
}

/** Files a kustomization reads as patches or generator inputs (repository-relative). */
export function kustomizeInputs(): Set<string> {
  const out = new Set<string>();
  for (const target of kustomizeTargets()) {
    const k = parse(readFileSync(join(repoRoot, target, "kustomization.yaml"), "utf8")) as Json;
    const add = (p: unknown) => {
      const s = str(p);
      if (s) out.add(relative(repoRoot, join(repoRoot, target, s.replace(/^.*=/, ""))));
    };
    for (const p of objs(k.patches)) add(p.path);
    for (const p of Array.isArray(k.patchesStrategicMerge) ? k.patchesStrategicMerge : []) add(p);
    for (const p of objs(k.patchesJson6902)) add(p.path);
    for (const g of [...objs(k.configMapGenerator), ...objs(k.secretGenerator)])
      for (const f of [...(Array.isArray(g.files) ? g.files : []), ...(Array.isArray(g.envs) ? g.envs : [])])
        add(f);
  }
  return out;
}

function apiObjects(docs: { where: string; value: unknown }[]): Located[] {
  return docs
    .filter((d) => looksLikeK8sObject(d.value) && !NOT_API_OBJECTS.has(String((d.value as Json).kind)))
    .map((d) => ({ where: d.where, obj: d.value as Json }));
}

/** Every API object in the shipped YAML files, as written (before kustomize). */
export function shippedSourceObjects(): Located[] {
  const skip = kustomizeInputs();
  return apiObjects(
    listYamlFiles(SHIPPED_OBJECT_DIRS)
      .filter((f) => !skip.has(f))
      .flatMap((f) => readYaml(f).map((d) => ({ where: `${d.file}#${d.index}`, value: d.value }))),
  );
}

/** The objects `npm start` hands the sidecar in file mode (examples/local with generated Pods). */
export function localStackObjects(): Located[] {
  const dir = writeLocalManifests(join(repoRoot, "examples/local"), 2, 18000);
  try {
    return apiObjects(
      readdirSync(dir)
        .filter((f) => /\.ya?ml$/.test(f))
        .sort()
        .flatMap((f) =>
          readYaml(relative(repoRoot, join(dir, f))).map((d) => ({
            where: `npm start manifests/${f}#${d.index}`,
            value: d.value,
          })),
        ),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function renderedObjects(target: string, objects: Json[]): Located[] {
  return apiObjects(objects.map((o, i) => ({ where: `kubectl kustomize ${target}#${i}`, value: o })));
}
