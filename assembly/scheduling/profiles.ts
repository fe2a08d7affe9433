// Profiles assembled from the snapshot's scheduler record: `legacy`, `gie-default`, and our `default`
// (any other name falls back to `default`). Weights and tunables come from params, defaults here and
// in default-profile.ts / legacy.ts.

import { SchedulerConfig } from "./types.ts";
import { SchedulingProfile, Picker } from "./framework.ts";
import { ReadyFilter, EndpointSubsetFilter } from "./filters.ts";
import { QueueScorer, KvCacheScorer, PrefixCacheScorer, LoraAffinityScorer } from "./scorers.ts";
import { MaxScorePicker, RandomPicker, WeightedRandomPicker } from "./pickers.ts";
import {
  LoadModel,
  FreshLoadScorer,
  KvHeadroomScorer,
  BoundedPrefixScorer,
  RendezvousAffinityScorer,
  AFFINITY_BLOCKS,
  AFFINITY_MIN_BLOCKS,
  DEFAULT_QUEUE_WEIGHT,
  DEFAULT_KV_WEIGHT,
  DEFAULT_PREFIX_WEIGHT,
  DEFAULT_AFFINITY_WEIGHT,
  DEFAULT_LORA_WEIGHT,
  PLACEMENT_AUTO,
  PLACEMENT_HASH,
  PLACEMENT_BALANCED,
  BALANCED_MAX_REPLICAS,
} from "./default-profile.ts";
import { legacyTree } from "./legacy.ts";
import { PrefixIndex } from "../prefix/index.ts";
import { AffinityDirectory } from "./affinity-directory.ts";

export const PROFILE_DEFAULT = "default";
export const PROFILE_GIE_DEFAULT = "gie-default";
export const PROFILE_LEGACY = "legacy";

/** GIE v1.2+ default weights: queue 2, KV 2, prefix 3. */
export const GIE_QUEUE_WEIGHT: f64 = 2;
export const GIE_KV_WEIGHT: f64 = 2;
export const GIE_PREFIX_WEIGHT: f64 = 3;

/** Param `picker`: 0 (or absent) max-score, 1 random, 2 weighted-random. */
function pickerFrom(cfg: SchedulerConfig): Picker {
  const p = <i32>cfg.param("picker", 0);
  if (p == 1) return new RandomPicker();
  if (p == 2) return new WeightedRandomPicker();
  return new MaxScorePicker();
}

export function isLegacy(cfg: SchedulerConfig): bool {
  return cfg.profile == PROFILE_LEGACY;
}

export function buildProfile(
  cfg: SchedulerConfig,
  index: PrefixIndex,
  directory: AffinityDirectory | null = null,
): SchedulingProfile {
  if (cfg.profile == PROFILE_LEGACY) {
    return new SchedulingProfile(PROFILE_LEGACY, new RandomPicker())
      .withFilter(new ReadyFilter())
      .withFilter(new EndpointSubsetFilter())
      .withFilter(legacyTree(cfg));
  }
  if (cfg.profile == PROFILE_GIE_DEFAULT) {
    return new SchedulingProfile(PROFILE_GIE_DEFAULT, pickerFrom(cfg))
      .withFilter(new ReadyFilter())
      .withFilter(new EndpointSubsetFilter())
      .withScorer(new QueueScorer(), cfg.param("queueWeight", GIE_QUEUE_WEIGHT))
      .withScorer(new KvCacheScorer(), cfg.param("kvWeight", GIE_KV_WEIGHT))
      .withScorer(new PrefixCacheScorer(index), cfg.param("prefixWeight", GIE_PREFIX_WEIGHT))
      .withScorer(new LoraAffinityScorer(), cfg.param("loraWeight", 0));
  }
  const load = loadModelFrom(cfg);
  const rendezvous = rendezvousFrom(cfg, load, index, directory);
  return new SchedulingProfile(PROFILE_DEFAULT, pickerFrom(cfg))
    .withFilter(new ReadyFilter())
    .withFilter(new EndpointSubsetFilter())
    .withScorer(new FreshLoadScorer(load), cfg.param("queueWeight", DEFAULT_QUEUE_WEIGHT))
    .withScorer(new KvHeadroomScorer(), cfg.param("kvWeight", DEFAULT_KV_WEIGHT))
    .withScorer(new BoundedPrefixScorer(index, load), cfg.param("prefixWeight", DEFAULT_PREFIX_WEIGHT))
    .withScorer(rendezvous, cfg.param("affinityWeight", DEFAULT_AFFINITY_WEIGHT))
    .withScorer(new LoraAffinityScorer(), cfg.param("loraWeight", DEFAULT_LORA_WEIGHT));
}

/**
 * The profile for a snapshot past staleAfterMs, whatever the configured one: the pool's endpoints carry
 * no load figures then (PoolView zeroes them), so the load model reduces to this VM's in-flight requests
 * and prompt tokens: least request, with prefix affinity (local index, then rendezvous) while the
 * in-flight load bound holds. Scores with old KV usage or adapter lists would only add noise.
 */
export function buildStaleProfile(
  cfg: SchedulerConfig,
  index: PrefixIndex,
  directory: AffinityDirectory | null = null,
): SchedulingProfile {
  const load = loadModelFrom(cfg);
  return new SchedulingProfile("stale", new MaxScorePicker())
    .withFilter(new ReadyFilter())
    .withFilter(new EndpointSubsetFilter())
    .withScorer(new FreshLoadScorer(load), cfg.param("queueWeight", DEFAULT_QUEUE_WEIGHT))
    .withScorer(new BoundedPrefixScorer(index, load), cfg.param("prefixWeight", DEFAULT_PREFIX_WEIGHT))
    .withScorer(
      rendezvousFrom(cfg, load, index, directory),
      cfg.param("affinityWeight", DEFAULT_AFFINITY_WEIGHT),
    );
}

function loadModelFrom(cfg: SchedulerConfig): LoadModel {
  const load = new LoadModel();
  load.runningWeight = cfg.param("runningLoadWeight", load.runningWeight);
  load.tokensPerUnit = cfg.param("tokensPerLoadUnit", load.tokensPerUnit);
  load.epsilon = cfg.param("affinityEpsilon", load.epsilon);
  load.slack = cfg.param("affinitySlack", load.slack);
  load.maxQueue = cfg.param("affinityMaxQueue", load.maxQueue);
  return load;
}

function rendezvousFrom(
  cfg: SchedulerConfig,
  load: LoadModel,
  index: PrefixIndex,
  directory: AffinityDirectory | null,
): RendezvousAffinityScorer {
  const rendezvous = new RendezvousAffinityScorer(load);
  rendezvous.blocks = <i32>cfg.param("affinityBlocks", <f64>AFFINITY_BLOCKS);
  rendezvous.minBlocks = <i32>cfg.param("affinityMinBlocks", <f64>AFFINITY_MIN_BLOCKS);
  rendezvous.index = index; // defer to the local index when it knows a holder
  if (cfg.param("affinityDirectory", 1) != 0) rendezvous.directory = directory;
  rendezvous.placement = placementFrom(cfg);
  return rendezvous;
}

/** `affinityPlacement` 1 hash / 2 balanced; absent or 0: balanced with one Envoy, hash with several
 *  (`envoyReplicas`, which the sidecar sets to the number of Envoys it pushes to). */
export function placementFrom(cfg: SchedulerConfig): i32 {
  const p = <i32>cfg.param("affinityPlacement", <f64>PLACEMENT_AUTO);
  if (p == PLACEMENT_HASH || p == PLACEMENT_BALANCED) return p;
  return cfg.param("envoyReplicas", 1) <= BALANCED_MAX_REPLICAS ? PLACEMENT_BALANCED : PLACEMENT_HASH;
}
