// The filter's metrics, published by Envoy under its `wasmcustom` stat namespace (abi/metrics.ts). Labels
// travel inside the stat name as `.label.value` pairs in a fixed order per metric, and the shipped Envoy
// configurations' `stats_config.stats_tags` cut them back out (docs/deploy.md "Metrics"), so
// `inference_objective_request_total.model_name.a.target_model_name.b` scrapes as
// `inference_objective_request_total{model_name="a",target_model_name="b"}`.
//
// Ids are per VM (Envoy keeps them in the Wasm object), so they are module globals here, shared by every
// plugin in the VM; a second plugin reaching the same label set reuses the id. Each label set is defined on
// first sight and then cached: a warm request does a few Map lookups and host calls, and allocates nothing.
// Cardinality stays bounded: model, target and objective values come only from the snapshot's tables
// (anything else counts as UNKNOWN_LABEL), endpoints only from the snapshot's endpoint list.

import { nowNanos } from "./abi/host.ts";
import {
  defineMetric,
  incrementMetric,
  METRIC_COUNTER,
  METRIC_HISTOGRAM,
  recordMetric,
} from "./abi/metrics.ts";
import { Decision, DECIDE_PASS, DECIDE_REPLY, DECIDE_ROUTE } from "./decision.ts";
import { plugin } from "./plugins.ts";
import { Snapshot } from "./snapshot/types.ts";
import { BuiltScheduling } from "./scheduling/build.ts";
import { PoolView } from "./pool.ts";

// GIE's names (pkg/epp/metrics/metrics.go) where GIE measures the same thing.
export const REQUEST_TOTAL = "inference_objective_request_total";
export const REQUEST_ERROR_TOTAL = "inference_objective_request_error_total";
/** GIE's is in seconds; proxy-wasm records integers, so ours is in microseconds. */
export const DECISION_DURATION = "inference_extension_scheduler_e2e_duration_microseconds";
// Ours.
export const REQUESTS = "epp_wasm_requests_total";
export const ENDPOINT_PICKS = "epp_wasm_endpoint_picks_total";
export const FALLBACKS = "epp_wasm_fallbacks_written_total";
export const PREFIX_MATCHED = "epp_wasm_prefix_blocks_matched_total";
export const PREFIX_PROMPT = "epp_wasm_prefix_prompt_blocks_total";
export const SNAPSHOT_AGE = "epp_wasm_snapshot_age_milliseconds";
export const SNAPSHOTS = "epp_wasm_snapshots_total";
export const SCHEDULER_REBUILDS = "epp_wasm_scheduler_rebuilds_total";

/** The value of a label whose name is not in the snapshot (one series for all of them). */
export const UNKNOWN_LABEL = "__unknown__";
/** The value of a label the request did not carry (no body read, no objective header). */
export const NONE_LABEL = "__none__";

// Outcomes of one data-path decision, in the `outcome` label of epp_wasm_requests_total.
const OUTCOME_ROUTED: i32 = 0;
const OUTCOME_PASSED: i32 = 1;
const OUTCOME_SHED: i32 = 2;
const OUTCOME_NO_ENDPOINT: i32 = 3;
const OUTCOME_UNKNOWN_MODEL: i32 = 4;
const OUTCOME_BAD_REQUEST: i32 = 5;
const OUTCOME_TOO_LARGE: i32 = 6;
const OUTCOME_ERROR: i32 = 7;
const OUTCOMES: i32 = 8;
export const OUTCOME_NAMES: string[] = [
  "routed",
  "passed",
  "shed",
  "no_endpoint",
  "unknown_model",
  "bad_request",
  "too_large",
  "error",
];
/** GIE's error codes (pkg/epp/util/error) for each outcome that is an error ("" for the others). */
const ERROR_CODES: string[] = [
  "",
  "",
  "InferencePoolResourceExhausted",
  "ServiceUnavailable",
  "BadRequest",
  "BadRequest",
  "BadRequest",
  "Internal",
];

function outcomeOf(d: Decision): i32 {
  if (d.kind == DECIDE_ROUTE) return OUTCOME_ROUTED;
  if (d.kind == DECIDE_PASS) return OUTCOME_PASSED;
  const s = d.status;
  if (s == 429) return OUTCOME_SHED;
  if (s == 503) return OUTCOME_NO_ENDPOINT;
  if (s == 404) return OUTCOME_UNKNOWN_MODEL;
  if (s == 400) return OUTCOME_BAD_REQUEST;
  if (s == 413) return OUTCOME_TOO_LARGE;
  return OUTCOME_ERROR;
}

/** The ids of one (model, target, objective) label set, each defined on first use. */
class LabelSet {
  total: u32 = 0;
  byOutcome: StaticArray<u32> = new StaticArray<u32>(OUTCOMES);
  errors: StaticArray<u32> = new StaticArray<u32>(OUTCOMES);
  constructor(
    /** `.model_name.M.target_model_name.T` */
    readonly models: string,
    readonly objective: string,
  ) {}

  countTotal(): void {
    if (this.total == 0) this.total = defineMetric(METRIC_COUNTER, REQUEST_TOTAL + this.models);
    incrementMetric(this.total, 1);
  }

  countOutcome(o: i32): void {
    let id = unchecked(this.byOutcome[o]);
    if (id == 0) {
      const name = REQUESTS + this.models + ".objective." + this.objective + ".outcome." + OUTCOME_NAMES[o];
      id = defineMetric(METRIC_COUNTER, name);
      unchecked((this.byOutcome[o] = id));
    }
    incrementMetric(id, 1);
  }

  countError(o: i32): void {
    let id = unchecked(this.errors[o]);
    if (id == 0) {
      id = defineMetric(METRIC_COUNTER, REQUEST_ERROR_TOTAL + this.models + ".error_code." + ERROR_CODES[o]);
      unchecked((this.errors[o] = id));
    }
    incrementMetric(id, 1);
  }
}

// model label → target label → objective label → ids. Only bounded label values become keys.
const byModel = new Map<string, Map<string, Map<string, LabelSet>>>();
const endpointIds = new Map<string, u32>();
const snapshotIds = new Map<string, u32>();
let durationId: u32 = 0;
let ageId: u32 = 0;
let fallbacksId: u32 = 0;
let matchedId: u32 = 0;
let promptId: u32 = 0;
let rebuildsId: u32 = 0;
/** The scheduler build each pool view had at its last decision (rebuilds are counted on change). */
const builds = new Map<PoolView, BuiltScheduling>();

function counter(id: u32, name: string): u32 {
  return id != 0 ? id : defineMetric(METRIC_COUNTER, name);
}

function modelKnown(s: Snapshot | null, name: string): bool {
  if (s == null) return false;
  const models = s.models;
  for (let i = 0; i < models.length; i++) if (models[i].name == name) return true;
  return false;
}

function targetKnown(s: Snapshot | null, name: string): bool {
  if (s == null) return false;
  const models = s.models;
  for (let i = 0; i < models.length; i++) {
    const m = models[i];
    if (m.name == name) return true;
    for (let k = 0; k < m.targets.length; k++) if (m.targets[k].name == name) return true;
  }
  const rewrites = s.rewrites;
  for (let i = 0; i < rewrites.length; i++) {
    const t = rewrites[i].targets;
    for (let k = 0; k < t.length; k++) if (t[k].name == name) return true;
  }
  return false;
}

function objectiveKnown(s: Snapshot | null, name: string): bool {
  if (s == null) return false;
  const objectives = s.objectives;
  for (let i = 0; i < objectives.length; i++) if (objectives[i].name == name) return true;
  return false;
}

const MODEL: i32 = 0;
const TARGET: i32 = 1;
const OBJECTIVE: i32 = 2;

/**
 * The bounded label value for `raw`: itself when the snapshot lists it, else UNKNOWN_LABEL. Only reached
 * when `raw` is not a cache key yet (first sight, or a name the snapshot does not list).
 */
function labelFor(raw: string, kind: i32): string {
  if (raw == NONE_LABEL) return NONE_LABEL;
  const s = plugin.snapshots.cached;
  const known =
    kind == MODEL ? modelKnown(s, raw) : kind == TARGET ? targetKnown(s, raw) : objectiveKnown(s, raw);
  return known && !splitsName(raw) ? raw : UNKNOWN_LABEL;
}

/** Label names as the stats_tags regexes know them (gateway/stats-tags.ts METRIC_LABELS). */
const LABEL_NAMES: string[] = [
  "model_name",
  "target_model_name",
  "objective",
  "outcome",
  "error_code",
  "endpoint",
  "reason",
  "priority",
];

/** A value Envoy's tag regexes would cut in the wrong place: it contains `.<label>.` once dotted. */
function splitsName(v: string): bool {
  const dotted = "." + v + ".";
  for (let i = 0; i < LABEL_NAMES.length; i++) if (dotted.includes("." + LABEL_NAMES[i] + ".")) return true;
  return false;
}

/** A label the request did not carry is NONE_LABEL, before any lookup. */
function rawLabel(v: string | null): string {
  return v == null || v.length == 0 ? NONE_LABEL : v;
}

function targets(model: string | null): Map<string, Map<string, LabelSet>> {
  const raw = rawLabel(model);
  if (byModel.has(raw)) return byModel.get(raw);
  const label = labelFor(raw, MODEL);
  if (byModel.has(label)) return byModel.get(label);
  const m = new Map<string, Map<string, LabelSet>>();
  byModel.set(label, m);
  return m;
}

function objectives(
  byTarget: Map<string, Map<string, LabelSet>>,
  target: string | null,
): Map<string, LabelSet> {
  const raw = rawLabel(target);
  if (byTarget.has(raw)) return byTarget.get(raw);
  const label = labelFor(raw, TARGET);
  if (byTarget.has(label)) return byTarget.get(label);
  const m = new Map<string, LabelSet>();
  byTarget.set(label, m);
  return m;
}

function labelSet(d: Decision): LabelSet {
  const byTarget = targets(d.modelName);
  const byObjective = objectives(byTarget, d.targetName);
  const raw = rawLabel(d.objective);
  if (byObjective.has(raw)) return byObjective.get(raw);
  const label = labelFor(raw, OBJECTIVE);
  if (byObjective.has(label)) return byObjective.get(label);
  // First sight of this label set: the one place names are built.
  const model = labelFor(rawLabel(d.modelName), MODEL);
  const target = labelFor(rawLabel(d.targetName), TARGET);
  const set = new LabelSet(".model_name." + model + ".target_model_name." + target, label);
  byObjective.set(label, set);
  return set;
}

/** When the director started on the decision being made (0: not timed). */
let startNs: u64 = 0;

/** Marks the start of a decision (the director is about to run). */
export function beginDecision(): void {
  startNs = nowNanos();
}

/** Counts a decision the data path applies (filter.ts apply()). */
export function countDecision(d: Decision): void {
  const o = outcomeOf(d);
  const set = labelSet(d);
  set.countTotal();
  set.countOutcome(o);
  if (d.kind == DECIDE_REPLY) set.countError(o);
  if (startNs != 0) {
    const now = nowNanos();
    if (durationId == 0) durationId = defineMetric(METRIC_HISTOGRAM, DECISION_DURATION);
    recordMetric(durationId, now > startNs ? (now - startNs) / 1000 : 0);
    if (plugin.snapshots.cached != null) {
      if (ageId == 0) ageId = defineMetric(METRIC_HISTOGRAM, SNAPSHOT_AGE);
      recordMetric(ageId, plugin.snapshots.ageMs(now / 1_000_000));
    }
    startNs = 0;
  }
  noteBuild();
  if (d.kind != DECIDE_ROUTE) return;
  countPick(d.served);
  const fallbacks = commas(d.destinations);
  if (fallbacks > 0) {
    fallbacksId = counter(fallbacksId, FALLBACKS);
    incrementMetric(fallbacksId, fallbacks);
  }
  if (d.promptBlocks > 0) {
    promptId = counter(promptId, PREFIX_PROMPT);
    incrementMetric(promptId, d.promptBlocks);
    if (d.matchedBlocks > 0) {
      matchedId = counter(matchedId, PREFIX_MATCHED);
      incrementMetric(matchedId, d.matchedBlocks);
    }
  }
}

function commas(s: string): i32 {
  let n = 0;
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) == 44) n++;
  return n;
}

/** A pick is always an endpoint of the snapshot, so the label set is bounded by the pool's members. */
function countPick(hostPort: string): void {
  let id: u32 = 0;
  if (endpointIds.has(hostPort)) id = endpointIds.get(hostPort);
  else {
    id = defineMetric(METRIC_COUNTER, ENDPOINT_PICKS + ".endpoint." + hostPort);
    endpointIds.set(hostPort, id);
  }
  incrementMetric(id, 1);
}

/** Counts a scheduler rebuild (a new PLUGINS or scheduler record) the first time a decision sees it. */
function noteBuild(): void {
  const pool = plugin.pool;
  const built = pool.scheduler.built;
  if (builds.has(pool)) {
    if (builds.get(pool) === built) return;
    rebuildsId = counter(rebuildsId, SCHEDULER_REBUILDS);
    incrementMetric(rebuildsId, 1);
  }
  builds.set(pool, built);
}

/** Pool views of plugins that went away (on_delete of their root) leave the rebuild watch. */
export function forgetPool(pool: PoolView): void {
  builds.delete(pool);
}

/** Counts one snapshot the control or pull path handled: accepted, unchanged or rejected, with its reason. */
export function countSnapshot(outcome: string, reason: string): void {
  const key = outcome + "/" + reason;
  let id: u32 = 0;
  if (snapshotIds.has(key)) id = snapshotIds.get(key);
  else {
    id = defineMetric(METRIC_COUNTER, SNAPSHOTS + ".outcome." + outcome + ".reason." + reason);
    snapshotIds.set(key, id);
  }
  incrementMetric(id, 1);
}
