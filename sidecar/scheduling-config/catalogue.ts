// Every EndpointPickerConfig plugin type the filter's scheduling registry (assembly/scheduling/registry.ts)
// implements, with its parameters and defaults. Upstream types keep upstream's names and parameter names
// (GIE v1.5.0, llm-d Router); our own plugins have their own names. docs/scheduling.md is the prose form.
//
// Nested upstream parameters travel flattened with a dot (`encodedEndpointHeaderConfig.header`), since a
// PLUGINS record carries one level of key → value.

import type { ParamSpec, PluginSpec } from "./catalogue-types.ts";

const int = (min: number, max?: number): ParamSpec["type"] =>
  max === undefined ? { kind: "integer", min } : { kind: "integer", min, max };
const num = (min: number, max?: number): ParamSpec["type"] =>
  max === undefined ? { kind: "number", min } : { kind: "number", min, max };

/** Shared by prefix-cache-scorer and approx-prefix-cache-producer, as upstream's loader does. */
const PREFIX_PARAMS: Record<string, ParamSpec> = {
  autoTune: {
    type: { kind: "boolean" },
    default: true,
    doc: "Size each endpoint's prefix LRU from its KV-cache geometry (num_gpu_blocks × block size); off: lruCapacityPerServer.",
  },
  blockSizeTokens: {
    type: int(16, 16),
    default: 16,
    doc: "Prompt block size in tokens (× 4 characters). The filter hashes 64-character blocks, so only 16 is accepted.",
  },
  maxPrefixBlocksToMatch: {
    type: int(1, 256),
    default: 256,
    doc: "Leading blocks looked up in the prefix index (the filter hashes at most 256).",
  },
  maxPrefixTokensToMatch: {
    type: int(0),
    default: 0,
    doc: "When > 0, overrides maxPrefixBlocksToMatch with tokens / blockSizeTokens.",
  },
  lruCapacityPerServer: {
    type: int(1),
    default: 31250,
    doc: "Blocks remembered per endpoint when autoTune is off or the endpoint reports no KV geometry.",
  },
};

const PICKER_PARAMS: Record<string, ParamSpec> = {
  maxNumOfEndpoints: {
    type: int(1),
    default: 1,
    doc: "Accepted for compatibility; the list written is the pick plus the filter's maxFallbacks (destinationMode).",
  },
};

/** Load model shared by our default profile's load-aware scorers. */
const LOAD_PARAMS: Record<string, ParamSpec> = {
  runningLoadWeight: {
    type: num(0),
    default: 0.2,
    doc: "Weight of a running request in the load figure (a queued or in-flight request counts 1).",
  },
  tokensPerLoadUnit: {
    type: num(1),
    default: 4096,
    doc: "Prompt tokens dispatched since the scrape that count as one queued request.",
  },
  affinityEpsilon: {
    type: num(0),
    default: 0.25,
    doc: "Affinity holds while an endpoint's load ≤ mean·(1 + affinityEpsilon) + affinitySlack.",
  },
  affinitySlack: { type: num(0), default: 8, doc: "Absolute slack of the affinity load bound." },
  affinityMaxQueue: {
    type: num(0),
    default: 128,
    doc: "No affinity for an endpoint whose waiting + in-flight requests exceed this.",
  },
  capacityScaledLoad: {
    type: { kind: "boolean" },
    default: true,
    doc: "Scale an endpoint's running and in-flight-token load by the pool's mean KV size over its own (a smaller pod counts its batch as fuller); exactly 1 in a uniform pool.",
  },
};

/** CATALOGUE: every plugin type the filter implements. */
export const CATALOGUE: readonly PluginSpec[] = [
  {
    type: "queue-scorer",
    kind: "scorer",
    origin: "gie",
    doc: "Shortest waiting queue scores 1, longest 0 (min-max over the candidates; all equal → 1).",
    params: {},
  },
  {
    type: "kv-cache-utilization-scorer",
    kind: "scorer",
    origin: "gie",
    doc: "1 − KV-cache usage.",
    params: {},
  },
  {
    type: "prefix-cache-scorer",
    kind: "scorer",
    origin: "gie",
    doc: "Leading prompt blocks this filter last sent to the endpoint / prompt blocks (approximate prefix index).",
    params: PREFIX_PARAMS,
  },
  {
    type: "approx-prefix-cache-producer",
    kind: "producer",
    origin: "gie",
    doc: "The prefix index the prefix scorers read and the pick feeds; created from prefix-cache-scorer's parameters when absent.",
    params: PREFIX_PARAMS,
  },
  {
    type: "lora-affinity-scorer",
    kind: "scorer",
    origin: "gie",
    doc: "1 adapter running, 0.8 room to load it, 0.6 adapter waiting, else 0; requests without an adapter score 1.",
    params: {},
  },
  {
    type: "running-requests-size-scorer",
    kind: "scorer",
    origin: "gie",
    doc: "Fewest running requests scores 1 (min-max).",
    params: {},
  },
  {
    type: "max-score-picker",
    kind: "picker",
    origin: "gie",
    doc: "Highest weighted total first; ties in random order.",
    params: PICKER_PARAMS,
  },
  {
    type: "random-picker",
    kind: "picker",
    origin: "gie",
    doc: "Uniform random order; scores ignored.",
    params: PICKER_PARAMS,
  },
  {
    type: "weighted-random-picker",
    kind: "picker",
    origin: "gie",
    doc: "Random order with P(first) ∝ total score (A-Res); zero totals never picked, all zero → uniform.",
    params: PICKER_PARAMS,
  },
  {
    type: "single-profile-handler",
    kind: "profile-handler",
    origin: "gie",
    doc: "Runs the one scheduling profile.",
    params: {},
  },
  {
    type: "utilization-detector",
    kind: "saturation-detector",
    origin: "gie",
    doc: "Admission: a sheddable request (priority < 0) gets 429 when no fresh endpoint is within both limits.",
    params: {
      queueDepthThreshold: { type: int(1), default: 5, doc: "Waiting requests an endpoint may hold." },
      kvCacheUtilThreshold: {
        type: num(0, 1),
        default: 0.8,
        doc: "KV-cache usage (0..1] an endpoint may reach.",
      },
      metricsStalenessThreshold: {
        type: { kind: "duration" },
        default: "200ms",
        doc: "Metrics older than this count as saturated.",
      },
      headroom: {
        type: num(0),
        default: 0,
        doc: "Burst allowance: limits are queueDepthThreshold·(1+headroom) and min(1, kvCacheUtilThreshold·(1+headroom)).",
      },
    },
  },
  {
    type: "session-affinity-scorer",
    kind: "scorer",
    origin: "llm-d",
    doc: "The endpoint named by the request's session token scores 1 unless saturated; the response carries the token of the endpoint picked.",
    params: {
      strategy: {
        type: { kind: "enum", values: ["encoded_endpoint_header"] },
        default: "encoded_endpoint_header",
        doc: "Only the stateless token strategy (llm-d's default); session_id is not supported.",
      },
      "encodedEndpointHeaderConfig.header": {
        type: { kind: "string" },
        default: "x-session-token",
        doc: "Request and response header carrying the token (base64 of the endpoint's ip:port).",
      },
    },
  },
  {
    type: "fresh-load-producer",
    kind: "producer",
    origin: "epp-wasm",
    doc: "Load per endpoint corrected by what this filter dispatched since the scrape, and the affinity load bound; read by fresh-load-scorer, bounded-prefix-scorer and rendezvous-affinity-scorer (one with defaults is created when absent).",
    params: LOAD_PARAMS,
  },
  {
    type: "fresh-load-scorer",
    kind: "scorer",
    origin: "epp-wasm",
    doc: "Least corrected load scores 1 (min-max over fresh-load-producer's figure).",
    params: {},
  },
  {
    type: "kv-headroom-scorer",
    kind: "scorer",
    origin: "epp-wasm",
    doc: "Free KV blocks left after this request and this filter's dispatches since the scrape, as a fraction of all blocks.",
    params: {},
  },
  {
    type: "bounded-prefix-scorer",
    kind: "scorer",
    origin: "epp-wasm",
    doc: "prefix-cache-scorer's fraction, 0 where the endpoint is over the affinity load bound.",
    params: {},
  },
  {
    type: "rendezvous-affinity-scorer",
    kind: "scorer",
    origin: "epp-wasm",
    doc: "Highest-random-weight hashing of the prompt's leading blocks over endpoints within the load bound, so independent filters agree on a prefix's pod.",
    params: {
      affinityBlocks: { type: int(1, 256), default: 16, doc: "Leading blocks that form the affinity key." },
      affinityMinBlocks: {
        type: int(0),
        default: 32,
        doc: "Prompts with fewer blocks get no rendezvous affinity.",
      },
      affinityDirectory: {
        type: { kind: "boolean" },
        default: true,
        doc: "Follow and publish placements shared by the workers of one Envoy.",
      },
      affinityPlacement: {
        type: { kind: "enum", values: ["auto", "hash", "balanced"] },
        default: "auto",
        doc: "Where a new prompt group goes: hash over all endpoints within the bound, or only those at or below mean KV usage; auto = balanced with one Envoy, hash with several.",
      },
    },
  },
  {
    type: "inflight-load-scorer",
    kind: "scorer",
    origin: "epp-wasm",
    doc: "Fewest requests dispatched by this filter since the scrape scores 1 (min-max).",
    params: {},
  },
  {
    type: "legacy-filter-tree",
    kind: "filter",
    origin: "epp-wasm",
    doc: "GIE v0.3's filter tree (critical → low queue → LoRA affinity → least queue → least KV; sheddable without capacity → 429).",
    params: {
      queueingThresholdLora: { type: int(0), default: 128, doc: "Critical requests prefer waiting < this." },
      loraAffinityThreshold: {
        type: num(0, 1),
        default: 0.999,
        doc: "Probability of choosing endpoints that run the adapter over ones with a free slot.",
      },
      queueThresholdCritical: { type: int(0), default: 5, doc: "Non-critical requests need waiting ≤ this…" },
      kvCacheThreshold: { type: num(0, 1), default: 0.8, doc: "…and KV-cache usage ≤ this, else 429." },
    },
  },
  {
    type: "always-admit-detector",
    kind: "saturation-detector",
    origin: "epp-wasm",
    doc: "No admission step (the legacy filter tree sheds by itself).",
    params: {},
  },
];

/** UPSTREAM_UNSUPPORTED: upstream plugin types we know of but do not implement. */
export const UPSTREAM_UNSUPPORTED: readonly string[] = [
  // GIE v1.5.0
  "token-load-scorer",
  "latency-scorer",
  "predicted-latency-scorer",
  "prefix-cache-affinity-filter",
  "slo-headroom-tier-filter",
  "header-based-testing-filter",
  "inflight-load-producer",
  "predicted-latency-producer",
  "latency-slo-admitter",
  "concurrency-detector",
  "metrics-data-source",
  "core-metrics-extractor",
  "openai-parser",
  "passthrough-parser",
  "vllmgrpc-parser",
  "request-attribute-reporter",
  "base-model-to-header",
  "body-field-to-header",
  "destination-endpoint-served-verifier",
  "fcfs-ordering-policy",
  "edf-ordering-policy",
  "slo-deadline-ordering-policy",
  "global-strict-fairness-policy",
  "round-robin-fairness-policy",
  // llm-d Router
  "session-affinity-filter",
  "precise-prefix-cache-producer",
  "load-aware-scorer",
  "active-request-scorer",
  "no-hit-lru-scorer",
  "context-length-aware",
  "disagg-profile-handler",
  "data-parallel-profile-handler",
];
