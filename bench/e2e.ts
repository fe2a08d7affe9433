// `npm run bench:e2e`: the real stack as separate processes — simulated vLLM pods (time-scaled), the sidecar
// scraping every 50 ms and pushing snapshots, the local gateway running build/filter.wasm — under a seeded
// Poisson load of streaming chat completions. Every other request goes straight to a random pod instead of
// through the gateway, so the gateway's added latency is measured in the same run on the same pods.
// Usage: npm run bench:e2e -- [--qps 20] [--duration-s 45] [--pods 4] [--time-scale 10] [--seed 1]
//                             [--out bench-output/e2e]
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { distribution, summarizeStage, type RequestRecord } from "./report/metrics.ts";
import { mulberry32 } from "../sim/rng.ts";
import { freeConsecutivePorts } from "../scripts/local-stack/ports.ts";

const { values } = parseArgs({
  options: {
    qps: { type: "string", default: "20" },
    "duration-s": { type: "string", default: "45" },
    pods: { type: "string", default: "4" },
    "time-scale": { type: "string", default: "10" },
    seed: { type: "string", default: "1" },
    out: { type: "string", default: "bench-output/e2e" },
  },
});
const QPS = Number(values.qps);
const DURATION_MS = Number(values["duration-s"]) * 1000;
const PODS = Number(values.pods);
const MODEL = "meta-llama/Llama-3.1-8B-Instruct";

interface Sample extends RequestRecord {
  via: "gateway" | "direct";
  itl: number[];
}

/** One streaming chat completion; TTFT, token gaps and E2E are read off the SSE stream. */
async function send(
  url: string,
  prompt: string,
  maxTokens: number,
  via: Sample["via"],
  t0: number,
): Promise<Sample> {
  const sendMs = performance.now();
  const rec: Sample = {
    via,
    sendMs: sendMs - t0,
    status: 0,
    pod: -1,
    promptTokens: 0,
    outputTokens: 0,
    cachedTokens: 0,
    ttftMs: 0,
    e2eMs: 0,
    preemptions: 0,
    itl: [],
  };
  try {
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        stream: true,
        stream_options: { include_usage: true },
        max_tokens: maxTokens,
        messages: [{ role: "user", content: prompt }],
      }),
    });
    rec.status = res.status;
    rec.pod = Number(/sim-(\d+)/.exec(res.headers.get("x-inference-pod") ?? "")?.[1] ?? -1);
    if (!res.ok || !res.body) {
      await res.arrayBuffer();
      return rec;
    }
    let last = 0;
    let buffered = "";
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let cut: number;
      while ((cut = buffered.indexOf("\n\n")) >= 0) {
        const event = buffered.slice(0, cut).replace(/^data: /, "");
        buffered = buffered.slice(cut + 2);
        if (event === "[DONE]") continue;
        const data = JSON.parse(event) as {
          choices?: { delta?: { content?: string } }[];
          usage?: {
            prompt_tokens: number;
            completion_tokens: number;
            prompt_tokens_details?: { cached_tokens?: number };
          };
        };
        const now = performance.now();
        if (data.choices?.[0]?.delta?.content) {
          if (rec.ttftMs === 0) rec.ttftMs = now - sendMs;
          else rec.itl.push(now - last);
          last = now;
        }
        if (data.usage) {
          rec.promptTokens = data.usage.prompt_tokens;
          rec.outputTokens = data.usage.completion_tokens;
          rec.cachedTokens = data.usage.prompt_tokens_details?.cached_tokens ?? 0;
        }
      }
    }
    rec.e2eMs = performance.now() - sendMs;
  } catch {
    rec.status = 599;
  }
  return rec;
}

/** The filter's own per-request time for the same pool size and prompt size (bench:pick in a child). */
function filterTimeUs(): number | undefined {
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      "bench/pick.ts",
      "--sizes",
      String(PODS),
      "--requests",
      "5000",
      "--prompt-bytes",
      "1200",
    ],
    { encoding: "utf8" },
  );
  const row = r.stdout
    .split("\n")
    .find((l) => /^\s*default\s+\d+/.test(l) || new RegExp(`^\\s*${PODS}\\s`).test(l));
  const nums = row
    ?.trim()
    .split(/\s+/)
    .filter((x) => /^[\d.]+$/.test(x))
    .map(Number);
  return nums && nums.length >= 2 ? nums[1] : undefined; // [endpoints, p50, …]
}

async function main(): Promise<void> {
  // One block below the ephemeral range: no other process's listen(0) or outgoing socket takes these ports
  // between the probe and npm start binding them (or right after the run, when the test checks them).
  const base = await freeConsecutivePorts(3 + PODS);
  const [port, controlPort, sidecarPort] = [base, base + 1, base + 2];
  let simBase = base + 3;
  const stack = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "scripts/start.ts",
      ...["--pods", String(PODS), "--port", String(port), "--control-port", String(controlPort)],
      ...["--sidecar-port", String(sidecarPort), "--sim-base-port", String(simBase)],
      ...["--preset", "h100-llama3-8b", "--time-scale", values["time-scale"]!],
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  stack.stdout.on("data", (c: Buffer) => (log += c.toString()));
  stack.stderr.on("data", (c: Buffer) => (log += c.toString()));
  const stop = () => stack.kill("SIGINT");
  process.once("SIGINT", () => {
    stop();
    process.exit(130);
  });
  const upBy = Date.now() + 60_000;
  while (!log.includes("local stack is up")) {
    if (stack.exitCode !== null || Date.now() > upBy) throw new Error(`stack did not start:\n${log}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  simBase = Number(/127\.0\.0\.1:(\d+)-/.exec(log)?.[1] ?? simBase);

  const rand = mulberry32(Number(values.seed));
  const words = "the model serves tokens from a cache of blocks while the router picks a pod ".split(" ");
  const gateway = `http://127.0.0.1:${port}`;
  const t0 = performance.now();
  const pending: Promise<Sample>[] = [];
  let i = 0;
  let next = 0;
  let shownPct = -1;
  while (next < DURATION_MS) {
    const wait = next - (performance.now() - t0);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    // ShareGPT-like sizes: a long-tailed prompt (~20–400 words) and 32–256 output tokens.
    const promptWords = Math.round(20 * Math.exp(rand() * 3));
    const prompt = Array.from({ length: promptWords }, () => words[Math.floor(rand() * words.length)]).join(
      " ",
    );
    const maxTokens = 32 + Math.floor(rand() * 224);
    const direct = i++ % 2 === 1;
    const url = direct ? `http://127.0.0.1:${simBase + Math.floor(rand() * PODS)}` : gateway;
    pending.push(send(url, prompt, maxTokens, direct ? "direct" : "gateway", t0));
    next += (-Math.log(1 - rand()) / QPS) * 1000;
    const pct = Math.min(100, Math.floor((next / DURATION_MS) * 100));
    if (pct !== shownPct) {
      shownPct = pct;
      process.stderr.write(`\r${pct}% of ${DURATION_MS / 1000} s, ${i} requests sent`);
    }
  }
  const samples = await Promise.all(pending);
  process.stderr.write("\n");
  stop();
  await new Promise((r) => stack.once("exit", r));

  const slo = { ttftMs: 2000, tpotMs: 50 };
  const summarize = (via: Sample["via"]) => {
    const s = samples.filter((x) => x.via === via);
    return summarizeStage(
      s,
      s.flatMap((x) => x.itl),
      DURATION_MS,
      PODS,
      slo,
    );
  };
  const viaGateway = summarize("gateway");
  const direct = summarize("direct");
  const g = viaGateway.successes.latency.time_to_first_token;
  const d = direct.successes.latency.time_to_first_token;
  const filterUs = filterTimeUs();
  const report = {
    config: {
      qps: QPS,
      durationS: DURATION_MS / 1000,
      pods: PODS,
      timeScale: Number(values["time-scale"]),
      seed: Number(values.seed),
      ports: {
        gateway: port,
        control: controlPort,
        sidecar: sidecarPort,
        pods: [simBase, simBase + PODS - 1],
      },
    },
    note: "Latencies are wall-clock ms; the simulated GPUs run time-scaled, the gateway and filter do not.",
    gateway: viaGateway,
    direct,
    gateway_added_latency_ms: {
      ttft_p50: g.p50 - d.p50,
      ttft_p90: g.p90 - d.p90,
      e2e_p50:
        viaGateway.successes.latency.request_latency.p50 - direct.successes.latency.request_latency.p50,
    },
    filter_per_request_us_p50: filterUs ?? null,
    direct_ttft_ms: distribution(
      samples.filter((x) => x.via === "direct" && x.status === 200).map((x) => x.ttftMs),
    ),
  };
  const out = values.out!;
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "e2e.json"), JSON.stringify(report, null, 2));
  const f = (n: number) => n.toFixed(1);
  const md = `| path | requests | TTFT p50 / p90 ms | ITL p50 ms | NTPOT p90 ms | E2E p50 / p90 ms | failures |
|---|---:|---:|---:|---:|---:|---:|
| via gateway | ${viaGateway.successes.count} | ${f(g.p50)} / ${f(g.p90)} | ${f(viaGateway.successes.latency.inter_token_latency.p50)} | ${f(viaGateway.successes.latency.normalized_time_per_output_token.p90)} | ${f(viaGateway.successes.latency.request_latency.p50)} / ${f(viaGateway.successes.latency.request_latency.p90)} | ${viaGateway.failures.count} |
| direct to pod | ${direct.successes.count} | ${f(d.p50)} / ${f(d.p90)} | ${f(direct.successes.latency.inter_token_latency.p50)} | ${f(direct.successes.latency.normalized_time_per_output_token.p90)} | ${f(direct.successes.latency.request_latency.p50)} / ${f(direct.successes.latency.request_latency.p90)} | ${direct.failures.count} |

Gateway added TTFT: p50 ${f(report.gateway_added_latency_ms.ttft_p50)} ms, p90 ${f(report.gateway_added_latency_ms.ttft_p90)} ms; the filter's own time per request: p50 ${filterUs ?? "?"} µs.
`;
  writeFileSync(join(out, "e2e.md"), md);
  console.log(md);
}

await main();
