// Engine invariants over seeded random workloads, in virtual time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../sim/clock/virtual-clock.ts";
import { Engine } from "../../sim/engine/engine.ts";
import { presetConfig, type EngineConfig } from "../../sim/engine/presets.ts";
import type { EngineRequest } from "../../sim/engine/request.ts";
import { Rng } from "../../sim/rng.ts";
import { tokenize } from "../../sim/engine/tokenizer.ts";

interface RunResult {
  engine: Engine;
  requests: EngineRequest[];
  doneOrder: string[];
  firstScheduledOrder: EngineRequest[];
  maxUsage: number;
}

function randomWorkload(
  seed: number,
  overrides: Partial<EngineConfig>,
  opts: { loras?: string[]; n?: number; shared?: boolean },
): RunResult {
  const clock = new VirtualClock();
  const loras = opts.loras ?? [];
  const engine = new Engine({ config: presetConfig("fast", overrides), clock, seed, loraModules: loras });
  const rng = new Rng(seed);
  const requests: EngineRequest[] = [];
  const doneOrder: string[] = [];
  const firstScheduledOrder: EngineRequest[] = [];
  let maxUsage = 0;
  engine.onStep = (scheduled) => {
    engine.pool.checkInvariants();
    // Every used block is held by some live request (no leak), and no request holds more blocks
    // than its computed tokens need.
    const held = new Set<number>();
    for (const r of engine.runningRequests()) {
      for (const b of r.blocks) held.add(b);
      assert.ok(r.blocks.length <= Math.ceil((r.numComputed + r.seqLen) / engine.config.blockSize) + 1);
    }
    for (const r of engine.waitingRequests())
      assert.equal(r.blocks.length, 0, "waiting requests hold no blocks");
    assert.equal(held.size, engine.pool.usedBlocks, "used blocks = blocks held by running requests");
    assert.ok(engine.numRunning <= engine.config.maxNumSeqs);
    assert.ok(engine.loraSets().running.length <= engine.config.maxLoras, "max_loras respected");
    maxUsage = Math.max(maxUsage, engine.kvUsage());
    // FCFS except LoRA skipping and preemption: a request still waiting while a later arrival runs
    // must have an adapter (it was skipped) or have been preempted (re-queued at the front).
    let latestRunningSeq = -1;
    for (const r of engine.runningRequests()) latestRunningSeq = Math.max(latestRunningSeq, r.seq);
    for (const w of engine.waitingRequests()) {
      if (w.seq < latestRunningSeq)
        assert.ok(w.lora !== undefined || w.preemptions > 0, `${w.id} was overtaken`);
    }
    for (const r of scheduled) if (!firstScheduledOrder.includes(r)) firstScheduledOrder.push(r);
  };
  const prefixes = ["You are a helpful assistant. ".repeat(8), "Answer briefly and precisely. ".repeat(8)];
  const n = opts.n ?? 200;
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += rng.exponential(4);
    const len = rng.int(8, 400);
    let text = "";
    if (opts.shared) text = prefixes[rng.int(0, 1)];
    while (text.length < len * 4) text += `q${i}-${rng.int(0, 9999)} `;
    const lora = loras.length > 0 && rng.next() < 0.6 ? loras[rng.int(0, loras.length - 1)] : undefined;
    const maxTokens = rng.int(1, 120);
    clock.schedule(t, () => {
      requests.push(
        engine.submit(
          { promptTokenIds: tokenize(text), maxTokens, lora },
          {
            onDone: (r) => {
              doneOrder.push(r.id);
            },
          },
        ),
      );
    });
  }
  clock.runAll(5_000_000);
  return { engine, requests, doneOrder, firstScheduledOrder, maxUsage };
}

for (const seed of [1, 2, 3]) {
  test(`seed ${seed}: KV blocks never leak, all freed when idle, outputs exact under preemption`, () => {
    const { engine, requests, doneOrder, maxUsage } = randomWorkload(
      seed,
      { numGpuBlocks: 160, maxNumSeqs: 24 },
      { shared: true },
    );
    assert.equal(requests.length, 200);
    assert.equal(doneOrder.length, 200, "every request finished");
    assert.equal(engine.inFlight, 0);
    assert.equal(engine.pool.freeBlocks, engine.pool.numBlocks, "all blocks free when idle");
    engine.pool.checkInvariants();
    assert.ok(engine.stats.preemptions > 0, "this cache is small enough to force preemption");
    assert.ok(maxUsage > 0.9);
    for (const r of requests) {
      assert.equal(r.generated, r.maxTokens, `${r.id} produced exactly max_tokens`);
      assert.ok(r.firstTokenMs >= r.arrivalMs && r.finishedMs >= r.firstTokenMs);
    }
    assert.ok(requests.some((r) => r.preemptions > 0));
  });
}

test("random LoRA workload: at most max_loras adapters run, skipped requests still all finish", () => {
  const { engine, requests, doneOrder } = randomWorkload(
    11,
    { numGpuBlocks: 300, maxNumSeqs: 16, maxLoras: 2 },
    { loras: ["a", "b", "c", "d"] },
  );
  assert.equal(doneOrder.length, requests.length);
  assert.equal(engine.pool.freeBlocks, engine.pool.numBlocks);
  for (const r of requests) assert.equal(r.generated, r.maxTokens);
});

test("FCFS: without LoRA or preemption, requests start in arrival order", () => {
  const { requests, firstScheduledOrder, engine } = randomWorkload(
    7,
    { numGpuBlocks: 100_000, maxNumSeqs: 4 },
    {},
  );
  assert.equal(engine.stats.preemptions, 0);
  assert.deepEqual(
    firstScheduledOrder.map((r) => r.seq),
    requests.map((r) => r.seq),
  );
});

test("FCFS except LoRA skipping: a request only jumps ahead of one whose adapter was blocked", () => {
  const clock = new VirtualClock();
  const engine = new Engine({
    config: presetConfig("fast", { maxLoras: 1, numGpuBlocks: 100_000 }),
    clock,
    loraModules: ["a", "b"],
  });
  const started: string[] = [];
  engine.onStep = (scheduled) => {
    for (const r of scheduled) if (!started.includes(r.id)) started.push(r.id);
    const { running, waiting } = engine.loraSets();
    assert.ok(running.length <= 1, "never more than max_loras adapters running");
    if (r0Done === false && waiting.length > 0) sawWaitingLora = true;
  };
  let r0Done = false;
  let sawWaitingLora = false;
  engine.submit({ id: "a1", promptTokens: 32, maxTokens: 50, lora: "a" }, { onDone: () => (r0Done = true) });
  clock.runUntil(5);
  engine.submit({ id: "b1", promptTokens: 32, maxTokens: 5, lora: "b" });
  engine.submit({ id: "base1", promptTokens: 32, maxTokens: 5 });
  engine.submit({ id: "a2", promptTokens: 32, maxTokens: 5, lora: "a" });
  clock.runAll();
  assert.deepEqual(started, ["a1", "base1", "a2", "b1"]);
  assert.ok(sawWaitingLora, "waiting_lora_adapters was non-empty while b1 was skipped");
  assert.equal(engine.pool.freeBlocks, engine.pool.numBlocks);
});

test("prefix cache hits only on identical leading blocks and is reported as cachedTokens", () => {
  const clock = new VirtualClock();
  const engine = new Engine({ config: presetConfig("fast"), clock });
  const system = "S".repeat(64 * 5); // exactly 5 blocks of 16 tokens
  const first = engine.submit({ promptTokenIds: tokenize(system + "first user question"), maxTokens: 2 });
  clock.runAll();
  const same = engine.submit({ promptTokenIds: tokenize(system + "another question!!"), maxTokens: 2 });
  const differentStart = engine.submit({
    promptTokenIds: tokenize("T" + system.slice(1) + "first user question"),
    maxTokens: 2,
  });
  clock.runAll();
  assert.equal(first.cachedTokens, 0);
  assert.equal(same.cachedTokens, 5 * 16);
  assert.equal(differentStart.cachedTokens, 0);
  const exact = engine.submit({ promptTokenIds: tokenize(system), maxTokens: 2 });
  clock.runAll();
  assert.equal(exact.cachedTokens, 4 * 16, "at least one prompt token is always computed");
  assert.equal(engine.stats.prefixHits, 5 * 16 + 4 * 16);
  assert.ok(
    engine.stats.prefixQueries >=
      first.promptLen + same.promptLen + differentStart.promptLen + exact.promptLen,
  );
});

test("abort frees the request's blocks immediately", () => {
  const clock = new VirtualClock();
  const engine = new Engine({ config: presetConfig("fast"), clock });
  const r = engine.submit({ promptTokens: 300, maxTokens: 500 });
  clock.runUntil(20);
  assert.ok(r.blocks.length > 0 && engine.pool.usedBlocks > 0);
  assert.equal(engine.abort(r.id), true);
  assert.equal(engine.pool.usedBlocks, 0);
  clock.runAll();
  assert.equal(engine.inFlight, 0);
  engine.pool.checkInvariants();
});

test("validation: too-long prompt → 400, unknown adapter → 404", () => {
  const engine = new Engine({ config: presetConfig("fast"), clock: new VirtualClock() });
  assert.throws(() => engine.submit({ promptTokens: 5000 }), { status: 400 });
  assert.throws(() => engine.submit({ promptTokens: 10, lora: "nope" }), { status: 404 });
  assert.throws(() => engine.submit({ promptTokens: 2000, maxTokens: 100 }), { status: 400 });
});

test("output length without max_tokens is seeded: same seed, same lengths", () => {
  const lengths = (seed: number) => {
    const engine = new Engine({ config: presetConfig("fast"), clock: new VirtualClock(), seed });
    return Array.from({ length: 20 }, () => engine.submit({ promptTokens: 10 }).maxTokens);
  };
  assert.deepEqual(lengths(5), lengths(5));
  assert.notDeepEqual(lengths(5), lengths(6));
});

test("preemption is LIFO and the victim is re-queued ahead of requests that never ran", () => {
  const clock = new VirtualClock();
  const engine = new Engine({ config: presetConfig("fast", { numGpuBlocks: 20, maxNumSeqs: 2 }), clock });
  const a = engine.submit({ id: "A", promptTokens: 100, maxTokens: 150 });
  const b = engine.submit({ id: "B", promptTokens: 100, maxTokens: 150 });
  const c = engine.submit({ id: "C", promptTokens: 16, maxTokens: 5 });
  let bReadmittedMs = -1;
  engine.onStep = (scheduled, start) => {
    if (bReadmittedMs < 0 && b.preemptions > 0 && scheduled.includes(b)) bReadmittedMs = start;
  };
  clock.runAll();
  assert.equal(a.preemptions, 0, "the most recently scheduled request is the victim");
  assert.ok(b.preemptions > 0);
  assert.ok(bReadmittedMs >= 0 && c.firstScheduledMs >= bReadmittedMs, "C did not overtake the preempted B");
  for (const r of [a, b, c]) assert.equal(r.generated, r.maxTokens);
});
