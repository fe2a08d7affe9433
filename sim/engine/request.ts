// One request's life inside an engine. All times are engine milliseconds (virtual or scaled real).
export type FinishReason = "length" | "stop" | "abort";

export interface RequestCallbacks {
  /** The first output token was produced (TTFT ends here). */
  onFirstToken?(r: EngineRequest): void;
  /** Output token `index` (0-based) was produced at engine time `nowMs`. */
  onToken?(r: EngineRequest, index: number, nowMs: number): void;
  onDone?(r: EngineRequest, reason: FinishReason): void;
}

export interface SubmitInput {
  id?: string;
  /** Prompt token ids (from tokenize()); enables prefix-cache hits between requests. */
  promptTokenIds?: ArrayLike<number>;
  /** Prompt length when no ids are given; such prompts never share cache blocks. */
  promptTokens?: number;
  /** Exact output length (ignore_eos semantics); drawn from the preset's distribution when absent. */
  maxTokens?: number;
  /** LoRA adapter name, or undefined for the base model. */
  lora?: string;
}

export class EngineRequest {
  readonly id: string;
  readonly seq: number;
  readonly promptLen: number;
  readonly maxTokens: number;
  /** True when maxTokens was drawn (no max_tokens given): the end models EOS, reason "stop". */
  outputDrawn = false;
  readonly lora: string | undefined;
  readonly arrivalMs: number;
  readonly callbacks: RequestCallbacks;
  /** Chain hashes of the prompt's full blocks. */
  readonly blockHashes: number[];

  generated = 0;
  numComputed = 0;
  blocks: number[] = [];
  /** Blocks (from the start) whose hash is already published in the prefix cache. */
  registeredBlocks = 0;
  /** Prompt tokens served from the prefix cache at first scheduling (usage.cached_tokens). */
  cachedTokens = -1;
  preemptions = 0;
  firstScheduledMs = -1;
  firstTokenMs = -1;
  lastTokenMs = -1;
  finishedMs = -1;
  finished = false;

  constructor(
    id: string,
    seq: number,
    promptLen: number,
    maxTokens: number,
    lora: string | undefined,
    arrivalMs: number,
    blockHashes: number[],
    callbacks: RequestCallbacks,
  ) {
    this.id = id;
    this.seq = seq;
    this.promptLen = promptLen;
    this.maxTokens = maxTokens;
    this.lora = lora;
    this.arrivalMs = arrivalMs;
    this.blockHashes = blockHashes;
    this.callbacks = callbacks;
  }

  /** Tokens whose KV must exist before the next token can be sampled. */
  get seqLen(): number {
    return this.promptLen + this.generated;
  }
}
