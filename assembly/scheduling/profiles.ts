// Profile names and the old placement helper, for callers written before configs (builtin.ts, build.ts).
import { SchedulerConfig } from "./types.ts";
import { resolvePlacement } from "./plugins/rendezvous-affinity-scorer.ts";
export { PROFILE_DEFAULT, PROFILE_GIE_DEFAULT, PROFILE_LEGACY } from "./builtin";

/** `affinityPlacement` 1 hash / 2 balanced; otherwise by `envoyReplicas` (balanced with one Envoy). */
export function placementFrom(cfg: SchedulerConfig): i32 {
  return resolvePlacement(<i32>cfg.param("affinityPlacement", 0), cfg.param("envoyReplicas", 1));
}
