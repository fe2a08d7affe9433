// A node:test reporter used beside `spec` by scripts/run-tests.mjs: at the end it lists every skipped test
// with its file and reason, prints one summary line (passed, failed, skipped), and writes the top-level
// results to EPP_TEST_RESULTS (default test-output/test-results.json) so `--isolation-sample` can pick
// tests that ran, and check that a test run alone really ran.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, relative } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const out = process.env.EPP_TEST_RESULTS ?? `${root}test-output/test-results.json`;

export default async function* summaryReporter(source) {
  let passed = 0;
  let failed = 0;
  let todo = 0;
  const skipped = [];
  const results = [];
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const d = event.data;
    if (d.details?.type === "suite") continue;
    const file = d.file ? relative(root, d.file) : "?";
    const skip =
      d.skip === undefined || d.skip === false ? undefined : d.skip === true ? "(no reason)" : d.skip;
    // Tests left out by --test-name-pattern are not skips anyone should read about.
    if (skip === "test name does not match pattern") continue;
    if (skip !== undefined) skipped.push({ file, name: d.name, why: skip });
    else if (d.todo) todo++;
    else if (event.type === "test:pass") passed++;
    else failed++;
    if (d.nesting === 0)
      results.push({ file, name: d.name, outcome: skip !== undefined ? "skip" : event.type.slice(5) });
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify(results, null, 1) + "\n");
  let text = "\n";
  if (skipped.length > 0) {
    text += `skipped tests (${skipped.length}):\n`;
    for (const s of skipped) text += `  - ${s.file}: ${s.name}\n      why: ${s.why}\n`;
  }
  text += `summary: ${passed} passed, ${failed} failed, ${skipped.length} skipped${todo ? `, ${todo} todo` : ""}\n`;
  yield text;
}
