import { test } from "node:test";
import assert from "node:assert/strict";
import { DeadlineQueue } from "../../sidecar/collector/deadline-queue.ts";
import { mulberry32 } from "../../sim/rng.ts";

test("deadline queue: first in, first out across wrap-around and growth, against an array", () => {
  const r = mulberry32(7);
  const q = new DeadlineQueue<{ id: number }>(4);
  const model: { item: { id: number }; at: number; tag: number }[] = [];
  for (let step = 0; step < 20_000; step++) {
    // Bursts of pushes and of shifts, so the ring wraps and grows several times.
    if (r() < (Math.floor(step / 500) % 2 === 0 ? 0.7 : 0.3)) {
      const e = { item: { id: step }, at: step * 1.5, tag: step % 97 };
      q.push(e.item, e.at, e.tag);
      model.push(e);
    } else {
      q.shift();
      model.shift();
    }
    assert.equal(q.length, model.length);
    if (model.length > 0) {
      assert.equal(q.firstItem(), model[0]!.item);
      assert.equal(q.firstAt(), model[0]!.at);
      assert.equal(q.firstTag(), model[0]!.tag);
    }
  }
  q.clear();
  assert.equal(q.length, 0);
  q.push({ id: -1 }, 1, 2);
  assert.deepEqual([q.length, q.firstItem().id, q.firstAt(), q.firstTag()], [1, -1, 1, 2]);
});
