// Unit tests of model resolution (assembly/scheduling/models.ts): rewrite precedence, weighted draws,
// priority from objectives and criticality, strict pools.
import {
  ModelTable,
  ModelEntry,
  ObjectiveEntry,
  RewriteRule,
  Resolution,
  resolveModel,
  weightedDraw,
  MODEL_OK,
  MODEL_NOT_FOUND,
} from "../scheduling/models";
import { Rng } from "../scheduling/rng";
import { CRITICALITY_CRITICAL, CRITICALITY_SHEDDABLE, CRITICALITY_STANDARD } from "../scheduling/types";

function model(name: string, criticality: u8, targets: string[] = [], weights: u32[] = []): ModelEntry {
  const m = new ModelEntry();
  m.name = name;
  m.criticality = criticality;
  m.targets = targets;
  m.weights = weights;
  return m;
}

function objective(name: string, priority: i32, set: bool = true): ObjectiveEntry {
  const o = new ObjectiveEntry();
  o.name = name;
  o.priority = priority;
  o.hasPriority = set;
  return o;
}

function rule(matches: string[], targets: string[], weights: u32[]): RewriteRule {
  const r = new RewriteRule();
  r.matches = matches;
  r.targets = targets;
  r.weights = weights;
  return r;
}

function table(): ModelTable {
  const t = new ModelTable();
  t.models.push(model("chat", CRITICALITY_CRITICAL));
  t.models.push(model("batch", CRITICALITY_SHEDDABLE));
  t.models.push(model("std", CRITICALITY_STANDARD));
  t.models.push(model("canary", CRITICALITY_STANDARD, ["canary-v1", "canary-v2"], [70, 30]));
  t.models.push(model("split", CRITICALITY_STANDARD, ["s-a", "s-b"], [0, 0]));
  t.objectives.push(objective("premium", 10));
  t.objectives.push(objective("bulk", -5));
  t.objectives.push(objective("unset", 7, false));
  t.rewrites.push(rule(["std", "other"], ["std-v2"], [1]));
  t.rewrites.push(rule([], ["catch-all"], [1]));
  return t;
}

function resolve(
  t: ModelTable,
  name: string,
  objectiveHeader: string = "",
  rewriteHeader: string = "",
): Resolution {
  const out = new Resolution();
  resolveModel(t, name, objectiveHeader, rewriteHeader, new Rng(1), out);
  return out;
}

describe("model rewrite precedence", () => {
  it("header override > exact rule > targetModels > match-all rule", () => {
    const t = table();
    expect(resolve(t, "std", "", "forced").targetModel).toBe("forced", "x-gateway-model-name-rewrite wins");
    expect(resolve(t, "std").targetModel).toBe("std-v2", "exact rule");
    expect(resolve(t, "other").targetModel).toBe("std-v2", "second match of the same rule");
    const c = resolve(t, "canary").targetModel;
    expect(c == "canary-v1" || c == "canary-v2").toBe(true, "targetModels beat the catch-all");
    expect(resolve(t, "chat").targetModel).toBe("catch-all", "no exact rule, no targets → catch-all");
    expect(resolve(t, "chat").rewritten).toBe(true);
  });
  it("without rules the requested name stays", () => {
    const t = table();
    t.rewrites = [];
    const r = resolve(t, "chat");
    expect(r.targetModel).toBe("chat");
    expect(r.rewritten).toBe(false);
  });
});

describe("weighted draws", () => {
  it("a 70/30 split lands within 4σ over 10,000 seeded draws", () => {
    const t = table();
    const rng = new Rng(2026);
    const out = new Resolution();
    let v1 = 0;
    for (let i = 0; i < 10000; i++) {
      resolveModel(t, "canary", "", "", rng, out);
      if (out.targetModel == "canary-v1") v1++;
    }
    // σ = sqrt(10000 · 0.7 · 0.3) ≈ 45.8
    expect(v1).toBeGreaterThan(6817);
    expect(v1).toBeLessThan(7183);
  });
  it("all-zero weights draw uniformly; one target always wins", () => {
    const rng = new Rng(3);
    let a = 0;
    for (let i = 0; i < 10000; i++) if (weightedDraw([0, 0], 2, rng) == 0) a++;
    expect(a).toBeGreaterThan(4800);
    expect(a).toBeLessThan(5200);
    expect(weightedDraw([5], 1, rng)).toBe(0);
    expect(weightedDraw([0, 9, 0], 3, rng)).toBe(1, "only the weighted one");
  });
});

describe("priority", () => {
  it("objective header sets the priority; unset priority is 0", () => {
    const t = table();
    expect(resolve(t, "batch", "premium").priority).toBe(10, "objective beats criticality");
    expect(resolve(t, "chat", "bulk").priority).toBe(-5, "negative = sheddable");
    expect(resolve(t, "chat", "unset").priority).toBe(0, "objective without priority → 0");
  });
  it("without a known objective, criticality maps Critical 1 / Standard 0 / Sheddable −1", () => {
    const t = table();
    expect(resolve(t, "chat").priority).toBe(1);
    expect(resolve(t, "std").priority).toBe(0);
    expect(resolve(t, "batch").priority).toBe(-1);
    expect(resolve(t, "batch", "no-such-objective").priority).toBe(-1, "unknown objective ignored");
    expect(resolve(t, "unknown-model").priority).toBe(0, "unknown model → 0");
  });
});

describe("unknown models", () => {
  it("pass through, or 404 on a strict pool", () => {
    const t = table();
    t.rewrites = [];
    const out = new Resolution();
    expect(resolveModel(t, "nope", "", "", new Rng(1), out)).toBe(MODEL_OK);
    expect(out.known).toBe(false);
    t.strict = true;
    expect(resolveModel(t, "nope", "", "", new Rng(1), out)).toBe(MODEL_NOT_FOUND);
    expect(resolveModel(t, "chat", "", "", new Rng(1), out)).toBe(MODEL_OK, "known model");
    expect(resolveModel(t, "nope", "", "forced", new Rng(1), out)).toBe(
      MODEL_OK,
      "header override counts as known",
    );
    t.rewrites.push(rule(["nope"], ["real"], [1]));
    expect(resolveModel(t, "nope", "", "", new Rng(1), out)).toBe(
      MODEL_OK,
      "exact rewrite rule counts as known",
    );
  });
});
