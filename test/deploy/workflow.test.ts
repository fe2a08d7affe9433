// The hosted-runner workflow that runs `npm run test:envoy` against the official Envoy image cannot run here
// (no Docker): what can be checked is that it parses and runs the command the way the docs say.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";

const WORKFLOW = new URL("../../.github/workflows/test-envoy.yml", import.meta.url);

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}

test(".github/workflows/test-envoy.yml parses and runs test:envoy with Docker on the official image", () => {
  const wf = parse(readFileSync(WORKFLOW, "utf8")) as {
    on: Record<string, unknown>;
    jobs: Record<string, { "runs-on": string; strategy: { matrix: { image: string[] } }; steps: Step[] }>;
  };
  assert.ok("push" in wf.on && "pull_request" in wf.on, "runs on pushes and pull requests");
  const jobs = Object.values(wf.jobs);
  assert.equal(jobs.length, 1);
  const job = jobs[0]!;
  assert.match(job["runs-on"], /^ubuntu-/, "a runner with Docker");
  for (const image of job.strategy.matrix.image)
    assert.match(image, /^envoyproxy\/envoy:v1\.(3[5-9]|[4-9]\d)/);
  const runs = job.steps.map((s) => s.run ?? "");
  assert.ok(runs.includes("npm ci"));
  const check = runs.find((r) => r.startsWith("npm run test:envoy"));
  assert.ok(check, "runs npm run test:envoy");
  assert.match(check, /--docker/);
  assert.doesNotMatch(check, /--allow-skip/, "a missing Envoy must fail the job");
  const node = job.steps.find((s) => s.uses?.startsWith("actions/setup-node"))?.with?.["node-version"];
  assert.ok(node !== undefined, "pins a Node version");
  const engines = (
    JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
      engines: { node: string };
    }
  ).engines.node;
  assert.match(
    engines,
    new RegExp(`>=${String(node)}|\\^${String(node)}\\.`),
    "the workflow's Node is one engines allows",
  );
});
