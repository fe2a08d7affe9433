// 100,000 seeded random and mutated OpenAI- and Anthropic-style bodies through the compiled request probe:
// it must never trap, must accept exactly what JSON.parse (on strict UTF-8) accepts up to the
// documented depth limit, and must extract the same model and prompt text as a JS reference.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRequestProbe, KIND, SCAN } from "./request-probe.ts";
import { mulberry32 } from "../../sim/rng.ts";
import { topLevelModelKeys, depthOf, promptReference } from "./reference.ts";

const ITERATIONS = 100_000;
const MAX_DEPTH = 64;
const PROMPT_LIMIT = 16384;

const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const enc = new TextEncoder();

const words = [
  "hello",
  "world",
  "Ünïcödé",
  "😀",
  "\u0000",
  "\n\t",
  '"quoted"',
  "back\\slash",
  "\ud800",
  "\udfff",
  "日本語",
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

function text(r: () => number, maxWords: number): string {
  const n = Math.floor(r() * maxWords);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(pick(r, words));
  return parts.join(" ");
}

function value(r: () => number, depth: number): unknown {
  const k = Math.floor(r() * (depth > 3 ? 5 : 7));
  if (k === 0) return null;
  if (k === 1) return r() < 0.5;
  if (k === 2) return pick(r, [0, -1, 1.5e300, -2.5e-7, 1.2345678901234568e29, 42]);
  if (k === 3 || k === 4) return text(r, 4);
  if (k === 5) return Array.from({ length: Math.floor(r() * 3) }, () => value(r, depth + 1));
  return { a: value(r, depth + 1), [text(r, 2)]: value(r, depth + 1) };
}

/** A realistic body for one of the five endpoints. */
function realistic(r: () => number): { body: Record<string, unknown>; kind: number } {
  const kind = 1 + Math.floor(r() * 5);
  const body: Record<string, unknown> = {};
  if (r() < 0.95)
    body.model = r() < 0.9 ? pick(r, ["llama-3-8b", "meta/llama:lora-1", 'm\u00e9"x', ""]) : value(r, 1);
  if (r() < 0.5) body.stream = r() < 0.9 ? r() < 0.5 : value(r, 1);
  if (r() < 0.3) body.temperature = r();
  if (kind === 1)
    body.prompt = r() < 0.7 ? text(r, 200) : r() < 0.5 ? [text(r, 20), text(r, 20), 3] : [1, 2, 3];
  if (kind === 5 && r() < 0.7) {
    // Anthropic Messages: `system` as a string or text blocks, sometimes another type; before or after `messages`.
    const k = r();
    body.system =
      k < 0.5
        ? text(r, 30)
        : k < 0.85
          ? [
              { type: "text", text: text(r, 10) },
              { type: "text", text: text(r, 10), cache_control: { type: "ephemeral" } },
            ]
          : value(r, 1);
  }
  if (kind === 2 || kind === 5) {
    body.messages = Array.from({ length: Math.floor(r() * 5) }, () => {
      const role = pick(r, ["system", "user", "assistant", "tool"]);
      const c =
        r() < 0.7
          ? text(r, 60)
          : r() < 0.8
            ? [
                { type: "text", text: text(r, 10) },
                { type: "image_url", image_url: { url: "data:x" } },
              ]
            : null;
      return { role, content: c };
    });
  }
  if (kind === 5 && "system" in body && r() < 0.5) {
    const sys = body.system;
    delete body.system; // re-added after `messages`
    body.system = sys;
  }
  if (kind === 3) body.input = r() < 0.6 ? text(r, 50) : [text(r, 10), text(r, 10)];
  if (kind === 4) {
    if (r() < 0.5) body.instructions = text(r, 20);
    // `system` means nothing outside /v1/messages.
    if (r() < 0.1) body.system = text(r, 5);
    body.input = r() < 0.5 ? text(r, 50) : [{ role: "user", content: text(r, 20) }, "extra", { type: "x" }];
  }
  if (r() < 0.2) body.extra = value(r, 1);
  return { body, kind };
}

function deepNest(r: () => number): string {
  const d = 55 + Math.floor(r() * 20);
  const open = Array.from({ length: d }, () => (r() < 0.5 ? "[" : '{"k":')).join("");
  const close = [...open.matchAll(/\[|\{"k":/g)]
    .map((m) => (m[0] === "[" ? "]" : "}"))
    .reverse()
    .join("");
  return `{"model":"m","deep":${open}1${close}}`;
}

const inserts = [
  '"',
  "\\",
  "{",
  "}",
  "[",
  "]",
  ",",
  ":",
  " ",
  "\\u",
  "\\ud83d",
  "1e999",
  "-",
  "0",
  "tru",
  "null",
];
const badUtf8 = [
  [0xc0, 0x80],
  [0xed, 0xa0, 0x80],
  [0xf5],
  [0x80],
  [0xe2, 0x82],
  [0xf0, 0x9f, 0x98],
  [0xff],
  [0xef, 0xbb, 0xbf],
];

function mutate(r: () => number, bytes: Uint8Array): Uint8Array {
  let b = bytes;
  const n = 1 + Math.floor(r() * 3);
  for (let m = 0; m < n; m++) {
    const at = Math.floor(r() * (b.length + 1));
    const op = Math.floor(r() * 6);
    if (op === 0) b = b.slice(0, at);
    else if (op === 1 && b.length > 0) {
      b = b.slice();
      b[Math.min(at, b.length - 1)] ^= 1 << Math.floor(r() * 8);
    } else if (op === 2 || op === 3) {
      const ins = enc.encode(pick(r, inserts));
      b = concat(b.subarray(0, at), ins, b.subarray(at));
    } else if (op === 4) {
      b = concat(b.subarray(0, at), Uint8Array.from(pick(r, badUtf8)), b.subarray(at));
    } else if (b.length > 0) {
      const to = Math.min(b.length, at + Math.floor(r() * 8));
      b = concat(b.subarray(0, at), b.subarray(to));
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function randomBytes(r: () => number): Uint8Array {
  const alphabet = enc.encode(' {}[]",:\\tfnu0123456789.eE-+abcm\n');
  const out = new Uint8Array(Math.floor(r() * 40));
  for (let i = 0; i < out.length; i++)
    out[i] = r() < 0.9 ? alphabet[Math.floor(r() * alphabet.length)] : Math.floor(r() * 256);
  return out;
}

function oracle(bytes: Uint8Array): { valid: boolean; value?: unknown } {
  try {
    return { valid: true, value: JSON.parse(strictUtf8.decode(bytes)) };
  } catch {
    return { valid: false };
  }
}

test("fuzz: 100k seeded bodies agree with JSON.parse and never trap", () => {
  const probe = loadRequestProbe();
  const r = mulberry32(0x5eed);
  const counts = { valid: 0, invalid: 0, tooDeep: 0, ok: 0, promptChecked: 0, rewritten: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    let bytes: Uint8Array;
    let kind: number = KIND.auto;
    const mode = r();
    if (mode < 0.03) bytes = randomBytes(r);
    else if (mode < 0.05) bytes = enc.encode(deepNest(r));
    else {
      const gen = realistic(r);
      kind = gen.kind;
      bytes = enc.encode(JSON.stringify(gen.body, null, r() < 0.2 ? 1 : undefined));
      if (mode >= 0.35) bytes = mutate(r, bytes);
    }
    const got = probe.scan(bytes); // a trap throws here and fails the test
    const want = oracle(bytes);
    const where = () => `case ${i}: ${JSON.stringify(Buffer.from(bytes).toString("latin1").slice(0, 300))}`;
    if (!want.valid) {
      counts.invalid++;
      assert.ok(
        [SCAN.invalidJson, SCAN.empty].includes(got.error as 1 | 7),
        `accepted invalid JSON, ${where()}`,
      );
      continue;
    }
    counts.valid++;
    const v = want.value;
    if (depthOf(v) > MAX_DEPTH) {
      counts.tooDeep++;
      assert.equal(got.error, SCAN.tooDeep, where());
      continue;
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      assert.equal(got.error, SCAN.notObject, where());
      continue;
    }
    if (topLevelModelKeys(new TextDecoder().decode(bytes)) > 1) {
      assert.equal(got.error, SCAN.modelDuplicate, where());
      continue;
    }
    const o = v as Record<string, never>;
    const model: unknown = o.model;
    const stream: unknown = o.stream;
    if (model !== undefined && typeof model !== "string") {
      assert.equal(got.error, SCAN.modelNotString, where());
      continue;
    }
    if (model === undefined || model === "") {
      assert.equal(got.error, SCAN.modelMissing, where());
      continue;
    }
    if (stream !== undefined && stream !== null && typeof stream !== "boolean") {
      assert.equal(got.error, SCAN.streamNotBool, where());
      continue;
    }
    assert.equal(got.error, SCAN.ok, where());
    counts.ok++;
    // Lone surrogates in the model become U+FFFD in UTF-8, as TextEncoder does.
    assert.equal(got.model, new TextDecoder("utf-8", { ignoreBOM: true }).decode(enc.encode(model)), where());
    assert.equal(got.stream, stream === true ? 1 : stream === false ? 0 : -1, where());
    if (i % 10 === 0) {
      // Rewrite: only `model` changes, and the result is still the same JSON otherwise.
      const name = pick(r, ["x", 'q"\\', "é😀", "\u0001"]) + i;
      const rewritten = JSON.parse(strictUtf8.decode(probe.rewrite(bytes, name)));
      assert.deepEqual(rewritten, { ...o, model: name }, where());
      counts.rewritten++;
      probe.scan(bytes); // restore the scan state for the prompt check below
    }
    if (kind !== KIND.auto) {
      const wantPrompt = enc.encode(promptReference(o, kind)).subarray(0, PROMPT_LIMIT);
      assert.deepEqual(probe.prompt(kind), wantPrompt, where());
      counts.promptChecked++;
    }
  }
  // The generator must exercise every branch, or the test proves little.
  assert.ok(counts.invalid > 20_000 && counts.valid > 40_000 && counts.tooDeep > 100 && counts.ok > 20_000);
  assert.ok(counts.promptChecked > 20_000 && counts.rewritten > 2_000);
});
