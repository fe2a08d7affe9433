// The scheduling plugin registry: type → (kind, factory), filled in one place, one line per plugin.
// Adding a plugin is one file under plugins/ plus one line in registerInTreePlugins().

import { PluginSpec } from "../snapshot/types.ts";
import { Plugin } from "./framework.ts";
import { BuildContext } from "./build-context.ts";
import { queueScorerFactory, QUEUE_SCORER } from "./plugins/queue-scorer.ts";
import { kvCacheScorerFactory, KV_CACHE_SCORER } from "./plugins/kv-cache-utilization-scorer.ts";
import { prefixCacheScorerFactory, PREFIX_CACHE_SCORER } from "./plugins/prefix-cache-scorer.ts";
import { prefixProducerFactory, PREFIX_PRODUCER } from "./plugins/approx-prefix-cache-producer.ts";
import { loraAffinityScorerFactory, LORA_AFFINITY_SCORER } from "./plugins/lora-affinity-scorer.ts";
import {
  runningRequestsScorerFactory,
  RUNNING_REQUESTS_SCORER,
} from "./plugins/running-requests-size-scorer.ts";
import { maxScorePickerFactory, MAX_SCORE_PICKER } from "./plugins/max-score-picker.ts";
import { randomPickerFactory, RANDOM_PICKER } from "./plugins/random-picker.ts";
import { weightedRandomPickerFactory, WEIGHTED_RANDOM_PICKER } from "./plugins/weighted-random-picker.ts";
import { singleProfileHandlerFactory, SINGLE_PROFILE_HANDLER } from "./plugins/single-profile-handler.ts";
import { utilizationDetectorFactory, UTILIZATION_DETECTOR } from "./plugins/utilization-detector.ts";
import { alwaysAdmitDetectorFactory, ALWAYS_ADMIT_DETECTOR } from "./plugins/always-admit-detector.ts";
import { sessionAffinityScorerFactory, SESSION_AFFINITY_SCORER } from "./plugins/session-affinity-scorer.ts";
import { loadProducerFactory, LOAD_PRODUCER } from "./plugins/fresh-load-producer.ts";
import { freshLoadScorerFactory, FRESH_LOAD_SCORER } from "./plugins/fresh-load-scorer.ts";
import { kvHeadroomScorerFactory, KV_HEADROOM_SCORER } from "./plugins/kv-headroom-scorer.ts";
import { boundedPrefixScorerFactory, BOUNDED_PREFIX_SCORER } from "./plugins/bounded-prefix-scorer.ts";
import { rendezvousScorerFactory, RENDEZVOUS_SCORER } from "./plugins/rendezvous-affinity-scorer.ts";
import { inflightLoadScorerFactory, INFLIGHT_LOAD_SCORER } from "./plugins/inflight-load-scorer.ts";
import { legacyFilterTreeFactory, LEGACY_FILTER_TREE } from "./plugins/legacy-filter-tree.ts";

/** Plugin kinds: where a plugin may appear in a config. */
export const KIND_FILTER: i32 = 0;
export const KIND_SCORER: i32 = 1;
export const KIND_PICKER: i32 = 2;
export const KIND_HANDLER: i32 = 3;
export const KIND_DETECTOR: i32 = 4;
export const KIND_PRODUCER: i32 = 5;

/** Builds one plugin from its config entry; null after ctx.fail(). */
export type Factory = (spec: PluginSpec, ctx: BuildContext) => Plugin | null;

export class Registry {
  types: string[] = [];
  kinds: i32[] = [];
  factories: Factory[] = [];
  /** Set when a type was registered twice (a programming error the registry test catches). */
  error: string = "";

  register(type: string, kind: i32, factory: Factory): void {
    if (this.types.includes(type)) {
      this.error = "scheduling plugin type '" + type + "' registered twice";
      return;
    }
    this.types.push(type);
    this.kinds.push(kind);
    this.factories.push(factory);
  }

  /** Index of a type, −1 when unknown. */
  find(type: string): i32 {
    return this.types.indexOf(type);
  }
}

/** Every plugin the filter ships, one line each (sidecar/scheduling-config/catalogue.ts lists the same). */
export function registerInTreePlugins(r: Registry): Registry {
  r.register(QUEUE_SCORER, KIND_SCORER, queueScorerFactory);
  r.register(KV_CACHE_SCORER, KIND_SCORER, kvCacheScorerFactory);
  r.register(PREFIX_CACHE_SCORER, KIND_SCORER, prefixCacheScorerFactory);
  r.register(PREFIX_PRODUCER, KIND_PRODUCER, prefixProducerFactory);
  r.register(LORA_AFFINITY_SCORER, KIND_SCORER, loraAffinityScorerFactory);
  r.register(RUNNING_REQUESTS_SCORER, KIND_SCORER, runningRequestsScorerFactory);
  r.register(MAX_SCORE_PICKER, KIND_PICKER, maxScorePickerFactory);
  r.register(RANDOM_PICKER, KIND_PICKER, randomPickerFactory);
  r.register(WEIGHTED_RANDOM_PICKER, KIND_PICKER, weightedRandomPickerFactory);
  r.register(SINGLE_PROFILE_HANDLER, KIND_HANDLER, singleProfileHandlerFactory);
  r.register(UTILIZATION_DETECTOR, KIND_DETECTOR, utilizationDetectorFactory);
  r.register(SESSION_AFFINITY_SCORER, KIND_SCORER, sessionAffinityScorerFactory);
  r.register(LOAD_PRODUCER, KIND_PRODUCER, loadProducerFactory);
  r.register(FRESH_LOAD_SCORER, KIND_SCORER, freshLoadScorerFactory);
  r.register(KV_HEADROOM_SCORER, KIND_SCORER, kvHeadroomScorerFactory);
  r.register(BOUNDED_PREFIX_SCORER, KIND_SCORER, boundedPrefixScorerFactory);
  r.register(RENDEZVOUS_SCORER, KIND_SCORER, rendezvousScorerFactory);
  r.register(INFLIGHT_LOAD_SCORER, KIND_SCORER, inflightLoadScorerFactory);
  r.register(LEGACY_FILTER_TREE, KIND_FILTER, legacyFilterTreeFactory);
  r.register(ALWAYS_ADMIT_DETECTOR, KIND_DETECTOR, alwaysAdmitDetectorFactory);
  return r;
}

let inTree: Registry | null = null;

/** The registry with every in-tree plugin (built on first use). */
export function registry(): Registry {
  if (inTree == null) inTree = registerInTreePlugins(new Registry());
  return inTree!;
}
