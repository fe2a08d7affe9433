#!/usr/bin/env node
// Runs every TypeScript test file under test/ with Node's built-in test runner (tsx loads .ts).
// Node 20 has no glob support in `--test`, so the files are listed here.
// Usage:
//   node scripts/run-tests.mjs [path-substring ...]
//   node scripts/run-tests.mjs --isolation-sample N [--seed S] [path-substring ...]
// The second form runs N top-level tests, picked at random from the last full run's results
// (test-output/test-results.json), each alone in its own process with --test-name-pattern: it proves the
// tests do not depend on the ones before them. The seed defaults to today's UTC date and is printed, so a
// failing sample can be replayed with --seed.
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { spawn, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";

const root = new URL("..", import.meta.url).pathname;
// A bound on any one test, so a hang fails that test instead of the CI job: generous, because a busy 2-core
// machine can be slow; the tests bound their own waits far below it.
const TEST_TIMEOUT_MS = 300_000;
const reporter = join(root, "scripts/test-summary-reporter.mjs");

const args = process.argv.slice(2);
const option = (name) => {
  const i = args.indexOf(name);
  if (i < 0) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith("--")) throw new Error(`${name} needs a value`);
  args.splice(i, 2);
  return v;
};
const sample = option("--isolation-sample");
const seedArg = option("--seed");
const filters = args;

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "fixtures") continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...walk(full));
    else if (name.endsWith(".test.ts")) out.push(full);
  }
  return out;
}

const nodeTest = (extra) => [
  "--import",
  "tsx",
  "--test",
  `--test-timeout=${TEST_TIMEOUT_MS}`,
  ...extra,
  "--test-reporter=spec",
  "--test-reporter-destination=stdout",
  `--test-reporter=${reporter}`,
  "--test-reporter-destination=stdout",
];

/** mulberry32: a small seeded generator, enough to pick a sample reproducibly. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");

async function isolationSample(n) {
  if (!Number.isInteger(n) || n < 1) throw new Error("--isolation-sample needs a positive integer");
  const resultsFile = join(root, "test-output/test-results.json");
  if (!existsSync(resultsFile)) {
    console.error(`${relative(root, resultsFile)} is missing: run the full suite (npm run test:ts) first`);
    return 1;
  }
  const all = JSON.parse(readFileSync(resultsFile, "utf8"));
  const pool = all.filter(
    (t) => t.outcome === "pass" && (filters.length === 0 || filters.some((s) => t.file.includes(s))),
  );
  const seed =
    seedArg !== undefined
      ? Number(seedArg)
      : Number(new Date().toISOString().slice(0, 10).replaceAll("-", ""));
  const next = rng(seed);
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  const picked = pool.slice(0, n);
  console.log(
    `isolation sample: ${picked.length} of ${pool.length} tests, seed ${seed} (replay: --isolation-sample ${n} --seed ${seed})`,
  );
  const failures = [];
  const runOne = (t, k) =>
    new Promise((resolve) => {
      const results = join(tmpdir(), `epp-isolation-${process.pid}-${k}.json`);
      const child = spawn(
        process.execPath,
        [...nodeTest([`--test-name-pattern=^${escapeRegExp(t.name)}$`]), t.file],
        { cwd: root, env: { ...process.env, EPP_TEST_RESULTS: results }, stdio: ["ignore", "pipe", "pipe"] },
      );
      let output = "";
      child.stdout.on("data", (b) => (output += b));
      child.stderr.on("data", (b) => (output += b));
      child.on("close", (code) => {
        let ran = [];
        try {
          ran = JSON.parse(readFileSync(results, "utf8")).filter((r) => r.name === t.name);
          rmSync(results, { force: true });
        } catch {
          // no results: the run failed before the reporter finished; `code` says so
        }
        const ok = code === 0 && ran.length > 0 && ran.every((r) => r.outcome === "pass");
        console.log(`  ${ok ? "ok  " : "FAIL"} ${t.file}: ${t.name}`);
        if (!ok) failures.push({ t, output });
        resolve();
      });
    });
  // Two at a time, as the full run does.
  let k = 0;
  const worker = async () => {
    while (k < picked.length) {
      const i = k++;
      await runOne(picked[i], i);
    }
  };
  await Promise.all([worker(), worker()]);
  for (const f of failures) console.log(`\n--- ${f.t.file}: ${f.t.name} failed when run alone:\n${f.output}`);
  console.log(
    `isolation sample: ${picked.length - failures.length} of ${picked.length} passed alone (seed ${seed})`,
  );
  return failures.length === 0 ? 0 : 1;
}

if (sample === undefined) {
  const files = walk(join(root, "test"))
    .map((f) => relative(root, f))
    .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
    .sort();
  if (files.length === 0) {
    console.error("no test files matched");
    process.exit(1);
  }
  const result = spawnSync(process.execPath, [...nodeTest(["--test-concurrency=2"]), ...files], {
    cwd: root,
    stdio: "inherit",
  });
  process.exit(result.status ?? 1);
} else {
  process.exit(await isolationSample(Number(sample)));
}
