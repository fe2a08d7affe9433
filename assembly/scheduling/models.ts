// Model resolution: which model the server is asked for and at which priority, from the snapshot's
// InferenceModels, InferenceObjectives and InferenceModelRewrite rules plus two request headers.
//
// Target model, first that applies:
//   1. `x-gateway-model-name-rewrite` header (direct override);
//   2. the first rewrite rule (snapshot order = precedence) naming the model exactly (weighted draw);
//   3. the InferenceModel's targetModels (weighted draw);
//   4. the first match-all rewrite rule — a catch-all yields to anything configured for this model;
//   5. the requested name unchanged.
// Priority: the objective named by `x-gateway-inference-objective` (unset priority → 0); without a
// known objective, from the model's criticality: Critical → 1, Standard/unset → 0, Sheddable → −1.
// Unknown model (no InferenceModel, no exact rewrite rule, no header override): priority 0, or
// MODEL_NOT_FOUND when the pool is strict.

import { Rng } from "./rng.ts";
import { CRITICALITY_UNSET, CRITICALITY_CRITICAL, CRITICALITY_SHEDDABLE } from "./types.ts";

export const MODEL_OK: i32 = 0;
export const MODEL_NOT_FOUND: i32 = 404;

/** Priorities derived from InferenceModel criticality when no objective is named. */
export const PRIORITY_CRITICAL: i32 = 1;
export const PRIORITY_STANDARD: i32 = 0;
export const PRIORITY_SHEDDABLE: i32 = -1;

export class ModelEntry {
  name: string = "";
  criticality: u8 = CRITICALITY_UNSET;
  targets: string[] = [];
  /** Weight per target; all 0 = uniform draw. */
  weights: u32[] = [];
}

export class ObjectiveEntry {
  name: string = "";
  hasPriority: bool = false;
  priority: i32 = 0;
}

export class RewriteRule {
  /** Exact model names; empty = matches every model. */
  matches: string[] = [];
  targets: string[] = [];
  weights: u32[] = [];
}

export class ModelTable {
  models: ModelEntry[] = [];
  objectives: ObjectiveEntry[] = [];
  rewrites: RewriteRule[] = [];
  /** Pool flag: unknown models get 404. */
  strict: bool = false;
}

export class Resolution {
  /** Model name the server should see. */
  targetModel: string = "";
  /** True when targetModel differs from the requested name (body must be rewritten). */
  rewritten: bool = false;
  priority: i32 = 0;
  criticality: u8 = CRITICALITY_UNSET;
  /** The model is known (InferenceModel, exact rewrite rule or header override). */
  known: bool = false;
}

/** Index drawn with probability weight/Σweights; all-zero (or missing) weights → uniform. */
export function weightedDraw(weights: u32[], count: i32, rng: Rng): i32 {
  if (count <= 1) return 0;
  let total: u64 = 0;
  for (let i = 0; i < count; i++) total += i < weights.length ? <u64>weights[i] : 0;
  if (total == 0) return rng.nextBelow(count);
  const r = <u64>(rng.nextF64() * <f64>total);
  let acc: u64 = 0;
  for (let i = 0; i < count; i++) {
    acc += i < weights.length ? <u64>weights[i] : 0;
    if (r < acc) return i;
  }
  return count - 1;
}

export function criticalityPriority(c: u8): i32 {
  if (c == CRITICALITY_CRITICAL) return PRIORITY_CRITICAL;
  if (c == CRITICALITY_SHEDDABLE) return PRIORITY_SHEDDABLE;
  return PRIORITY_STANDARD;
}

function findModel(t: ModelTable, name: string): ModelEntry | null {
  for (let i = 0; i < t.models.length; i++) if (t.models[i].name == name) return t.models[i];
  return null;
}

function findObjective(t: ModelTable, name: string): ObjectiveEntry | null {
  for (let i = 0; i < t.objectives.length; i++) if (t.objectives[i].name == name) return t.objectives[i];
  return null;
}

/** First rule (snapshot order) with targets that names `model` exactly, or — exact=false — matches all. */
function findRule(t: ModelTable, model: string, exact: bool): RewriteRule | null {
  for (let i = 0; i < t.rewrites.length; i++) {
    const r = t.rewrites[i];
    if (r.targets.length == 0) continue;
    if (!exact) {
      if (r.matches.length == 0) return r;
      continue;
    }
    for (let j = 0; j < r.matches.length; j++) if (r.matches[j] == model) return r;
  }
  return null;
}

/**
 * Resolves `requested` into out. Header values are "" when absent. Returns MODEL_OK or
 * MODEL_NOT_FOUND (strict pool, unknown model).
 */
export function resolveModel(
  t: ModelTable,
  requested: string,
  objectiveHeader: string,
  rewriteHeader: string,
  rng: Rng,
  out: Resolution,
): i32 {
  const model = findModel(t, requested);
  out.criticality = model != null ? model.criticality : CRITICALITY_UNSET;
  out.known = model != null || rewriteHeader.length > 0;
  let target = requested;
  if (rewriteHeader.length > 0) {
    target = rewriteHeader;
  } else {
    const exact = findRule(t, requested, true);
    if (exact != null) {
      target = exact.targets[weightedDraw(exact.weights, exact.targets.length, rng)];
      out.known = true;
    } else if (model != null && model.targets.length > 0) {
      target = model.targets[weightedDraw(model.weights, model.targets.length, rng)];
    } else {
      const any = findRule(t, requested, false);
      if (any != null) target = any.targets[weightedDraw(any.weights, any.targets.length, rng)];
    }
  }
  out.targetModel = target;
  out.rewritten = target != requested;

  const objective = objectiveHeader.length > 0 ? findObjective(t, objectiveHeader) : null;
  if (objective != null) out.priority = objective.hasPriority ? objective.priority : 0;
  else out.priority = criticalityPriority(out.criticality);

  if (!out.known && t.strict) return MODEL_NOT_FOUND;
  return MODEL_OK;
}
