// Turns an OpenAI completions / chat-completions body into engine input, or an error to send.
import { renderChat, tokenize, type ChatMessage } from "../engine/tokenizer.ts";

export interface ParsedGeneration {
  model: string;
  promptTokenIds: Uint32Array;
  maxTokens: number | undefined;
  stream: boolean;
  includeUsage: boolean;
}

export class BadRequest extends Error {
  readonly param: string | null;
  constructor(message: string, param: string | null = null) {
    super(message);
    this.param = param;
  }
}

function promptIds(prompt: unknown): Uint32Array {
  if (typeof prompt === "string") return tokenize(prompt);
  if (Array.isArray(prompt)) {
    if (prompt.length === 0) throw new BadRequest("prompt must not be empty", "prompt");
    if (prompt.every((t) => Number.isInteger(t) && t >= 0)) return Uint32Array.from(prompt as number[]);
    // A list of prompts (or token lists) is a batch; we serve exactly one.
    if (prompt.length === 1) return promptIds(prompt[0]);
    throw new BadRequest(
      "batched prompts are not supported by the simulator; send one prompt per request",
      "prompt",
    );
  }
  throw new BadRequest(
    "prompt must be a string, a list of token ids, or a one-element list of either",
    "prompt",
  );
}

export function parseGeneration(body: unknown, chat: boolean): ParsedGeneration {
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw new BadRequest("request body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (typeof b.model !== "string" || b.model === "") throw new BadRequest("model is required", "model");
  let ids: Uint32Array;
  if (chat) {
    if (!Array.isArray(b.messages) || b.messages.length === 0)
      throw new BadRequest("messages must be a non-empty list", "messages");
    for (const m of b.messages) {
      if (!m || typeof m !== "object" || typeof (m as { role?: unknown }).role !== "string") {
        throw new BadRequest("each message needs a string role", "messages");
      }
    }
    ids = tokenize(renderChat(b.messages as ChatMessage[]));
  } else {
    ids = promptIds(b.prompt);
  }
  if (b.n !== undefined && b.n !== null && b.n !== 1) {
    throw new BadRequest("the simulator serves n = 1 only; send one request per completion", "n");
  }
  const rawMax = b.max_completion_tokens ?? b.max_tokens;
  let maxTokens: number | undefined;
  if (rawMax !== undefined && rawMax !== null) {
    if (!Number.isInteger(rawMax) || (rawMax as number) < 1)
      throw new BadRequest("max_tokens must be a positive integer", "max_tokens");
    maxTokens = rawMax as number;
  }
  const opts = b.stream_options as { include_usage?: unknown } | undefined;
  return {
    model: b.model,
    promptTokenIds: ids,
    maxTokens,
    stream: b.stream === true,
    includeUsage: opts?.include_usage === true,
  };
}

/**
 * An Anthropic Messages body (/v1/messages) as engine input: `system` (a string or text blocks) becomes a
 * leading system message, the way vLLM serves this API through its chat path. Non-streaming only.
 */
export function parseMessages(body: unknown): ParsedGeneration {
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw new BadRequest("request body must be a JSON object");
  const b = body as Record<string, unknown>;
  if (b.stream === true)
    throw new BadRequest("the simulator serves /v1/messages without streaming", "stream");
  const system =
    typeof b.system === "string" || Array.isArray(b.system) ? [{ role: "system", content: b.system }] : [];
  const messages = Array.isArray(b.messages) ? [...system, ...(b.messages as unknown[])] : b.messages;
  return parseGeneration({ ...b, messages }, true);
}
