// Workload generators: seeded, at the requested mean rate, and shaped as documented.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng, renderChat, tokenize } from "../../sim/index.ts";
import {
  LORA_SPLIT,
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
