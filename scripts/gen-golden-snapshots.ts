// Writes the golden snapshot vectors: test/fixtures/snapshots/<name>.bin and <name>.json (decoded form,
// generation as a decimal string). Both the TypeScript encoder tests and the AssemblyScript decoder tests
// read them. Run: node --import tsx scripts/gen-golden-snapshots.ts
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { encodeSnapshot } from "../sidecar/snapshot/encoder.ts";
import { decodeSnapshot, snapshotToJson } from "../sidecar/snapshot/decoder.ts";
import { GOLDEN_CASES } from "../test/sidecar/snapshot-samples.ts";

const dir = new URL("../test/fixtures/snapshots/", import.meta.url).pathname;
mkdirSync(dir, { recursive: true });
for (const [name, make] of Object.entries(GOLDEN_CASES)) {
  const bytes = encodeSnapshot(make());
  // The JSON is the *decoded* form, so it shows exactly what a decoder must produce.
  const json = formatJson(snapshotToJson(decodeSnapshot(bytes)) as Record<string, unknown>);
  writeFileSync(join(dir, `${name}.bin`), bytes);
  writeFileSync(join(dir, `${name}.json`), json);
  console.log(`${name}: ${bytes.length} bytes`);
}

/** Top-level keys one per line and each list entry on its own line: readable diffs, small files. */
function formatJson(o: Record<string, unknown>): string {
  const lines = Object.entries(o).map(([k, v]) => {
    if (Array.isArray(v) && v.length > 0) {
      return `  ${JSON.stringify(k)}: [\n${v.map((e) => `    ${JSON.stringify(e)}`).join(",\n")}\n  ]`;
    }
    return `  ${JSON.stringify(k)}: ${JSON.stringify(v)}`;
  });
  return `{\n${lines.join(",\n")}\n}\n`;
}
