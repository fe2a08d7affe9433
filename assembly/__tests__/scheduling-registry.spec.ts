// The plugin registry and the spec builder: every in-tree type registers once, a SchedulingSpec builds
// into profiles, and each refusal names the plugin and the problem (the control path answers 400 with
// it, and the previous configuration keeps routing).
import { Endpoint, RequestInfo, SchedulerConfig, SCHEDULE_OK } from "../scheduling/types";
import { registry } from "../scheduling/registry";
import { validateSpec } from "../scheduling/build";
import { builtinSpec, SpecWriter } from "../scheduling/builtin";
import { describeSpec } from "../scheduling/describe";
import { Scheduler } from "../scheduling/scheduler";
import { queuedPool } from "./scheduling-pool";
import { SchedulingSpec } from "../snapshot/types";

const pool = queuedPool;

function gie(): SpecWriter {
  return new SpecWriter()
    .plugin("queue-scorer")
    .plugin("kv-cache-utilization-scorer")
    .plugin("prefix-cache-scorer");
}

describe("registry", () => {
  it("registers every in-tree type exactly once", () => {
    const r = registry();
    expect(r.error).toBe("", "no type registered twice");
    expect(r.types.length).toBe(r.kinds.length);
    expect(r.find("queue-scorer")).toBeGreaterThanOrEqual(0);
    expect(r.find("session-affinity-scorer")).toBeGreaterThanOrEqual(0);
    expect(r.find("token-load-scorer")).toBe(-1, "upstream types we do not implement are not registered");
  });
  it("a second registration of a type is an error", () => {
    const r = registry();
    const before = r.types.length;
    r.register("queue-scorer", 1, r.factories[0]);
    expect(r.types.length).toBe(before, "not added");
    expect(r.error).toBe("scheduling plugin type 'queue-scorer' registered twice");
    r.error = "";
  });
});

describe("validateSpec", () => {
  it("the built-in configs are valid", () => {
    expect(validateSpec(builtinSpec("default"))).toBe("");
    expect(validateSpec(builtinSpec("gie-default"))).toBe("");
    expect(validateSpec(builtinSpec("legacy"))).toBe("");
  });
  it("names an unknown plugin type", () => {
    const s = gie().plugin("token-load-scorer", "tokens").profile("p").entry("tokens", 1).spec;
    expect(
      validateSpec(s).startsWith(
        "plugin 'tokens' (token-load-scorer): unknown plugin type 'token-load-scorer'",
      ),
    ).toBe(true);
  });
  it("names an unknown parameter and its plugin", () => {
    const s = gie().num("blockSize", 64).profile("p").entry("prefix-cache-scorer", 3).spec;
    expect(validateSpec(s)).toBe(
      "plugin 'prefix-cache-scorer' (prefix-cache-scorer): unknown parameter 'blockSize'",
    );
  });
  it("names a mistyped or out-of-range parameter", () => {
    const typed = new SpecWriter().plugin("rendezvous-affinity-scorer").str("affinityBlocks", "many");
    expect(validateSpec(typed.profile("p").entry("rendezvous-affinity-scorer", 1).spec)).toBe(
      "plugin 'rendezvous-affinity-scorer' (rendezvous-affinity-scorer): parameter 'affinityBlocks' must be a number",
    );
    const placement = new SpecWriter()
      .plugin("rendezvous-affinity-scorer")
      .str("affinityPlacement", "greedy");
    expect(validateSpec(placement.profile("p").entry("rendezvous-affinity-scorer", 1).spec)).toBe(
      "plugin 'rendezvous-affinity-scorer' (rendezvous-affinity-scorer): parameter 'affinityPlacement' must be one of auto, hash, balanced",
    );
    const block = gie().num("blockSizeTokens", 32).profile("p").entry("prefix-cache-scorer", 1).spec;
    expect(validateSpec(block)).toBe(
      "plugin 'prefix-cache-scorer' (prefix-cache-scorer): parameter 'blockSizeTokens' must be in [16, 16], got 32",
    );
  });
  it("refuses a negative weight, two pickers, and a producer inside a profile", () => {
    expect(validateSpec(gie().profile("p").entry("queue-scorer", -1).spec)).toBe(
      "schedulingProfiles[0] 'p': plugin 'queue-scorer' (queue-scorer): weight must be a finite number >= 0",
    );
    const two = gie().plugin("random-picker").plugin("max-score-picker").profile("p");
    expect(validateSpec(two.entry("random-picker").entry("max-score-picker").spec)).toBe(
      "schedulingProfiles[0] 'p': more than one picker (plugin 'max-score-picker' (max-score-picker))",
    );
    const producer = new SpecWriter()
      .plugin("fresh-load-producer")
      .profile("p")
      .entry("fresh-load-producer").spec;
    expect(validateSpec(producer)).toBe(
      "schedulingProfiles[0] 'p': plugin 'fresh-load-producer' (fresh-load-producer) is not a filter, scorer or picker",
    );
  });
  it("refuses a scorer as the saturation detector and a spec without profiles", () => {
    expect(validateSpec(gie().profile("p").saturation("queue-scorer").spec)).toBe(
      "plugin 'queue-scorer' (queue-scorer): cannot serve as the saturationDetector",
    );
    expect(validateSpec(gie().spec)).toBe("schedulingProfiles: at least one profile is required");
  });
});

describe("Scheduler.configure with a PLUGINS section", () => {
  it("an explicit GIE default routes exactly as the built-in gie-default", () => {
    const cfg = new SchedulerConfig();
    cfg.profile = "gie-default";
    const a = new Scheduler(9, cfg, 8);
    const b = new Scheduler(9, new SchedulerConfig(), 8);
    const spec = builtinSpec("gie-default");
    spec.crc = 1;
    expect(b.configure(new SchedulerConfig(), spec)).toBe("");
    const eps = pool(8);
    a.syncEndpoints(eps);
    b.syncEndpoints(eps);
    for (let r = 0; r < 20; r++) {
      const req = new RequestInfo();
      expect(a.schedule(eps, req)).toBe(SCHEDULE_OK);
      expect(b.schedule(eps, req)).toBe(SCHEDULE_OK);
      expect(b.result[0]).toBe(a.result[0], "same pick, same seed");
      a.onPicked(eps, a.result[0], req);
      b.onPicked(eps, b.result[0], req);
    }
  });
  it("a refused section keeps the previous configuration and says why", () => {
    const s = new Scheduler(1, new SchedulerConfig(), 8);
    const good = builtinSpec("legacy");
    good.crc = 7;
    expect(s.configure(new SchedulerConfig(), good)).toBe("");
    const bad = new SpecWriter().plugin("latency-scorer").profile("p").entry("latency-scorer", 1).spec;
    bad.crc = 8;
    expect(s.configure(new SchedulerConfig(), bad).includes("unknown plugin type 'latency-scorer'")).toBe(
      true,
    );
    expect(s.profile.name).toBe("legacy", "still the legacy tree");
    expect(s.spec!.crc).toBe(7);
  });
  it("rebuilds only when the section's CRC or the record changes", () => {
    const s = new Scheduler(1, new SchedulerConfig(), 8);
    const spec = builtinSpec("gie-default");
    spec.crc = 3;
    s.configure(new SchedulerConfig(), spec);
    const built = s.built;
    const same = builtinSpec("gie-default");
    same.crc = 3;
    s.configure(new SchedulerConfig(), same);
    expect(s.built === built).toBe(true, "same CRC, same record: nothing rebuilt");
    s.configure(new SchedulerConfig(), null);
    expect(s.built === built).toBe(false, "section gone: back to the built-in config");
  });
});

describe("describeSpec", () => {
  it("prints a stable canonical form", () => {
    const s: SchedulingSpec = new SpecWriter()
      .plugin("queue-scorer", "q")
      .num("x", 0.5)
      .flag("b", true)
      .profile("p")
      .entry("q", 2).spec;
    expect(describeSpec(s)).toBe(
      '{"plugins":[{"type":"queue-scorer","name":"q","params":{"b":true,"x":0.5}}],"profiles":[{"name":"p","plugins":[{"plugin":0,"weight":2}]}],"handler":-1,"saturation":-1}',
    );
  });
});
