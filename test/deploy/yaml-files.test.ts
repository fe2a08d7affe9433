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
  const problems = crds.flatMap((d) => checkCrd(d.value as Record<string, unknown>, `${d.file}#${d.index}`));
  assert.deepEqual(problems, []);
  if (crds.length === 0) console.log("# note: deploy/crds holds no CustomResourceDefinition yet");
});
