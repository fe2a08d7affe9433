// Documented scheduler behaviour that had no test of its own (docs/scheduling.md): scores outside 0..1 and
// NaN are clamped, the absolute affinity queue cap (affinityMaxQueue), and `affinityDirectory: 0`.
import { Endpoint, RequestInfo, SchedulerConfig, CycleState, SCHEDULE_OK } from "../scheduling/types";
import { Scorer, SchedulingProfile } from "../scheduling/framework";
import { MaxScorePicker } from "../scheduling/pickers";
import { LoadModel, RendezvousAffinityScorer } from "../scheduling/default-profile";
import { Scheduler } from "../scheduling/scheduler";
import { MemoryAffinityDirectory } from "../scheduling/affinity-directory";
import { computeBlockHashes } from "../prefix/blocks";

function pool(n: i32, waiting: i32 = 0): Endpoint[] {
  const eps = new Array<Endpoint>();
  for (let i = 0; i < n; i++) {
    const e = new Endpoint();
    e.slot = i;
    e.hostPort = "10.0.0." + i.toString() + ":8000";
    e.waiting = waiting;
    eps.push(e);
  }
  return eps;
}

/** A request for a ~2.2 KB prompt unique to `id` (past AFFINITY_MIN_BLOCKS, so rendezvous applies). */
function prompt(id: i32): RequestInfo {
  let text = "";
  while (text.length < 2200) text += "conversation " + id.toString() + " says hello to the model; ";
  const r = new RequestInfo();
  const p = String.UTF8.encode(text);
  const m = String.UTF8.encode("m");
  const h = new StaticArray<u64>(256);
  r.hashCount = computeBlockHashes(changetype<usize>(p), p.byteLength, changetype<usize>(m), m.byteLength, h);
  r.hashes = h;
  r.promptBytes = p.byteLength;
  r.promptTokens = p.byteLength / 4;
  r.targetModel = "m";
  return r;
}

/** Rendezvous scores of every endpoint, "1.0" for the pod that keeps the group's affinity. */
function rendezvousScores(eps: Endpoint[], r: RequestInfo, maxQueue: f64 = 128): string[] {
  const model = new LoadModel();
  model.maxQueue = maxQueue;
  const s = new RendezvousAffinityScorer(model);
  const cs = new CycleState(1);
  cs.ensure(eps.length, eps.length + 1);
  cs.begin(eps.length);
  const out = new StaticArray<f64>(eps.length);
  s.score(eps, r, cs, out);
  const parts = new Array<string>();
  for (let k = 0; k < eps.length; k++) parts.push(out[k].toString());
  return parts;
}

/** A scorer that returns fixed values, including ones a broken scorer could produce. */
class FixedScorer extends Scorer {
  constructor(public values: f64[]) {
    super("fixed");
  }
  score(eps: Endpoint[], req: RequestInfo, cs: CycleState, out: StaticArray<f64>): void {
    for (let k = 0; k < cs.n; k++) out[k] = this.values[k];
  }
}

describe("score clamping", () => {
  it("out-of-range scores count as 0 or 1 and NaN as 0, so a broken scorer cannot win", () => {
    const eps = pool(5);
    const profile = new SchedulingProfile("t", new MaxScorePicker()).withScorer(
      new FixedScorer([NaN, 5.0, -3.0, 0.5, Infinity]),
      2,
    );
    const cs = new CycleState(1);
    cs.ensure(5, 5);
    cs.begin(5);
    const out = new StaticArray<i32>(5);
    expect(profile.run(eps, new RequestInfo(), cs, 5, out)).toBe(SCHEDULE_OK);
    expect(cs.totals[0]).toBe(0.0, "NaN → 0");
    expect(cs.totals[1]).toBe(2.0, "5 → 1, times weight 2");
    expect(cs.totals[2]).toBe(0.0, "-3 → 0");
    expect(cs.totals[3]).toBe(1.0, "0.5 unchanged, times weight 2");
    expect(cs.totals[4]).toBe(2.0, "+Inf → 1");
    expect(out[2]).toBe(3, "the in-range 0.5 ranks after the two clamped to 1");
  });
});

describe("affinity queue cap (affinityMaxQueue)", () => {
  it("no pod keeps affinity once waiting + in-flight pass the cap, even when every pod is equally busy", () => {
    const r = prompt(5);
    // 120 waiting everywhere: within the relative bound (mean·1.25 + 8) and under the cap of 128.
    const under = rendezvousScores(pool(8, 120), r);
    expect(under.indexOf("1.0")).toBeGreaterThanOrEqual(0, "under the cap the group has a pod");
    // 130 everywhere: still within the relative bound (all equal), but over the absolute cap.
    expect(rendezvousScores(pool(8, 130), r).indexOf("1.0")).toBe(-1, "over the cap: no affinity at all");
    // In-flight requests count toward the cap as well.
    const eps = pool(8, 120);
    for (let i = 0; i < 8; i++) eps[i].inflightRequests = 9;
    expect(rendezvousScores(eps, r).indexOf("1.0")).toBe(-1, "120 waiting + 9 in flight > 128");
    // The cap is a parameter: raised to 200, the same busy pool keeps affinity.
    expect(rendezvousScores(pool(8, 130), r, 200).indexOf("1.0")).toBeGreaterThanOrEqual(0);
  });
  it("the default profile reads affinityMaxQueue from the scheduler parameters", () => {
    const cfg = new SchedulerConfig();
    cfg.profile = "default";
    cfg.setParam("affinityMaxQueue", 1000).setParam("queueWeight", 0).setParam("kvWeight", 0);
    // Eight groups on a pool busy past the default cap: with the cap raised, each goes to its rendezvous
    // pod (with the default cap every affinity score is 0 and the pick would be a random tie-break).
    for (let g = 0; g < 8; g++) {
      const r = prompt(10 + g);
      const eps = pool(8, 130);
      const hashWinner = rendezvousScores(pool(8), r).indexOf("1.0");
      const s = new Scheduler(1, cfg, 8);
      s.syncEndpoints(eps);
      expect(s.schedule(eps, r)).toBe(SCHEDULE_OK);
      expect(s.result[0]).toBe(hashWinner, "cap raised: the rendezvous pod");
    }
  });
});

describe("affinityDirectory: 0", () => {
  it("a worker neither follows nor publishes shared placements", () => {
    const dir = new MemoryAffinityDirectory();
    const cfg = (): SchedulerConfig => {
      const c = new SchedulerConfig();
      c.profile = "default";
      c.setParam("affinityDirectory", 0);
      return c;
    };
    const a = new Scheduler(1, cfg(), 8);
    const b = new Scheduler(2, cfg(), 8);
    a.useDirectory(dir);
    b.useDirectory(dir);
    const eps = pool(8);
    a.syncEndpoints(eps);
    b.syncEndpoints(eps);
    const r = prompt(7);
    const hashWinner = rendezvousScores(eps, r).indexOf("1.0");
    // Worker a places the group away from the hash winner (busy, within the bound).
    eps[hashWinner].waiting = 6;
    expect(a.schedule(eps, r)).toBe(SCHEDULE_OK);
    const placed = a.result[0];
    a.onPicked(eps, placed, r);
    expect(placed).not.toBe(hashWinner);
    expect(dir.writes).toBe(0, "nothing published");
    // With the directory on, b would follow a (scheduling.spec.ts); off, it takes the hash winner.
    eps[hashWinner].waiting = 0;
    eps[placed].inflightRequests = 0;
    eps[placed].inflightPromptTokens = 0;
    expect(b.schedule(eps, r)).toBe(SCHEDULE_OK);
    expect(b.result[0]).toBe(hashWinner, "b does not follow a's placement");
    b.onPicked(eps, b.result[0], r);
    expect(dir.writes).toBe(0);
  });
});
