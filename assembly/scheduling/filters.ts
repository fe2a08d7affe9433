// Filters by their old module path (tests and callers written before plugins/ existed).
export { ReadyFilter } from "./plugins/ready-filter";
export { EndpointSubsetFilter, subsetContains } from "./plugins/endpoint-subset-filter";
export {
  CriticalRequestFilter,
  LowQueueFilter,
  HasCapacityFilter,
  LeastQueueFilter,
  LeastKvFilter,
  LoraSoftAffinityFilter,
  DropRequestFilter,
  DecisionTreeFilter,
} from "./plugins/legacy-nodes";
