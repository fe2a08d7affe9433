// Unit tests of the scheduler's plugins and profiles (pure AssemblyScript, assembly/scheduling/).
// Tables carry a reason per expected value.
import {
  Endpoint,
  RequestInfo,
  SchedulerConfig,
  CycleState,
  CRITICALITY_CRITICAL,
  CRITICALITY_STANDARD,
  CRITICALITY_SHEDDABLE,
  SCHEDULE_OK,
  SCHEDULE_SHED,
  SCHEDULE_NO_CANDIDATES,
} from "../scheduling/types";
import {
  ReadyFilter,
  EndpointSubsetFilter,
  LowQueueFilter,
  HasCapacityFilter,
  LeastQueueFilter,
  LeastKvFilter,
  LoraSoftAffinityFilter,
  DecisionTreeFilter,
  subsetContains,
} from "../scheduling/filters";
import {
  QueueScorer,
  RunningRequestsScorer,
  KvCacheScorer,
  LoraAffinityScorer,
  InflightLoadScorer,
  PrefixCacheScorer,
} from "../scheduling/scorers";
import { MaxScorePicker, RandomPicker, WeightedRandomPicker } from "../scheduling/pickers";
import {
  LoadModel,
  FreshLoadScorer,
  KvHeadroomScorer,
  BoundedPrefixScorer,
  RendezvousAffinityScorer,
  AFFINITY_MIN_BLOCKS,
  AFFINITY_BLOCKS,
  affinityKey,
  PLACEMENT_HASH,
  PLACEMENT_BALANCED,
} from "../scheduling/default-profile";
import { placementFrom } from "../scheduling/profiles";
import { Filter, Scorer } from "../scheduling/framework";
import { isSaturated, admit } from "../scheduling/saturation";
import { Scheduler } from "../scheduling/scheduler";
import { MemoryAffinityDirectory } from "../scheduling/affinity-directory";
import { PrefixIndex } from "../prefix/index";
import { PrefixProducer } from "../scheduling/plugins/approx-prefix-cache-producer";
import { computeBlockHashes } from "../prefix/blocks";

// ---- helpers ------------------------------------------------------------------------------------

function ep(slot: i32, waiting: i32, kv: f64 = 0, running: i32 = 0): Endpoint {
  const e = new Endpoint();
  e.slot = slot;
  e.hostPort = "10.0.0." + slot.toString() + ":8000";
  e.waiting = waiting;
  e.kvUsage = kv;
  e.running = running;
  return e;
}

function lora(e: Endpoint, maxLoras: i32, running: string[], waiting: string[] = []): Endpoint {
  e.maxLoras = maxLoras;
  e.runningAdapters = running;
  e.waitingAdapters = waiting;
  return e;
}

function pool(n: i32): Endpoint[] {
  const eps = new Array<Endpoint>();
  for (let i = 0; i < n; i++) eps.push(ep(i, 0));
  return eps;
}

/** Slots of the candidates left in cs, ascending, "a,b,c". */
function candidates(eps: Endpoint[], cs: CycleState): string {
  const slots = new Array<i32>();
  for (let k = 0; k < cs.n; k++) slots.push(eps[cs.cand[k]].slot);
  slots.sort((a: i32, b: i32): i32 => a - b);
  return slots.join(",");
}

function runFilter(f: Filter, eps: Endpoint[], req: RequestInfo, seed: u64 = 1): string {
  const cs = new CycleState(seed);
  cs.ensure(eps.length, eps.length);
  cs.begin(eps.length);
  f.apply(eps, req, cs);
  return candidates(eps, cs);
}

/** A rendezvous scorer that defers to `index` (as the default profile wires it). */
function rendezvousWith(index: PrefixIndex): RendezvousAffinityScorer {
  const s = new RendezvousAffinityScorer(new LoadModel());
  s.usePrefix(new PrefixProducer(index));
  return s;
}

/** Scores of all endpoints (as candidates in order), rounded to 3 decimals, "a,b,c". One cycle: the
 *  scorer and the producers it reads start it afresh, as a profile's run() does. */
function runScorer(s: Scorer, eps: Endpoint[], req: RequestInfo): string {
  const cs = new CycleState(1);
  cs.ensure(eps.length, eps.length + 1);
  cs.begin(eps.length);
  for (let d = 0; d < s.deps.length; d++) s.deps[d].beginCycle(eps, req, cs);
  s.beginCycle(eps, req, cs);
  const out = new StaticArray<f64>(eps.length);
  s.score(eps, req, cs, out);
  const parts = new Array<string>();
  for (let k = 0; k < eps.length; k++) parts.push((Math.round(out[k] * 1000) / 1000).toString());
  return parts.join(",");
}

function req0(): RequestInfo {
  return new RequestInfo();
}

function critical(adapter: string = ""): RequestInfo {
  const r = new RequestInfo();
  r.criticality = CRITICALITY_CRITICAL;
  r.adapter = adapter;
  return r;
}

function withCriticality(c: u8, adapter: string = ""): RequestInfo {
  const r = new RequestInfo();
  r.criticality = c;
  r.adapter = adapter;
  return r;
}

function prompt(text: string, model: string = "m"): RequestInfo {
  const r = new RequestInfo();
  const p = String.UTF8.encode(text);
  const m = String.UTF8.encode(model);
  const h = new StaticArray<u64>(256);
  r.hashCount = computeBlockHashes(changetype<usize>(p), p.byteLength, changetype<usize>(m), m.byteLength, h);
  r.hashes = h;
  r.promptBytes = p.byteLength;
  r.promptTokens = p.byteLength / 4;
  r.targetModel = model;
  return r;
}

/** A ~1 KB text unique to `id`, 16 full blocks. */
function textOf(id: i32): string {
  let s = "";
  // ≥ AFFINITY_MIN_BLOCKS (32) blocks of 64 B, so rendezvous affinity applies.
  while (s.length < 2200) s += "conversation " + id.toString() + " says hello to the model; ";
  return s;
}

function config(profile: string): SchedulerConfig {
  const c = new SchedulerConfig();
  c.profile = profile;
  return c;
}

/** Legacy profile: the surviving candidate set (all of them, as the random picker orders them). */
function legacySurvivors(eps: Endpoint[], req: RequestInfo, cfg: SchedulerConfig = config("legacy")): string {
  cfg.profile = "legacy";
  cfg.setParam("maxFallbacks", 63);
  const s = new Scheduler(7, cfg);
  s.syncEndpoints(eps);
  const status = s.schedule(eps, req);
  if (status != SCHEDULE_OK) return status.toString();
  const slots = new Array<i32>();
  for (let k = 0; k < s.resultCount; k++) slots.push(eps[s.result[k]].slot);
  slots.sort((a: i32, b: i32): i32 => a - b);
  return slots.join(",");
}

// ---- filters ------------------------------------------------------------------------------------

describe("ready filter", () => {
  it("keeps ready, fresh endpoints; stale only when nothing else is left", () => {
    const eps: Endpoint[] = [ep(0, 0), ep(1, 0), ep(2, 0)];
    eps[1].ready = false;
    expect(runFilter(new ReadyFilter(), eps, req0())).toBe("0,2", "not-ready endpoint 1 dropped");
    eps[2].stale = true;
    expect(runFilter(new ReadyFilter(), eps, req0())).toBe("0", "stale endpoint 2 dropped while 0 is fresh");
    eps[0].stale = true;
    expect(runFilter(new ReadyFilter(), eps, req0())).toBe("0,2", "all ready ones stale → keep them");
    eps[0].ready = false;
    eps[2].ready = false;
    expect(runFilter(new ReadyFilter(), eps, req0())).toBe("", "nothing ready → empty (503)");
  });
});

describe("endpoint subset filter (conformance)", () => {
  it("matches ip, ip:port and IPv6 entries of a comma list", () => {
    expect(subsetContains("10.0.0.1", "10.0.0.1:8000")).toBe(true, "bare ip");
    expect(subsetContains("10.0.0.1:8000", "10.0.0.1:8000")).toBe(true, "ip:port");
    expect(subsetContains("10.0.0.1:9000", "10.0.0.1:8000")).toBe(false, "other port");
    expect(subsetContains("10.0.0.10", "10.0.0.1:8000")).toBe(false, "longer ip is not a prefix match");
    expect(subsetContains("10.0.0.1", "10.0.0.10:8000")).toBe(false, "shorter ip is not a prefix match");
    expect(subsetContains("10.0.0.9, 10.0.0.1 ,x", "10.0.0.1:8000")).toBe(true, "spaces trimmed");
    expect(subsetContains("fd00::1", "[fd00::1]:8000")).toBe(true, "bare IPv6");
    expect(subsetContains("[fd00::1]:8000", "[fd00::1]:8000")).toBe(true, "bracketed IPv6 with port");
    expect(subsetContains("", "10.0.0.1:8000")).toBe(false, "empty entry");
  });
  it("restricts candidates only when the header is present", () => {
    const eps = pool(4);
    const r = req0();
    expect(runFilter(new EndpointSubsetFilter(), eps, r)).toBe("0,1,2,3", "no header → no-op");
    r.endpointSubset = "10.0.0.3,10.0.0.1";
    expect(runFilter(new EndpointSubsetFilter(), eps, r)).toBe("1,3", "listed endpoints only");
    r.endpointSubset = "10.9.9.9";
    expect(runFilter(new EndpointSubsetFilter(), eps, r)).toBe("", "nothing listed is in the pool");
  });
});

describe("legacy filter nodes", () => {
  it("low-queue keeps waiting < threshold", () => {
    const eps: Endpoint[] = [ep(0, 127), ep(1, 128), ep(2, 0)];
    expect(runFilter(new LowQueueFilter(128), eps, req0())).toBe("0,2", "128 is not < 128");
  });
  it("has-capacity keeps waiting ≤ 5 and KV ≤ 0.8", () => {
    const eps: Endpoint[] = [ep(0, 5, 0.8), ep(1, 6, 0.1), ep(2, 0, 0.81), ep(3, 0, 0)];
    expect(runFilter(new HasCapacityFilter(5, 0.8), eps, req0())).toBe("0,3", "both bounds inclusive");
  });
  it("least-queue keeps the first bucket [min, min + (max-min)/n] (integer division)", () => {
    expect(runFilter(new LeastQueueFilter(), [ep(0, 0), ep(1, 3), ep(2, 0)], req0())).toBe(
      "0,2",
      "bucket [0,1]",
    );
    expect(runFilter(new LeastQueueFilter(), [ep(0, 0), ep(1, 2), ep(2, 1)], req0())).toBe(
      "0",
      "2/3 → 0: [0,0]",
    );
    expect(runFilter(new LeastQueueFilter(), [ep(0, 10), ep(1, 14), ep(2, 30)], req0())).toBe(
      "0,1",
      "bucket [10, 16]",
    );
    expect(runFilter(new LeastQueueFilter(), [ep(0, 4), ep(1, 4)], req0())).toBe("0,1", "all equal → all");
  });
  it("least-KV keeps the first bucket [min, min + (max-min)/n]", () => {
    expect(runFilter(new LeastKvFilter(), [ep(0, 0, 0.5), ep(1, 0, 0.1), ep(2, 0, 0.2)], req0())).toBe(
      "1,2",
      "bucket [0.1, 0.233]",
    );
    expect(runFilter(new LeastKvFilter(), [ep(0, 0, 0.9), ep(1, 0, 0.5)], req0())).toBe(
      "1",
      "bucket [0.5, 0.7]",
    );
  });
  it("LoRA soft affinity prefers endpoints running the adapter, else ones with a free slot", () => {
    const eps: Endpoint[] = [
      lora(ep(0, 0), 4, ["a1"]),
      lora(ep(1, 0), 4, []),
      lora(ep(2, 0), 2, ["a2", "a3"]),
    ];
    expect(runFilter(new LoraSoftAffinityFilter(1.0), eps, critical("a1"))).toBe("0", "adapter running on 0");
    expect(runFilter(new LoraSoftAffinityFilter(0.0), eps, critical("a1"))).toBe("1", "p=0 → available set");
    expect(runFilter(new LoraSoftAffinityFilter(0.999), eps, critical("a9"))).toBe(
      "0,1",
      "no affinity → free slots; 2 full",
    );
    const full: Endpoint[] = [lora(ep(0, 0), 1, ["x"]), lora(ep(1, 0), 0, [])];
    expect(runFilter(new LoraSoftAffinityFilter(0.999), full, critical("a1"))).toBe("", "neither → failure");
  });
  it("LoRA soft affinity picks the affinity set with probability ≈ threshold", () => {
    const eps: Endpoint[] = [lora(ep(0, 0), 4, ["a1"]), lora(ep(1, 0), 4, [])];
    const f = new LoraSoftAffinityFilter(0.9);
    const cs = new CycleState(42);
    cs.ensure(2, 2);
    let affinity = 0;
    for (let i = 0; i < 10000; i++) {
      cs.begin(2);
      f.apply(eps, critical("a1"), cs);
      if (cs.n == 1 && cs.cand[0] == 0) affinity++;
    }
    expect(affinity).toBeGreaterThan(8800, "0.9 of 10000, minus 4σ");
    expect(affinity).toBeLessThan(9200, "0.9 of 10000, plus 4σ");
  });
  it("a decision-tree node passes its input on after a failure", () => {
    const node = new DecisionTreeFilter(new LowQueueFilter(1));
    node.onFailure = new LeastKvFilter();
    const eps: Endpoint[] = [ep(0, 5, 0.9), ep(1, 7, 0.1)];
    expect(runFilter(node, eps, req0())).toBe("1", "low-queue empties the set → least-KV on both");
    node.onFailure = null;
    expect(runFilter(node, eps, req0())).toBe("", "no failure branch → empty");
  });
});

// ---- scorers ------------------------------------------------------------------------------------

describe("GIE scorers", () => {
  it("queue: min-max, shortest scores 1, all equal → 1", () => {
    expect(runScorer(new QueueScorer(), [ep(0, 0), ep(1, 5), ep(2, 10)], req0())).toBe("1.0,0.5,0.0");
    expect(runScorer(new QueueScorer(), [ep(0, 3), ep(1, 3)], req0())).toBe(
      "1.0,1.0",
      "all equal → neutral 1",
    );
  });
  it("running requests: min-max over running", () => {
    expect(runScorer(new RunningRequestsScorer(), [ep(0, 0, 0, 8), ep(1, 0, 0, 4)], req0())).toBe("0.0,1.0");
  });
  it("KV: 1 − usage", () => {
    expect(runScorer(new KvCacheScorer(), [ep(0, 0, 0.25), ep(1, 0, 1.0)], req0())).toBe("0.75,0.0");
  });
  it("LoRA affinity: 1 running / 0.8 room / 0.6 waiting / 0", () => {
    const eps: Endpoint[] = [
      lora(ep(0, 0), 2, ["a1", "b"]), // running → 1
      lora(ep(1, 0), 4, ["b"], ["c"]), // 2 of 4 slots → room → 0.8
      lora(ep(2, 0), 2, ["b"], ["a1"]), // full, adapter waiting → 0.6
      lora(ep(3, 0), 2, ["b", "c"]), // full, not there → 0
    ];
    expect(runScorer(new LoraAffinityScorer(), eps, critical("a1"))).toBe("1.0,0.8,0.6,0.0");
    expect(runScorer(new LoraAffinityScorer(), eps, req0())).toBe("1.0,1.0,1.0,1.0", "no adapter → neutral");
  });
  it("in-flight load: min-max over requests dispatched since the scrape", () => {
    const eps = pool(3);
    eps[0].inflightRequests = 4;
    eps[1].inflightRequests = 2;
    expect(runScorer(new InflightLoadScorer(), eps, req0())).toBe("0.0,0.5,1.0");
  });
  it("prefix: matched leading blocks / total", () => {
    const index = new PrefixIndex(3);
    const eps = pool(3);
    const full = prompt(textOf(1)); // 34 blocks
    const half = prompt(textOf(1).substring(0, 16 * 64));
    index.add(full.hashes!, full.hashCount, 0);
    index.add(half.hashes!, half.hashCount, 1);
    expect(full.hashCount).toBe(34);
    expect(runScorer(new PrefixCacheScorer(new PrefixProducer(index)), eps, full)).toBe(
      "1.0,0.471,0.0",
      "34/34, 16/34, none",
    );
    expect(runScorer(new PrefixCacheScorer(new PrefixProducer(index)), eps, prompt("short"))).toBe(
      "0.0,0.0,0.0",
      "< 1 block → 0",
    );
  });
});

describe("default-profile scorers", () => {
  it("fresh load adds what this VM dispatched since the scrape", () => {
    const eps = pool(3);
    eps[0].waiting = 2;
    eps[1].inflightRequests = 2;
    eps[1].inflightPromptTokens = 8192; // +2 load units
    const scores = runScorer(new FreshLoadScorer(new LoadModel()), eps, req0());
    expect(scores).toBe("0.5,0.0,1.0", "loads 2, 4, 0");
  });
  it("capacity-scaled load: a pod with less KV counts its batch as fuller; uniform pools unchanged", () => {
    const eps = pool(3);
    for (let i = 0; i < 3; i++) eps[i].running = 10;
    eps[0].kvBlockCount = 3000; // 1/2 of the mean (6000): running counts double
    eps[1].kvBlockCount = 9000; // 3/2 of the mean: running counts 2/3
    eps[2].kvBlockCount = 6000;
    const m = new LoadModel();
    expect(runScorer(new FreshLoadScorer(m), eps, req0())).toBe("0.0,1.0,0.75", "loads 4, 4/3, 2");
    m.capacityScaled = false;
    expect(runScorer(new FreshLoadScorer(m), eps, req0())).toBe("1.0,1.0,1.0", "off: equal running");
    const same = pool(2);
    same[0].running = 7;
    same[0].inflightPromptTokens = 333;
    same[0].kvBlockCount = same[1].kvBlockCount = 2810;
    const cs = new CycleState(1);
    cs.ensure(2, 3);
    cs.begin(2);
    const on = new LoadModel();
    const off = new LoadModel();
    off.capacityScaled = false;
    on.ensure(same, cs);
    off.ensure(same, cs);
    expect(on.load[0]).toBe(off.load[0], "uniform pool: the factor is exactly 1");
  });
  it("KV headroom: free blocks left after this request", () => {
    const eps = pool(3);
    eps[0].kvUsage = 0.5;
    eps[0].kvBlockSize = 16;
    eps[0].kvBlockCount = 1000;
    eps[1].kvUsage = 0.5;
    eps[1].kvBlockSize = 16;
    eps[1].kvBlockCount = 100;
    eps[2].kvUsage = 0.5; // unknown geometry
    const r = req0();
    r.promptTokens = 800; // 50 blocks
    expect(runScorer(new KvHeadroomScorer(), eps, r)).toBe(
      "0.45,0.0,0.5",
      "(500−50)/1000, (50−50)/100, 1−0.5",
    );
  });
  it("rendezvous affinity: same winner for the same prompt in independent instances", () => {
    const eps = pool(8);
    const s1 = runScorer(new RendezvousAffinityScorer(new LoadModel()), eps, prompt(textOf(3)));
    const s2 = runScorer(new RendezvousAffinityScorer(new LoadModel()), pool(8), prompt(textOf(3)));
    expect(s1).toBe(s2, "no shared state, same answer");
    expect(runScorer(new RendezvousAffinityScorer(new LoadModel()), eps, prompt("tiny"))).toBe(
      "0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
      "no full block → no affinity",
    );
  });
  it("rendezvous affinity: none for prompts shorter than AFFINITY_MIN_BLOCKS", () => {
    const eps = pool(8);
    let short = "";
    while (short.length < 64 * (AFFINITY_MIN_BLOCKS - 1)) short += "a short unique prompt; ";
    const r = prompt(short.slice(0, 64 * (AFFINITY_MIN_BLOCKS - 1)));
    expect(r.hashCount).toBe(AFFINITY_MIN_BLOCKS - 1);
    expect(runScorer(new RendezvousAffinityScorer(new LoadModel()), eps, r)).toBe(
      "0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
      "short prompt: load and LoRA decide",
    );
    const s = new RendezvousAffinityScorer(new LoadModel());
    s.minBlocks = 1; // param affinityMinBlocks
    expect(runScorer(s, eps, r).split(",").indexOf("1.0")).toBeGreaterThanOrEqual(0);
  });
  it("balanced placement: a new group hashes only over pods at or below the mean KV usage", () => {
    const eps = pool(8);
    for (let i = 0; i < 8; i++) eps[i].kvUsage = 0.1 * <f64>i; // mean 0.35: pods 0–3 qualify
    let placedHigh = 0;
    let spread = 0;
    for (let g = 0; g < 40; g++) {
      const r = prompt(textOf(g));
      const hash = new RendezvousAffinityScorer(new LoadModel());
      const balanced = new RendezvousAffinityScorer(new LoadModel());
      balanced.placement = PLACEMENT_BALANCED;
      const b = runScorer(balanced, eps, r).split(",");
      const w = b.indexOf("1.0");
      expect(w).toBeGreaterThanOrEqual(0);
      expect(w).toBeLessThan(4, "winner among the emptier pods");
      for (let k = 4; k < 8; k++) expect(b[k]).toBe("0.0", "no score above the mean");
      if (runScorer(hash, eps, r).split(",").indexOf("1.0") >= 4) placedHigh++;
      spread |= 1 << w;
    }
    expect(placedHigh).toBeGreaterThan(0, "plain hashing does use the fuller pods");
    expect(spread).toBe(15, "balanced placement still spreads over all four emptier pods");
  });
  it("placement: balanced with one Envoy, hash with several, explicit param wins", () => {
    const c = new SchedulerConfig();
    expect(placementFrom(c)).toBe(PLACEMENT_BALANCED, "no envoyReplicas: one Envoy");
    c.setParam("envoyReplicas", 3);
    expect(placementFrom(c)).toBe(PLACEMENT_HASH);
    c.setParam("affinityPlacement", 2);
    expect(placementFrom(c)).toBe(PLACEMENT_BALANCED);
    c.setParam("envoyReplicas", 1).setParam("affinityPlacement", 1);
    expect(placementFrom(c)).toBe(PLACEMENT_HASH);
  });
  it("rendezvous affinity skips endpoints above the load bound", () => {
    const eps = pool(8);
    const r = prompt(textOf(5));
    const before = runScorer(new RendezvousAffinityScorer(new LoadModel()), eps, r);
    const winner = before.split(",").indexOf("1.0");
    expect(winner).toBeGreaterThanOrEqual(0);
    eps[winner].waiting = 20; // mean 2.5 → bound 2.5·1.25 + 8 ≈ 11.1
    const after = runScorer(new RendezvousAffinityScorer(new LoadModel()), eps, r);
    expect(after.split(",")[winner]).toBe("0.0", "overloaded winner loses affinity");
    expect(after.split(",").indexOf("1.0")).not.toBe(winner);
  });
  it("rendezvous affinity defers to a within-bound holder known to the local index", () => {
    const index = new PrefixIndex(8);
    const eps = pool(8);
    const r = prompt(textOf(5));

    const cold = runScorer(rendezvousWith(index), eps, r);
    expect(cold).toBe(
      runScorer(new RendezvousAffinityScorer(new LoadModel()), pool(8), r),
      "empty index: plain rendezvous",
    );
    const winner = cold.split(",").indexOf("1.0");
    const holder = (winner + 1) % 8; // a pod other than the rendezvous winner holds the prefix
    index.add(r.hashes!, r.hashCount, holder);
    expect(runScorer(rendezvousWith(index), eps, r)).toBe(
      "0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0",
      "known holder: no split vote",
    );
    eps[holder].waiting = 40; // holder above the bound → rendezvous speaks again
    expect(runScorer(rendezvousWith(index), eps, r).split(",")[winner]).toBe("1.0");
  });
  it("affinity directory: a holder another worker recorded wins where the local index knows none", () => {
    const dir = new MemoryAffinityDirectory();
    const eps = pool(8);
    const r = prompt(textOf(5));
    const plain = runScorer(new RendezvousAffinityScorer(new LoadModel()), eps, r);
    const winner = plain.split(",").indexOf("1.0");
    const holder = (winner + 3) % 8; // another worker placed the group away from the hash winner
    dir.record(affinityKey(r, AFFINITY_BLOCKS), eps[holder].hostHash());
    const s = rendezvousWith(new PrefixIndex(8));
    s.directory = dir;
    const scores = runScorer(s, eps, r).split(",");
    expect(scores[holder]).toBe("1.0", "follows the recorded placement");
    expect(scores[winner]).toBe("0.0", "not the hash winner");
    eps[holder].waiting = 40; // recorded holder above the bound → the hash speaks again
    expect(runScorer(s, eps, r).split(",")[winner]).toBe("1.0");
    const other = new MemoryAffinityDirectory();
    other.record(affinityKey(r, AFFINITY_BLOCKS) ^ 1, eps[holder].hostHash());
    s.directory = other;
    eps[holder].waiting = 0;
    expect(runScorer(s, eps, r)).toBe(plain, "a different key's entry is ignored");
  });
  it("affinity directory: two workers' schedulers agree on a group's pod; a move is published", () => {
    const dir = new MemoryAffinityDirectory();
    const a = new Scheduler(1, config("default"), 8);
    const b = new Scheduler(2, config("default"), 8);
    a.useDirectory(dir);
    b.useDirectory(dir);
    const eps = pool(8);
    a.syncEndpoints(eps);
    b.syncEndpoints(eps);
    const r = prompt(textOf(7));
    // Worker a: the pod the hash would pick is busy (still within the bound), so a places it elsewhere.
    const hashWinner = runScorer(new RendezvousAffinityScorer(new LoadModel()), eps, r)
      .split(",")
      .indexOf("1.0");
    eps[hashWinner].waiting = 6;
    expect(a.schedule(eps, r)).toBe(SCHEDULE_OK);
    const placed = a.result[0];
    a.onPicked(eps, placed, r);
    expect(placed).not.toBe(hashWinner);
    expect(dir.writes).toBe(1, "the new group's placement is published");
    eps[hashWinner].waiting = 0; // load evens out: without the directory b would take the hash winner
    eps[placed].inflightRequests = 0; // b sees a's snapshot, not a's in-flight counts
    eps[placed].inflightPromptTokens = 0;
    expect(b.schedule(eps, r)).toBe(SCHEDULE_OK);
    expect(b.result[0]).toBe(placed, "b follows a's placement");
    b.onPicked(eps, b.result[0], r);
    expect(dir.writes).toBe(1, "no write when the pick is the recorded holder");
  });
  it("bounded prefix: local index score, zero above the load bound", () => {
    const index = new PrefixIndex(4);
    const eps = pool(4);
    const r = prompt(textOf(2));
    index.add(r.hashes!, r.hashCount, 1);
    expect(runScorer(new BoundedPrefixScorer(new PrefixProducer(index), new LoadModel()), eps, r)).toBe(
      "0.0,1.0,0.0,0.0",
    );
    eps[1].waiting = 40;
    expect(runScorer(new BoundedPrefixScorer(new PrefixProducer(index), new LoadModel()), eps, r)).toBe(
      "0.0,0.0,0.0,0.0",
      "hot pod: cache hit does not pay for its queue",
    );
  });
});

// ---- pickers ------------------------------------------------------------------------------------

function csWithTotals(totals: f64[], seed: u64): CycleState {
  const cs = new CycleState(seed);
  cs.ensure(totals.length, totals.length);
  cs.begin(totals.length);
  for (let k = 0; k < totals.length; k++) cs.totals[k] = totals[k];
  return cs;
}

describe("pickers", () => {
  it("max-score orders by total, best first", () => {
    const cs = csWithTotals([0.2, 0.9, 0.5, 0.7], 1);
    const out = new StaticArray<i32>(3);
    expect(new MaxScorePicker().pick(cs, 3, out)).toBe(3);
    expect(out[0]).toBe(1, "0.9");
    expect(out[1]).toBe(3, "0.7");
    expect(out[2]).toBe(2, "0.5");
  });
  it("max-score breaks ties at random", () => {
    let first0 = 0;
    const out = new StaticArray<i32>(1);
    const p = new MaxScorePicker();
    for (let s: u64 = 0; s < 2000; s++) {
      const cs = csWithTotals([0.8, 0.8, 0.1], s);
      p.pick(cs, 1, out);
      expect(out[0]).toBeLessThan(2, "never the lower score");
      if (out[0] == 0) first0++;
    }
    expect(first0).toBeGreaterThan(900, "both tied endpoints picked about half the time");
    expect(first0).toBeLessThan(1100);
  });
  it("random picks uniformly and returns distinct endpoints", () => {
    const counts = new StaticArray<i32>(4);
    const out = new StaticArray<i32>(4);
    const cs = csWithTotals([0, 0, 0, 0], 3);
    const p = new RandomPicker();
    for (let i = 0; i < 8000; i++) {
      cs.begin(4);
      expect(p.pick(cs, 4, out)).toBe(4);
      counts[out[0]]++;
      expect(out[0] + out[1] + out[2] + out[3]).toBe(6, "a permutation");
    }
    for (let k = 0; k < 4; k++) expect(counts[k]).toBeGreaterThan(1800, "≈ 2000 each");
  });
  it("weighted-random picks in proportion to score and never a zero score", () => {
    const counts = new StaticArray<i32>(3);
    const out = new StaticArray<i32>(3);
    const cs = csWithTotals([3, 1, 0], 5);
    const p = new WeightedRandomPicker();
    for (let i = 0; i < 8000; i++) {
      cs.begin(3);
      cs.totals[0] = 3;
      cs.totals[1] = 1;
      cs.totals[2] = 0;
      expect(p.pick(cs, 3, out)).toBe(2, "zero score excluded");
      counts[out[0]]++;
    }
    expect(counts[0]).toBeGreaterThan(5800, "≈ 3/4 of 8000 = 6000");
    expect(counts[0]).toBeLessThan(6200);
    expect(counts[2]).toBe(0);
    const zero = csWithTotals([0, 0], 9);
    expect(p.pick(zero, 1, out)).toBe(1, "all zero → random");
  });
});

// ---- legacy profile (GIE v0.3 filter tree) ------------------------------------------------------

describe("legacy profile reproduces GIE v0.3", () => {
  it("critical: low queue → least queue → least KV", () => {
    const eps: Endpoint[] = [ep(0, 0, 0.5), ep(1, 3, 0.1), ep(2, 0, 0.2)];
    expect(legacySurvivors(eps, critical())).toBe("2", "queue bucket {0,2}, then KV bucket [0.2,0.35]");
  });
  it("critical with every queue ≥ 128: least queue first, then KV", () => {
    const eps: Endpoint[] = [ep(0, 200, 0.1), ep(1, 130, 0.9), ep(2, 131, 0.5)];
    expect(legacySurvivors(eps, critical())).toBe("2", "queue bucket [130,153] = {1,2}, KV bucket [0.5,0.7]");
  });
  it("critical is served even when the pool is saturated", () => {
    const eps: Endpoint[] = [ep(0, 50, 0.95), ep(1, 60, 0.99)];
    expect(legacySurvivors(eps, critical())).toBe("0", "queue bucket [50,55]");
  });
  it("low-queue threshold is 128 exactly", () => {
    const eps: Endpoint[] = [ep(0, 127, 0.9), ep(1, 128, 0.0)];
    expect(legacySurvivors(eps, critical())).toBe("0", "127 < 128 passes low-queue; 128 does not");
  });
  it("sheddable: only endpoints with queue ≤ 5 and KV ≤ 0.8", () => {
    const eps: Endpoint[] = [ep(0, 10, 0.1), ep(1, 5, 0.8), ep(2, 0, 0.85)];
    expect(legacySurvivors(eps, withCriticality(CRITICALITY_SHEDDABLE))).toBe(
      "1",
      "boundaries are inclusive",
    );
  });
  it("sheddable and standard are dropped (429) without capacity", () => {
    const eps: Endpoint[] = [ep(0, 6, 0.1), ep(1, 0, 0.81)];
    expect(legacySurvivors(eps, withCriticality(CRITICALITY_SHEDDABLE))).toBe("429", "sheddable shed");
    expect(legacySurvivors(eps, withCriticality(CRITICALITY_STANDARD))).toBe(
      "429",
      "v0.3 sheds Standard too",
    );
    expect(legacySurvivors(eps, req0())).toBe("429", "unset = Standard");
    expect(legacySurvivors(eps, critical())).toBe("1", "critical served: queue bucket [0,3] = {1}");
  });
  it("critical LoRA request prefers the pod running its adapter", () => {
    const eps: Endpoint[] = [
      lora(ep(0, 10, 0.5), 4, ["a1"]),
      lora(ep(1, 0, 0.1), 4, []),
      lora(ep(2, 0, 0.1), 2, ["a2", "a3"]),
    ];
    expect(legacySurvivors(eps, critical("a1"))).toBe("0", "affinity beats a shorter queue (p=0.999)");
    const cfg = config("legacy");
    cfg.setParam("loraAffinityThreshold", 0);
    expect(legacySurvivors(eps, critical("a1"), cfg)).toBe("1", "threshold 0 → pod with a free slot");
    expect(legacySurvivors(eps, critical("a9"))).toBe(
      "1",
      "no pod runs a9 → free slots {0,1} (2 full), then queue bucket [0,5]",
    );
  });
  it("sheddable LoRA request: least queue comes before LoRA affinity", () => {
    const eps: Endpoint[] = [
      lora(ep(0, 0), 4, []),
      lora(ep(1, 1), 4, ["a1"]),
      lora(ep(2, 0), 2, ["a2", "a3"]),
    ];
    expect(legacySurvivors(eps, withCriticality(CRITICALITY_SHEDDABLE, "a1"))).toBe(
      "0",
      "queue bucket {0,2}; neither runs a1; 0 has a free slot",
    );
  });
  it("no ready endpoint → 503", () => {
    const eps: Endpoint[] = [ep(0, 0)];
    eps[0].ready = false;
    expect(legacySurvivors(eps, critical())).toBe("503");
  });
});

// ---- saturation and admission -------------------------------------------------------------------

describe("saturation and admission", () => {
  it("saturated when no fresh endpoint has queue ≤ 5 and KV ≤ 0.8", () => {
    const cfg = new SchedulerConfig();
    expect(isSaturated([ep(0, 5, 0.8)], cfg)).toBe(false, "at the thresholds");
    expect(isSaturated([ep(0, 6, 0.1), ep(1, 0, 0.81)], cfg)).toBe(true, "each misses one threshold");
    expect(isSaturated([], cfg)).toBe(true, "empty pool");
    const old = ep(0, 0, 0);
    old.metricsAgeMs = 201;
    expect(isSaturated([old], cfg)).toBe(true, "metrics older than 200 ms are not fresh");
    old.metricsAgeMs = 200;
    expect(isSaturated([old], cfg)).toBe(false);
    old.stale = true;
    expect(isSaturated([old], cfg)).toBe(true, "marked stale");
    cfg.queueThreshold = 10;
    expect(isSaturated([ep(0, 8, 0.1)], cfg)).toBe(false, "configurable threshold");
  });
  it("sheds only priority < 0 under saturation", () => {
    const cfg = new SchedulerConfig();
    const busy: Endpoint[] = [ep(0, 9, 0.9)];
    const r = req0();
    r.priority = -1;
    expect(admit(busy, r, cfg)).toBe(SCHEDULE_SHED, "sheddable, saturated");
    expect(admit([ep(0, 0, 0)], r, cfg)).toBe(SCHEDULE_OK, "sheddable, room left");
    r.priority = 0;
    expect(admit(busy, r, cfg)).toBe(SCHEDULE_OK, "priority 0 is never shed");
    r.priority = 5;
    expect(admit(busy, r, cfg)).toBe(SCHEDULE_OK, "critical never shed");
  });
  it("the scheduler answers 429 for sheddable and serves critical on a saturated pool", () => {
    const s = new Scheduler(1);
    const eps: Endpoint[] = [ep(0, 9, 0.9), ep(1, 7, 0.95)];
    s.syncEndpoints(eps);
    const r = req0();
    r.priority = -1;
    expect(s.schedule(eps, r)).toBe(SCHEDULE_SHED);
    r.priority = 1;
    expect(s.schedule(eps, r)).toBe(SCHEDULE_OK);
  });
});

// ---- profiles through the scheduler -------------------------------------------------------------

describe("gie-default profile", () => {
  it("queue 2, KV 2, prefix 3: a full prefix hit outweighs a short queue", () => {
    const s = new Scheduler(1, config("gie-default"));
    const eps: Endpoint[] = [ep(0, 0, 0.2), ep(1, 4, 0.3)];
    s.syncEndpoints(eps);
    const r = prompt(textOf(9));
    expect(s.schedule(eps, r)).toBe(SCHEDULE_OK);
    expect(s.result[0]).toBe(0, "no prefix anywhere: shorter queue and lower KV");
    s.index.add(r.hashes!, r.hashCount, 1);
    expect(s.schedule(eps, r)).toBe(SCHEDULE_OK);
    expect(s.result[0]).toBe(1, "3·1 (prefix) + 2·0.7 > 2·1 + 2·0.8");
    expect(s.resultCount).toBe(2, "fallback list holds the other endpoint");
  });
});

describe("default profile", () => {
  it("fresh-load correction spreads a burst instead of herding", () => {
    const s = new Scheduler(3);
    const eps = pool(5);
    s.syncEndpoints(eps);
    const counts = new StaticArray<i32>(5);
    for (let i = 0; i < 20; i++) {
      const r = req0();
      r.promptTokens = 100;
      expect(s.schedule(eps, r)).toBe(SCHEDULE_OK);
      s.onPicked(eps, s.result[0], r);
      counts[s.result[0]]++;
    }
    for (let k = 0; k < 5; k++) expect(counts[k]).toBe(4, "same snapshot, 20 requests → 4 each");
  });
  it("independent schedulers with empty state agree on a prompt's endpoint", () => {
    const eps1 = pool(10);
    const eps2 = pool(10);
    const a = new Scheduler(11);
    const b = new Scheduler(99);
    a.syncEndpoints(eps1);
    b.syncEndpoints(eps2);
    const used = new StaticArray<i32>(10);
    for (let id = 0; id < 40; id++) {
      const r = prompt(textOf(id));
      expect(a.schedule(eps1, r)).toBe(SCHEDULE_OK);
      expect(b.schedule(eps2, r)).toBe(SCHEDULE_OK);
      expect(eps1[a.result[0]].hostPort).toBe(eps2[b.result[0]].hostPort, "same prompt, same pod");
      used[a.result[0]]++;
    }
    let distinct = 0;
    for (let k = 0; k < 10; k++) if (used[k] > 0) distinct++;
    expect(distinct).toBeGreaterThan(6, "different prompts spread over the pool");
  });
  it("repeated prompts stick to one pod while load allows, then move", () => {
    const s = new Scheduler(5);
    const eps = pool(4);
    s.syncEndpoints(eps);
    const r = prompt(textOf(77));
    s.schedule(eps, r);
    const home = s.result[0];
    for (let i = 0; i < 3; i++) {
      s.schedule(eps, r);
      expect(s.result[0]).toBe(home, "prefix + rendezvous keep it home");
      s.onPicked(eps, s.result[0], r);
    }
    eps[home].waiting = 30; // the home pod became hot in the next snapshot
    s.schedule(eps, r);
    expect(s.result[0]).not.toBe(home, "load bound releases the affinity");
  });
  it("a LoRA request goes to the pod with the adapter loaded", () => {
    const s = new Scheduler(5);
    const eps = pool(4);
    lora(eps[2], 4, ["sql-lora"]);
    lora(eps[0], 1, ["other"]);
    lora(eps[1], 1, ["other"]);
    lora(eps[3], 1, ["other"]);
    s.syncEndpoints(eps);
    expect(s.schedule(eps, critical("sql-lora"))).toBe(SCHEDULE_OK);
    expect(s.result[0]).toBe(2);
  });
  it("honours maxFallbacks and the conformance subset", () => {
    const cfg = config("default");
    cfg.setParam("maxFallbacks", 1);
    const s = new Scheduler(5, cfg);
    const eps = pool(6);
    s.syncEndpoints(eps);
    expect(s.schedule(eps, req0())).toBe(SCHEDULE_OK);
    expect(s.resultCount).toBe(2, "pick + 1 fallback");
    const r = req0();
    r.endpointSubset = "10.0.0.4";
    expect(s.schedule(eps, r)).toBe(SCHEDULE_OK);
    expect(s.destinationList(eps)).toBe("10.0.0.4:8000", "only the listed endpoint");
    r.endpointSubset = "10.1.1.1";
    expect(s.schedule(eps, r)).toBe(SCHEDULE_NO_CANDIDATES, "listed endpoint not in the pool → 503");
  });
  it("reconfigures only when the scheduler record changes", () => {
    const s = new Scheduler(5);
    const before = s.profile;
    s.configure(config("default"));
    expect(s.profile == before).toBe(true, "same record → same profile object");
    s.configure(config("legacy"));
    expect(s.profile.name).toBe("legacy");
    s.configure(config("no-such-profile"));
    expect(s.profile.name).toBe("default", "unknown names fall back to default");
  });
});
