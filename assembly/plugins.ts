// Per-plugin state. Envoy runs every plugin with the same vm_id and code in ONE VM per worker, each
// with its own root context (proxy-wasm-cpp-host getOrCreateThreadLocalWasm; on_configure runs once per
// root), so module globals are shared between, say, a data listener's plugin and a control listener's.
// Everything a plugin configures or learns therefore hangs off its root context id, and each callback
// activates its plugin before doing anything else.

import { PluginConfig } from "./config.ts";
import { SnapshotCache } from "./snapshot-cache.ts";
import { PoolView } from "./pool.ts";
import { Rng } from "./scheduling/rng.ts";
import { newPullState, PullState } from "./pull-state.ts";
import { FlowState } from "./flow-control/flow.ts";

export class Plugin {
  readonly config: PluginConfig;
  readonly snapshots: SnapshotCache;
  readonly pool: PoolView;
  /** Weighted target-model draws. */
  readonly modelRng: Rng;
  /** Pull mode only: the lease and the http_call in flight. */
  readonly pull: PullState | null;
  /** Flow control (issue 22): the queue and the room; off until a snapshot carries FLOW_CONTROL. */
  readonly flow: FlowState;

  constructor(config: PluginConfig, seed: u64, pullHolder: u64 = 0) {
    this.config = config;
    this.pull = config.pullEnabled() ? newPullState(config.keyPrefix(), pullHolder) : null;
    this.snapshots = new SnapshotCache(config.keyPrefix(), config.maxClockSkewMs);
    this.pool = new PoolView(seed, config);
    this.modelRng = new Rng(seed ^ 0x6d6f64656c647277);
    this.flow = new FlowState(config.keyPrefix());
  }
}

const byRoot = new Map<u32, Plugin>();

/** The active plugin and its configuration (set by activate() at the start of every callback). */
export let plugin: Plugin = new Plugin(new PluginConfig(), 1);
export let config: PluginConfig = plugin.config;

export function activate(p: Plugin): void {
  plugin = p;
  config = p.config;
}

/** on_configure: (re)creates the root's state; a reconfigured root starts from a fresh pool view. */
export function configurePlugin(rootId: u32, c: PluginConfig, seed: u64, pullHolder: u64 = 0): Plugin {
  const p = new Plugin(c, seed, pullHolder);
  byRoot.set(rootId, p);
  activate(p);
  return p;
}

export function pluginOf(rootId: u32): Plugin | null {
  return byRoot.has(rootId) ? byRoot.get(rootId) : null;
}

/** on_delete of a root context: the plugin is gone (its streams have ended before it). */
export function forgetPlugin(rootId: u32): bool {
  return byRoot.delete(rootId);
}
