// Workload generators: seeded, at the requested mean rate, and shaped as documented.
import { test } from "node:test";
import assert from "node:assert/strict";
import { CHARS_PER_TOKEN, Rng, renderChat, tokenize } from "../../sim/index.ts";
import {
  HETERO_SLOW_PRESET,
  LONG_CONTEXT,
  LORA_SPLIT,
  MULTI_TURN,
  SHARED_PREFIX,
  WORKLOADS,
  onOffArrivals,
  poissonArrivals,
  textOfTokens,
} from "../../bench/routing/workloads.ts";

test("textOfTokens gives the requested token count under the sim tokenizer", () => {
  for (const n of [1, 7, 200, 4000]) assert.equal(tokenize(textOfTokens("tag", n)).length, n);
});

test("Poisson and on/off arrivals average the requested rate", () => {
  assert.ok(Math.abs(poissonArrivals(new Rng(1), 100, 600_000).length / 600 - 100) < 2);
  const bursts = onOffArrivals(new Rng(2), new Rng(3), 100, 3_600_000, 2000);
  assert.ok(Math.abs(bursts.length / 3600 - 100) < 5, `${bursts.length / 3600}`);
});

test("every workload is deterministic for a seed and sorted in time", () => {
  for (const w of Object.values(WORKLOADS)) {
    const a = w.generate(50, 5000, 3);
    assert.deepEqual(a, w.generate(50, 5000, 3), w.name);
    assert.ok(a.length > 0, w.name);
    for (let i = 1; i < a.length; i++) assert.ok(a[i].arrivalMs >= a[i - 1].arrivalMs, w.name);
  }
});

test("shared-prefix: requests of a group share the system prompt's blocks", () => {
  const items = WORKLOADS["shared-prefix"].generate(200, 20_000, 1);
  const first = new Map<string, Uint32Array>();
  let shared = 0;
  for (const it of items) {
    const sys = String(it.messages[0].content);
    const ids = tokenize(renderChat(it.messages));
    const prev = first.get(sys);
    if (!prev) {
      first.set(sys, ids);
      continue;
    }
    let k = 0;
    while (k < ids.length && ids[k] === prev[k]) k++;
    assert.ok(k >= SHARED_PREFIX.systemPromptLen, `common prefix ${k}`);
    shared++;
  }
  assert.ok(shared > 0);
  assert.ok(
    SHARED_PREFIX.groups * SHARED_PREFIX.systemPromptLen > 29_205 * 16,
    "prefixes exceed one pod's KV",
  );
});

test("multi-lora: the split sums to 1 and the hottest adapter gets about 12%", () => {
  assert.ok(Math.abs(LORA_SPLIT.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  const items = WORKLOADS["multi-lora"].generate(500, 60_000, 1);
  const hot = items.filter((i) => i.lora === "adapter-0").length / items.length;
  assert.ok(Math.abs(hot - 0.12) < 0.015, `${hot}`);
});

const contentTokens = (m: { content: unknown }): number => tokenize(String(m.content)).length;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

test("multi-turn: conversations of 2–8 turns whose prompt grows turn by turn, with think time", () => {
  const m = MULTI_TURN;
  const qps = 100;
  const durationMs = 600_000;
  const items = WORKLOADS["multi-turn"].generate(qps, durationMs, 1);
  // Conversation starts are Poisson at qps / mean turns; the turns of the last ones fall past the end.
  assert.ok(Math.abs(items.length / (durationMs / 1000) / qps - 1) < 0.05, `${items.length}`);
  const byConv = new Map<string, typeof items>();
  for (const it of items) {
    const key = String(it.messages[0].content);
    byConv.set(key, [...(byConv.get(key) ?? []), it]);
  }
  const complete = [...byConv.values()].filter((c) => c[0].arrivalMs < durationMs / 2);
  const turns = complete.map((c) => c.length);
  assert.ok(Math.min(...turns) >= m.minTurns && Math.max(...turns) <= m.maxTurns);
  assert.ok(Math.abs(mean(turns) - (m.minTurns + m.maxTurns) / 2) < 0.15, `mean turns ${mean(turns)}`);
  const contexts = complete.map((c) => contentTokens(c[0].messages[0]) - m.commonPrefixTokens);
  assert.ok(Math.abs(mean(contexts) / m.contextMean - 1) < 0.05, `mean context ${mean(contexts)}`);
  const thinks: number[] = [];
  for (const conv of complete) {
    for (let k = 1; k < conv.length; k++) {
      const prev = conv[k - 1];
      const cur = conv[k];
      // The earlier turn's messages and its answer lead the next prompt: its prefix only grows.
      assert.deepEqual(cur.messages.slice(0, prev.messages.length), prev.messages);
      assert.equal(cur.messages[prev.messages.length].role, "assistant");
      assert.equal(contentTokens(cur.messages[prev.messages.length]), prev.maxTokens);
      const q = contentTokens(cur.messages.at(-1)!);
      assert.ok(q >= m.userTokens[0] && q <= m.userTokens[1]);
      assert.ok(prev.maxTokens >= m.answerTokens[0] && prev.maxTokens <= m.answerTokens[1]);
      thinks.push(cur.arrivalMs - prev.arrivalMs - prev.maxTokens * m.expectedTpotMs);
    }
  }
  assert.ok(Math.min(...thinks) >= 0);
  assert.ok(Math.abs(mean(thinks) / m.thinkMeanMs - 1) < 0.05, `mean think ${mean(thinks)}`);
  // Every conversation opens with the common prefix.
  const head = textOfTokens("common system prompt", m.commonPrefixTokens);
  assert.ok(items.every((it) => String(it.messages[0].content).startsWith(head)));
});

test("heterogeneous: odd pods run the A100 preset, arrivals and lengths are sharegpt's", () => {
  const w = WORKLOADS.heterogeneous;
  assert.deepEqual(w.podPresets!(4), [
    "h100-llama3-8b",
    HETERO_SLOW_PRESET,
    "h100-llama3-8b",
    HETERO_SLOW_PRESET,
  ]);
  const items = w.generate(200, 300_000, 2);
  assert.ok(Math.abs(items.length / 300 - 200) < 4, `${items.length / 300}`);
  const sg = WORKLOADS.sharegpt.generate(200, 300_000, 2);
  assert.deepEqual(
    items.map((i) => [i.arrivalMs, i.maxTokens]),
    sg.map((i) => [i.arrivalMs, i.maxTokens]),
  );
});

test("long-context: prompts log-uniform over 16K–128K tokens, every one fits the raised model length", () => {
  const w = WORKLOADS["long-context"];
  const items = w.generate(2, 250_000, 3);
  // textOfTokens makes exactly CHARS_PER_TOKEN characters per token (tested above): no need to tokenize 55M tokens.
  const lens = items.map((i) => String(i.messages[0].content).length / CHARS_PER_TOKEN).sort((a, b) => a - b);
  assert.ok(lens[0] >= LONG_CONTEXT.minTokens && lens.at(-1)! <= LONG_CONTEXT.maxTokens);
  const median = lens[lens.length >> 1];
  const logMid = Math.sqrt(LONG_CONTEXT.minTokens * LONG_CONTEXT.maxTokens);
  assert.ok(Math.abs(median / logMid - 1) < 0.08, `median ${median} vs ${logMid}`);
  const expectMean =
    (LONG_CONTEXT.maxTokens - LONG_CONTEXT.minTokens) /
    Math.log(LONG_CONTEXT.maxTokens / LONG_CONTEXT.minTokens);
  assert.ok(Math.abs(mean(lens) / expectMean - 1) < 0.05, `mean ${mean(lens)} vs ${expectMean}`);
  assert.ok(w.engineOverrides!.maxModelLen! > LONG_CONTEXT.maxTokens + LONG_CONTEXT.output[1]);
  // KV, not the queue, binds: one H100 pod holds only a handful of these prompts.
  const kvTokens = 29_205 * 16;
  assert.ok(kvTokens / LONG_CONTEXT.maxTokens < 4 && kvTokens / LONG_CONTEXT.minTokens < 30);
});
