// Pure assembly of PoolInventory[] from normalized records: which pools are served, which pods are their
// endpoints, which models/objectives/rewrites attach to them, and in what order.
import type { EngineType } from "../snapshot/types.ts";
import { ENGINES } from "../snapshot/types.ts";
import type {
  ConfigMapRecord,
  ModelRecord,
  ObjectiveRecord,
  PodRecord,
  PoolRecord,
  RewriteRecord,
} from "./resources.ts";
import { ANNOTATIONS, CONFIG_MAP_DEFAULT_KEY, GROUP_LLMD, GROUP_V1 } from "./types.ts";
import type {
  InventoryEndpoint,
  InventoryOptions,
  InventoryRewrite,
  Logger,
  PoolConfigText,
  PoolInventory,
} from "./types.ts";

export interface RecordSet {
  pools: Iterable<PoolRecord>;
  pods: Iterable<PodRecord>;
  models: Iterable<ModelRecord>;
  objectives: Iterable<ObjectiveRecord>;
  rewrites: Iterable<RewriteRecord>;
  configMaps?: Iterable<ConfigMapRecord>;
}

type Selection = Pick<InventoryOptions, "namespace" | "poolName" | "poolGroup">;

/** Older first; equal (or missing) timestamps fall back to the name so the outcome is deterministic. */
function olderFirst(
  a: { meta: { createdMs: number; name: string } },
  b: { meta: { createdMs: number; name: string } },
) {
  return (
    a.meta.createdMs - b.meta.createdMs ||
    (a.meta.name < b.meta.name ? -1 : a.meta.name > b.meta.name ? 1 : 0)
  );
}

/** The pools to serve; a pool existing in both API groups is served once, from v1. */
export function selectPools(pools: Iterable<PoolRecord>, sel: Selection): PoolRecord[] {
  const byName = new Map<string, PoolRecord>();
  for (const p of pools) {
    const s = p.spec;
    if (sel.namespace !== undefined && s.namespace !== sel.namespace) continue;
    if (sel.poolName !== undefined && s.name !== sel.poolName) continue;
    if (sel.poolGroup !== undefined && s.apiGroup !== sel.poolGroup) continue;
    const key = `${s.namespace}/${s.name}`;
    const prev = byName.get(key);
    if (prev === undefined || (prev.spec.apiGroup !== GROUP_V1 && s.apiGroup === GROUP_V1))
      byName.set(key, p);
  }
  return [...byName.values()].sort((a, b) => (keyOf(a) < keyOf(b) ? -1 : 1));
}

function keyOf(p: PoolRecord): string {
  return `${p.spec.namespace}/${p.spec.name}`;
}

export function matchesSelector(labels: Record<string, string>, selector: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector)) if (labels[k] !== v) return false;
  return true;
}

/** Every podIP × target port is one endpoint, narrowed by the pod's active-ports or replaced by its port override. */
export function endpointsOf(pool: PoolRecord, pods: Iterable<PodRecord>): InventoryEndpoint[] {
  const s = pool.spec;
  const out: InventoryEndpoint[] = [];
  const seen = new Set<string>();
  const sorted = [...pods].filter(
    (p) => p.meta.namespace === s.namespace && matchesSelector(p.labels, s.selector),
  );
  sorted.sort((a, b) => (a.meta.name < b.meta.name ? -1 : a.meta.name > b.meta.name ? 1 : 0));
  for (const pod of sorted) {
    if (pod.podIP === "" || seen.has(pod.meta.name)) continue; // not scheduled yet
    seen.add(pod.meta.name);
    const label = pod.labels[ANNOTATIONS.engine];
    const engine =
      label !== undefined && ENGINES.includes(label as EngineType)
        ? (label as EngineType)
        : s.annotations.engine;
    for (const port of portsOf(pod, s.targetPorts)) {
      const e: InventoryEndpoint = {
        podName: pod.meta.name,
        address: pod.podIP,
        port,
        ready: pod.ready,
        labels: pod.labels,
      };
      if (engine !== undefined) e.engine = engine;
      out.push(e);
    }
  }
  return out;
}

function portsOf(pod: PodRecord, targetPorts: number[]): number[] {
  const override = Number(pod.annotations[ANNOTATIONS.podPort]);
  if (Number.isInteger(override) && override >= 1 && override <= 65535) return [override];
  const active = pod.annotations[ANNOTATIONS.activePorts];
  if (active === undefined) return targetPorts;
  const allowed = new Set(active.split(",").map((p) => Number(p.trim())));
  return targetPorts.filter((p) => allowed.has(p));
}

function attached<T extends { meta: { namespace: string }; poolName: string }>(
  list: Iterable<T>,
  pool: PoolRecord,
): T[] {
  return [...list].filter((r) => r.meta.namespace === pool.spec.namespace && r.poolName === pool.spec.name);
}

/** The annotated ConfigMap's text: the named key, else `config.yaml`, else its only key. */
export function configTextOf(pool: PoolRecord, maps: readonly ConfigMapRecord[]): PoolConfigText | undefined {
  const ref = pool.spec.annotations.config;
  if (ref === undefined) return undefined;
  const at = `ConfigMap ${pool.spec.namespace}/${ref.configMap}`;
  const cm = maps.find((m) => m.meta.namespace === pool.spec.namespace && m.meta.name === ref.configMap);
  if (cm === undefined) return { configMap: ref.configMap, error: `${at} not found` };
  const keys = Object.keys(cm.data).sort();
  const key =
    ref.key ??
    (Object.hasOwn(cm.data, CONFIG_MAP_DEFAULT_KEY)
      ? CONFIG_MAP_DEFAULT_KEY
      : keys.length === 1
        ? keys[0]
        : undefined);
  if (key === undefined || !Object.hasOwn(cm.data, key))
    return {
      configMap: ref.configMap,
      error:
        ref.key !== undefined
          ? `${at} has no key ${ref.key}`
          : `${at} has no key ${CONFIG_MAP_DEFAULT_KEY} and ${keys.length} others (${keys.join(", ")}); name one as CONFIGMAP/KEY`,
    };
  return { configMap: ref.configMap, key, text: cm.data[key]! };
}

/**
 * One object per namespace/name across the two API groups: an llm-d.ai InferenceObjective or
 * InferenceModelRewrite supersedes the inference.networking.x-k8s.io one of the same namespace and name
 * (llm-d Router is where these APIs live on; the older copy is what a migration leaves behind).
 */
export function preferLlmd<T extends ObjectiveRecord | RewriteRecord>(list: Iterable<T>, log?: Logger): T[] {
  const byName = new Map<string, T>();
  for (const r of list) {
    const key = `${r.meta.namespace}/${r.meta.name}`;
    const prev = byName.get(key);
    if (prev === undefined || (prev.group !== GROUP_LLMD && r.group === GROUP_LLMD)) byName.set(key, r);
    const loser = prev === undefined ? undefined : byName.get(key) === r ? prev : r;
    if (loser !== undefined)
      log?.debug(
        { kind: r.kind, namespace: r.meta.namespace, name: r.meta.name, ignored: loser.group },
        `${r.kind} ${key} exists in both API groups; the ${GROUP_LLMD} one is used`,
      );
  }
  return [...byName.values()];
}

export function assemble(records: RecordSet, sel: Selection, log?: Logger): PoolInventory[] {
  const pods = [...records.pods];
  const maps = [...(records.configMaps ?? [])];
  const objectives = preferLlmd(records.objectives, log);
  const rewrites = preferLlmd(records.rewrites, log);
  return selectPools(records.pools, sel).map((pool) => {
    const models = attached(records.models, pool).sort(olderFirst);
    const byModelName = new Map<string, ModelRecord>();
    for (const m of models) {
      const winner = byModelName.get(m.modelName);
      if (winner === undefined) byModelName.set(m.modelName, m);
      else
        log?.debug(
          {
            kind: "InferenceModel",
            namespace: m.meta.namespace,
            name: m.meta.name,
            winner: winner.meta.name,
          },
          `modelName "${m.modelName}" already in use by an older InferenceModel; ignored`,
        );
    }
    const config = configTextOf(pool, maps);
    return {
      ...(config === undefined ? {} : { config }),
      pool: pool.spec,
      endpoints: endpointsOf(pool, pods),
      models: [...byModelName.values()].map((m) => ({
        name: m.modelName,
        criticality: m.criticality,
        targets: m.targets.map((t) => ({ ...t })),
      })),
      objectives: attached(objectives, pool)
        .sort(olderFirst)
        .map((o) => ({ name: o.meta.name, priority: o.priority })),
      rewrites: orderRewrites(attached(rewrites, pool)),
    };
  });
}

/** Exact-match rules before match-all rules; within each class older resources first, then listed order. */
export function orderRewrites(resources: RewriteRecord[]): InventoryRewrite[] {
  const sorted = [...resources].sort(olderFirst);
  const exact: InventoryRewrite[] = [];
  const matchAll: InventoryRewrite[] = [];
  for (const r of sorted)
    for (const rule of r.rules) {
      const copy = { matches: [...rule.matches], targets: rule.targets.map((t) => ({ ...t })) };
      (rule.matches.length > 0 ? exact : matchAll).push(copy);
    }
  return [...exact, ...matchAll];
}
