// Independent JavaScript references for the wasm request/prefix modules: xxHash64 in BigInt,
// the documented prompt-extraction rules over JSON.parse output, and a seeded PRNG.

const M = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;

const rotl = (x: bigint, r: bigint): bigint => ((x << r) | (x >> (64n - r))) & M;
const mul = (a: bigint, b: bigint): bigint => (a * b) & M;
const add = (a: bigint, b: bigint): bigint => (a + b) & M;

function lane64(d: Uint8Array, i: number): bigint {
  let v = 0n;
  for (let k = 7; k >= 0; k--) v = (v << 8n) | BigInt(d[i + k]);
  return v;
}

function round(acc: bigint, lane: bigint): bigint {
  return mul(rotl(add(acc, mul(lane, P2)), 31n), P1);
}

function merge(acc: bigint, v: bigint): bigint {
  return add(mul(acc ^ round(0n, v), P1), P4);
}

/** XXH64 straight from the specification, slow and obviously written. */
export function xxh64Reference(d: Uint8Array, seed = 0n): bigint {
  const len = d.length;
  let i = 0;
  let h: bigint;
  if (len >= 32) {
    let v1 = add(add(seed, P1), P2);
    let v2 = add(seed, P2);
    let v3 = seed;
    let v4 = (seed - P1) & M;
    for (; i + 32 <= len; i += 32) {
      v1 = round(v1, lane64(d, i));
      v2 = round(v2, lane64(d, i + 8));
      v3 = round(v3, lane64(d, i + 16));
      v4 = round(v4, lane64(d, i + 24));
    }
    h = add(add(rotl(v1, 1n), rotl(v2, 7n)), add(rotl(v3, 12n), rotl(v4, 18n)));
    for (const v of [v1, v2, v3, v4]) h = merge(h, v);
  } else {
    h = add(seed, P5);
  }
  h = add(h, BigInt(len));
  for (; i + 8 <= len; i += 8) h = add(mul(rotl(h ^ round(0n, lane64(d, i)), 27n), P1), P4);
  if (i + 4 <= len) {
    const w = BigInt(d[i] | (d[i + 1] << 8) | (d[i + 2] << 16)) | (BigInt(d[i + 3]) << 24n);
    h = add(mul(rotl(h ^ mul(w, P1), 23n), P2), P3);
    i += 4;
  }
  for (; i < len; i++) h = mul(rotl(h ^ mul(BigInt(d[i]), P5), 11n), P1);
  h ^= h >> 33n;
  h = mul(h, P2);
  h ^= h >> 29n;
  h = mul(h, P3);
  h ^= h >> 32n;
  return h;
}

/** Chained block hashes per the documented rule (64-byte blocks, ≤ maxBlocks, seeded with model). */
export function blockHashesReference(prompt: Uint8Array, model: string, maxBlocks = 256): bigint[] {
  let prev = xxh64Reference(new TextEncoder().encode(model));
  const out: bigint[] = [];
  const n = Math.min(Math.floor(prompt.length / 64), maxBlocks);
  for (let b = 0; b < n; b++) {
    const buf = new Uint8Array(72);
    buf.set(prompt.subarray(b * 64, b * 64 + 64));
    new DataView(buf.buffer).setBigUint64(64, prev, true);
    prev = xxh64Reference(buf);
    out.push(prev);
  }
  return out;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

// Each JSON string is encoded to UTF-8 on its own, so a lone surrogate at the end of one string
// never pairs with one at the start of the next: normalise every leaf before concatenating.
const wellFormed = (s: string): string =>
  new TextDecoder("utf-8", { ignoreBOM: true }).decode(new TextEncoder().encode(s));

function strings(v: Json): string {
  if (typeof v === "string") return wellFormed(v);
  if (Array.isArray(v))
    return v
      .filter((x) => typeof x === "string")
      .map(wellFormed)
      .join("");
  return "";
}

function content(v: Json): string {
  if (typeof v === "string") return wellFormed(v);
  if (!Array.isArray(v)) return "";
  let s = "";
  for (const part of v) {
    if (typeof part === "string") s += wellFormed(part);
    else if (
      part !== null &&
      typeof part === "object" &&
      !Array.isArray(part) &&
      typeof part.text === "string"
    )
      s += wellFormed(part.text);
  }
  return s;
}

function messages(v: Json): string {
  if (typeof v === "string") return wellFormed(v);
  if (!Array.isArray(v)) return "";
  let s = "";
  for (const m of v) {
    if (typeof m === "string") s += wellFormed(m);
    else if (m !== null && typeof m === "object" && !Array.isArray(m)) {
      const role = typeof m.role === "string" ? wellFormed(m.role) : "";
      s += `<|im_start|>${role}\n${"content" in m ? content(m.content) : ""}<|im_end|>\n`;
    }
  }
  return s;
}

/** Anthropic's `system`: a string or text blocks, as a leading system message; other types nothing. */
function system(v: Json | undefined): string {
  if (typeof v !== "string" && !Array.isArray(v)) return "";
  return `<|im_start|>system\n${content(v)}<|im_end|>\n`;
}

/** The prompt text the documented rules give for a parsed body and request kind (1..5). */
export function promptReference(body: { [k: string]: Json }, kind: number): string {
  if (kind === 2) return "messages" in body ? messages(body.messages) : "";
  if (kind === 5) return system(body.system) + ("messages" in body ? messages(body.messages) : "");
  if (kind === 1) return "prompt" in body ? strings(body.prompt) : "";
  if (kind === 3) return "input" in body ? strings(body.input) : "";
  const ins = typeof body.instructions === "string" ? wellFormed(body.instructions) : "";
  return ins + ("input" in body ? messages(body.input) : "");
}

/** Nesting depth of a parsed value: scalars 0, each array/object level +1. */
export function depthOf(v: unknown): number {
  if (v === null || typeof v !== "object") return 0;
  let d = 0;
  for (const x of Object.values(v)) d = Math.max(d, depthOf(x));
  return d + 1;
}

/** How many times the top-level object of valid JSON `text` has the key `model` (JSON.parse keeps one). */
export function topLevelModelKeys(text: string): number {
  let depth = 0;
  let count = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      if (depth === 1 && expectKey && JSON.parse(text.slice(i, j + 1)) === "model") count++;
      expectKey = false;
      i = j;
    } else if (c === "{" || c === "[") {
      depth++;
      expectKey = depth === 1 && c === "{";
    } else if (c === "}" || c === "]") depth--;
    else if (c === "," && depth === 1) expectKey = true;
  }
  return count;
}
