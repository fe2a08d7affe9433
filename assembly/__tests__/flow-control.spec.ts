// Unit tests of flow control's queue: bands in priority order, round-robin over fairness ids with FCFS
// per id (or one FIFO), limits per band and in total, TTL order, and removal from anywhere — plus a
// seeded run of random operations checking the counts against a plain model.
import { ENQUEUED, FlowQueue, FULL_BAND, FULL_TOTAL, ALREADY_QUEUED } from "../flow-control/queue";
import { FAIRNESS_GLOBAL_STRICT, FlowBand, FlowControlSpec } from "../snapshot/types";

function spec(): FlowControlSpec {
  const s = new FlowControlSpec();
  s.defaultBand.maxRequests = 5000;
  s.defaultBand.maxBytes = 1073741824.0;
  return s;
}

function queue(s: FlowControlSpec = spec()): FlowQueue {
  const q = new FlowQueue();
  q.configure(s);
  return q;
}

/** Dispatches everything, returning the stream ids in order. */
function drain(q: FlowQueue): u32[] {
  const out: u32[] = [];
  let guard = 1000;
  while (q.count > 0 && guard-- > 0) {
    const i = q.next();
    out.push(q.streamOf(i));
    q.remove(i, true);
  }
  return out;
}

function ids(a: u32[]): string {
  return a.join(",");
}

describe("flow-control queue", () => {
  it("serves the highest priority band first", () => {
    const q = queue();
    q.enqueue(1, -1, "", 10, 0);
    q.enqueue(2, 0, "", 10, 0);
    q.enqueue(3, 5, "", 10, 0);
    q.enqueue(4, 0, "", 10, 0);
    expect<string>(ids(drain(q))).toBe("3,2,4,1");
    expect<i32>(q.count).toBe(0);
    expect<f64>(q.bytes).toBe(0);
  });

  it("rotates over fairness ids, FCFS within each", () => {
    const q = queue();
    q.enqueue(1, 0, "a", 1, 0);
    q.enqueue(2, 0, "a", 1, 0);
    q.enqueue(3, 0, "a", 1, 0);
    q.enqueue(4, 0, "b", 1, 0);
    q.enqueue(5, 0, "c", 1, 0);
    q.enqueue(6, 0, "b", 1, 0);
    expect<string>(ids(drain(q))).toBe("1,4,5,2,6,3");
  });

  it("global-strict is one FIFO per band", () => {
    const s = spec();
    s.fairness = FAIRNESS_GLOBAL_STRICT;
    const q = queue(s);
    q.enqueue(1, 0, "a", 1, 0);
    q.enqueue(2, 0, "a", 1, 0);
    q.enqueue(3, 0, "b", 1, 0);
    expect<string>(ids(drain(q))).toBe("1,2,3");
  });

  it("enforces band and total limits on count and bytes", () => {
    const s = spec();
    const b = new FlowBand();
    b.priority = 0;
    b.maxRequests = 2;
    b.maxBytes = 100;
    s.bands.push(b);
    s.maxRequests = 3;
    const q = queue(s);
    expect<i32>(q.enqueue(1, 0, "", 40, 0)).toBe(ENQUEUED);
    expect<i32>(q.enqueue(2, 0, "", 70, 0)).toBe(FULL_BAND); // bytes
    expect<i32>(q.enqueue(3, 0, "", 50, 0)).toBe(ENQUEUED);
    expect<i32>(q.enqueue(4, 0, "", 1, 0)).toBe(FULL_BAND); // count
    expect<i32>(q.enqueue(5, 1, "", 1, 0)).toBe(ENQUEUED);
    expect<i32>(q.enqueue(6, 1, "", 1, 0)).toBe(FULL_TOTAL);
    expect<i32>(q.enqueue(5, 1, "", 1, 0)).toBe(ALREADY_QUEUED);
    expect<u64>(q.bands[q.band(0)].rejected).toBe(2);
  });

  it("expires the oldest item of a band once its TTL has passed", () => {
    const s = spec();
    s.defaultTtlMs = 100;
    const q = queue(s);
    q.enqueue(1, 0, "a", 1, 0);
    q.enqueue(2, 0, "b", 1, 50);
    expect<i32>(q.expired(99)).toBe(-1);
    const i = q.expired(100);
    expect<u32>(q.streamOf(i)).toBe(1);
    q.remove(i);
    expect<i32>(q.expired(120)).toBe(-1);
    expect<u32>(q.streamOf(q.expired(150))).toBe(2);
  });

  it("a TTL change re-dates held items from their arrival, shorter or longer", () => {
    const s = spec();
    s.defaultTtlMs = 10000;
    const q = queue(s);
    q.enqueue(1, 0, "a", 1, 0);
    q.enqueue(2, 0, "b", 1, 40);
    const shorter = spec();
    shorter.defaultTtlMs = 100;
    q.configure(shorter);
    expect<i32>(q.expired(99)).toBe(-1);
    const i = q.expired(100);
    expect<u32>(q.streamOf(i)).toBe(1);
    q.remove(i);
    expect<u32>(q.streamOf(q.expired(140))).toBe(2);
    q.enqueue(3, 0, "c", 1, 200);
    const none = spec();
    q.configure(none);
    expect<i32>(q.expired(1000000)).toBe(-1);
    expect<string>(q.fairnessOf(q.oldestOf(0))).toBe("b");
  });

  it("removes from anywhere (a client that left) and keeps the rotation", () => {
    const q = queue();
    q.enqueue(1, 0, "a", 1, 0);
    q.enqueue(2, 0, "b", 1, 0);
    q.enqueue(3, 0, "a", 1, 0);
    q.enqueue(4, 0, "c", 1, 0);
    expect<bool>(q.remove(q.itemOf(2))).toBe(true);
    expect<bool>(q.remove(q.itemOf(2))).toBe(false);
    expect<i32>(q.flowCount(q.band(0))).toBe(2);
    expect<string>(ids(drain(q))).toBe("1,4,3");
  });

  it("never traps on bad indexes", () => {
    const q = queue();
    expect<bool>(q.remove(-1)).toBe(false);
    expect<bool>(q.remove(12345)).toBe(false);
    expect<u32>(q.streamOf(99)).toBe(0);
    expect<i32>(q.bandOf(-7)).toBe(-1);
    expect<i32>(q.next()).toBe(-1);
    expect<i32>(q.fits(42, 1)).toBe(FULL_BAND);
  });

  it("keeps its counts equal to a model under random operations (seeded)", () => {
    const s = spec();
    s.maxRequests = 40;
    s.defaultTtlMs = 30;
    const q = queue(s);
    let seed: u64 = 12345;
    const live = new Map<u32, f64>();
    let nextId: u32 = 1;
    let now: u64 = 0;
    for (let step = 0; step < 20000; step++) {
      seed = seed * 6364136223846793005 + 1442695040888963407;
      const r = <i32>((seed >> 33) % 100);
      now += (seed >> 20) % 3;
      if (r < 45) {
        const bytes = <f64>((seed >> 40) % 1000);
        const id = nextId++;
        const prio = <i32>((seed >> 10) % 4) - 1;
        const fid = ((seed >> 14) % 5).toString();
        if (q.enqueue(id, prio, fid, bytes, now) == ENQUEUED) live.set(id, bytes);
      } else if (r < 70) {
        const i = q.next();
        if (i >= 0) {
          live.delete(q.streamOf(i));
          q.remove(i, true);
        }
      } else if (r < 85) {
        const i = q.expired(now);
        if (i >= 0) {
          live.delete(q.streamOf(i));
          q.remove(i);
        }
      } else {
        // A random id, possibly long gone or never queued.
        const id = <u32>((seed >> 24) % (<u64>nextId + 3));
        const i = q.itemOf(id);
        if (q.remove(i)) live.delete(id);
      }
      expect<i32>(q.count).toBe(live.size);
      expect<bool>(q.bytes >= 0).toBe(true);
    }
    let total: f64 = 0;
    const keys = live.keys();
    for (let k = 0; k < keys.length; k++) total += live.get(keys[k]);
    expect<f64>(q.bytes).toBe(total);
    drain(q);
    expect<i32>(q.count).toBe(0);
  });
});
