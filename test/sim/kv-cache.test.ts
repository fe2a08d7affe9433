import { test } from "node:test";
import assert from "node:assert/strict";
import { BlockPool, blockHashes } from "../../sim/engine/kv-cache.ts";
import { tokenize } from "../../sim/engine/tokenizer.ts";

test("allocate/release keeps free + used = total and frees to the LRU tail", () => {
  const pool = new BlockPool(4, 16);
  const a = pool.allocate();
  const b = pool.allocate();
  assert.equal(pool.freeBlocks, 2);
  assert.equal(pool.usage(), 0.5);
  pool.release(b);
  pool.release(a);
  pool.checkInvariants();
  assert.equal(pool.freeBlocks, 4);
  // Two never-used blocks sit ahead of b and a; then b (released first) is evicted before a.
  const order = [pool.allocate(), pool.allocate(), pool.allocate(), pool.allocate()];
  assert.deepEqual(order.slice(2), [b, a]);
  assert.equal(pool.allocate(), -1);
  pool.checkInvariants();
});

test("a cached block stays hittable while free and is evicted only by allocation", () => {
  const pool = new BlockPool(2, 16);
  const x = pool.allocate();
  pool.register(x, 42);
  pool.release(x);
  assert.equal(pool.usage(), 0, "idle cached blocks do not count as used");
  assert.equal(pool.lookup(42), x);
  pool.touch(x);
  assert.equal(pool.freeBlocks, 1);
  pool.release(x);
  pool.allocate(); // the never-used block goes first
  assert.equal(pool.lookup(42), x);
  pool.allocate(); // now x is evicted
  assert.equal(pool.lookup(42), -1);
  pool.checkInvariants();
});

test("block hashes chain: equal only for identical leading blocks", () => {
  const base = "system prompt ".repeat(20);
  const h1 = blockHashes(tokenize(base + "first question here, padded out to a few blocks long....."), 16, 0);
  const h2 = blockHashes(tokenize(base + "second question, different text from the very first token"), 16, 0);
  const shared = Math.floor(base.length / 4 / 16);
  assert.ok(shared >= 3);
  for (let i = 0; i < shared; i++) assert.equal(h1[i], h2[i]);
  assert.ok(h1.length > shared && h2.length > shared);
  assert.notEqual(h1[shared], h2[shared]);
  // Changing the first token changes every later hash.
  const h3 = blockHashes(tokenize("X" + base.slice(1)), 16, 0);
  assert.ok(h3.every((h, i) => h !== h1[i]));
  // Adapters get their own chain.
  assert.notEqual(blockHashes(tokenize(base), 16, 99)[0], h1[0]);
});
