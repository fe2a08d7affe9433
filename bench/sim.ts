// How fast is the simulator's virtual-time mode? 10 pods, Poisson 1000 QPS, 300 simulated
// seconds of a ShareGPT-like workload (log-normal lengths, mean ≈ 215 in / 198 out, vLLM's
// filters: prompt ≤ 1024, prompt+output ≤ 2048), round-robin routing, /metrics text rendered for
// every pod every 50 ms of virtual time (what the sidecar would scrape).
// Usage: npm run bench:sim [-- --pods 10 --qps 1000 --seconds 300 --preset h100-llama3-8b --seed 1]
import { parseArgs } from "node:util";
import { VirtualClock } from "../sim/clock/virtual-clock.ts";
import { Engine } from "../sim/engine/engine.ts";
import { presetConfig } from "../sim/engine/presets.ts";
import { Rng } from "../sim/rng.ts";

const { values } = parseArgs({
  options: {
    pods: { type: "string", default: "10" },
    qps: { type: "string", default: "1000" },
    seconds: { type: "string", default: "300" },
    preset: { type: "string", default: "h100-llama3-8b" },
    seed: { type: "string", default: "1" },
  },
});
const pods = Number(values.pods);
const qps = Number(values.qps);
const seconds = Number(values.seconds);
const rng = new Rng(Number(values.seed));
const clock = new VirtualClock();
const config = presetConfig(values.preset);
const engines = Array.from({ length: pods }, (_, i) => new Engine({ config, clock, seed: i + 1 }));

function sharegptLengths(): [number, number] {
  for (;;) {
    const input = Math.round(rng.logNormal(215, 1.0));
    const output = Math.round(rng.logNormal(198, 0.9));
    if (input >= 4 && output >= 4 && input <= 1024 && input + output <= 2048) return [input, output];
  }
}

let submitted = 0;
let completed = 0;
const ttfts: number[] = [];
const e2es: number[] = [];
const ntpots: number[] = [];
let metricsBytes = 0;
const horizonMs = seconds * 1000;
const callbacks = {
  onDone(r: { arrivalMs: number; firstTokenMs: number; finishedMs: number; generated: number }) {
    completed++;
    ttfts.push(r.firstTokenMs - r.arrivalMs);
    e2es.push(r.finishedMs - r.arrivalMs);
    ntpots.push((r.finishedMs - r.arrivalMs) / r.generated);
  },
};

let next = 0;
function arrive(): void {
  const [input, output] = sharegptLengths();
  engines[next].submit({ promptTokens: input, maxTokens: output }, callbacks);
  next = (next + 1) % pods;
  submitted++;
  const at = clock.now() + rng.exponential(1000 / qps);
  if (at < horizonMs) clock.schedule(at, arrive);
}
function scrape(): void {
  for (const e of engines) metricsBytes += e.metricsText().length;
  if (clock.now() + 50 < horizonMs) clock.schedule(clock.now() + 50, scrape);
}

/** Mean, p50 and p90 of completed requests, in ms. */
function summary(xs: number[]): { mean: number; p50: number; p90: number } {
  const sorted = Float64Array.from(xs).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  const mean = xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  return { mean: round(mean), p50: round(at(0.5)), p90: round(at(0.9)) };
}
function round(x: number): number {
  return Number(x.toFixed(1));
}

const t0 = performance.now();
clock.schedule(0, arrive);
clock.schedule(0, scrape);
let lastReport = t0;
for (let t = 0; t < horizonMs; t += 1000) {
  clock.runUntil(Math.min(t + 1000, horizonMs));
  const now = performance.now();
  if (now - lastReport > 5000) {
    lastReport = now;
    process.stderr.write(
      `  ${((t + 1000) / 1000).toFixed(0)}/${seconds} simulated s, ${((now - t0) / 1000).toFixed(1)} s wall\n`,
    );
  }
}
const wallS = (performance.now() - t0) / 1000;
const preemptions = engines.reduce((s, e) => s + e.stats.preemptions, 0);
const steps = engines.reduce((s, e) => s + e.stats.steps, 0);
const waiting = engines.reduce((s, e) => s + e.numWaiting, 0);
const running = engines.reduce((s, e) => s + e.numRunning, 0);
console.log(
  JSON.stringify(
    {
      pods,
      qps,
      simulatedSeconds: seconds,
      preset: values.preset,
      wallSeconds: Number(wallS.toFixed(2)),
      speedup: Number((seconds / wallS).toFixed(1)),
      submitted,
      completed,
      stillRunning: running,
      stillWaiting: waiting,
      steps,
      preemptions,
      ttftMs: summary(ttfts),
      ntpotMs: summary(ntpots),
      e2eMs: summary(e2es),
      meanKvUsageAtEnd: Number((engines.reduce((s, e) => s + e.kvUsage(), 0) / pods).toFixed(3)),
      metricsRendered: Math.round(metricsBytes / 1024) + " KiB",
    },
    null,
    2,
  ),
);
