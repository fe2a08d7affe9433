// Sidecar benchmark: the production loop (`Sidecar`: scrape every endpoint every 50 ms → build → encode →
// push) over 1000 endpoints, pushing to a real local gateway running build/filter.wasm.
// Reports the sidecar's CPU seconds per wall second, encode time, push latency and metric-to-push staleness.
// Model servers run in one child process (bench/sidecar-metrics-server.ts), one port per endpoint; the
// gateway in another. `npm run bench:sidecar` runs this file as an esbuild bundle on plain node, the way the
// sidecar image runs the sidecar (tsx's loader costs a few percent of CPU). Usage:
//   npm run bench:sidecar -- [--endpoints 1000] [--interval 50] [--seconds 10] [--page vllm|fixture|minimal]
//                            [--name-filter true|false] [--client lean|undici|none] [--push true|false]
//                            [--floor true|false] [--server raw|http]
import { fork, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { EventEmitter } from "node:events";
import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { createHttpFetcher } from "../sidecar/collector/fetch-metrics.ts";
import { createLeanFetcher } from "../sidecar/collector/lean-http.ts";
import { Publisher } from "../sidecar/publisher/publisher.ts";
import type { PushResult } from "../sidecar/publisher/publisher.ts";
import { staticTargets } from "../sidecar/publisher/discovery.ts";
import { Sidecar, poolKey } from "../sidecar/sidecar.ts";
import { SidecarMetrics } from "../sidecar/metrics.ts";
import type { Inventory, PoolInventory } from "../sidecar/inventory/types.ts";
import { silentLogger } from "../sidecar/inventory/types.ts";
import { requestedNames, restrictToNames } from "../sim/http/name-filter.ts";
import { freePort } from "../scripts/local-stack/ports.ts";
import { measureSocketFloor } from "./socket-floor.ts";
import { poolViewFromInventory } from "../sidecar/snapshot/builder.ts";
import { scrapeConfigFromInventory, scrapeTargets } from "../sidecar/collector/targets.ts";

const { values: args } = parseArgs({
  options: {
    endpoints: { type: "string", default: "1000" },
    interval: { type: "string", default: "50" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    page: { type: "string", default: "vllm" },
    "name-filter": { type: "string", default: "true" },
    client: { type: "string", default: "lean" },
    push: { type: "string", default: "true" },
    floor: { type: "string", default: "true" },
    server: { type: "string", default: "raw" },
  },
});
const N = Number(args.endpoints);
const intervalMs = Number(args.interval);
const nameFilter = args["name-filter"] !== "false";
const push = args.push !== "false";
const ROOT = new URL("../", import.meta.url).pathname;

const children: import("node:child_process").ChildProcess[] = [];
const metricsServer = fork(
  join(ROOT, "bench/sidecar-metrics-server.ts"),
  [String(N), args.page, args.server],
  {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  },
);
children.push(metricsServer);
const ready = await new Promise<{ ports: number[]; fullPageBytes: number }>((resolve, reject) => {
  metricsServer.once("message", (m) => resolve(m as { ports: number[]; fullPageBytes: number }));
  metricsServer.once("exit", (code) => reject(new Error(`metrics server exited with ${code}`)));
});
const childCpu = () =>
  new Promise<NodeJS.CpuUsage>((resolve) => {
    metricsServer.once("message", (m) => resolve((m as { cpu: NodeJS.CpuUsage }).cpu));
    metricsServer.send("cpu");
  });

// ---- the gateway that receives the pushes (the real control path of build/filter.wasm) ----
const token = randomBytes(16).toString("hex");
const tmp = mkdtempSync(join(tmpdir(), "bench-sidecar-"));
let controlUrl: string | undefined;
if (push) {
  const port = await freePort();
  const config = join(tmp, "gateway.json");
  writeFileSync(
    config,
    JSON.stringify({
      listeners: [{ name: "control", address: "127.0.0.1", port }],
      wasm: join(ROOT, "build/filter.wasm"),
      workers: 1,
      pluginConfig: { pool: { namespace: "bench", name: "pool" }, controlToken: token },
    }),
  );
  const gw = spawn(process.execPath, ["--import", "tsx", join(ROOT, "gateway/main.ts"), "--config", config], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, LOG_LEVEL: "warn" },
  });
  children.push(gw);
  controlUrl = `http://127.0.0.1:${port}`;
  await waitForPort(port);
}
const gatewayPid = push ? children[1]!.pid! : undefined;

// ---- the sidecar, with a fixed inventory of N endpoints ----
const inventory = new (class extends EventEmitter implements Inventory {
  readonly synced = true;
  private readonly pool: PoolInventory = {
    pool: {
      namespace: "bench",
      name: "pool",
      apiGroup: "inference.networking.k8s.io",
      apiVersion: "v1",
      selector: { app: "bench" },
      targetPorts: [8000],
      failureMode: "FailClose",
      annotations: { strictModels: false, metricsNameFilter: nameFilter },
    },
    endpoints: ready.ports.map((port, i) => ({
      podName: `pod-${i}`,
      address: "127.0.0.1",
      port,
      ready: true,
      labels: {},
    })),
    models: [],
    objectives: [],
    rewrites: [],
  };
  async start() {}
  async stop() {}
  pools() {
    return [this.pool];
  }
})();

// For --client none: the fixture page, cut by name[] the way the server would cut it.
const fixedPage = readFileSync(join(ROOT, "test/fixtures/metrics/vllm.txt"), "utf8");
const pageByQuery = new Map<string, string>();
function pageFor(url: string): string {
  const q = url.slice(Math.max(0, url.indexOf("?")));
  let page = pageByQuery.get(q);
  if (page === undefined) {
    const names = requestedNames(url);
    pageByQuery.set(q, (page = names ? restrictToNames(fixedPage, names) : fixedPage));
  }
  return page;
}
// "lean": the sidecar's own keep-alive HTTP/1.1 client (production default for http); "undici": the
// general-purpose Agent (used for https); "none": no network at all, to separate parse/build/encode cost.
const fetcher =
  args.client === "undici"
    ? createHttpFetcher()
    : args.client === "none"
      ? { fetch: async (url: string) => pageFor(url), close: async () => {} }
      : createLeanFetcher();

let measuring = false;
const buildMs: number[] = [];
const encodeMs: number[] = [];
const pushMs: number[] = [];
const freshestAgeAtAckMs: number[] = [];
const meanAgeAtAckMs: number[] = [];
const pushOutcomes = new Map<string, number>();
const metrics = new SidecarMetrics();
const publisher = new Publisher({
  controlPath: "/epp/v1/snapshot",
  token,
  onResult: (r) => {
    sidecar.recordPush(r);
    if (measuring) recordPush(r);
  },
});
const sidecar = new Sidecar({
  inventory,
  publisher,
  metrics,
  fetch: fetcher.fetch,
  ...("open" in fetcher ? { open: fetcher.open } : {}),
  logger: silentLogger,
  scrapeIntervalMs: intervalMs,
  onSnapshot: (e) => {
    if (!measuring) return;
    buildMs.push(e.buildMs);
    encodeMs.push(e.encodeMs);
  },
});
if (controlUrl) publisher.setTargets(staticTargets([controlUrl]));

function recordPush(r: PushResult): void {
  pushOutcomes.set(r.outcome, (pushOutcomes.get(r.outcome) ?? 0) + 1);
  if (r.outcome !== "ok") return;
  pushMs.push(r.latencyMs);
  const snap = sidecar.latest(poolKey({ namespace: "bench", name: "pool" }))?.snapshot;
  if (!snap || snap.generation !== r.generation) return;
  // Age of each endpoint's metrics at the moment the filter acknowledged the snapshot carrying them.
  const sinceBuild = Date.now() - snap.createdAtMs;
  let freshest = Infinity;
  let sum = 0;
  let n = 0;
  for (const e of snap.endpoints) {
    if (e.metricsAgeMs === null) continue;
    freshest = Math.min(freshest, e.metricsAgeMs);
    sum += e.metricsAgeMs;
    n++;
  }
  if (n === 0) return;
  freshestAgeAtAckMs.push(freshest + sinceBuild);
  meanAgeAtAckMs.push(sum / n + sinceBuild);
}

const progress = (s: string) => process.stderr.write(`${s}\n`);
// The same requests from a client that does nothing else, just before and just after the sidecar runs
// (the machine's load drifts within a run, so the two are averaged): the sidecar's CPU above this floor is
// its own work.
const floorRuns: Awaited<ReturnType<typeof measureSocketFloor>>[] = [];
const withFloor = args.floor !== "false" && args.client !== "none";
// The URLs the sidecar will scrape, worked out the way it works them out.
const floorUrls = inventory
  .pools()
  .flatMap((p) => scrapeTargets(poolViewFromInventory(p), scrapeConfigFromInventory(p)))
  .map((t) => t.url);
const measureFloor = async (when: string) => {
  progress(`socket floor (${when}): ${floorUrls.length} connections, raw requests every ${intervalMs} ms`);
  floorRuns.push(await measureSocketFloor(floorUrls, intervalMs, Math.min(5, Number(args.seconds))));
};
if (withFloor) await measureFloor("before");
await sidecar.start();
progress(
  `metrics server (${args.server}): ${N} ports, ${ready.fullPageBytes} B full page, name filter ${nameFilter}; ` +
    `push ${push ? controlUrl : "off"}; warming up ${args.warmup} s`,
);
await sleep(Number(args.warmup) * 1000);

measuring = true;
const cpu0 = process.cpuUsage();
const child0 = await childCpu();
const gw0 = gatewayPid ? procCpuSeconds(gatewayPid) : 0;
const counters0 = await scrapeCounters();
const wall0 = performance.now();
await sleep(Number(args.seconds) * 1000);
const wallS = (performance.now() - wall0) / 1000;
const cpu = process.cpuUsage(cpu0);
const child1 = await childCpu();
const gw1 = gatewayPid ? procCpuSeconds(gatewayPid) : 0;
const counters1 = await scrapeCounters();
const rounds = counters1.rounds - counters0.rounds;
const scrapesFailed = counters1.failed - counters0.failed;
const scrapesSkipped = counters1.skipped - counters0.skipped;
measuring = false;

await sidecar.stop();
await fetcher.close();
if (withFloor) await measureFloor("after");
const mean = (f: (r: (typeof floorRuns)[number]) => number) =>
  floorRuns.reduce((a, r) => a + f(r), 0) / floorRuns.length;
const floor =
  floorRuns.length === 0
    ? undefined
    : {
        cores: mean((r) => r.cores),
        userCores: mean((r) => r.userCores),
        systemCores: mean((r) => r.systemCores),
        responsesPerSecond: mean((r) => r.responsesPerSecond),
        beforeCores: floorRuns[0]!.cores,
        afterCores: floorRuns[floorRuns.length - 1]!.cores,
      };
for (const c of children) c.kill();
rmSync(tmp, { recursive: true, force: true });

const latest = sidecar.latest(poolKey({ namespace: "bench", name: "pool" }));
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const scrapes = rounds * N - scrapesSkipped; // scrapes actually made
const report = {
  endpoints: N,
  intervalMs,
  client: args.client,
  page: args.page,
  nameFilter,
  server: args.server,
  fullPageBytes: ready.fullPageBytes,
  seconds: round3(wallS),
  rounds,
  roundsPerSecond: round3(rounds / wallS),
  // Failed scrapes, and scrapes skipped because the endpoint's previous one was still in flight (its
  // server answered slower than the interval): both are cheaper than a good scrape, so a run with many
  // of them understates the loop's cost.
  scrapesFailed,
  scrapesSkipped,
  snapshotBytes: latest?.bytes.length ?? 0,
  sidecarCores: round3((cpu.user + cpu.system) / 1e6 / wallS),
  // System time is mostly the kernel's loopback TCP work (on loopback the sender also pays the receiver's
  // TCP processing), which a real NIC would partly move elsewhere.
  sidecarUserCores: round3(cpu.user / 1e6 / wallS),
  sidecarSystemCores: round3(cpu.system / 1e6 / wallS),
  cpuMicrosPerScrape: round3((cpu.user + cpu.system) / Math.max(1, scrapes)),
  metricsServerCores: round3((child1.user - child0.user + child1.system - child0.system) / 1e6 / wallS),
  gatewayCores: push ? round3((gw1 - gw0) / wallS) : null,
  // Raw sockets, same traffic, no HTTP/metrics/snapshot work (bench/socket-floor.ts): the mean of a
  // measurement just before the sidecar ran and one just after.
  socketFloor: floor
    ? {
        cores: round3(floor.cores),
        beforeCores: round3(floor.beforeCores),
        afterCores: round3(floor.afterCores),
        userCores: round3(floor.userCores),
        systemCores: round3(floor.systemCores),
        responsesPerSecond: Math.round(floor.responsesPerSecond),
      }
    : null,
  sidecarAboveFloorCores: floor ? round3((cpu.user + cpu.system) / 1e6 / wallS - floor.cores) : null,
  snapshots: encodeMs.length,
  encodeMs: { p50: round3(pct(encodeMs, 50)), p99: round3(pct(encodeMs, 99)) },
  buildMs: { p50: round3(pct(buildMs, 50)), p99: round3(pct(buildMs, 99)) },
  push: push
    ? {
        outcomes: Object.fromEntries(pushOutcomes),
        latencyMs: { p50: round3(pct(pushMs, 50)), p99: round3(pct(pushMs, 99)) },
        // Freshest endpoint: scrape done → build → encode → push acknowledged (the pipeline's own delay).
        freshestMetricAgeAtAckMs: {
          p50: round3(pct(freshestAgeAtAckMs, 50)),
          p99: round3(pct(freshestAgeAtAckMs, 99)),
        },
        // Average endpoint: adds the wait for the next round (up to one scrape interval).
        meanMetricAgeAtAckMs: { p50: round3(pct(meanAgeAtAckMs, 50)), p99: round3(pct(meanAgeAtAckMs, 99)) },
      }
    : null,
  targets: { sidecarCores: 0.5, encodeMsP99: 2 },
};
console.log(JSON.stringify(report, null, 2));
mkdirSync(join(ROOT, "bench-output"), { recursive: true });
writeFileSync(join(ROOT, "bench-output/sidecar.json"), JSON.stringify(report, null, 2) + "\n");
process.exit(0);

// ---- helpers ----
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

async function waitForPort(port: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    try {
      await fetch(`http://127.0.0.1:${port}/`);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`gateway did not listen on ${port}`);
}

/** CPU seconds (user + system) of another process, from /proc. */
function procCpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** The scraper's round and error counters, read from one rendering of the sidecar's registry. */
async function scrapeCounters(): Promise<{ rounds: number; failed: number; skipped: number }> {
  const lines = (await metrics.registry.metrics()).split("\n");
  // A series' value: `name` alone, or `name{labels}` as the exposition writes it.
  const value = (series: string) => {
    const line = lines.find((l) => l.startsWith(series + " ") || l.startsWith(series + "{"));
    return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
  };
  return {
    rounds: value("epp_sidecar_scrape_round_duration_seconds_count"),
    failed: value('epp_sidecar_scrape_errors_total{reason="failed"}'),
    skipped: value('epp_sidecar_scrape_errors_total{reason="still_in_flight"}'),
  };
}
