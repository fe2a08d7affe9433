// Kubernetes mode: @kubernetes/client-node 1.4 list+watch informers for the pools, models, objectives,
// rewrites (GIE's and llm-d Router's groups) and the pods each served pool selects.
//
// What 1.4's ListWatch does itself: list, then watch from the list's resourceVersion; resume the watch
// from the last seen resourceVersion when the server ends the stream cleanly; forget the version and
// re-list on 410 Gone (HTTP status or an ERROR event with code 410); fire DELETE for objects a re-list
// no longer returns. What it lacks, added here: (1) `allowWatchBookmarks` (its makeInformer cannot pass
// extra query parameters, so we build the same ListWatch with a Watch that adds them) and a server-side
// `timeoutSeconds`, since 1.4 overrides its own client timeout; (2) any retry after an error: a dropped
// connection, a refused connection or a failed list leaves 1.4's informer stopped, so we restart it with
// doubling backoff (it resumes from its last resourceVersion, or re-lists when that is too old).
import { CoreV1Api, CustomObjectsApi, KubeConfig, ListWatch, Watch } from "@kubernetes/client-node";
import type { KubernetesListObject, KubernetesObject } from "@kubernetes/client-node";
import { StoreBackedInventory } from "./base.ts";
import type { RawObject } from "./resources.ts";
import { GROUP_LLMD, GROUP_V1, GROUP_X } from "./types.ts";
import type { InventoryOptions, Logger } from "./types.ts";

export interface KubernetesInventoryOptions extends InventoryOptions {
  /** A ready KubeConfig (tests); otherwise `kubeconfig` or, failing that, in-cluster / default loading. */
  kubeConfig?: KubeConfig;
  kubeconfig?: string;
  /** Restart delay after an informer error doubles from baseMs to maxMs (defaults 500 / 30000). */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Asks the API server to end each watch after this long, bounding half-open connections (default 300). */
  watchTimeoutSeconds?: number;
}

/** Adds the query parameters 1.4's ListWatch cannot pass through makeInformer. */
class BookmarkWatch extends Watch {
  constructor(
    config: KubeConfig,
    private readonly timeoutSeconds: number,
  ) {
    super(config);
  }

  override watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const params = { ...queryParams, allowWatchBookmarks: true, timeoutSeconds: this.timeoutSeconds };
    return super.watch(path, params, callback, done);
  }
}

interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
}

const POOL_V1: ResourceType = {
  group: GROUP_V1,
  version: "v1",
  plural: "inferencepools",
  kind: "InferencePool",
};
const POOL_X: ResourceType = {
  group: GROUP_X,
  version: "v1alpha2",
  plural: "inferencepools",
  kind: "InferencePool",
};
const CUSTOM_TYPES: ResourceType[] = [
  { group: GROUP_X, version: "v1alpha2", plural: "inferencemodels", kind: "InferenceModel" },
  { group: GROUP_X, version: "v1alpha2", plural: "inferenceobjectives", kind: "InferenceObjective" },
  { group: GROUP_X, version: "v1alpha2", plural: "inferencemodelrewrites", kind: "InferenceModelRewrite" },
  // Both groups are watched; a missing CRD lists as empty (see ManagedInformer), so either may be absent.
  { group: GROUP_LLMD, version: "v1alpha2", plural: "inferenceobjectives", kind: "InferenceObjective" },
  { group: GROUP_LLMD, version: "v1alpha2", plural: "inferencemodelrewrites", kind: "InferenceModelRewrite" },
];

interface InformerSpec {
  /** Store source name, also used in logs. */
  source: string;
  path: string;
  apiVersion: string;
  kind: string;
  list: () => Promise<KubernetesListObject<KubernetesObject>>;
  labelSelector?: string;
}

function statusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown } | undefined;
  if (typeof e?.code === "number") return e.code;
  if (typeof e?.statusCode === "number") return e.statusCode;
  return undefined;
}

/** One ListWatch plus the restart-with-backoff it lacks. */
class ManagedInformer {
  readonly informer: ListWatch<KubernetesObject>;
  synced = false;
  private stopped = true;
  private delayMs: number;
  private retry: NodeJS.Timeout | undefined;

  constructor(
    readonly spec: InformerSpec,
    kc: KubeConfig,
    private readonly sink: {
      upsert(source: string, obj: RawObject): void;
      remove(source: string, obj: RawObject): void;
      onSynced(): void;
    },
    private readonly backoff: { baseMs: number; maxMs: number },
    timeoutSeconds: number,
    private readonly log: Logger,
  ) {
    this.delayMs = backoff.baseMs;
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> => {
      try {
        const result = await spec.list();
        this.listed();
        return result;
      } catch (err) {
        if (statusOf(err) === 404 && !this.synced) {
          // The CRD (or namespace) does not exist: serve nothing from it, keep retrying slowly.
          this.log.warn(
            { source: spec.source },
            `${spec.path} not found (CRD not installed?); treating as empty`,
          );
          this.delayMs = backoff.maxMs;
          this.listed();
        }
        throw err;
      }
    };
    this.informer = new ListWatch(
      spec.path,
      new BookmarkWatch(kc, timeoutSeconds),
      list,
      false,
      spec.labelSelector,
    );
    const stamp = (obj: KubernetesObject): RawObject =>
      ({ ...obj, apiVersion: spec.apiVersion, kind: spec.kind }) as RawObject;
    const onUpsert = (obj: KubernetesObject) => {
      this.delayMs = backoff.baseMs;
      sink.upsert(spec.source, stamp(obj));
    };
    this.informer.on("add", onUpsert);
    this.informer.on("update", onUpsert);
    this.informer.on("delete", (obj) => {
      this.delayMs = backoff.baseMs;
      sink.remove(spec.source, stamp(obj));
    });
    this.informer.on("error", (err) => this.failed(err));
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    this.retry = undefined;
    await this.informer.stop();
  }

  private listed(): void {
    if (this.synced) return;
    this.synced = true;
    this.sink.onSynced();
  }

  private failed(err: unknown): void {
    if (this.stopped || this.retry !== undefined) return;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.backoff.maxMs);
    const status = statusOf(err);
    this.log.warn(
      { source: this.spec.source, status, err: (err as Error)?.message, retryInMs: delay },
      `watch of ${this.spec.path} failed; restarting`,
    );
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.stopped) void this.informer.start();
    }, delay);
  }
}

export class KubernetesInventory extends StoreBackedInventory {
  private readonly kc: KubeConfig;
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;
  private readonly base: ManagedInformer[] = [];
  private readonly podInformers = new Map<string, ManagedInformer>();
  private running = false;

  constructor(private readonly options: KubernetesInventoryOptions) {
    super(options);
    this.kc = options.kubeConfig ?? loadKubeConfig(options.kubeconfig);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
    const types = [...CUSTOM_TYPES];
    if (options.poolGroup !== GROUP_X) types.unshift(POOL_V1);
    if (options.poolGroup !== GROUP_V1) types.unshift(POOL_X);
    for (const t of types) this.base.push(this.managed(this.customSpec(t)));
    // Pools decide which pods to watch; re-check whenever the inventory changes.
    this.store.on("change", () => this.reconcilePodInformers());
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    await Promise.all(this.base.map((i) => i.start()));
    this.reconcilePodInformers();
    this.checkSynced();
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all([...this.base, ...this.podInformers.values()].map((i) => i.stop()));
    this.store.dispose();
  }

  private managed(spec: InformerSpec): ManagedInformer {
    const backoff = {
      baseMs: this.options.backoff?.baseMs ?? 500,
      maxMs: this.options.backoff?.maxMs ?? 30_000,
    };
    const sink = {
      upsert: (s: string, o: RawObject) => this.store.upsert(s, o),
      remove: (s: string, o: RawObject) => this.store.remove(s, o),
      onSynced: () => {
        this.reconcilePodInformers();
        this.checkSynced();
      },
    };
    return new ManagedInformer(
      spec,
      this.kc,
      sink,
      backoff,
      this.options.watchTimeoutSeconds ?? 300,
      this.log,
    );
  }

  private customSpec(t: ResourceType): InformerSpec {
    const ns = this.options.namespace;
    const base = `/apis/${t.group}/${t.version}`;
    return {
      source: `${t.group}/${t.version}/${t.plural}`,
      path: ns === undefined ? `${base}/${t.plural}` : `${base}/namespaces/${ns}/${t.plural}`,
      apiVersion: `${t.group}/${t.version}`,
      kind: t.kind,
      list: () =>
        (ns === undefined
          ? this.custom.listClusterCustomObject({ group: t.group, version: t.version, plural: t.plural })
          : this.custom.listNamespacedCustomObject({
              group: t.group,
              version: t.version,
              namespace: ns,
              plural: t.plural,
            })) as Promise<KubernetesListObject<KubernetesObject>>,
    };
  }

  /**
   * One pod informer per (namespace, selector) of the served pools, and one ConfigMap informer per namespace
   * with a pool that names its scheduling config (`epp-wasm.io/config`); informers no pool needs are stopped.
   */
  private reconcilePodInformers(): void {
    if (!this.running || !this.base.every((i) => i.synced)) return;
    const wanted = new Map<string, { namespace: string; labelSelector?: string }>();
    for (const { pool } of this.store.pools()) {
      const labelSelector = Object.entries(pool.selector)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([k, v]) => `${k}=${v}`)
        .join(",");
      wanted.set(`pods:${pool.namespace}?${labelSelector}`, { namespace: pool.namespace, labelSelector });
      if (pool.annotations.config !== undefined)
        wanted.set(`configmaps:${pool.namespace}`, { namespace: pool.namespace });
    }
    for (const [key, inf] of this.podInformers)
      if (!wanted.has(key)) {
        this.podInformers.delete(key);
        void inf.stop();
        this.store.replaceSource(key, []);
      }
    for (const [key, w] of wanted) {
      if (this.podInformers.has(key)) continue;
      const inf = this.managed(
        w.labelSelector === undefined ? this.configMapSpec(key, w.namespace) : this.podSpec(key, w),
      );
      this.podInformers.set(key, inf);
      void inf.start();
    }
  }

  private configMapSpec(source: string, namespace: string): InformerSpec {
    return {
      source,
      path: `/api/v1/namespaces/${namespace}/configmaps`,
      apiVersion: "v1",
      kind: "ConfigMap",
      list: () =>
        this.core.listNamespacedConfigMap({ namespace }) as Promise<KubernetesListObject<KubernetesObject>>,
    };
  }

  private podSpec(source: string, w: { namespace: string; labelSelector?: string }): InformerSpec {
    return {
      source,
      path: `/api/v1/namespaces/${w.namespace}/pods`,
      apiVersion: "v1",
      kind: "Pod",
      labelSelector: w.labelSelector,
      list: () =>
        this.core.listNamespacedPod({ namespace: w.namespace, labelSelector: w.labelSelector }) as Promise<
          KubernetesListObject<KubernetesObject>
        >,
    };
  }

  private checkSynced(): void {
    if (!this.running || this.synced) return;
    if (this.base.every((i) => i.synced) && [...this.podInformers.values()].every((i) => i.synced))
      this.markSynced();
  }
}

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path !== undefined) kc.loadFromFile(path);
  else kc.loadFromDefault(); // KUBECONFIG, ~/.kube/config, then the in-cluster service account
  return kc;
}
