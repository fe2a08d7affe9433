// Which scheduling config each pool routes with: the pool's own ConfigMap (`epp-wasm.io/config`) when it
// has loaded once, else the sidecar-wide file (--config / --profile), else no PLUGINS section and the
// profile name alone. A refused config never replaces a good one: the last good one stays in force and the
// refusal is reported (status, /readyz body, metric) until a newer text loads or the source goes away.
import type { PoolInventory } from "../inventory/types.ts";
import type { FlowControlSection, SchedulingSection } from "../snapshot/types.ts";
import type { ConfigRejection, FileSource } from "./file-source.ts";
import { ConfigError, configHash, loadConfig } from "./load.ts";
import type { LoadedConfig, Thresholds } from "./load.ts";

export interface ResolvedConfig {
  /** The SCHEDULER record's profile name. */
  profile: string;
  section?: SchedulingSection;
  /** The FLOW_CONTROL section, when the config turns flow control on. */
  flowControl?: FlowControlSection;
  thresholds?: Thresholds;
  hash?: string;
  source?: string;
}

export interface ConfigStatus {
  /** "sidecar" for the file, "pool NAMESPACE/NAME" for a ConfigMap. */
  scope: string;
  source: string;
  active: { name: string; hash: string; source: string } | null;
  rejection: ConfigRejection | null;
}

export interface ConfigRegistryOptions {
  file?: FileSource;
  /** Profile name sent when no config has loaded (the --profile name). */
  fallbackProfile: string;
  /** Every new refusal, once per refused text: wire to the rejection counter. */
  onReject?: (source: "file" | "configmap", rejection: ConfigRejection) => void;
  now?: () => number;
}

interface PoolEntry {
  source: string;
  lastHash?: string;
  lastError?: string;
  active?: LoadedConfig;
  rejection?: ConfigRejection;
}

export class ConfigRegistry {
  private readonly pools = new Map<string, PoolEntry>();
  private fileRejectionSeen: ConfigRejection | undefined;

  constructor(private readonly opts: ConfigRegistryOptions) {}

  /** Call from the file source's onChange: counts a new refusal. */
  fileChanged(): void {
    const r = this.opts.file?.rejection;
    if (r !== undefined && r !== this.fileRejectionSeen) this.opts.onReject?.("file", r);
    this.fileRejectionSeen = r;
  }

  resolve(inv: PoolInventory): ResolvedConfig {
    const key = `${inv.pool.namespace}/${inv.pool.name}`;
    const own = inv.config === undefined ? undefined : this.poolConfig(key, inv);
    if (inv.config === undefined) this.pools.delete(key);
    const cfg = own ?? this.opts.file?.active;
    if (cfg === undefined) return { profile: this.opts.fallbackProfile };
    return {
      profile: cfg.displayName,
      section: cfg.section,
      ...(cfg.flowControl === undefined ? {} : { flowControl: cfg.flowControl }),
      thresholds: cfg.thresholds,
      hash: cfg.hash,
      source: cfg.source,
    };
  }

  /** Drops pools that are no longer served. */
  retain(live: ReadonlySet<string>): void {
    for (const k of this.pools.keys()) if (!live.has(k)) this.pools.delete(k);
  }

  status(): ConfigStatus[] {
    const out: ConfigStatus[] = [];
    const f = this.opts.file;
    if (f !== undefined)
      out.push({
        scope: "sidecar",
        source: f.path,
        active: summary(f.active),
        rejection: f.rejection ?? null,
      });
    for (const [key, e] of [...this.pools].sort(([a], [b]) => (a < b ? -1 : 1)))
      out.push({
        scope: `pool ${key}`,
        source: e.source,
        active: summary(e.active),
        rejection: e.rejection ?? null,
      });
    return out;
  }

  rejections(): ConfigRejection[] {
    return this.status().flatMap((s) => (s.rejection === null ? [] : [s.rejection]));
  }

  private poolConfig(key: string, inv: PoolInventory): LoadedConfig | undefined {
    const c = inv.config!;
    const now = this.opts.now ?? Date.now;
    // The pool's annotation is the source's identity; the key found in the ConfigMap only names the text.
    const ref = inv.pool.annotations.config;
    const source = `configmap ${inv.pool.namespace}/${c.configMap}${ref?.key === undefined ? "" : ` key ${ref.key}`}`;
    const textSource = `configmap ${inv.pool.namespace}/${c.configMap}${c.key === undefined ? "" : ` key ${c.key}`}`;
    let e = this.pools.get(key);
    if (e === undefined || e.source !== source) {
      // Another ConfigMap (or key): what the old one said no longer applies.
      this.pools.set(key, (e = { source }));
    }
    if (c.text === undefined) {
      const message = c.error ?? `${source}: no config`;
      if (e.lastError !== message) {
        e.lastError = message;
        e.lastHash = undefined;
        e.rejection = { source, reason: "not_found", message, hash: "", atMs: now() };
        this.opts.onReject?.("configmap", e.rejection);
      }
      return e.active;
    }
    e.lastError = undefined;
    const hash = configHash(c.text);
    if (hash !== e.lastHash) {
      e.lastHash = hash;
      try {
        e.active = loadConfig(c.text, { source: textSource, displayName: c.configMap });
        e.rejection = undefined;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        e.rejection = { source: textSource, reason: err.reason, message: err.message, hash, atMs: now() };
        this.opts.onReject?.("configmap", e.rejection);
      }
    }
    return e.active;
  }
}

function summary(c: LoadedConfig | undefined): ConfigStatus["active"] {
  return c === undefined ? null : { name: c.displayName, hash: c.hash, source: c.source };
}
