// Engine presets. Numbers and their sources: shared/reference/peers-sim-workloads.md §3–§4.
import type { StepTimeModel } from "./step-time.ts";

export interface EngineConfig {
  blockSize: number;
  numGpuBlocks: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  maxModelLen: number;
  enablePrefixCaching: boolean;
  maxLoras: number;
  /** Adapters kept in CPU memory (a load from there is "warm"); vLLM's --max-cpu-loras. */
  maxCpuLoras: number;
  loraWarmLoadMs: number;
  loraColdLoadMs: number;
  /** Output length when the request gives no max_tokens: log-normal with this mean … */
  defaultOutputMean: number;
  /** … and this sigma of the underlying normal. */
  defaultOutputSigma: number;
  step: StepTimeModel;
  /**
   * Treat KV as full above this usage (GIE simpy recomputes above 0.9). Default 1: vLLM's behaviour,
   * preempt only when no block is free.
   */
  kvPreemptThreshold?: number;
}

export type PresetName = "h100-llama3-8b" | "a100-40g-llama2-7b" | "fast";

const h100: EngineConfig = {
  // vLLM V1 on H100-80GB, Llama-3.1-8B BF16: 29,205 blocks of 16 (BLIS); 1024 seqs / 8192 tokens.
  blockSize: 16,
  numGpuBlocks: 29_205,
  maxNumSeqs: 1024,
  maxNumBatchedTokens: 8192,
  maxModelLen: 8192,
  enablePrefixCaching: true,
  maxLoras: 4,
  maxCpuLoras: 8,
  loraWarmLoadMs: 10,
  loraColdLoadMs: 300,
  defaultOutputMean: 200,
  defaultOutputSigma: 0.9,
  step: { a: 6, b: 0.03, c: 4e-7, d: 0.045, e: 0.008, prefillExtraMs: 0, prefillMinMs: 0, loraPenalty: 0.15 },
};

const a100: EngineConfig = {
  // GIE simpy fit (A100-40GB): prefill max(40, 19.69 + 0.06769·T) ms, decode 14 + 0.1026·B + 0.535·Kk ms,
  // 2810 blocks × 16, 256 seqs, 512 batched tokens.
  blockSize: 16,
  numGpuBlocks: 2810,
  maxNumSeqs: 256,
  maxNumBatchedTokens: 512,
  maxModelLen: 4096,
  enablePrefixCaching: true,
  maxLoras: 4,
  maxCpuLoras: 8,
  loraWarmLoadMs: 15,
  loraColdLoadMs: 500,
  defaultOutputMean: 180,
  defaultOutputSigma: 0.5,
  step: {
    a: 14,
    b: 0.06769,
    c: 0,
    d: 0.535,
    e: 0.1026,
    prefillExtraMs: 5.69,
    prefillMinMs: 40,
    loraPenalty: 0.15,
  },
};

const fast: EngineConfig = {
  // Small and quick, for tests: 1 ms steps, a cache that saturates with a few dozen requests.
  blockSize: 16,
  numGpuBlocks: 512,
  maxNumSeqs: 32,
  maxNumBatchedTokens: 512,
  maxModelLen: 2048,
  enablePrefixCaching: true,
  maxLoras: 2,
  maxCpuLoras: 4,
  loraWarmLoadMs: 2,
  loraColdLoadMs: 20,
  defaultOutputMean: 16,
  defaultOutputSigma: 0.5,
  step: { a: 1, b: 0.01, c: 0, d: 0.05, e: 0.01, prefillExtraMs: 0, prefillMinMs: 0, loraPenalty: 0.1 },
};

export const PRESETS: Record<PresetName, EngineConfig> = {
  "h100-llama3-8b": h100,
  "a100-40g-llama2-7b": a100,
  fast,
};

export function presetConfig(name: string, overrides: Partial<EngineConfig> = {}): EngineConfig {
  const base = PRESETS[name as PresetName];
  if (!base) throw new Error(`unknown preset "${name}"; choose one of ${Object.keys(PRESETS).join(", ")}`);
  return { ...base, ...overrides, step: { ...base.step, ...(overrides.step ?? {}) } };
}
