// Seeded workloads for the routing benchmark. Each yields chat requests with arrival times; prompt
// text follows the sim tokenizer's convention (CHARS_PER_TOKEN characters per token), so a shared
// system prompt is a shared prefix both for the engine's block hashes and for the filter's
// prefix scorer, which hashes the request body text.
import { CHARS_PER_TOKEN, Rng, type ChatMessage } from "../../sim/index.ts";

export interface WorkItem {
  id: number;
  arrivalMs: number;
  messages: ChatMessage[];
  /** Exact output length (ignore_eos), so every policy generates the same tokens. */
  maxTokens: number;
  /** The body's "model": the base model or a LoRA adapter name. */
  model: string;
  lora?: string;
}

export interface Workload {
  name: string;
  /** What it models and how it is sized; copied into the report. */
  description: string;
  /** Default QPS sweep for 10 H100 pods, around this workload's knee on the simulator. */
  defaultQps: number[];
  /** Adapters the pods must know (multi-lora). */
  loraModules?: string[];
  generate(qps: number, durationMs: number, seed: number): WorkItem[];
}

const BASE_MODEL = "meta-llama/Llama-3.1-8B-Instruct";

const FILLER = "route the prefix block to a warm cache and keep the queue short. ";

/** Text of about `tokens` tokens whose first characters make it unique to `tag`. */
export function textOfTokens(tag: string, tokens: number): string {
  const chars = Math.max(1, tokens) * CHARS_PER_TOKEN;
  const head = `${tag}: `;
  if (head.length >= chars) return head.slice(0, chars);
  const body = FILLER.repeat(Math.ceil((chars - head.length) / FILLER.length) + 1);
  return head + body.slice(0, chars - head.length);
}

function clampInt(x: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.round(x)));
}

/** Poisson arrival times in [0, durationMs) at `qps`. */
export function poissonArrivals(rng: Rng, qps: number, durationMs: number): number[] {
  const out: number[] = [];
  const meanGap = 1000 / qps;
  for (let t = rng.exponential(meanGap); t < durationMs; t += rng.exponential(meanGap)) out.push(t);
  return out;
}

/**
 * On/off Poisson: exponential on and off periods of mean `periodMs`; during "on" the rate is
 * 2·qps so the long-run mean stays `qps`. The on/off schedule comes from its own generator
 * (`periods`), so every QPS of a sweep sees the same bursts at the same times.
 */
export function onOffArrivals(
  periods: Rng,
  rng: Rng,
  qps: number,
  durationMs: number,
  periodMs: number,
): number[] {
  const out: number[] = [];
  const onRate = 2 * qps;
  let t = 0;
  while (t < durationMs) {
    const onEnd = Math.min(durationMs, t + periods.exponential(periodMs));
    for (let a = t + rng.exponential(1000 / onRate); a < onEnd; a += rng.exponential(1000 / onRate))
      out.push(a);
    t = onEnd + periods.exponential(periodMs);
  }
  return out;
}

/** ShareGPT-like lengths: log-normal with the published means (input ≈ 215, output ≈ 198 tokens), vLLM's filters. */
function shareGptLengths(rng: Rng): { input: number; output: number } {
  const input = clampInt(rng.logNormal(215, 1.0), 4, 1024);
  const output = clampInt(rng.logNormal(198, 0.8), 4, Math.min(1024, 2048 - input));
  return { input, output };
}

function single(
  id: number,
  arrivalMs: number,
  input: number,
  output: number,
  model = BASE_MODEL,
  lora?: string,
): WorkItem {
  return {
    id,
    arrivalMs,
    messages: [{ role: "user", content: textOfTokens(`request ${id}`, input) }],
    maxTokens: output,
    model,
    lora,
  };
}

const sharegpt: Workload = {
  name: "sharegpt",
  description:
    "Synthetic ShareGPT: input log-normal mean 215 (σ 1.0, clipped 4..1024), output log-normal mean 198 (σ 0.8, clipped 4..1024, input+output ≤ 2048); Poisson arrivals; no shared prefixes.",
  defaultQps: [400, 600, 800, 900, 1000],
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    return poissonArrivals(rng, qps, durationMs).map((t, i) => {
      const { input, output } = shareGptLengths(rng);
      return single(i, t, input, output);
    });
  },
};

/** inference-perf shared_prefix: groups × prompts per group, each prompt = group system prompt + own question. */
export const SHARED_PREFIX = {
  groups: 150,
  promptsPerGroup: 5,
  systemPromptLen: 4000,
  questionLen: 200,
  outputLen: 200,
};

const sharedPrefix: Workload = {
  name: "shared-prefix",
  description: `inference-perf shared_prefix: ${SHARED_PREFIX.groups} groups × ${SHARED_PREFIX.promptsPerGroup} prompts, system prompt ${SHARED_PREFIX.systemPromptLen} tokens, question ${SHARED_PREFIX.questionLen}, output ${SHARED_PREFIX.outputLen}; the prefixes total ${SHARED_PREFIX.groups * SHARED_PREFIX.systemPromptLen} tokens, more than one H100 pod's KV cache (467,280 tokens); each request picks a uniform random group and one of its prompts (a prompt repeats exactly, as in inference-perf); Poisson arrivals.`,
  defaultQps: [20, 40, 60, 80, 100],
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    const p = SHARED_PREFIX;
    const systems = Array.from({ length: p.groups }, (_, g) =>
      textOfTokens(`system prompt of group ${g}`, p.systemPromptLen),
    );
    return poissonArrivals(rng, qps, durationMs).map((t, i) => {
      const g = rng.int(0, p.groups - 1);
      const q = rng.int(0, p.promptsPerGroup - 1);
      return {
        id: i,
        arrivalMs: t,
        messages: [
          { role: "system", content: systems[g] },
          { role: "user", content: textOfTokens(`question ${q} of group ${g}`, p.questionLen) },
        ],
        maxTokens: p.outputLen,
        model: BASE_MODEL,
      };
    });
  },
};

/** GIE's multilora split scaled up: 5 adapters × 12%, 5 × 6%, 4 × 2%, and 18 cold ones sharing the last 2%. */
export const LORA_SPLIT: number[] = [
  ...Array<number>(5).fill(0.12),
  ...Array<number>(5).fill(0.06),
  ...Array<number>(4).fill(0.02),
  ...Array<number>(18).fill(0.02 / 18),
];
const LORA_NAMES = LORA_SPLIT.map((_, i) => `adapter-${i}`);

const multiLora: Workload = {
  name: "multi-lora",
  description: `${LORA_SPLIT.length} LoRA adapters with uneven traffic (5×12%, 5×6%, 4×2%, 18 sharing 2%), max_loras 4 per pod (preset); ShareGPT lengths; Poisson arrivals.`,
  defaultQps: [10, 20, 30, 45, 60],
  loraModules: LORA_NAMES,
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    return poissonArrivals(rng, qps, durationMs).map((t, i) => {
      let u = rng.next();
      let k = 0;
      while (k < LORA_SPLIT.length - 1 && u >= LORA_SPLIT[k]) u -= LORA_SPLIT[k++];
      const { input, output } = shareGptLengths(rng);
      return single(i, t, input, output, LORA_NAMES[k], LORA_NAMES[k]);
    });
  },
};

const prefillHeavy: Workload = {
  name: "prefill-heavy",
  description:
    "billsum-like: input log-normal mean 1500 (σ 0.4, clipped 256..2048), output uniform 16..128; Poisson arrivals.",
  defaultQps: [60, 100, 140, 180, 220],
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    return poissonArrivals(rng, qps, durationMs).map((t, i) =>
      single(i, t, clampInt(rng.logNormal(1500, 0.4), 256, 2048), rng.int(16, 128)),
    );
  },
};

const decodeHeavy: Workload = {
  name: "decode-heavy",
  description:
    "infinity_instruct-like: input log-normal mean 150 (σ 0.8, clipped 8..1024), output log-normal mean 800 (σ 0.5, clipped 64..2048); Poisson arrivals.",
  defaultQps: [200, 300, 400, 500, 600],
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    return poissonArrivals(rng, qps, durationMs).map((t, i) =>
      single(i, t, clampInt(rng.logNormal(150, 0.8), 8, 1024), clampInt(rng.logNormal(800, 0.5), 64, 2048)),
    );
  },
};

const BURST_PERIOD_MS = 2000;

const bursty: Workload = {
  name: "bursty",
  description: `ShareGPT lengths with on/off Poisson arrivals: on and off periods exponential with mean ${BURST_PERIOD_MS} ms, rate 2× the mean QPS while on.`,
  defaultQps: [200, 300, 400, 500, 600],
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    return onOffArrivals(new Rng(seed ^ 0xb0b5), rng, qps, durationMs, BURST_PERIOD_MS).map((t, i) => {
      const { input, output } = shareGptLengths(rng);
      return single(i, t, input, output);
    });
  },
};

export const WORKLOADS: Record<string, Workload> = Object.fromEntries(
  [sharegpt, sharedPrefix, multiLora, prefillHeavy, decodeHeavy, bursty].map((w) => [w.name, w]),
);

export function workloadByName(name: string): Workload {
  const w = WORKLOADS[name];
  if (!w) throw new Error(`unknown workload "${name}"; choose one of ${Object.keys(WORKLOADS).join(", ")}`);
  return w;
}
