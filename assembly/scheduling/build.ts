// SchedulingSpec → a built scheduler configuration, in named phases like GIE's config loader:
//   1. every type is registered;
//   2. producers (shared components) first; with no approx-prefix-cache-producer listed, the first
//      prefix-cache-scorer's parameters configure it (GIE's rule); one with defaults exists regardless;
//   3. the saturation detector (default utilization-detector), then the profile handler (default
//      single-profile-handler), then every other plugin in config order;
//   4. profiles: ready-filter and endpoint-subset-filter first (implicit), the profile's filters and
//      weighted scorers in order, its picker (default max-score-picker); the prefix producer is a member of
//      every profile, so the index learns every pick;
//   5. the stale profile (used while the snapshot is past staleAfterMs, see buildStaleProfile).
// Errors name the plugin and the problem; the first one wins and nothing is built.

import { PluginSpec, SchedulingSpec, NO_PLUGIN } from "../snapshot/types.ts";
import {
  Plugin,
  Filter,
  Scorer,
  Picker,
  ProfileHandler,
  SaturationDetector,
  SchedulingProfile,
} from "./framework.ts";
import { BuildContext } from "./build-context.ts";
import {
  registry,
  KIND_FILTER,
  KIND_SCORER,
  KIND_PICKER,
  KIND_HANDLER,
  KIND_DETECTOR,
  KIND_PRODUCER,
} from "./registry.ts";
import { PrefixIndex } from "../prefix/index.ts";
import { AffinityDirectory } from "./affinity-directory.ts";
import { ReadyFilter } from "./plugins/ready-filter.ts";
import { EndpointSubsetFilter } from "./plugins/endpoint-subset-filter.ts";
import { MaxScorePicker } from "./plugins/max-score-picker.ts";
import { SingleProfileHandler } from "./plugins/single-profile-handler.ts";
import { UtilizationDetector } from "./plugins/utilization-detector.ts";
import {
  PrefixProducer,
  prefixProducerOf,
  prefixProducerFactory,
  PREFIX_PRODUCER,
} from "./plugins/approx-prefix-cache-producer.ts";
import { PREFIX_CACHE_SCORER } from "./plugins/prefix-cache-scorer.ts";
import { loadModelOf } from "./plugins/fresh-load-producer.ts";
import { FreshLoadScorer, FRESH_LOAD_SCORER } from "./plugins/fresh-load-scorer.ts";
import { BoundedPrefixScorer, BOUNDED_PREFIX_SCORER } from "./plugins/bounded-prefix-scorer.ts";
import { rendezvousScorerFactory, RENDEZVOUS_SCORER } from "./plugins/rendezvous-affinity-scorer.ts";

/** Stale-profile weights when the configured profile has no such scorer (our default profile's). */
export const STALE_LOAD_WEIGHT: f64 = 3;
export const STALE_PREFIX_WEIGHT: f64 = 5;
export const STALE_AFFINITY_WEIGHT: f64 = 2;

/** What a build needs from the VM besides the spec. */
export class BuildEnv {
  directory: AffinityDirectory | null = null;
  envoyReplicas: f64 = 1;
  constructor(public index: PrefixIndex) {}
}

export class BuiltScheduling {
  profiles: SchedulingProfile[] = [];
  primary!: SchedulingProfile;
  stale!: SchedulingProfile;
  detector!: SaturationDetector;
  handler!: ProfileHandler;
  prefix!: PrefixProducer;
  /** Request headers the plugins read, by slot. */
  headers: string[] = [];
}

/** Either `built` or an `error` naming the plugin and the problem. */
export class BuildResult {
  built: BuiltScheduling | null = null;
  error: string = "";
}

function label(p: PluginSpec): string {
  return "plugin '" + (p.name.length > 0 ? p.name : p.type) + "' (" + p.type + ")";
}

export function buildFromSpec(spec: SchedulingSpec, env: BuildEnv): BuildResult {
  const res = new BuildResult();
  const ctx = new BuildContext(spec, env.index, env.directory, env.envoyReplicas);
  const reg = registry();
  const n = spec.plugins.length;
  const kinds = new Array<i32>(n);
  const built = new Array<Plugin | null>(n);
  // 1. types
  for (let i = 0; i < n; i++) {
    const p = spec.plugins[i];
    const k = reg.find(p.type);
    if (k < 0) {
      res.error = label(p) + ": unknown plugin type '" + p.type + "'; supported: " + reg.types.join(", ");
      return res;
    }
    kinds[i] = reg.kinds[k];
    built[i] = null;
  }
  // 2. producers
  for (let i = 0; i < n; i++) if (kinds[i] == KIND_PRODUCER) built[i] = make(spec, i, ctx);
  if (ctx.shared(PREFIX_PRODUCER) == null) {
    for (let i = 0; i < n; i++) {
      if (spec.plugins[i].type != PREFIX_CACHE_SCORER) continue;
      prefixProducerFactory(spec.plugins[i], ctx);
      break;
    }
  }
  const prefix = prefixProducerOf(ctx);
  // 3. detector, handler, the rest
  const detector = single(spec, spec.saturation, KIND_DETECTOR, "saturationDetector", kinds, built, ctx);
  ctx.detector = detector != null ? changetype<SaturationDetector>(detector) : new UtilizationDetector();
  const handler = single(spec, spec.handler, KIND_HANDLER, "profile handler", kinds, built, ctx);
  for (let i = 0; i < n; i++)
    if (built[i] == null && kinds[i] != KIND_PRODUCER) built[i] = make(spec, i, ctx);
  if (ctx.error.length > 0) {
    res.error = ctx.error;
    return res;
  }
  // 4. profiles
  const out = new BuiltScheduling();
  if (spec.profiles.length == 0) {
    res.error = "schedulingProfiles: at least one profile is required";
    return res;
  }
  for (let j = 0; j < spec.profiles.length; j++) {
    const profile = buildProfile(spec, j, kinds, built, prefix, ctx);
    if (profile == null) {
      res.error = ctx.error;
      return res;
    }
    out.profiles.push(profile);
  }
  out.handler = handler != null ? changetype<ProfileHandler>(handler) : new SingleProfileHandler();
  let primary = out.handler.primary(out.profiles.length);
  if (primary < 0 || primary >= out.profiles.length) primary = 0;
  out.primary = out.profiles[primary];
  out.detector = ctx.detector!;
  out.prefix = prefix;
  // 5. stale profile
  out.stale = buildStaleProfile(spec, out.primary, ctx);
  out.headers = ctx.headers;
  if (ctx.error.length > 0) {
    res.error = ctx.error;
    return res;
  }
  res.built = out;
  return res;
}

/** "" when the spec builds, else the error buildFromSpec would give (for the control path's 400). */
export function validateSpec(spec: SchedulingSpec): string {
  return buildFromSpec(spec, new BuildEnv(new PrefixIndex(1, 16, 16))).error;
}

function make(spec: SchedulingSpec, i: i32, ctx: BuildContext): Plugin | null {
  const reg = registry();
  const p = spec.plugins[i];
  const f = reg.factories[reg.find(p.type)];
  const plugin = f(p, ctx);
  if (plugin == null) ctx.fail(label(p) + ": could not be built");
  return plugin;
}

/** Builds the plugin the spec names for a single role (handler, detector), checking its kind. */
function single(
  spec: SchedulingSpec,
  index: i32,
  kind: i32,
  role: string,
  kinds: i32[],
  built: Array<Plugin | null>,
  ctx: BuildContext,
): Plugin | null {
  if (index == NO_PLUGIN) return null;
  if (index < 0 || index >= spec.plugins.length) {
    ctx.fail(role + ": plugin index " + index.toString() + " is out of range");
    return null;
  }
  if (kinds[index] != kind) {
    ctx.fail(label(spec.plugins[index]) + ": cannot serve as the " + role);
    return null;
  }
  const p = make(spec, index, ctx);
  built[index] = p;
  return p;
}

function buildProfile(
  spec: SchedulingSpec,
  j: i32,
  kinds: i32[],
  built: Array<Plugin | null>,
  prefix: PrefixProducer,
  ctx: BuildContext,
): SchedulingProfile | null {
  const ps = spec.profiles[j];
  const where = "schedulingProfiles[" + j.toString() + "] '" + ps.name + "'";
  let picker: Picker | null = null;
  for (let e = 0; e < ps.entries.length; e++) {
    const i = ps.entries[e].plugin;
    if (i < 0 || i >= spec.plugins.length) {
      ctx.fail(where + ": plugin index " + i.toString() + " is out of range");
      return null;
    }
    if (kinds[i] != KIND_PICKER) continue;
    if (picker != null) {
      ctx.fail(where + ": more than one picker (" + label(spec.plugins[i]) + ")");
      return null;
    }
    picker = changetype<Picker>(built[i]);
  }
  const profile = new SchedulingProfile(ps.name, picker != null ? picker : new MaxScorePicker());
  profile.withFilter(new ReadyFilter()).withFilter(new EndpointSubsetFilter());
  for (let e = 0; e < ps.entries.length; e++) {
    const entry = ps.entries[e];
    const i = entry.plugin;
    const k = kinds[i];
    if (k == KIND_FILTER) profile.withFilter(changetype<Filter>(built[i]));
    else if (k == KIND_SCORER) {
      if (!isFinite(entry.weight) || entry.weight < 0) {
        ctx.fail(where + ": " + label(spec.plugins[i]) + ": weight must be a finite number >= 0");
        return null;
      }
      profile.withScorer(changetype<Scorer>(built[i]), entry.weight);
    } else if (k != KIND_PICKER) {
      ctx.fail(where + ": " + label(spec.plugins[i]) + " is not a filter, scorer or picker");
      return null;
    }
  }
  profile.addMember(prefix);
  return profile;
}

/** The weight of the first scorer of `type` in the primary profile, else `fallback`. */
function weightOf(profile: SchedulingProfile, type: string, fallback: f64): f64 {
  for (let s = 0; s < profile.scorers.length; s++)
    if (profile.scorers[s].type == type) return profile.weights[s];
  return fallback;
}

/**
 * The profile for a snapshot past staleAfterMs, whatever the configured one: the endpoints carry no
 * load figures then (PoolView zeroes them), so the load model reduces to this VM's in-flight requests and
 * prompt tokens: least request, with prefix affinity (local index, then rendezvous) while the in-flight
 * load bound holds. Scores with old KV usage or adapter lists would only add noise. Weights and the
 * rendezvous parameters follow the configured profile where it has those scorers; scorers that ask to
 * (keepWhenStale: session affinity) keep scoring with their weight.
 */
function buildStaleProfile(
  spec: SchedulingSpec,
  primary: SchedulingProfile,
  ctx: BuildContext,
): SchedulingProfile {
  const load = loadModelOf(ctx);
  const prefix = prefixProducerOf(ctx);
  let rvSpec: PluginSpec | null = null;
  for (let i = 0; i < spec.plugins.length; i++) {
    if (spec.plugins[i].type == RENDEZVOUS_SCORER) {
      rvSpec = spec.plugins[i];
      break;
    }
  }
  if (rvSpec == null) {
    rvSpec = new PluginSpec();
    rvSpec.type = RENDEZVOUS_SCORER;
  }
  const rendezvous = rendezvousScorerFactory(rvSpec, ctx);
  const profile = new SchedulingProfile("stale", new MaxScorePicker())
    .withFilter(new ReadyFilter())
    .withFilter(new EndpointSubsetFilter())
    .withScorer(new FreshLoadScorer(load), weightOf(primary, FRESH_LOAD_SCORER, STALE_LOAD_WEIGHT))
    .withScorer(
      new BoundedPrefixScorer(prefix, load),
      weightOf(primary, BOUNDED_PREFIX_SCORER, STALE_PREFIX_WEIGHT),
    );
  if (rendezvous != null)
    profile.withScorer(
      changetype<Scorer>(rendezvous),
      weightOf(primary, RENDEZVOUS_SCORER, STALE_AFFINITY_WEIGHT),
    );
  for (let s = 0; s < primary.scorers.length; s++) {
    const scorer = primary.scorers[s];
    if (scorer.keepWhenStale()) profile.withScorer(scorer, primary.weights[s]);
  }
  profile.addMember(prefix);
  return profile;
}
