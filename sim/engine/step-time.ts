// Step-time model: how long one engine iteration (a mixed prefill+decode batch) takes on the GPU.
//   step_ms = a + b·P + c·P² + d·Kk + e·B            (reference §4 suggested default)
//   + prefillExtraMs when P > 0, floored at prefillMinMs (GIE simpy's prefill fit)
//   × (1 + loraPenalty) when any LoRA request is in the batch
// P: uncached prompt tokens computed this step; Kk: KV tokens (thousands) of the decoding
// sequences; B: sequences in the batch.
export interface StepTimeModel {
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  prefillExtraMs: number;
  prefillMinMs: number;
  loraPenalty: number;
}

export interface StepShape {
  prefillTokens: number;
  decodeKvTokens: number;
  batchSize: number;
  hasLora: boolean;
}

export function stepTimeMs(m: StepTimeModel, s: StepShape): number {
  const p = s.prefillTokens;
  let ms = m.a + m.b * p + m.c * p * p + (m.d * s.decodeKvTokens) / 1000 + m.e * s.batchSize;
  if (p > 0) ms = Math.max(ms + m.prefillExtraMs, m.prefillMinMs);
  if (s.hasLora) ms *= 1 + m.loraPenalty;
  return ms;
}
