// Seeded workloads for the routing benchmark. Each yields chat requests with arrival times; prompt
// text follows the sim tokenizer's convention (CHARS_PER_TOKEN characters per token), so a shared
// system prompt is a shared prefix both for the engine's block hashes and for the filter's
// prefix scorer, which hashes the request body text.
import { CHARS_PER_TOKEN, Rng, type ChatMessage, type EngineConfig } from "../../sim/index.ts";
import type { Slo } from "../report/metrics.ts";

export interface WorkItem {
  id: number;
  arrivalMs: number;
  messages: ChatMessage[];
  /** Exact output length (ignore_eos), so every policy generates the same tokens. */
  maxTokens: number;
  /** The body's "model": the base model or a LoRA adapter name. */
  model: string;
  lora?: string;
  /** The InferenceObjective named in x-gateway-inference-objective (overload: its band). */
  objective?: string;
  /** The x-gateway-inference-fairness-id header (overload: the tenant). */
  fairnessId?: string;
}

/** An InferenceObjective the workload's requests name; filter policies put them in the snapshot. */
export interface WorkloadObjective {
  name: string;
  priority: number;
}

export interface Workload {
  name: string;
  /** What it models and how it is sized; copied into the report. */
  description: string;
  /** Default QPS sweep for 10 H100 pods, around this workload's knee on the simulator. */
  defaultQps: number[];
  /** Adapters the pods must know (multi-lora). */
  loraModules?: string[];
  /** Engine preset of each pod, when the pool is not uniform (else the run's --preset for all). */
  podPresets?(pods: number): string[];
  /** Engine settings changed on every pod's preset (long context: the model length). */
  engineOverrides?: Partial<EngineConfig>;
  /** SLO thresholds when the command line gives none (else 2000 ms TTFT, 50 ms TPOT). */
  slo?: Slo;
  /** Objectives the requests name (their priorities make bands); absent = requests name none. */
  objectives?: WorkloadObjective[];
  /** Fairness ids the requests carry, the one sending most first (for per-id reports). */
  fairnessIds?: string[];
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

/**
 * Overload for flow control (issue 22): `qps` is the pool's capacity. On/off bursts: "on" periods
 * (uniform onMs) at a rate drawn per burst uniformly in burstFactor × qps, "off" periods (uniform offMs)
 * at offFactor × qps, so queues build in bursts and drain between them. Each request independently
 * names a band by `bands` weight and a tenant by `tenants` weight; ShareGPT lengths.
 */
export const OVERLOAD = {
  onMs: [2000, 4000] as const,
  offMs: [2000, 4000] as const,
  burstFactor: [1.5, 3] as const,
  offFactor: 0.25,
  /** Priorities as config/scheduling/flow-control.yaml's bands (100 Critical, 0 Standard, -10 Sheddable). */
  bands: [
    { name: "critical", priority: 100, weight: 0.2 },
    { name: "standard", priority: 0, weight: 0.5 },
    { name: "sheddable", priority: -10, weight: 0.3 },
  ],
  /** The noisy tenant sends 5× each of the others. */
  tenants: [
    { id: "tenant-noisy", weight: 5 },
    { id: "tenant-b", weight: 1 },
    { id: "tenant-c", weight: 1 },
  ],
};

/** Arrival times of the overload schedule (bursts from their own generator, as onOffArrivals). */
export function overloadArrivals(periods: Rng, rng: Rng, qps: number, durationMs: number): number[] {
  const o = OVERLOAD;
  const out: number[] = [];
  const span = (r: readonly [number, number]): number => r[0] + (r[1] - r[0]) * periods.next();
  let t = 0;
  let on = true;
  while (t < durationMs) {
    const end = Math.min(durationMs, t + span(on ? o.onMs : o.offMs));
    const rate = qps * (on ? span(o.burstFactor) : o.offFactor);
    if (rate > 0)
      for (let a = t + rng.exponential(1000 / rate); a < end; a += rng.exponential(1000 / rate)) out.push(a);
    t = end;
    on = !on;
  }
  return out;
}

function pickWeighted<T extends { weight: number }>(rng: Rng, xs: readonly T[]): T {
  const total = xs.reduce((a, x) => a + x.weight, 0);
  let u = rng.next() * total;
  for (const x of xs) if ((u -= x.weight) < 0) return x;
  return xs[xs.length - 1];
}

const overload: Workload = {
  name: "overload",
  description: `Overload for flow control: --qps is the pool's capacity; on periods (${OVERLOAD.onMs.join("–")} ms, uniform) at ${OVERLOAD.burstFactor.join("–")}× that rate (drawn per burst), off periods (${OVERLOAD.offMs.join("–")} ms) at ${OVERLOAD.offFactor}×, about ${((OVERLOAD.burstFactor[0] + OVERLOAD.burstFactor[1]) / 2 + OVERLOAD.offFactor) / 2}× capacity on average; objectives ${OVERLOAD.bands.map((b) => `${b.name} (priority ${b.priority}, ${b.weight * 100}%)`).join(", ")}; fairness ids ${OVERLOAD.tenants.map((t) => `${t.id} (×${t.weight})`).join(", ")} in x-gateway-inference-fairness-id; ShareGPT lengths.`,
  defaultQps: [750, 900],
  objectives: OVERLOAD.bands.map(({ name, priority }) => ({ name, priority })),
  fairnessIds: OVERLOAD.tenants.map((t) => t.id),
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    return overloadArrivals(new Rng(seed ^ 0x0fe1), rng, qps, durationMs).map((t, i) => {
      const { input, output } = shareGptLengths(rng);
      const band = pickWeighted(rng, OVERLOAD.bands);
      const tenant = pickWeighted(rng, OVERLOAD.tenants);
      return { ...single(i, t, input, output), objective: band.name, fairnessId: tenant.id };
    });
  },
};

/**
 * Multi-turn chat, shaped after vLLM's multi-turn benchmark config
 * (vllm-project/vllm benchmarks/multi_turn/generate_multi_turn.json: a 500-token common prefix, a per-
 * conversation prefix, 120–160-token user turns, 80–120-token answers), with fewer turns so that
 * conversations start and end within a 20 s stage, and a think time between turns.
 */
export const MULTI_TURN = {
  commonPrefixTokens: 500,
  /** Per-conversation context (documents, instructions): log-normal mean 1000, clipped 100..5000. */
  contextMean: 1000,
  contextSigma: 0.5,
  minTurns: 2,
  maxTurns: 8,
  userTokens: [120, 160] as const,
  answerTokens: [80, 120] as const,
  /** Think time between an answer's expected end and the next turn: exponential, this mean. */
  thinkMeanMs: 2000,
  /** Expected decode time per answer token, to place the next turn after the answer (open loop). */
  expectedTpotMs: 20,
};

const multiTurn: Workload = {
  name: "multi-turn",
  description: `Multi-turn chat after vLLM's benchmarks/multi_turn config: conversations start as Poisson arrivals at qps / ${(MULTI_TURN.minTurns + MULTI_TURN.maxTurns) / 2} (the mean turn count), ${MULTI_TURN.minTurns}–${MULTI_TURN.maxTurns} turns (uniform); each prompt = a ${MULTI_TURN.commonPrefixTokens}-token prefix common to all + the conversation's context (log-normal mean ${MULTI_TURN.contextMean}, σ ${MULTI_TURN.contextSigma}, clipped 100..5000) + every earlier turn and answer + a new ${MULTI_TURN.userTokens.join("–")}-token question; answers ${MULTI_TURN.answerTokens.join("–")} tokens; the next turn follows the answer's expected end (${MULTI_TURN.expectedTpotMs} ms per token, open loop) plus an exponential think time (mean ${MULTI_TURN.thinkMeanMs} ms). The prefix grows turn by turn, so a conversation's cache lives on the pod that served its last turn.`,
  defaultQps: [100, 200, 300, 400, 500],
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    const m = MULTI_TURN;
    const common = textOfTokens("common system prompt", m.commonPrefixTokens);
    const starts = poissonArrivals(rng, qps / ((m.minTurns + m.maxTurns) / 2), durationMs);
    const items: Omit<WorkItem, "id">[] = [];
    starts.forEach((start, c) => {
      const turns = rng.int(m.minTurns, m.maxTurns);
      const context = clampInt(rng.logNormal(m.contextMean, m.contextSigma), 100, 5000);
      const history: ChatMessage[] = [
        { role: "system", content: common + textOfTokens(`context of conversation ${c}`, context) },
      ];
      let t = start;
      for (let k = 0; k < turns && t < durationMs; k++) {
        history.push({
          role: "user",
          content: textOfTokens(`turn ${k} of conversation ${c}`, rng.int(...m.userTokens)),
        });
        const answer = rng.int(...m.answerTokens);
        items.push({ arrivalMs: t, messages: [...history], maxTokens: answer, model: BASE_MODEL });
        history.push({
          role: "assistant",
          content: textOfTokens(`answer ${k} of conversation ${c}`, answer),
        });
        t += answer * m.expectedTpotMs + rng.exponential(m.thinkMeanMs);
      }
    });
    return items.sort((a, b) => a.arrivalMs - b.arrivalMs).map((it, id) => ({ id, ...it }));
  },
};

/** Heterogeneous pool: every other pod (odd index) runs the slower A100 preset. */
export const HETERO_SLOW_PRESET = "a100-40g-llama2-7b";

const heterogeneous: Workload = {
  name: "heterogeneous",
  description: `ShareGPT lengths (as sharegpt) on a mixed pool serving one model: even-numbered pods run the run's preset (h100-llama3-8b), odd-numbered ones ${HETERO_SLOW_PRESET} (the GIE simulator's A100-40GB fit: 40+ ms prefill steps, 14 ms + 0.1 ms/sequence decode, 256 sequences, 45K KV tokens); Poisson arrivals. Load-blind balancing gives the slow half the same share as the fast half.`,
  defaultQps: [100, 200, 300, 400, 500],
  podPresets: (pods) =>
    Array.from({ length: pods }, (_, i) => (i % 2 === 1 ? HETERO_SLOW_PRESET : "h100-llama3-8b")),
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    return poissonArrivals(rng, qps, durationMs).map((t, i) => {
      const { input, output } = shareGptLengths(rng);
      return single(i, t, input, output);
    });
  },
};

/**
 * Long context: 16K–128K-token prompts (log-uniform), as in long-document QA and code-repository
 * prompts (LongBench v2's range is 8K–2M words; RULER evaluates at 4K–128K). One H100 pod holds about
 * 467K KV tokens, so 4–29 of these at once: KV capacity, not queue length, is the constraint.
 */
export const LONG_CONTEXT = { minTokens: 16_384, maxTokens: 131_072, output: [100, 400] as const };

const longContext: Workload = {
  name: "long-context",
  description: `Long context: prompts log-uniform ${LONG_CONTEXT.minTokens}–${LONG_CONTEXT.maxTokens} tokens (mean ≈ 55K), unique (no shared prefix), output uniform ${LONG_CONTEXT.output.join("–")}; model length raised to 131,072 on every pod; an H100 pod's 467K KV tokens hold 4–29 such requests. SLO TTFT 20 s (a 128K prefill alone takes about 5 s), TPOT 50 ms; Poisson arrivals.`,
  defaultQps: [1, 2, 3, 4, 5],
  engineOverrides: { maxModelLen: LONG_CONTEXT.maxTokens + 1024 },
  slo: { ttftMs: 20_000, tpotMs: 50 },
  generate(qps, durationMs, seed) {
    const rng = new Rng(seed);
    const lo = Math.log(LONG_CONTEXT.minTokens);
    const hi = Math.log(LONG_CONTEXT.maxTokens);
    return poissonArrivals(rng, qps, durationMs).map((t, i) =>
      single(i, t, Math.round(Math.exp(lo + (hi - lo) * rng.next())), rng.int(...LONG_CONTEXT.output)),
    );
  },
};

export const WORKLOADS: Record<string, Workload> = Object.fromEntries(
  [
    sharegpt,
    sharedPrefix,
    multiLora,
    prefillHeavy,
    decodeHeavy,
    bursty,
    multiTurn,
    heterogeneous,
    longContext,
    overload,
  ].map((w) => [w.name, w]),
);

export function workloadByName(name: string): Workload {
  const w = WORKLOADS[name];
  if (!w) throw new Error(`unknown workload "${name}"; choose one of ${Object.keys(WORKLOADS).join(", ")}`);
  return w;
}
