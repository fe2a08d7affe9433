// GIE's scorers and our in-flight scorer by their old module path (one file each under plugins/).
export { QueueScorer } from "./plugins/queue-scorer";
export { RunningRequestsScorer } from "./plugins/running-requests-size-scorer";
export { KvCacheScorer } from "./plugins/kv-cache-utilization-scorer";
export { LoraAffinityScorer } from "./plugins/lora-affinity-scorer";
export { InflightLoadScorer } from "./plugins/inflight-load-scorer";
export { PrefixCacheScorer } from "./plugins/prefix-cache-scorer";
