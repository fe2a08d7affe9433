// File mode: multi-document manifests in a temp directory, live edits, and broken files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rename, rm, writeFile as writeInPlace } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileInventory } from "../../sidecar/inventory/files.ts";
import type { InvalidResource } from "../../sidecar/inventory/types.ts";
import { waitFor } from "../support/deadline.ts";

/**
 * Writes a file the way ConfigMap volumes and editors that save safely do: a whole new file renamed into
 * place, so a rescan never reads it half-written (a half-written file is a different, valid-looking file).
 */
async function writeFile(path: string, text: string): Promise<void> {
  await writeInPlace(path + ".tmp~", text);
  await rename(path + ".tmp~", path);
}

const POOL = `
apiVersion: inference.networking.k8s.io/v1
kind: InferencePool
metadata: { name: local, namespace: default, annotations: { epp-wasm.io/engine: vllm } }
spec:
  selector: { matchLabels: { app: sim } }
  targetPorts: [{ number: 8000 }]
  endpointPickerRef: { name: epp, port: { number: 9002 } }
`;

function pod(name: string, port: number, ready = true): string {
  return `
apiVersion: v1
kind: Pod
metadata: { name: ${name}, namespace: default, labels: { app: sim }, annotations: { epp-wasm.io/port: "${port}" } }
status: { podIP: 127.0.0.1, conditions: [{ type: Ready, status: "${ready ? "True" : "False"}" }] }
`;
}

const MODELS = `
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceModel
metadata: { name: chat }
spec: { modelName: chat, poolRef: { name: local }, targetModels: [{ name: a, weight: 70 }, { name: b, weight: 30 }] }
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: { name: batch }
spec: { priority: -1, poolRef: { name: local } }
`;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "epp-inventory-"));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test("file inventory: multi-document YAML yields pools, per-pod-port endpoints, models and objectives", async () => {
  await withDir(async (dir) => {
    await writeFile(
      join(dir, "pool.yaml"),
      POOL + "---" + pod("sim-0", 8001) + "---" + pod("sim-1", 8002, false),
    );
    await writeFile(join(dir, "models.yml"), MODELS);
    await writeFile(join(dir, "notes.txt"), "not a manifest");
    const inv = new FileInventory({ manifestsDir: dir, rescanMs: 0 });
    try {
      await inv.start();
      assert.equal(inv.synced, true);
      const [p] = inv.pools();
      assert.equal(p!.pool.name, "local");
      assert.equal(p!.pool.annotations.engine, "vllm");
      assert.deepEqual(
        p!.endpoints.map((e) => [e.podName, e.address, e.port, e.ready, e.engine]),
        [
          ["sim-0", "127.0.0.1", 8001, true, "vllm"],
          ["sim-1", "127.0.0.1", 8002, false, "vllm"],
        ],
      );
      assert.deepEqual(p!.models, [
        {
          name: "chat",
          criticality: "Unset",
          targets: [
            { name: "a", weight: 70 },
            { name: "b", weight: 30 },
          ],
        },
      ]);
      assert.deepEqual(p!.objectives, [{ name: "batch", priority: -1 }]);
    } finally {
      await inv.stop();
    }
  });
});

test("file inventory: editing a manifest changes the inventory through fs.watch and fires change", async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, "pool.yaml"), POOL + "---" + pod("sim-0", 8001));
    // A long rescan period: the edit must arrive through fs.watch.
    const inv = new FileInventory({ manifestsDir: dir, rescanMs: 60_000, debounceMs: 50, coalesceMs: 5 });
    let changes = 0;
    inv.on("change", () => changes++);
    try {
      await inv.start();
      assert.equal(inv.pools()[0]!.endpoints.length, 1);
      // The deadlines bound a hang only; they stay far below the 60 s rescan, so only fs.watch can meet them.
      await writeFile(join(dir, "pool.yaml"), POOL + "---" + pod("sim-0", 8001) + "---" + pod("sim-1", 8002));
      await waitFor("second pod", () => inv.pools()[0]!.endpoints.length === 2 && changes > 0, 15_000);
      await rm(join(dir, "pool.yaml"));
      await waitFor("pool removed", () => inv.pools().length === 0, 15_000);
    } finally {
      await inv.stop();
    }
  });
});

test("file inventory: the periodic rescan picks up edits when no fs event arrives", async () => {
  await withDir(async (dir) => {
    // fs events wait out a 10-minute debounce: only the rescan can meet the (hang-bounding) deadline.
    const inv = new FileInventory({ manifestsDir: dir, rescanMs: 50, debounceMs: 600_000 });
    try {
      await inv.start();
      assert.equal(inv.pools().length, 0);
      await writeFile(join(dir, "pool.yaml"), POOL);
      await waitFor("pool", () => inv.pools().length === 1, 15_000);
    } finally {
      await inv.stop();
    }
  });
});

test("file inventory: a broken file keeps its last good objects; other files and invalid objects are independent", async () => {
  await withDir(async (dir) => {
    await writeFile(join(dir, "pool.yaml"), POOL + "---" + pod("sim-0", 8001));
    await writeFile(join(dir, "models.yaml"), MODELS);
    const invalid: InvalidResource[] = [];
    const inv = new FileInventory({
      manifestsDir: dir,
      rescanMs: 30,
      debounceMs: 10,
      onInvalid: (i) => invalid.push(i),
    });
    try {
      await inv.start();
      assert.equal(inv.pools()[0]!.models.length, 1);
      // Break models.yaml, and change pool.yaml at the same time.
      await writeFile(join(dir, "models.yaml"), MODELS + "\n---\nkind: [unclosed\n");
      await writeFile(join(dir, "pool.yaml"), POOL + "---" + pod("sim-0", 8001) + "---" + pod("sim-1", 8002));
      await waitFor("pool.yaml applied", () => inv.pools()[0]?.endpoints.length === 2, 10_000);
      // The two edits may be picked up by different scans: wait for the broken file to be reported too.
      await waitFor(
        "models.yaml reported",
        () =>
          invalid.some((i) => i.kind === "File" && i.name === "models.yaml" && i.reason === "parse_error"),
        10_000,
      );
      assert.equal(inv.pools()[0]!.models.length, 1, "models.yaml keeps its last good objects");
      // An invalid edit of a model in an otherwise valid file is skipped; the rest of the file applies.
      const bad = MODELS.replace("weight: 30 }", "}");
      await writeFile(
        join(dir, "models.yaml"),
        bad + "---\n" + MODELS.split("---")[1]!.replace("batch", "batch2"),
      );
      await waitFor("objective batch2", () => inv.pools()[0]!.objectives.length === 2, 10_000);
      assert.ok(invalid.some((i) => i.kind === "InferenceModel" && i.reason === "partial_weights"));
      // The rejected edit does not apply: the model keeps its last good version (70/30).
      assert.deepEqual(inv.pools()[0]!.models[0]!.targets, [
        { name: "a", weight: 70 },
        { name: "b", weight: 30 },
      ]);
      assert.equal(inv.pools()[0]!.endpoints.length, 2);
    } finally {
      await inv.stop();
    }
  });
});

test("file inventory: examples/llm-d applies unchanged; llm-d.ai objects supersede same-name GIE ones and edits switch back", async () => {
  await withDir(async (dir) => {
    const example = new URL("../../examples/llm-d/", import.meta.url);
    for (const f of ["pool.yaml", "objectives.yaml", "rewrites.yaml"])
      await writeFile(join(dir, f), await readFile(new URL(f, example), "utf8"));
    await writeFile(
      join(dir, "pods.yaml"),
      `
apiVersion: v1
kind: Pod
metadata: { name: qwen-0, labels: { app: qwen-vllm } }
status: { podIP: 10.1.0.1, conditions: [{ type: Ready, status: "True" }] }
`,
    );
    // A leftover from GIE v1.5 with the same name as an llm-d.ai objective, and one only GIE has.
    const gie = `
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: { name: premium }
spec: { priority: 100, poolRef: { name: qwen-pool } }
---
apiVersion: inference.networking.x-k8s.io/v1alpha2
kind: InferenceObjective
metadata: { name: legacy }
spec: { priority: 3, poolRef: { name: qwen-pool } }
`;
    await writeFile(join(dir, "gie.yaml"), gie);
    const invalid: InvalidResource[] = [];
    const inv = new FileInventory({
      manifestsDir: dir,
      debounceMs: 10,
      rescanMs: 50,
      onInvalid: (i) => invalid.push(i),
    });
    const priorities = () =>
      Object.fromEntries((inv.pools()[0]?.objectives ?? []).map((o) => [o.name, o.priority]));
    try {
      await inv.start();
      assert.deepEqual(invalid, []);
      const [p] = inv.pools();
      assert.equal(p?.pool.name, "qwen-pool");
      assert.deepEqual(
        p!.endpoints.map((e) => `${e.address}:${e.port}`),
        ["10.1.0.1:8000"],
      );
      assert.deepEqual(priorities(), { "best-effort": -2, legacy: 3, premium: 5 });
      assert.deepEqual(p!.rewrites, [
        {
          matches: ["assistant"],
          targets: [
            { model: "Qwen/Qwen3-32B", weight: 80 },
            { model: "qwen-support-lora", weight: 20 },
          ],
        },
      ]);
      // Removing the llm-d.ai objectives lets the GIE copy of `premium` serve again.
      await rm(join(dir, "objectives.yaml"));
      await waitFor("GIE premium", () => priorities().premium === 100);
      assert.deepEqual(priorities(), { legacy: 3, premium: 100 });
    } finally {
      await inv.stop();
    }
  });
});
