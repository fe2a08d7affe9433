// npm run bench:routing -- --workload W --policies a,b --qps 100,200 --seed S --pods N --duration S
//   --scrape-interval-ms 50 --push-delay-ms 5 --workers 1 --replicas 1 --out DIR
//   --slo-ttft-ms 2000 --slo-tpot-ms 50 (goodput = requests/s within both)
//   --service-connections 0 --service-idle-timeout-ms 5000 (the client pool `k8s-service` is measured with)
//   --config FILE (repeatable: one more policy per EndpointPickerConfig file, named config=FILE)
//   --profiles-from-files (legacy, gie-default and default run from config/scheduling/NAME.yaml)
//   --wasm FILE (another filter build, e.g. to compare two builds in one tree)
// Routing-quality benchmark in virtual time (bench/routing/); writes JSON, Markdown and plots.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ALL_POLICIES, parsePolicyName } from "./routing/policies.ts";
import { CONFIG_POLICY_PREFIX, FLOW_CONTROL_POLICY, isFlowControlPolicy } from "./routing/filter-policy.ts";
import { shippedConfigPath } from "../sidecar/scheduling-config/shipped.ts";
import { runSweep } from "./routing/sweep.ts";
import { SERVICE_CLIENT_DEFAULTS } from "./routing/k8s-service.ts";
import { WORKLOADS, workloadByName } from "./routing/workloads.ts";
import { writeRoutingReport } from "./report/routing-report.ts";

const { values: a } = parseArgs({
  options: {
    workload: { type: "string", default: "sharegpt" },
    policies: { type: "string", default: ALL_POLICIES.join(",") },
    qps: { type: "string" },
    seed: { type: "string", default: "1" },
    pods: { type: "string", default: "10" },
    preset: { type: "string", default: "h100-llama3-8b" },
    duration: { type: "string", default: "30" },
    warmup: { type: "string" },
    cooldown: { type: "string" },
    "scrape-interval-ms": { type: "string", default: "50" },
    "push-delay-ms": { type: "string", default: "5" },
    workers: { type: "string", default: "1" },
    replicas: { type: "string", default: "1" },
    "slo-ttft-ms": { type: "string" },
    "slo-tpot-ms": { type: "string" },
    "service-connections": { type: "string", default: String(SERVICE_CLIENT_DEFAULTS.connections) },
    "service-idle-timeout-ms": { type: "string", default: String(SERVICE_CLIENT_DEFAULTS.idleTimeoutMs) },
    out: { type: "string", default: "bench-output" },
    "no-png": { type: "boolean", default: false },
    config: { type: "string", multiple: true },
    "profiles-from-files": { type: "boolean", default: false },
    wasm: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (a.help) {
  console.log(`usage: npm run bench:routing -- [--workload ${Object.keys(WORKLOADS).join("|")}] [--policies ${ALL_POLICIES.join(",")}]
  (a filter policy takes scheduler params for sweeps: default:prefixWeight=8:queueWeight=2)
  [--qps 100,200] [--seed 1] [--pods 10] [--preset h100-llama3-8b] [--duration 30] [--warmup S] [--cooldown S]
  [--scrape-interval-ms 50] [--push-delay-ms 5] [--workers 1] [--replicas 1] [--slo-ttft-ms 2000] [--slo-tpot-ms 50] [--out bench-output] [--no-png]
  [--service-connections 0] [--service-idle-timeout-ms 5000]
                          k8s-service's client: keep-alive pool size (0 = unlimited, as vllm bench serve without
                          --max-concurrency) and idle lifetime (vLLM's server keep-alive, 5 s)
  [--policies ${FLOW_CONTROL_POLICY}]  default with flow control (config/scheduling/flow-control.yaml)
  [--config FILE]...      one more policy per EndpointPickerConfig file (config=FILE), loaded as the sidecar loads it
  [--profiles-from-files] legacy, gie-default and default run from config/scheduling/NAME.yaml (PLUGINS sent)
  [--wasm FILE]           the filter build to run (default build/filter.wasm)`);
  process.exit(0);
}

const num = (s: string | undefined, name: string): number => {
  const n = Number(s);
  if (s === undefined || !Number.isFinite(n) || n < 0)
    throw new Error(`--${name} must be a non-negative number`);
  return n;
};
const workload = workloadByName(a.workload!);
const SHIPPED_PROFILES = ["legacy", "gie-default", "default"];
const policies = a
  .policies!.split(",")
  .filter(Boolean)
  .map((p) =>
    a["profiles-from-files"] && SHIPPED_PROFILES.includes(p)
      ? CONFIG_POLICY_PREFIX + shippedConfigPath(p)
      : p,
  );
policies.push(...(a.config ?? []).map((f) => CONFIG_POLICY_PREFIX + f));
for (const p of policies)
  if (
    !p.startsWith(CONFIG_POLICY_PREFIX) &&
    !isFlowControlPolicy(p) &&
    !ALL_POLICIES.includes(parsePolicyName(p).base)
  )
    throw new Error(
      `unknown policy "${p}"; choose from ${ALL_POLICIES.join(", ")}, ${FLOW_CONTROL_POLICY} or config=FILE`,
    );
const durationS = num(a.duration, "duration");
// Default warm-up/cool-down: 1/6 of the stage each (5 s of a 30 s stage).
const warmupS = a.warmup === undefined ? durationS / 6 : num(a.warmup, "warmup");
const cooldownS = a.cooldown === undefined ? durationS / 6 : num(a.cooldown, "cooldown");

const isTty = process.stderr.isTTY;
const t0 = performance.now();
const progress = (i: number, total: number, policy: string, qps: number): void => {
  const width = 30;
  const filled = Math.round((i / total) * width);
  const secs = ((performance.now() - t0) / 1000).toFixed(0);
  const label = i < total ? `${policy} @ ${qps} QPS` : "done";
  const line = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${i}/${total} ${label} (${secs}s)`;
  process.stderr.write(isTty ? `\r${line.padEnd(78)}${i === total ? "\n" : ""}` : `${line}\n`);
};

const run = await runSweep(
  {
    workload,
    policies,
    qps: a.qps ? a.qps.split(",").map((q) => num(q, "qps")) : workload.defaultQps,
    seed: num(a.seed, "seed"),
    pods: num(a.pods, "pods"),
    preset: a.preset!,
    durationMs: durationS * 1000,
    warmupMs: warmupS * 1000,
    cooldownMs: cooldownS * 1000,
    scrapeIntervalMs: num(a["scrape-interval-ms"], "scrape-interval-ms"),
    pushDelayMs: num(a["push-delay-ms"], "push-delay-ms"),
    workers: Math.max(1, Math.floor(num(a.workers, "workers"))),
    replicas: Math.max(1, Math.floor(num(a.replicas, "replicas"))),
    // The workload's own SLO (long-context) unless the command line sets one.
    slo: {
      ttftMs: num(a["slo-ttft-ms"] ?? String(workload.slo?.ttftMs ?? 2000), "slo-ttft-ms"),
      tpotMs: num(a["slo-tpot-ms"] ?? String(workload.slo?.tpotMs ?? 50), "slo-tpot-ms"),
    },
    service: {
      connections: Math.floor(num(a["service-connections"], "service-connections")),
      idleTimeoutMs: num(a["service-idle-timeout-ms"], "service-idle-timeout-ms"),
    },
    ...(a.wasm === undefined ? {} : { wasm: readFileSync(a.wasm) }),
  },
  progress,
);
const files = await writeRoutingReport(run, a.out!, !a["no-png"]);
process.stderr.write(
  `wrote ${files.length} files to ${a.out} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
);
console.log(files[1]);
