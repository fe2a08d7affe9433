// `npm run chaos -- --minutes N [--seed S] [--json FILE]`: the local stack under a seeded schedule of faults
// with steady traffic (scripts/chaos/run.ts); prints what was lost and why, and memory over time.
// Exit status 1 when the verdict fails (a non-streaming request lost outside a gateway kill, or a cut stream
// its client took for a clean end), 2 on a usage or start-up error.
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { formatReport, runChaos } from "./chaos/run.ts";
import "./chaos/orphan-guard.ts";

const USAGE = `usage: npm run chaos -- --minutes N [--seed S] [--pods P] [--json FILE]

  --minutes N   minutes of faults (fractions allowed; default 1); each minute kills and restarts a pod, one
                sidecar, both sidecars and the gateway, pushes four bad snapshots and runs three kinds of
                slow clients, in an order and at times drawn from the seed
  --seed S      the schedule's seed (default 1)
  --pods P      simulated pods, one process each (default 4)
  --no-build    run build/filter.wasm as it is (default: rebuild it first when older than assembly/)
  --retry-on L  the route's retry_on (comma-separated) instead of the shipped one: an experiment
  --json FILE   also write the full report (every fault, every loss, the memory samples) as JSON`;

const { values } = parseArgs({
  options: {
    minutes: { type: "string", default: "1" },
    seed: { type: "string", default: "1" },
    pods: { type: "string", default: "4" },
    json: { type: "string" },
    "no-build": { type: "boolean", default: false },
    "retry-on": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const minutes = Number(values.minutes);
const seed = Number(values.seed);
const pods = Number(values.pods);
if (!(minutes > 0) || !Number.isInteger(seed) || !Number.isInteger(pods) || pods < 2) {
  console.error(USAGE);
  process.exit(2);
}

const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());

try {
  const report = await runChaos({
    minutes,
    seed,
    pods,
    noBuild: values["no-build"],
    retryOn: values["retry-on"]?.split(","),
    signal: stop.signal,
    log: (l) => console.log(`[chaos] ${l}`),
  });
  console.log(`\n${formatReport(report)}`);
  if (values.json) writeFileSync(values.json, JSON.stringify(report, null, 2));
  process.exit(report.verdict.ok ? 0 : 1);
} catch (err) {
  console.error(`chaos: ${(err as Error).message}`);
  process.exit(2);
}
