// Finds and parses the YAML files we ship (multi-document), reporting every syntax error with its file.
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";

export const repoRoot = new URL("../..", import.meta.url).pathname;

export interface YamlDoc {
  file: string; // repository-relative
  index: number; // document number within the file
  value: unknown;
}

export function listYamlFiles(dirs: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (/\.ya?ml$/.test(name)) out.push(relative(repoRoot, full));
    }
  };
  for (const d of dirs) if (existsSync(join(repoRoot, d))) walk(join(repoRoot, d));
  return out;
}

/** Parses multi-document YAML; throws with the file name and every error. Empty documents are dropped. */
export function parseYaml(text: string, file: string): YamlDoc[] {
  // merge: compose files use "<<: *anchor".
  const docs = parseAllDocuments(text, { merge: true, prettyErrors: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const errors = list.flatMap((d) => d.errors.map((e) => e.message));
  if (errors.length > 0) throw new Error(`${file}: ${errors.join("\n")}`);
  return list
    .map((d, index) => ({ file, index, value: d.toJS({ maxAliasCount: 100 }) as unknown }))
    .filter((d) => d.value !== null && d.value !== undefined);
}

export function readYaml(file: string): YamlDoc[] {
  return parseYaml(readFileSync(join(repoRoot, file), "utf8"), file);
}

export function readYamlOne(file: string): unknown {
  const docs = readYaml(file);
  if (docs.length !== 1) throw new Error(`${file}: expected one YAML document, found ${docs.length}`);
  return docs[0].value;
}
