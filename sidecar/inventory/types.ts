// The inventory's output contract: what the sidecar knows about each served InferencePool, whichever
// source (Kubernetes informers or a manifests directory) it came from.
import type { Criticality, EngineType, FailureMode } from "../snapshot/types.ts";

export const GROUP_V1 = "inference.networking.k8s.io";
export const GROUP_X = "inference.networking.x-k8s.io";
/** llm-d Router's group (v0.10.0): InferenceObjective and InferenceModelRewrite v1alpha2 moved here from GROUP_X. */
export const GROUP_LLMD = "llm-d.ai";
export type PoolApiGroup = typeof GROUP_V1 | typeof GROUP_X;

/** Pool annotations we read (local extensions, all optional). */
export const ANNOTATIONS = {
  /** Engine of the pool's pods ("vllm", "sglang", …); a pod label of the same key overrides it per pod. */
  engine: "epp-wasm.io/engine",
  metricsPort: "epp-wasm.io/metrics-port",
  metricsPath: "epp-wasm.io/metrics-path",
  /** "false": scrape the whole metrics page instead of asking for the mapping's metrics with `name[]`. */
  metricsNameFilter: "epp-wasm.io/metrics-name-filter",
  /** "true": unknown models get 404 instead of passing through. */
  strictModels: "epp-wasm.io/strict-models",
  /** Pod annotation, local development only: serve this port instead of the pool's target ports. */
  podPort: "epp-wasm.io/port",
  /** The pool's scheduling config: a ConfigMap in the pool's namespace, "NAME" or "NAME/KEY". */
  config: "epp-wasm.io/config",
  /** Upstream pod annotation narrowing a pool's target ports ("8000,8001"). */
  activePorts: "inference.networking.k8s.io/active-ports",
} as const;

export interface PoolAnnotations {
  engine?: EngineType;
  metricsPort?: number;
  metricsPath?: string;
  metricsNameFilter?: boolean;
  strictModels: boolean;
  /** From `epp-wasm.io/config`: the ConfigMap (same namespace) holding the pool's EndpointPickerConfig. */
  config?: { configMap: string; key?: string };
}

/** The key read when the annotation names none (else the ConfigMap's only key). */
export const CONFIG_MAP_DEFAULT_KEY = "config.yaml";

/** The pool's EndpointPickerConfig as found in its ConfigMap: the text, or why there is none. */
export interface PoolConfigText {
  configMap: string;
  /** The key read, when one could be chosen. */
  key?: string;
  text?: string;
  /** Set when the ConfigMap or the key is missing. */
  error?: string;
}

export interface PoolSpec {
  namespace: string;
  name: string;
  apiGroup: PoolApiGroup;
  apiVersion: "v1" | "v1alpha2";
  /** matchLabels (v1) or the plain selector map (v1alpha2); AND semantics. */
  selector: Record<string, string>;
  targetPorts: number[];
  failureMode: FailureMode;
  annotations: PoolAnnotations;
  /** v1 `spec.appProtocol` when it is h2c: the pods speak HTTP/2 cleartext only, so scrapes must too. */
  appProtocol?: "kubernetes.io/h2c";
}

export interface InventoryEndpoint {
  podName: string;
  address: string;
  port: number;
  ready: boolean;
  labels: Record<string, string>;
  /** From the pod's engine label, else the pool's engine annotation. */
  engine?: EngineType;
}

export interface InventoryModel {
  name: string;
  criticality: Criticality;
  /** Weight 0 on every target = uniform draw (weights were not set). */
  targets: { name: string; weight: number }[];
}

export interface InventoryObjective {
  name: string;
  priority: number | null;
}

export interface InventoryRewrite {
  /** Exact model names; empty = every model. */
  matches: string[];
  targets: { model: string; weight: number }[];
}

export interface PoolInventory {
  pool: PoolSpec;
  endpoints: InventoryEndpoint[];
  models: InventoryModel[];
  objectives: InventoryObjective[];
  /** In precedence order: exact-match rules first, then match-all; older resource first; listed order. */
  rewrites: InventoryRewrite[];
  /** Present when the pool carries the `epp-wasm.io/config` annotation. */
  config?: PoolConfigText;
}

/** pino-compatible subset. */
export interface Logger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
}

export const silentLogger: Logger = { info() {}, warn() {}, error() {}, debug() {} };

export interface InvalidResource {
  kind: string;
  namespace: string;
  name: string;
  /** Dotted path of the offending field, e.g. "spec.targetModels[1].weight". */
  field: string;
  /** Stable machine-readable reason, used as a metric label. */
  reason: string;
  message: string;
}

/** Called once per rejected object version; wire to a prom-client counter `invalidResources{kind,reason}`. */
export type InvalidResourceHook = (invalid: InvalidResource) => void;

export interface InventoryOptions {
  /** Serve pools in this namespace only; undefined = every namespace. */
  namespace?: string;
  /** Serve only pools with this name (within `namespace` when given). */
  poolName?: string;
  /** Serve only pools of this API group; default both, v1 winning a same-name clash. */
  poolGroup?: PoolApiGroup;
  logger?: Logger;
  onInvalid?: InvalidResourceHook;
  /** Change events within this window are merged into one (ms, default 20). */
  coalesceMs?: number;
}

export interface Inventory {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once every initial list (or directory scan) has completed. */
  readonly synced: boolean;
  pools(): PoolInventory[];
  /** `change`: the pools changed (coalesced); `synced`: emitted once, when `synced` turns true. */
  on(event: "change" | "synced", listener: () => void): this;
  off(event: "change" | "synced", listener: () => void): this;
  once(event: "change" | "synced", listener: () => void): this;
}
