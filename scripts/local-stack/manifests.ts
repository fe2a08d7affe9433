// The manifests the local sidecar reads: examples/local as shipped, with the Pod objects regenerated for
// the number of simulated pods and their ports.
import { copyFileSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function writeLocalManifests(exampleDir: string, pods: number, basePort: number): string {
  const dir = mkdtempSync(join(tmpdir(), "epp-local-"));
  for (const f of readdirSync(exampleDir)) {
    if (f.endsWith(".yaml") && f !== "pods.yaml") copyFileSync(join(exampleDir, f), join(dir, f));
  }
  const docs = Array.from(
    { length: pods },
    (_, i) => `apiVersion: v1
kind: Pod
metadata:
  name: vllm-sim-${i}
  namespace: default
  labels: { app: vllm-sim }
  annotations: { epp-wasm.io/port: "${basePort + i}" }
status:
  podIP: 127.0.0.1
  conditions: [{ type: Ready, status: "True" }]
`,
  );
  writeFileSync(join(dir, "pods.yaml"), docs.join("---\n"));
  return dir;
}
