// `npm run bench:scheduler`: time of one whole scheduling decision in the compiled scheduler (V8) —
// block hashing of a 4 KB prompt, admission, filters, scorers, picker and post-pick bookkeeping — per
// profile for pools of 10, 100 and 1000 endpoints. Prompts come from 32 shared 3 KB system prompts
// plus 1 KB of their own, so the prefix index has real work. Prints p50/p99/mean in µs.
// Usage: npm run bench:scheduler -- [--requests 20000] [--sizes 10,100,1000] [--prompt-bytes 4096]
//        [--params queueWeight=0,affinityWeight=0]  (scheduler params, for ablations)
import { parseArgs } from "node:util";
import { loadSchedulerProbe, PROFILE } from "../test/scheduling/scheduler-probe.ts";
import { mulberry32 } from "../sim/rng.ts";

const { values } = parseArgs({
  options: {
    requests: { type: "string", default: "20000" },
    sizes: { type: "string", default: "10,100,1000" },
    "prompt-bytes": { type: "string", default: "4096" },
    params: { type: "string", default: "" },
  },
});
const REQUESTS = Number(values.requests);
const SIZES = values.sizes!.split(",").map(Number);
const PROMPT_BYTES = Number(values["prompt-bytes"]);

// Seeded so every run times the same prompts.
const r = mulberry32(2026);
const words = "the quick brown fox jumps over the lazy dog while the model thinks about tokens".split(" ");
function text(n: number): string {
  let s = "";
  while (s.length < n)
    s += words[Math.floor(r() * words.length)] + (r() < 0.1 ? ` ${Math.floor(r() * 1e6)} ` : " ");
  return s.slice(0, n);
}
const shared = Array.from(
  { length: 32 },
  (_, i) => `System prompt ${i}. ` + text(Math.floor(PROMPT_BYTES * 0.75)),
);
const prompts = Array.from({ length: 512 }, () => {
  const head = shared[Math.floor(r() * shared.length)];
  return new TextEncoder().encode((head + text(PROMPT_BYTES)).slice(0, PROMPT_BYTES));
});

function quantiles(samples: Float64Array): { p50: number; p99: number; mean: number } {
  const s = Float64Array.from(samples).sort();
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: q(0.5), p99: q(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

const probe = loadSchedulerProbe();
const profiles: [string, number][] = [
  ["default", PROFILE.default],
  ["gie-default", PROFILE.gieDefault],
  ["legacy", PROFILE.legacy],
];
console.log(
  `scheduler decision, ${PROMPT_BYTES} B prompt, ${REQUESTS} requests per cell (p50 / p99 / mean, µs)`,
);
const rows: Record<string, string | number>[] = [];
for (const size of SIZES) {
  for (const [name, code] of profiles) {
    probe.setup(size, code, 7);
    if (values.params)
      probe.configure(
        Object.fromEntries(
          values.params
            .split(",")
            .map((kv) => kv.split("="))
            .map(([k, v]) => [k, Number(v)]),
        ),
      );
    const whole = new Float64Array(REQUESTS);
    const schedOnly = new Float64Array(REQUESTS);
    const x = probe.x;
    // Warm-up: JIT tiers, index growth, scratch sizing.
    for (let i = 0; i < 2000; i++) probe.decide(prompts[i % prompts.length]);
    for (let i = 0; i < REQUESTS; i++) {
      const len = probe.loadPrompt(prompts[i % prompts.length]);
      const t0 = process.hrtime.bigint();
      x.loadPrompt(len, 0);
      const t1 = process.hrtime.bigint();
      x.scheduleLoaded();
      const t2 = process.hrtime.bigint();
      whole[i] = Number(t2 - t0) / 1000;
      schedOnly[i] = Number(t2 - t1) / 1000;
    }
    const w = quantiles(whole);
    const s = quantiles(schedOnly);
    rows.push({
      endpoints: size,
      profile: name,
      "p50 µs": +w.p50.toFixed(2),
      "p99 µs": +w.p99.toFixed(2),
      "mean µs": +w.mean.toFixed(2),
      "schedule-only p50 µs": +s.p50.toFixed(2),
    });
  }
}
console.table(rows);
