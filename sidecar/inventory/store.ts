// The state both inventory modes feed: normalized records per source, rejection of invalid objects (logged
// and counted once per object version, the previous good version kept), and coalesced change events.
import { EventEmitter } from "node:events";
import { normalize } from "./resources.ts";
import type {
  ConfigMapRecord,
  InventoryRecord,
  ModelRecord,
  ObjectiveRecord,
  PodRecord,
  PoolRecord,
  RawObject,
  RewriteRecord,
} from "./resources.ts";
import { assemble } from "./select.ts";
import { silentLogger } from "./types.ts";
import type { InventoryOptions, Logger, PoolInventory } from "./types.ts";

interface Entry {
  /** JSON of the record, to tell real changes from resourceVersion-only updates. */
  json: string;
  record: InventoryRecord;
}

export function objectKey(obj: RawObject): string {
  const m = obj.metadata ?? {};
  const ns = typeof m.namespace === "string" && m.namespace !== "" ? m.namespace : "default";
  return `${String(obj.apiVersion)}/${String(obj.kind)}/${ns}/${String(m.name)}`;
}

export class RecordStore extends EventEmitter {
  private readonly sources = new Map<string, Map<string, Entry>>();
  /** Last rejected raw JSON per `source|object key`, so a rejection is logged and counted once. */
  private readonly rejected = new Map<string, string>();
  private cache: PoolInventory[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;
  private readonly coalesceMs: number;

  constructor(private readonly opts: InventoryOptions) {
    super();
    this.log = opts.logger ?? silentLogger;
    this.coalesceMs = opts.coalesceMs ?? 20;
  }

  upsert(source: string, obj: RawObject): void {
    const key = objectKey(obj);
    const result = normalize(obj);
    if (!result.ok) {
      if (result.invalid === undefined) return; // a kind we do not read
      const raw = JSON.stringify(obj);
      if (this.rejected.get(`${source}|${key}`) === raw) return;
      this.rejected.set(`${source}|${key}`, raw);
      const inv = result.invalid;
      const kept = this.sources.get(source)?.has(key) ? "; keeping its previous version" : "";
      this.log.warn(
        { kind: inv.kind, namespace: inv.namespace, name: inv.name, field: inv.field, reason: inv.reason },
        `invalid ${inv.kind} ${inv.namespace}/${inv.name}: ${inv.message}${kept}`,
      );
      this.opts.onInvalid?.(inv);
      return;
    }
    this.rejected.delete(`${source}|${key}`);
    const json = JSON.stringify(result.record);
    let map = this.sources.get(source);
    if (map === undefined) this.sources.set(source, (map = new Map()));
    if (map.get(key)?.json === json) return;
    map.set(key, { json, record: result.record });
    this.changed();
  }

  remove(source: string, obj: RawObject): void {
    const key = objectKey(obj);
    this.rejected.delete(`${source}|${key}`);
    if (this.sources.get(source)?.delete(key)) this.changed();
  }

  /** Makes `objs` the whole content of `source` (file mode, or dropping a stopped informer's objects). */
  replaceSource(source: string, objs: RawObject[]): void {
    const keep = new Set(objs.map(objectKey));
    const map = this.sources.get(source);
    if (map !== undefined)
      for (const key of [...map.keys()])
        if (!keep.has(key)) {
          map.delete(key);
          this.changed();
        }
    const prefix = `${source}|`;
    for (const k of [...this.rejected.keys()])
      if (k.startsWith(prefix) && !keep.has(k.slice(prefix.length))) this.rejected.delete(k);
    for (const o of objs) this.upsert(source, o);
    if (objs.length === 0) this.sources.delete(source);
  }

  pools(): PoolInventory[] {
    if (this.cache === undefined) {
      const set = {
        pools: [] as PoolRecord[],
        pods: [] as PodRecord[],
        models: [] as ModelRecord[],
        objectives: [] as ObjectiveRecord[],
        rewrites: [] as RewriteRecord[],
        configMaps: [] as ConfigMapRecord[],
      };
      for (const map of this.sources.values())
        for (const { record: r } of map.values()) {
          if (r.kind === "InferencePool") set.pools.push(r);
          else if (r.kind === "Pod") set.pods.push(r);
          else if (r.kind === "InferenceModel") set.models.push(r);
          else if (r.kind === "InferenceObjective") set.objectives.push(r);
          else if (r.kind === "ConfigMap") set.configMaps.push(r);
          else set.rewrites.push(r);
        }
      this.cache = assemble(set, this.opts, this.log);
    }
    return this.cache;
  }

  /** Emits `change` now if one is pending (e.g. when the initial sync completes). */
  flush(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.emit("change");
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private changed(): void {
    this.cache = undefined;
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.emit("change");
    }, this.coalesceMs);
  }
}
