// The images: Wasm OCI image layout Envoy Gateway and Istio load, the sidecar bundle on a slim non-root Node,
// and the npm script that builds the same bundle. Images run the current Node LTS (24; Node 20 reached end of
// life in April 2026), while the bundles target the oldest Node package.json admits, so they run on 20, 22 and 24.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "./yaml-files.ts";

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

/** Splits a Dockerfile into stages (continuation lines joined, comments dropped). */
function stages(file: string): Stage[] {
  const text = readFileSync(join(repoRoot, file), "utf8").replace(/\\\n\s*/g, " ");
  const out: Stage[] = [];
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) out.push({ from: from[1], name: from[2], lines: [] });
    else out.at(-1)?.lines.push(line);
  }
  return out;
}

const DOCKERFILES = ["sidecar", "sim", "wasm"].map((n) => `deploy/docker/${n}.Dockerfile`);

function packageJson(): { engines: { node: string }; scripts: Record<string, string> } {
  return JSON.parse(readFileSync(join(repoRoot, "package.json"), "utf8")) as {
    engines: { node: string };
    scripts: Record<string, string>;
  };
}

test("wasm.Dockerfile: the default (last) stage is FROM scratch with exactly one COPY to /plugin.wasm", () => {
  const all = stages("deploy/docker/wasm.Dockerfile");
  const last = all.at(-1)!;
  assert.equal(last.from, "scratch");
  assert.equal(last.lines.length, 1, "one instruction, so one layer");
  assert.match(last.lines[0], /^COPY\s.*build\/filter\.wasm\s+\/plugin\.wasm$/);
  const installer = all.find((s) => s.name === "installer");
  assert.ok(installer, "an installer target for init containers");
  assert.ok(installer.lines.some((l) => /\/plugin\.wasm$/.test(l) && l.startsWith("COPY")));
});

// The sidecar bundle is built by a script (two esbuild passes: the status page's charts, then the sidecar).
const SIDECAR_BUNDLE = /^node --import tsx scripts\/bundle-sidecar\.ts --outfile=dist\/sidecar\.mjs$/;

test("sidecar.Dockerfile: npm ci, esbuild bundle to dist/sidecar.mjs, slim Node 24 runtime, non-root", () => {
  const all = stages("deploy/docker/sidecar.Dockerfile");
  assert.ok(all.length >= 2, "multi-stage");
  const [build, runtime] = [all[0], all.at(-1)!];
  assert.ok(build.lines.some((l) => /npm ci\b/.test(l)));
  assert.ok(build.lines.some((l) => SIDECAR_BUNDLE.test(l.replace(/^RUN\s+/, ""))));
  assert.match(runtime.from, /^node:24[\w.-]*slim$/);
  const user = runtime.lines.find((l) => l.startsWith("USER"));
  assert.ok(user && !/\b(root|0)(:|$)/.test(user.slice(5)), "runs as a non-root user");
  assert.ok(runtime.lines.some((l) => l.includes("dist/sidecar.mjs") && l.startsWith("ENTRYPOINT")));
  assert.ok(runtime.lines.some((l) => l === "EXPOSE 9090"));
});

test("package.json bundle:sidecar builds the same file the image runs", () => {
  const pkg = packageJson();
  assert.match(pkg.scripts["bundle:sidecar"] ?? "", SIDECAR_BUNDLE);
});

test("every Node stage of every image is the current LTS, Node 24, on the same slim base", () => {
  const froms = DOCKERFILES.flatMap((f) => stages(f).map((s) => ({ f, from: s.from })));
  const node = froms.filter((s) => s.from.startsWith("node:"));
  assert.ok(node.length >= 5, "build and runtime stages");
  for (const s of node) assert.equal(s.from, "node:24-bookworm-slim", `${s.f}: ${s.from}`);
});

test("bundles target the oldest Node major that package.json engines admits (they must run on 20, 22 and 24)", () => {
  const pkg = packageJson();
  const majors = pkg.engines.node.split("||").map((r) => Number(/(\d+)/.exec(r)?.[1]));
  assert.ok(majors.every(Number.isInteger), `engines.node ${pkg.engines.node}`);
  const target = `--target=node${Math.min(...majors)}`;
  const bundling = DOCKERFILES.flatMap((f) => stages(f).flatMap((s) => s.lines)).filter((l) =>
    l.includes("esbuild "),
  );
  assert.ok(bundling.length >= 1);
  for (const l of bundling) assert.ok(l.includes(target), `${target} in: ${l}`);
  // The sidecar's bundle script (package.json and the image both run it).
  const script = readFileSync(join(repoRoot, "scripts/bundle-sidecar.ts"), "utf8");
  assert.ok(
    script.includes(`target: "node${Math.min(...majors)}"`),
    `node${Math.min(...majors)} in bundle-sidecar.ts`,
  );
});
