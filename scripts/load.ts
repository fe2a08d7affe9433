// `npm run load`: a bounded, realistic request mix against the local stack's gateway, with a progress bar,
// so you can watch routing react on the status page. Loopback by default; prints a per-pod, per-status
// and per-model summary at the end.
import { parseArgs } from "node:util";
import { mulberry32 } from "../sim/rng.ts";

const BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct";

interface Shot {
  kind: string;
  path: string;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
}

const TOPICS = ["the pasta", "the ramen", "a tasting menu", "the dessert cart", "brunch", "the wine list"];

/** The mix: the Critical base model, the 70/30 food-review rollout, the Sheddable batch model, objectives. */
function shot(i: number, rand: () => number): Shot {
  const topic = TOPICS[i % TOPICS.length]!;
  const r = rand();
  const stream = rand() < 0.5;
  if (r < 0.35)
    return {
      kind: "chat base",
      path: "/v1/chat/completions",
      body: {
        model: BASE_MODEL,
        stream,
        max_tokens: 32 + Math.floor(rand() * 96),
        messages: [
          { role: "system", content: "You are a concise assistant for a restaurant guide. ".repeat(8) },
          { role: "user", content: `What should I know about ${topic}?` },
        ],
      },
    };
  if (r < 0.7)
    return {
      kind: "chat food-review",
      path: "/v1/chat/completions",
      body: {
        model: "food-review",
        stream,
        max_tokens: 48,
        messages: [{ role: "user", content: `Review ${topic}.` }],
      },
    };
  if (r < 0.85)
    return {
      kind: "completion batch (sheddable)",
      path: "/v1/completions",
      body: {
        model: "batch-summaries",
        max_tokens: 128,
        prompt: `Summarize reviews of ${topic}. `.repeat(20),
      },
    };
  return {
    kind: "completion background objective",
    path: "/v1/completions",
    headers: { "x-gateway-inference-objective": "background" },
    body: { model: BASE_MODEL, max_tokens: 64, prompt: `List three facts about ${topic}.` },
  };
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: "http://127.0.0.1:8080" },
      requests: { type: "string", default: "200" },
      concurrency: { type: "string", default: "16" },
      "duration-s": { type: "string", default: "120" },
      seed: { type: "string", default: "1" },
      quiet: { type: "boolean", default: false },
    },
  });
  const url = values.url!.replace(/\/$/, "");
  const total = Number(values.requests);
  const concurrency = Number(values.concurrency);
  const deadline = Date.now() + Number(values["duration-s"]) * 1000;
  if (!Number.isInteger(total) || total < 1) throw new Error("--requests must be a positive integer");
  const rand = mulberry32(Number(values.seed));

  const byPod = new Map<string, number>();
  const byStatus = new Map<string, number>();
  const byModel = new Map<string, number>();
  const latencies: number[] = [];
  let next = 0;
  let done = 0;

  const progress = () => {
    if (values.quiet) return;
    const width = 30;
    const filled = Math.round((done / total) * width);
    process.stderr.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${done}/${total}`);
  };

  const worker = async () => {
    while (next < total && Date.now() < deadline) {
      const s = shot(next++, rand);
      const started = performance.now();
      try {
        const res = await fetch(url + s.path, {
          method: "POST",
          headers: { "content-type": "application/json", ...s.headers },
          body: JSON.stringify(s.body),
        });
        const text = await res.text();
        latencies.push(performance.now() - started);
        bump(byStatus, String(res.status));
        bump(
          byPod,
          res.headers.get("x-inference-pod") ??
            res.headers.get("x-gateway-destination-endpoint-served") ??
            "(local reply)",
        );
        const served = /"model":"([^"]+)"/.exec(text)?.[1];
        if (res.ok && served) bump(byModel, served);
      } catch (err) {
        bump(byStatus, `error: ${(err as Error).message}`);
      }
      done++;
      progress();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  if (!values.quiet) process.stderr.write("\n");

  latencies.sort((a, b) => a - b);
  const table = (title: string, m: Map<string, number>) => {
    console.log(`\n${title}`);
    for (const [k, v] of [...m].sort((a, b) => b[1] - a[1]))
      console.log(`  ${k.padEnd(40)} ${String(v).padStart(6)}`);
  };
  console.log(
    `${done} requests to ${url}; latency p50 ${percentile(latencies, 50).toFixed(0)} ms, p90 ${percentile(latencies, 90).toFixed(0)} ms`,
  );
  table("by status (429 = shed under saturation)", byStatus);
  table("by serving pod", byPod);
  table("by served model", byModel);
}

main().catch((err: Error) => {
  console.error(`npm run load: ${err.message}`);
  process.exit(1);
});
