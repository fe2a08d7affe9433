// The built-in scheduling configs, used when a snapshot carries no PLUGINS section: the SCHEDULER
// record's `profile` names one (`default` when unknown). Each equals the shipped file of the same name in
// config/scheduling/ (test/scheduling/builtin-configs.test.ts compares them through describeSpec()).
//
// Before configs existed, tuning went through the record's flat numeric params; builtinSpecFor() still
// maps each old key onto its plugin parameter or profile weight (docs/scheduling.md lists them), and the
// record's thresholds onto the utilization-detector. With a PLUGINS section none of this applies.

import {
  PluginSpec,
  PluginParam,
  ProfileSpec,
  ProfileEntry,
  SchedulingSpec,
  NO_PLUGIN,
  PARAM_NUMBER,
  PARAM_STRING,
  PARAM_BOOL,
} from "../snapshot/types.ts";
import { SchedulerConfig } from "./types.ts";

export const PROFILE_DEFAULT = "default";
export const PROFILE_GIE_DEFAULT = "gie-default";
export const PROFILE_LEGACY = "legacy";

/** A small writer for specs in code. */
export class SpecWriter {
  spec: SchedulingSpec = new SchedulingSpec();

  /** Adds a plugin (name = type unless given); returns its index. */
  plugin(type: string, name: string = ""): SpecWriter {
    const p = new PluginSpec();
    p.type = type;
    p.name = name.length > 0 ? name : type;
    this.spec.plugins.push(p);
    return this;
  }
  private last(): PluginSpec {
    return this.spec.plugins[this.spec.plugins.length - 1];
  }
  num(key: string, v: f64): SpecWriter {
    setParam(this.last(), key, PARAM_NUMBER, v, "", false);
    return this;
  }
  str(key: string, v: string): SpecWriter {
    setParam(this.last(), key, PARAM_STRING, 0, v, false);
    return this;
  }
  flag(key: string, v: bool): SpecWriter {
    setParam(this.last(), key, PARAM_BOOL, 0, "", v);
    return this;
  }
  profile(name: string): SpecWriter {
    const p = new ProfileSpec();
    p.name = name;
    this.spec.profiles.push(p);
    return this;
  }
  /** Adds the plugin named `name` to the last profile. */
  entry(name: string, weight: f64 = 1): SpecWriter {
    addEntry(this.spec.profiles[this.spec.profiles.length - 1], indexOfName(this.spec, name), weight);
    return this;
  }
  saturation(name: string): SpecWriter {
    this.spec.saturation = indexOfName(this.spec, name);
    return this;
  }
}

function addEntry(profile: ProfileSpec, plugin: i32, weight: f64): void {
  const e = new ProfileEntry();
  e.plugin = plugin;
  e.weight = weight;
  profile.entries.push(e);
}

export function indexOfName(spec: SchedulingSpec, name: string): i32 {
  for (let i = 0; i < spec.plugins.length; i++) if (spec.plugins[i].name == name) return i;
  return NO_PLUGIN;
}

function indexOfType(spec: SchedulingSpec, type: string): i32 {
  for (let i = 0; i < spec.plugins.length; i++) if (spec.plugins[i].type == type) return i;
  return NO_PLUGIN;
}

function setParam(p: PluginSpec, key: string, kind: u8, num: f64, str: string, flag: bool): void {
  let q: PluginParam | null = null;
  for (let i = 0; i < p.params.length; i++) if (p.params[i].key == key) q = p.params[i];
  if (q == null) {
    q = new PluginParam();
    q.key = key;
    p.params.push(q);
  }
  q.kind = kind;
  q.num = num;
  q.str = str;
  q.flag = flag;
}

/** config/scheduling/default.yaml */
function defaultSpec(): SchedulingSpec {
  return new SpecWriter()
    .plugin("fresh-load-producer")
    .num("runningLoadWeight", 0.2)
    .num("tokensPerLoadUnit", 4096)
    .num("affinityEpsilon", 0.25)
    .num("affinitySlack", 8)
    .num("affinityMaxQueue", 128)
    .flag("capacityScaledLoad", true)
    .plugin("approx-prefix-cache-producer")
    .flag("autoTune", true)
    .num("blockSizeTokens", 16)
    .num("maxPrefixBlocksToMatch", 256)
    .num("lruCapacityPerServer", 31250)
    .plugin("fresh-load-scorer")
    .plugin("kv-headroom-scorer")
    .plugin("bounded-prefix-scorer")
    .plugin("rendezvous-affinity-scorer")
    .num("affinityBlocks", 16)
    .num("affinityMinBlocks", 32)
    .flag("affinityDirectory", true)
    .str("affinityPlacement", "auto")
    .plugin("lora-affinity-scorer")
    .plugin("max-score-picker")
    .profile("default")
    .entry("fresh-load-scorer", 3)
    .entry("kv-headroom-scorer", 2)
    .entry("bounded-prefix-scorer", 5)
    .entry("rendezvous-affinity-scorer", 2)
    .entry("lora-affinity-scorer", 3)
    .entry("max-score-picker").spec;
}

/** config/scheduling/gie-default.yaml: GIE v1.5's default (queue 2, KV 2, prefix 3, max-score picker). */
function gieDefaultSpec(): SchedulingSpec {
  return new SpecWriter()
    .plugin("queue-scorer")
    .plugin("kv-cache-utilization-scorer")
    .plugin("prefix-cache-scorer")
    .profile("default")
    .entry("queue-scorer", 2)
    .entry("kv-cache-utilization-scorer", 2)
    .entry("prefix-cache-scorer", 3).spec;
}

/** config/scheduling/legacy.yaml: GIE v0.3's filter tree, random pick, no admission step. */
function legacySpec(): SchedulingSpec {
  return new SpecWriter()
    .plugin("legacy-filter-tree")
    .num("queueingThresholdLora", 128)
    .num("loraAffinityThreshold", 0.999)
    .num("queueThresholdCritical", 5)
    .num("kvCacheThreshold", 0.8)
    .plugin("random-picker")
    .plugin("always-admit-detector")
    .profile("legacy")
    .entry("legacy-filter-tree")
    .entry("random-picker")
    .saturation("always-admit-detector").spec;
}

/** The built-in spec of that name; any other name gives `default`. */
export function builtinSpec(name: string): SchedulingSpec {
  if (name == PROFILE_GIE_DEFAULT) return gieDefaultSpec();
  if (name == PROFILE_LEGACY) return legacySpec();
  return defaultSpec();
}

// Old flat params → [key, plugin type (first match), new parameter]. Weights and the picker code are
// handled below; maxFallbacks and envoyReplicas stay runtime facts of the record.
// prettier-ignore
const MOVED: string[] = [
  "runningLoadWeight", "fresh-load-producer", "runningLoadWeight",
  "tokensPerLoadUnit", "fresh-load-producer", "tokensPerLoadUnit",
  "affinityEpsilon", "fresh-load-producer", "affinityEpsilon",
  "affinitySlack", "fresh-load-producer", "affinitySlack",
  "affinityMaxQueue", "fresh-load-producer", "affinityMaxQueue",
  "affinityBlocks", "rendezvous-affinity-scorer", "affinityBlocks",
  "affinityMinBlocks", "rendezvous-affinity-scorer", "affinityMinBlocks",
  "loraAffinityThreshold", "legacy-filter-tree", "loraAffinityThreshold",
  "queueingThresholdLora", "legacy-filter-tree", "queueingThresholdLora",
  "queueThresholdCritical", "legacy-filter-tree", "queueThresholdCritical",
  "kvCacheThreshold", "legacy-filter-tree", "kvCacheThreshold",
];
// Old weight keys → the scorer types they weighed (our default's first, GIE's second).
// prettier-ignore
const WEIGHTS: string[] = [
  "queueWeight", "fresh-load-scorer", "queue-scorer",
  "kvWeight", "kv-headroom-scorer", "kv-cache-utilization-scorer",
  "prefixWeight", "bounded-prefix-scorer", "prefix-cache-scorer",
  "affinityWeight", "rendezvous-affinity-scorer", "rendezvous-affinity-scorer",
  "loraWeight", "lora-affinity-scorer", "lora-affinity-scorer",
];
const PICKERS: string[] = ["max-score-picker", "random-picker", "weighted-random-picker"];

/** The built-in spec the record names, with its flat params and thresholds applied. */
export function builtinSpecFor(cfg: SchedulerConfig): SchedulingSpec {
  const spec = builtinSpec(cfg.profile);
  for (let m = 0; m < MOVED.length; m += 3) {
    const v = cfg.param(MOVED[m], NaN);
    const i = indexOfType(spec, MOVED[m + 1]);
    if (!isNaN(v) && i != NO_PLUGIN) setParam(spec.plugins[i], MOVED[m + 2], PARAM_NUMBER, v, "", false);
  }
  const lp = indexOfType(spec, "fresh-load-producer");
  const cl = cfg.param("capacityScaledLoad", NaN);
  if (lp != NO_PLUGIN && !isNaN(cl))
    setParam(spec.plugins[lp], "capacityScaledLoad", PARAM_BOOL, 0, "", cl != 0);
  const rv = indexOfType(spec, "rendezvous-affinity-scorer");
  if (rv != NO_PLUGIN) {
    const d = cfg.param("affinityDirectory", NaN);
    if (!isNaN(d)) setParam(spec.plugins[rv], "affinityDirectory", PARAM_BOOL, 0, "", d != 0);
    const pl = <i32>cfg.param("affinityPlacement", 0);
    const name = pl == 1 ? "hash" : pl == 2 ? "balanced" : "auto";
    setParam(spec.plugins[rv], "affinityPlacement", PARAM_STRING, 0, name, false);
  }
  const profile = spec.profiles[0];
  for (let w = 0; w < WEIGHTS.length; w += 3) {
    const v = cfg.param(WEIGHTS[w], NaN);
    if (isNaN(v) || cfg.profile == PROFILE_LEGACY) continue;
    setWeight(spec, profile, WEIGHTS[w + 1], WEIGHTS[w + 2], v);
  }
  const pk = cfg.param("picker", NaN);
  if (!isNaN(pk) && cfg.profile != PROFILE_LEGACY) {
    const type = PICKERS[<i32>pk == 1 || <i32>pk == 2 ? <i32>pk : 0];
    let i = NO_PLUGIN;
    for (let e = 0; e < profile.entries.length; e++) {
      const t = spec.plugins[profile.entries[e].plugin].type;
      if (PICKERS.includes(t)) i = profile.entries[e].plugin;
    }
    if (i != NO_PLUGIN) spec.plugins[i].type = spec.plugins[i].name = type;
    else {
      const p = new PluginSpec();
      p.type = p.name = type;
      spec.plugins.push(p);
      addEntry(profile, spec.plugins.length - 1, 1);
    }
  }
  applyThresholds(spec, cfg);
  return spec;
}

/** Weight of the scorer of type a (else b) in the profile; absent → appended (a zero weight drops it). */
function setWeight(spec: SchedulingSpec, profile: ProfileSpec, a: string, b: string, weight: f64): void {
  for (let e = 0; e < profile.entries.length; e++) {
    const t = spec.plugins[profile.entries[e].plugin].type;
    if (t == a || t == b) {
      profile.entries[e].weight = weight;
      return;
    }
  }
  // Only GIE's profile lacks a scorer an old key names (lora); its type is the second.
  const p = new PluginSpec();
  p.type = p.name = b;
  spec.plugins.push(p);
  addEntry(profile, spec.plugins.length - 1, weight);
}

/** The record's saturation thresholds go to the utilization-detector (added when the spec has none). */
function applyThresholds(spec: SchedulingSpec, cfg: SchedulerConfig): void {
  let i = spec.saturation;
  if (i == NO_PLUGIN) {
    const p = new PluginSpec();
    p.type = p.name = "utilization-detector";
    spec.plugins.push(p);
    i = spec.saturation = spec.plugins.length - 1;
  }
  const d = spec.plugins[i];
  if (d.type != "utilization-detector") return;
  setParam(d, "queueDepthThreshold", PARAM_NUMBER, <f64>cfg.queueThreshold, "", false);
  setParam(d, "kvCacheUtilThreshold", PARAM_NUMBER, cfg.kvThreshold, "", false);
  setParam(d, "metricsStalenessThreshold", PARAM_NUMBER, <f64>cfg.metricsStalenessMs, "", false);
}
