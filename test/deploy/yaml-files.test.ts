// Every YAML file we ship parses, every Kubernetes object in them is well-formed, every CRD schema is structural.
import { test } from "node:test";
import assert from "node:assert/strict";
import { listYamlFiles, readYaml, type YamlDoc } from "./yaml-files.ts";
import { checkCrd, checkObjectShape, looksLikeK8sObject } from "./k8s-checks.ts";

const SHIPPED_DIRS = ["envoy", "deploy", "examples"];

function allDocs(): YamlDoc[] {
  return listYamlFiles(SHIPPED_DIRS).flatMap((f) => readYaml(f));
}

test("every YAML file under envoy/, deploy/ and examples/ parses", () => {
  const files = listYamlFiles(SHIPPED_DIRS);
  assert.ok(files.length >= 15, `expected the shipped YAML files, found ${files.length}`);
  const failures: string[] = [];
  for (const f of files) {
    try {
      readYaml(f);
    } catch (e) {
      failures.push((e as Error).message);
    }
  }
  assert.deepEqual(failures, []);
});

test("Kubernetes objects have apiVersion, kind and metadata.name", () => {
  const problems = allDocs()
    .filter((d) => looksLikeK8sObject(d.value))
    .flatMap((d) => checkObjectShape(d.value as Record<string, unknown>, `${d.file}#${d.index}`));
  assert.deepEqual(problems, []);
});

test("CRD schemas are structural (deploy/crds and anything else shipped)", () => {
  const crds = allDocs().filter(
    (d) => looksLikeK8sObject(d.value) && d.value.kind === "CustomResourceDefinition",
  );
  // The CRDs the sidecar reads are shipped, each checked: a test over zero CRDs would pass vacuously.
  const names = crds.map((d) => String((d.value as { metadata?: { name?: unknown } }).metadata?.name)).sort();
  assert.deepEqual(names, [
    "inferencemodelrewrites.inference.networking.x-k8s.io",
    "inferencemodelrewrites.llm-d.ai",
    "inferencemodels.inference.networking.x-k8s.io",
    "inferenceobjectives.inference.networking.x-k8s.io",
    "inferenceobjectives.llm-d.ai",
    "inferencepools.inference.networking.k8s.io",
    "inferencepools.inference.networking.x-k8s.io",
  ]);
  assert.ok(
    crds.every((d) => d.file.startsWith("deploy/crds/")),
    "CRDs live in deploy/crds",
  );
  const problems = crds.flatMap((d) => checkCrd(d.value as Record<string, unknown>, `${d.file}#${d.index}`));
  assert.deepEqual(problems, []);
});
