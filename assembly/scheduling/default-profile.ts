// Our default profile's plugins by their old module path (one file each under plugins/; the profile
// itself is config/scheduling/default.yaml, built in as builtin.ts `default`).
export { LoadModel } from "./plugins/fresh-load-producer";
export { FreshLoadScorer } from "./plugins/fresh-load-scorer";
export { KvHeadroomScorer } from "./plugins/kv-headroom-scorer";
export { BoundedPrefixScorer } from "./plugins/bounded-prefix-scorer";
export {
  RendezvousAffinityScorer,
  affinityKey,
  AFFINITY_BLOCKS,
  AFFINITY_MIN_BLOCKS,
  PLACEMENT_AUTO,
  PLACEMENT_HASH,
  PLACEMENT_BALANCED,
} from "./plugins/rendezvous-affinity-scorer";
