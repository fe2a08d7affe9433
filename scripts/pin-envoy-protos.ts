// Copies the Envoy API .proto files our Envoy configs need, and their imports, from local git mirrors into
// test/fixtures/upstream/envoy-api/ (test fixtures for test/deploy/envoy-schema.ts; see the README there).
//
//   node --import tsx scripts/pin-envoy-protos.ts --api DIR --xds DIR --pgv DIR [--check]
//
// DIR is a git directory (bare or .git) of github.com/envoyproxy/data-plane-api, github.com/cncf/xds and
// github.com/bufbuild/protoc-gen-validate. The commits are pinned below; --check compares instead of writing.
// google/protobuf/*.proto are not copied: the schema loader takes them from protobufjs.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { parseArgs } from "node:util";

interface Source {
  flag: "api" | "xds" | "pgv";
  repo: string;
  commit: string;
  /** Import path prefixes this repository provides. */
  prefixes: string[];
}

// data-plane-api is envoyproxy/envoy's api/ folder mirrored commit by commit. This commit mirrors envoy
// ad6af72b4fcd7bf5fcb65f79676c2ee02116fe47, the API that go-control-plane tagged envoy/v1.35.0. xds and PGV are
// the versions that commit's bazel/repository_locations.bzl names (com_github_cncf_xds, PGV v1.0.4).
export const SOURCES: Source[] = [
  {
    flag: "api",
    repo: "envoyproxy/data-plane-api",
    commit: "55f5d6eefa8af1f44988dc9f168e0267a7552fef",
    prefixes: ["envoy/"],
  },
  {
    flag: "xds",
    repo: "cncf/xds",
    commit: "2ac532fd44436293585084f8d94c6bdb17835af0",
    prefixes: ["xds/", "udpa/"],
  },
  {
    flag: "pgv",
    repo: "bufbuild/protoc-gen-validate",
    commit: "32c2415389a3538082507ae537e7edd9578c64ed", // tag v1.0.4
    prefixes: ["validate/"],
  },
];

// The messages our configs name: the bootstrap, and every typed_config type they use or are likely to use.
// Add a file here when a config starts using a new extension, then re-run this script.
export const ROOTS = [
  "envoy/config/bootstrap/v3/bootstrap.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/wasm/v3/wasm.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/load_balancing_policies/override_host/v3/override_host.proto",
  "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto",
  "envoy/extensions/load_balancing_policies/cluster_provided/v3/cluster_provided.proto",
  "envoy/extensions/access_loggers/file/v3/file.proto",
  "envoy/extensions/access_loggers/stream/v3/stream.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
];

/** Imports the schema loader resolves itself (protobufjs bundles them). */
const BUNDLED = /^google\/protobuf\/[a-z_]+\.proto$/;

const OUT = new URL("../test/fixtures/upstream/envoy-api/", import.meta.url).pathname;

function git(gitDir: string, ...args: string[]): string {
  return execFileSync("git", ["--git-dir", gitDir, ...args], { encoding: "utf8", maxBuffer: 64 << 20 });
}

function imports(text: string): string[] {
  return [...text.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)].map((m) => m[1]);
}

/** Every file the roots import, transitively, read at the pinned commits: path -> contents. */
export function collect(dirs: Record<Source["flag"], string>): Map<string, string> {
  const files = new Map<string, string>();
  const queue = [...ROOTS];
  while (queue.length > 0) {
    const path = queue.shift()!;
    if (files.has(path) || BUNDLED.test(path)) continue;
    const source = SOURCES.find((s) => s.prefixes.some((p) => path.startsWith(p)));
    if (!source) throw new Error(`${path}: no pinned source provides it (add one to SOURCES)`);
    const text = git(dirs[source.flag], "show", `${source.commit}:${path}`);
    files.set(path, text);
    queue.push(...imports(text));
  }
  for (const s of SOURCES)
    files.set(
      `licenses/${s.repo.replace("/", "_")}.LICENSE`,
      git(dirs[s.flag], "show", `${s.commit}:LICENSE`),
    );
  return files;
}

function listed(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.push(relative(dir, full));
    }
  };
  walk(dir);
  return out.filter((f) => f !== "README.md").sort();
}

function main(): void {
  const { values } = parseArgs({
    options: {
      api: { type: "string" },
      xds: { type: "string" },
      pgv: { type: "string" },
      check: { type: "boolean", default: false },
    },
  });
  if (!values.api || !values.xds || !values.pgv) {
    console.error("usage: pin-envoy-protos.ts --api DIR --xds DIR --pgv DIR [--check]");
    process.exit(2);
  }
  const files = collect({ api: values.api, xds: values.xds, pgv: values.pgv });
  if (values.check) {
    const want = [...files.keys()].sort();
    const have = listed(OUT);
    const problems = [
      ...want.filter((f) => !have.includes(f)).map((f) => `missing ${f}`),
      ...have.filter((f) => !files.has(f)).map((f) => `extra ${f}`),
      ...want
        .filter((f) => have.includes(f) && readFileSync(join(OUT, f), "utf8") !== files.get(f))
        .map((f) => `differs ${f}`),
    ];
    for (const p of problems) console.error(p);
    console.log(`${files.size} files, ${problems.length} problems`);
    process.exit(problems.length === 0 ? 0 : 1);
  }
  for (const f of listed(OUT)) rmSync(join(OUT, f));
  for (const [path, text] of files) {
    mkdirSync(dirname(join(OUT, path)), { recursive: true });
    writeFileSync(join(OUT, path), text);
  }
  console.log(`wrote ${files.size} files to ${relative(process.cwd(), OUT) || "."}`);
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
