// Routing on a body's head (a body that has not fully arrived): the prefix scan, the closed prefix the
// prompt is read from, and the watcher for a second `model` in the rest — through the request probe,
// at every cut point of generated bodies.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadRequestProbe, KIND, SCAN } from "./request-probe.ts";
import { mulberry32 } from "../../sim/rng.ts";
import { promptReference, topLevelModelKeys } from "./reference.ts";

const probe = loadRequestProbe();
const enc = new TextEncoder();
const PROMPT_LIMIT = 256 * 64;
/** Closing a cut string may add template text; the filter trusts a closed prompt this far past the limit. */
const CLOSING_SLACK = 16;
const KEY_MESSAGES = 4;
const KEY_SYSTEM = 7;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function text(r: () => number, n: number): string {
  const pieces = ["word ", 'q"uote ', "back\\slash ", "tab\t", "ünï ", "😀 ", "\u0001", "line\n"];
  let s = "";
  while (s.length < n) s += pieces[Math.floor(r() * pieces.length)];
  return s;
}

function shuffled<T>(r: () => number, xs: T[]): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

function chatBody(r: () => number, size: number): Record<string, Json> {
  const messages: Json[] = [{ role: "system", content: text(r, 40) }];
  const parts = r() < 0.3;
  const content = text(r, size);
  messages.push({ role: "user", content: parts ? [{ type: "text", text: content }] : content });
  const fields: [string, Json][] = [
    ["model", "m-" + Math.floor(r() * 100)],
    ["messages", messages],
    ["stream", r() < 0.5],
    ["max_tokens", 64],
  ];
  return Object.fromEntries(r() < 0.5 ? fields : shuffled(r, fields));
}

/** An Anthropic Messages body: `system` (string, text blocks or absent) anywhere among the fields. */
function messagesBody(r: () => number, size: number): Record<string, Json> {
  const content = text(r, size);
  const messages: Json[] = [
    { role: "user", content: r() < 0.5 ? [{ type: "text", text: content }] : content },
    { role: "assistant", content: text(r, 20) },
  ];
  const fields: [string, Json][] = [
    ["model", "m-" + Math.floor(r() * 100)],
    ["messages", messages],
    ["max_tokens", 64],
  ];
  const k = r();
  if (k < 0.4) fields.push(["system", text(r, 40 + Math.floor(r() * 3000))]);
  else if (k < 0.8)
    fields.push([
      "system",
      [
        { type: "text", text: text(r, 200) },
        { type: "text", text: text(r, 40) },
      ],
    ]);
  return Object.fromEntries(r() < 0.3 ? fields : shuffled(r, fields));
}

function cutPoints(r: () => number, len: number): number[] {
  if (len <= 600) return Array.from({ length: len + 1 }, (_, i) => i);
  return [...Array.from({ length: 200 }, () => Math.floor(r() * (len + 1))), len];
}

test("a prefix scan never traps, and a closed prefix is JSON whose prompt is the real prompt's start", () => {
  const r = mulberry32(11);
  let closedChecked = 0;
  let exactChecked = 0;
  for (let i = 0; i < 60; i++) {
    const size = i % 3 === 0 ? 100 : i % 3 === 1 ? 20_000 : 70_000;
    const obj = chatBody(r, size);
    const bytes = enc.encode(JSON.stringify(obj));
    const real = enc.encode(promptReference(obj, KIND.chat));
    for (const n of cutPoints(r, bytes.length)) {
      const head = probe.scanHead(bytes, n);
      assert.ok([SCAN.ok, SCAN.incomplete].includes(head.error as 0 | 8), `cut ${n}: error ${head.error}`);
      if (n === bytes.length) assert.equal(head.error, SCAN.ok);
      if (!head.closed) continue;
      const closedObj = JSON.parse(new TextDecoder().decode(head.closed)) as Record<string, Json>;
      closedChecked++;
      const got = enc.encode(promptReference(closedObj, KIND.chat));
      const messagesDone = "messages" in closedObj && head.topKey !== KEY_MESSAGES;
      if (messagesDone) {
        assert.deepEqual(got, real, `cut ${n}: finished messages must give the whole prompt`);
        exactChecked++;
      } else if (got.length >= PROMPT_LIMIT + CLOSING_SLACK) {
        assert.deepEqual(got.subarray(0, PROMPT_LIMIT), real.subarray(0, PROMPT_LIMIT), `cut ${n}`);
        exactChecked++;
      }
    }
  }
  assert.ok(closedChecked > 1000, `only ${closedChecked} closed prefixes`);
  assert.ok(exactChecked > 100, `only ${exactChecked} exact prompts`);
});

test("a second top-level model is found wherever the head ends and however the rest is chunked", () => {
  const r = mulberry32(12);
  for (let i = 0; i < 40; i++) {
    const first = JSON.stringify(chatBody(r, 3000));
    // A second `model` after the prompt, plain or escaped; or a nested one, which does not count.
    const tail = [',"model":"other"}', ',"\\u006dodel":"other"}', ',"meta":{"model":"x"}}', ',"models":"x"}'][
      i % 4
    ]!;
    const bytes = enc.encode(first.slice(0, -1) + tail);
    const want = topLevelModelKeys(new TextDecoder().decode(bytes));
    for (const n of cutPoints(r, bytes.length).filter((_, k) => k % 5 === 0)) {
      const head = probe.scanHead(bytes, n);
      if (head.error === SCAN.modelDuplicate) {
        assert.equal(want, 2);
        continue;
      }
      if (!head.truncated) continue;
      for (const chunk of [1, 7, 4096])
        assert.equal(probe.modelKeys(bytes, n, chunk), want, `cut ${n} chunk ${chunk}`);
    }
  }
});

test("messages: a head decides only once `system` and `messages` are whole, or the prompt is long and `system` whole", () => {
  const r = mulberry32(13);
  let exact = 0;
  let long = 0;
  let early = 0;
  for (let i = 0; i < 60; i++) {
    const size = i % 3 === 0 ? 100 : i % 3 === 1 ? 20_000 : 40_000;
    const obj = messagesBody(r, size);
    const bytes = enc.encode(JSON.stringify(obj));
    const real = enc.encode(promptReference(obj, KIND.messages));
    for (const n of cutPoints(r, bytes.length)) {
      const head = probe.scanHead(bytes, n);
      assert.ok([SCAN.ok, SCAN.incomplete].includes(head.error as 0 | 8), `cut ${n}: error ${head.error}`);
      if (!head.closed) continue;
      const closedObj = JSON.parse(new TextDecoder().decode(head.closed)) as Record<string, Json>;
      const got = enc.encode(promptReference(closedObj, KIND.messages));
      // The filter's rule (inference-request.ts promptFieldDone / leadDone for KIND_MESSAGES).
      const systemDone = "system" in closedObj && head.topKey !== KEY_SYSTEM;
      const messagesDone = "messages" in closedObj && head.topKey !== KEY_MESSAGES;
      if (systemDone && messagesDone) {
        assert.deepEqual(got, real, `cut ${n}: whole system and messages must give the whole prompt`);
        exact++;
      } else if (systemDone && got.length >= PROMPT_LIMIT + CLOSING_SLACK) {
        assert.deepEqual(got.subarray(0, PROMPT_LIMIT), real.subarray(0, PROMPT_LIMIT), `cut ${n}`);
        long++;
      } else if ("system" in obj && !("system" in closedObj) && got.length > 0) {
        // `system` still to come: the head's prompt lacks its leading system message.
        assert.notDeepEqual(got.subarray(0, 20), real.subarray(0, 20), `cut ${n}`);
        early++;
      }
    }
  }
  assert.ok(exact > 10, `only ${exact} exact prompts`);
  assert.ok(long > 20, `only ${long} long prompts`);
  assert.ok(early > 20, `only ${early} heads before system`);
});
