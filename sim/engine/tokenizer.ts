// Deterministic tokenizer approximation. We have no real vocabulary, so one token is
// CHARS_PER_TOKEN characters of text (~4 for English with Llama-3's tokenizer). Token ids are a
// hash of the chunk, so identical leading text gives identical ids and therefore identical
// prefix-cache block hashes. The same function sizes prompts, prefix blocks and `usage`.
export const CHARS_PER_TOKEN = 4;
const VOCAB_SIZE = 128_000;

export function tokenize(text: string): Uint32Array {
  const n = Math.ceil(text.length / CHARS_PER_TOKEN);
  const ids = new Uint32Array(n);
  for (let t = 0; t < n; t++) {
    let h = 0x811c9dc5;
    const end = Math.min(text.length, (t + 1) * CHARS_PER_TOKEN);
    for (let i = t * CHARS_PER_TOKEN; i < end; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
    ids[t] = (h >>> 0) % VOCAB_SIZE;
  }
  return ids;
}

export interface ChatMessage {
  role: string;
  content: unknown;
}

/** Text of a message's content: a string or an array of `{type:"text", text}` parts. */
function messageText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((p) =>
        p && typeof p === "object" && typeof (p as { text?: unknown }).text === "string"
          ? (p as { text: string }).text
          : "",
      )
      .join("");
  }
  return "";
}

/** A fixed chat template, so a conversation's earlier turns stay a byte-identical prefix. */
export function renderChat(messages: ChatMessage[]): string {
  let out = "";
  for (const m of messages) out += `<|${m.role}|>\n${messageText(m.content)}\n`;
  return out + "<|assistant|>\n";
}

const WORDS = [
  "the",
  "model",
  "token",
  "cache",
  "batch",
  "serve",
  "route",
  "prefix",
  "block",
  "queue",
  "decode",
  "fill",
];

/** Text of the i-th generated token: a short word with a leading space (~CHARS_PER_TOKEN chars). */
export function outputTokenText(requestSalt: number, index: number): string {
  return " " + WORDS[(requestSalt + index * 7) % WORDS.length];
}
