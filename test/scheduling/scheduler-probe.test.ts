// The compiled scheduler (build/scheduler-probe.wasm, built from assembly/scheduling with the release
// flags) on synthetic pools: admission statuses, prefix stickiness, burst spreading and agreement
// between independent instances — the same code the filter runs, outside the as-pect debug build.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadSchedulerProbe, PROFILE, FIELD } from "./scheduler-probe.ts";

const enc = new TextEncoder();

function promptOf(group: number, tail: number): Uint8Array {
  const head = `shared system prompt ${group}: `.padEnd(3072, `policy ${group} `);
  return enc.encode((head + `user ${tail} `.repeat(200)).slice(0, 4096));
}

test("sheddable requests get 429 on a saturated pool; priority ≥ 0 is served; nothing ready → 503", () => {
  const p = loadSchedulerProbe();
  p.setup(10, PROFILE.default, 1);
  for (let i = 0; i < 10; i++) p.x.setEndpoint(i, FIELD.waiting, 9);
  assert.equal(p.decide(promptOf(1, 1), -1), -429);
  assert.ok(p.decide(promptOf(1, 1), 0) >= 0, "priority 0 served");
  p.x.setEndpoint(3, FIELD.waiting, 0);
  assert.ok(p.decide(promptOf(1, 1), -1) >= 0, "one endpoint with room → not saturated");
  for (let i = 0; i < 10; i++) p.x.setEndpoint(i, FIELD.ready, 0);
  assert.equal(p.decide(promptOf(1, 1), 0), -503);
});

test("a shared prefix sticks to one pod while load allows (default and gie-default)", () => {
  for (const profile of [PROFILE.default, PROFILE.gieDefault]) {
    const p = loadSchedulerProbe();
    p.setup(20, profile, 3);
    for (let i = 0; i < 20; i++) {
      p.x.setEndpoint(i, FIELD.waiting, 0);
      p.x.setEndpoint(i, FIELD.running, 0);
      p.x.setEndpoint(i, FIELD.kvPermyriad, 1000);
    }
    const picks = new Map<number, number>();
    // 6 requests of one group in one snapshot: well inside the load bound.
    for (let k = 0; k < 6; k++) {
      const slot = p.decide(promptOf(7, k));
      picks.set(slot, (picks.get(slot) ?? 0) + 1);
    }
    const top = Math.max(...picks.values());
    assert.ok(top >= 5, `profile ${profile}: ${JSON.stringify([...picks])}`);
  }
});

test("default spreads a burst of distinct prompts instead of herding", () => {
  const p = loadSchedulerProbe();
  p.setup(8, PROFILE.default, 5);
  for (let i = 0; i < 8; i++) {
    p.x.setEndpoint(i, FIELD.waiting, 0);
    p.x.setEndpoint(i, FIELD.running, 0);
    p.x.setEndpoint(i, FIELD.kvPermyriad, 0);
  }
  const counts = new Array<number>(8).fill(0);
  for (let k = 0; k < 32; k++) counts[p.decide(enc.encode(`short ${k}`))]++;
  assert.deepEqual(
    counts,
    new Array<number>(8).fill(4),
    "no affinity, equal pods → fresh load balances exactly",
  );
});

test("independent default schedulers (different seeds, empty state) pick the same pod per prompt", () => {
  const a = loadSchedulerProbe();
  const b = loadSchedulerProbe();
  a.setup(50, PROFILE.default, 1);
  b.setup(50, PROFILE.default, 999);
  for (const probe of [a, b]) {
    for (let i = 0; i < 50; i++) {
      probe.x.setEndpoint(i, FIELD.waiting, 0);
      probe.x.setEndpoint(i, FIELD.running, 0);
      probe.x.setEndpoint(i, FIELD.kvPermyriad, 0);
    }
  }
  for (let g = 0; g < 30; g++) {
    const prompt = promptOf(g, 0);
    // Re-create each time so neither instance has local state or in-flight counts for the prompt.
    a.setup(50, PROFILE.default, 1 + g);
    b.setup(50, PROFILE.default, 999 + g);
    assert.equal(a.decide(prompt), b.decide(prompt), `group ${g}`);
  }
});
