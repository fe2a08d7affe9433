// Sidecar benchmark: 1000 endpoints scraped every 50 ms, each round built into a snapshot and encoded.
// Reports the sidecar's CPU seconds per wall second, encode/build time p50/p99 and metric age.
// The model servers run in a child process (bench/sidecar-metrics-server.ts), one port per endpoint.
// Usage: npm run bench:sidecar -- [--endpoints 1000] [--interval 50] [--seconds 10] [--page vllm|minimal]
//        [--client lean|undici]
import { fork } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Scraper } from "../sidecar/collector/scraper.ts";
import { createHttpFetcher } from "../sidecar/collector/fetch-metrics.ts";
import { createLeanFetcher } from "../sidecar/collector/lean-http.ts";
import { buildSnapshot, scrapeTargets } from "../sidecar/snapshot/builder.ts";
import type { PoolView } from "../sidecar/snapshot/builder.ts";
import { encodeSnapshot } from "../sidecar/snapshot/encoder.ts";
import { GenerationClock } from "../sidecar/snapshot/generation.ts";

const { values: args } = parseArgs({
  options: {
    endpoints: { type: "string", default: "1000" },
    interval: { type: "string", default: "50" },
    seconds: { type: "string", default: "10" },
    warmup: { type: "string", default: "2" },
    concurrency: { type: "string", default: "256" },
    page: { type: "string", default: "vllm" },
    client: { type: "string", default: "lean" },
  },
});
const N = Number(args.endpoints);
const intervalMs = Number(args.interval);

/** Where the lead's publisher plugs in: called with every encoded snapshot. */
const publish: (pool: string, bytes: Uint8Array, generation: bigint) => void = () => {};

const child = fork(new URL("./sidecar-metrics-server.ts", import.meta.url), [String(N), args.page], {
  execArgv: ["--import", "tsx"],
  stdio: ["ignore", "inherit", "inherit", "ipc"],
});
const ready = await new Promise<{ ports: number[]; pageBytes: number }>((resolve, reject) => {
  child.once("message", (m) => resolve(m as { ports: number[]; pageBytes: number }));
  child.once("exit", (code) => reject(new Error(`metrics server exited with ${code}`)));
});
const childCpu = () =>
  new Promise<NodeJS.CpuUsage>((resolve) => {
    child.once("message", (m) => resolve((m as { cpu: NodeJS.CpuUsage }).cpu));
    child.send("cpu");
  });

const fixedPage = readFileSync(new URL("../test/fixtures/metrics/vllm.txt", import.meta.url), "utf8");

const pool: PoolView = {
  namespace: "bench",
  name: "pool",
  failureMode: "FailClose",
  targetPorts: [8000],
  endpoints: ready.ports.map((port, i) => ({ podName: `pod-${i}`, address: "127.0.0.1", port, ready: true })),
};

let measuring = false;
const encodeMs: number[] = [];
const buildMs: number[] = [];
const ages: number[] = [];
let rounds = 0;
let partial = 0;
let failures = 0;
let scrapes = 0;
let bytes = 0;
const generations = new GenerationClock();

// "lean": the sidecar's own minimal HTTP/1.1 client; "undici": the general-purpose keep-alive Agent.
// "none": no network at all (a fixed page), to separate parse/build/encode cost from the HTTP cost.
const fetcher =
  args.client === "undici"
    ? createHttpFetcher()
    : args.client === "none"
      ? { fetch: async () => fixedPage, close: async () => {} }
      : createLeanFetcher();
const scraper = new Scraper({
  fetch: fetcher.fetch,
  intervalMs,
  timeoutMs: 1000,
  concurrency: Number(args.concurrency),
  onRound: (r) => {
    const t0 = performance.now();
    const snap = buildSnapshot(pool, scraper, { generation: generations.next(), nowMs: Date.now() });
    const t1 = performance.now();
    const encoded = encodeSnapshot(snap);
    const t2 = performance.now();
    publish("bench/pool", encoded, snap.generation);
    if (!measuring) return;
    rounds++;
    if (r.partial) partial++;
    failures += r.failed;
    scrapes += r.dispatched;
    bytes = encoded.length;
    buildMs.push(t1 - t0);
    encodeMs.push(t2 - t1);
    let sum = 0;
    let n = 0;
    for (const e of snap.endpoints) {
      if (e.metricsAgeMs === null) continue;
      sum += e.metricsAgeMs;
      n++;
    }
    if (n > 0) ages.push(sum / n);
  },
});
scraper.setTargets(scrapeTargets(pool));
scraper.start();

const progress = (s: string) => process.stderr.write(`${s}\n`);
progress(`metrics server: ${N} ports, ${ready.pageBytes} B per page; warming up ${args.warmup} s`);
await new Promise((r) => setTimeout(r, Number(args.warmup) * 1000));

measuring = true;
const cpu0 = process.cpuUsage();
const child0 = await childCpu();
const wall0 = performance.now();
await new Promise((r) => setTimeout(r, Number(args.seconds) * 1000));
const wallS = (performance.now() - wall0) / 1000;
const cpu = process.cpuUsage(cpu0);
const child1 = await childCpu();
measuring = false;

await scraper.stop();
await fetcher.close();
child.disconnect();
child.kill();

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const report = {
  endpoints: N,
  intervalMs,
  client: args.client,
  seconds: round3(wallS),
  pageBytes: ready.pageBytes,
  rounds,
  roundsPerSecond: round3(rounds / wallS),
  partialRounds: partial,
  scrapes,
  failedScrapes: failures,
  snapshotBytes: bytes,
  sidecarCores: round3((cpu.user + cpu.system) / 1e6 / wallS),
  // System time is mostly the kernel's loopback TCP work, which a real NIC would partly move off this host.
  sidecarUserCores: round3(cpu.user / 1e6 / wallS),
  sidecarSystemCores: round3(cpu.system / 1e6 / wallS),
  cpuMicrosPerScrape: round3((cpu.user + cpu.system) / Math.max(1, scrapes)),
  metricsServerCores: round3((child1.user - child0.user + child1.system - child0.system) / 1e6 / wallS),
  encodeMs: { p50: round3(pct(encodeMs, 50)), p99: round3(pct(encodeMs, 99)) },
  buildMs: { p50: round3(pct(buildMs, 50)), p99: round3(pct(buildMs, 99)) },
  meanMetricAgeMs: { p50: round3(pct(ages, 50)), p99: round3(pct(ages, 99)) },
  targets: { sidecarCores: 0.5, encodeMsP99: 2 },
};
console.log(JSON.stringify(report, null, 2));
mkdirSync(new URL("../bench-output/", import.meta.url), { recursive: true });
writeFileSync(
  new URL("../bench-output/sidecar.json", import.meta.url),
  JSON.stringify(report, null, 2) + "\n",
);
