import { test } from "node:test";
import assert from "node:assert/strict";
import { VirtualClock } from "../../sim/clock/virtual-clock.ts";
import { Rng } from "../../sim/rng.ts";

test("events run in (time, insertion) order and the clock reads each event's time", () => {
  const clock = new VirtualClock();
  const rng = new Rng(9);
  const planned: { at: number; i: number }[] = [];
  const ran: { at: number; i: number; now: number }[] = [];
  for (let i = 0; i < 2000; i++) {
    const at = rng.int(0, 300); // many ties
    planned.push({ at, i });
    clock.schedule(at, () => ran.push({ at, i, now: clock.now() }));
  }
  clock.runAll();
  planned.sort((a, b) => a.at - b.at || a.i - b.i);
  assert.deepEqual(
    ran.map(({ at, i }) => ({ at, i })),
    planned,
  );
  for (const r of ran) assert.equal(r.now, r.at);
});

test("runUntil stops at the horizon; past times run at now; nested scheduling works", () => {
  const clock = new VirtualClock(1000);
  const seen: number[] = [];
  clock.schedule(10, () => {
    seen.push(clock.now());
    clock.schedule(5, () => seen.push(clock.now())); // in the past → runs at 10
    clock.schedule(30, () => seen.push(clock.now()));
  });
  clock.runUntil(20);
  assert.deepEqual(seen, [10, 10]);
  assert.equal(clock.now(), 20);
  assert.equal(clock.pending, 1);
  clock.runUntil(100);
  assert.deepEqual(seen, [10, 10, 30]);
  assert.equal(clock.epochSeconds(2000), 1002);
});
