// Micro-benchmark of the filter's request path through the compiled request probe (V8):
// scan + model + prompt extraction + block hashing of a ~4 KB-prompt chat body, and prefix-index
// match/add with 100 and 1000 endpoints. Prints p50/p99 in µs.
// Usage: npm run bench:request [-- --iterations N]
import { loadRequestProbe, KIND } from "../test/request/request-probe.ts";
import { mulberry32 } from "../sim/rng.ts";

const args = process.argv.slice(2);
const iterArg = args.indexOf("--iterations");
const ITERATIONS = iterArg >= 0 ? Number(args[iterArg + 1]) : 5000;

const probe = loadRequestProbe();
const x = probe.x;
const r = mulberry32(2026);
const lorem = "the quick brown fox jumps over the lazy dog while the model thinks about tokens ";

function sentence(n: number): string {
  let s = "";
  while (s.length < n) s += lorem.slice(Math.floor(r() * 20)) + Math.floor(r() * 1e6) + " ";
  return s.slice(0, n);
}

// 50 shared system prompts of ~3 KB; each request adds ~1 KB of its own text → ~4 KB prompt.
const systems = Array.from({ length: 50 }, (_, i) => `System prompt ${i}. ` + sentence(3000));

function chatBody(): { body: Uint8Array; group: number } {
  const group = Math.floor(r() * systems.length);
  const body = JSON.stringify({
    model: "meta-llama/Llama-3.1-8B-Instruct",
    stream: true,
    max_tokens: 128,
    messages: [
      { role: "system", content: systems[group] },
      { role: "user", content: sentence(1000) },
    ],
  });
  return { body: new TextEncoder().encode(body), group };
}

function quantiles(samples: number[]): { p50: number; p99: number; mean: number } {
  const s = samples.slice().sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: q(0.5), p99: q(0.99), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

function timeUs(fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1000;
}

const fmt = (q: { p50: number; p99: number; mean: number }) =>
  `p50 ${q.p50.toFixed(2).padStart(7)} µs   p99 ${q.p99.toFixed(2).padStart(7)} µs   mean ${q.mean.toFixed(2).padStart(7)} µs`;

// Pre-generate bodies so that JSON.stringify is not timed.
const bodies = Array.from({ length: 256 }, chatBody);
const sample = bodies[0].body;
console.log(
  `request body ${sample.length} B, prompt ${x.processRequest(probe.load(sample), KIND.chat)} blocks`,
);

// 1. Parse path: scan + model + prompt + hashes. The body copy into wasm is not timed (the host
// copies it into the VM in any case).
{
  const t: number[] = [];
  for (let i = 0; i < ITERATIONS + 500; i++) {
    const b = bodies[i % bodies.length].body;
    const len = probe.load(b);
    const us = timeUs(() => x.processRequest(len, KIND.chat));
    if (i >= 500) t.push(us);
  }
  console.log(`parse+prompt+hash (chat, ~4 KB prompt)        ${fmt(quantiles(t))}`);
}

// 2. Index: per request match + add, after warming the index with 20k requests.
for (const endpoints of [100, 1000]) {
  for (const placement of ["affinity", "scattered"] as const) {
    x.indexReset(endpoints, 0);
    // affinity: each prompt group lives on 4 endpoints (what prefix-aware routing produces);
    // scattered: any endpoint (round-robin-like), so hot prefixes are held by nearly all endpoints.
    const pickFor = (group: number) =>
      placement === "affinity" ? (group * 7 + Math.floor(r() * 4)) % endpoints : Math.floor(r() * endpoints);
    for (let i = 0; i < 20_000; i++) {
      const { body, group } = bodies[i % bodies.length];
      x.processRequest(probe.load(body), KIND.chat);
      x.indexAdd(pickFor(group));
    }
    const tm: number[] = [];
    const ta: number[] = [];
    const total: number[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const { body, group } = bodies[(i * 31) % bodies.length];
      const len = probe.load(body);
      const e = pickFor(group);
      const t0 = process.hrtime.bigint();
      x.processRequest(len, KIND.chat);
      const t1 = process.hrtime.bigint();
      x.indexMatch();
      const t2 = process.hrtime.bigint();
      x.indexAdd(e);
      const t3 = process.hrtime.bigint();
      tm.push(Number(t2 - t1) / 1000);
      ta.push(Number(t3 - t2) / 1000);
      total.push(Number(t3 - t0) / 1000);
    }
    const label = `${endpoints} endpoints, ${placement}`.padEnd(26);
    console.log(`index match  ${label}      ${fmt(quantiles(tm))}`);
    console.log(`index add    ${label}      ${fmt(quantiles(ta))}`);
    console.log(`parse+match+add ${label}   ${fmt(quantiles(total))}   (index ${x.indexSize()} entries)`);
  }
}
