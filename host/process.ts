// One "Envoy process": owns shared data and queues (scoped by vm_id), the CAS counter, stats, the clock,
// and the worker VMs. Plugins whose vm_id, VM configuration and code match share one VM per worker,
// each with its own root context (proxy-wasm-cpp-host src/wasm.cc makeVmKey and
// getOrCreateThreadLocalWasm; Envoy's VmConfig.vm_id contract), so module globals are shared between them.
import { createHash } from "node:crypto";
import { type Clock, realClock } from "./clock.ts";
import { SharedData, SharedQueues } from "./shared-data.ts";
import { MetricStore } from "./metrics.ts";
import { performHttpCall } from "./http-call.ts";
import { assertLoadable } from "./verify.ts";
import { LoadedPlugin, type WorkerRoot } from "./plugin.ts";
import { WasmVm, type ProcessServices } from "./vm.ts";
import { toBytes } from "./abi/memory.ts";
import {
  type FailurePolicy,
  type LogEntry,
  type PluginConfig,
  type WasmPlugin,
  PluginConfigError,
  WasmLoadError,
} from "./types.ts";

interface VmGroup {
  module: WebAssembly.Module;
  vms: WasmVm[];
  plugins: number;
}

const DEFAULT_RELOAD_BACKOFF_MS = 1000;

export class EnvoyProcess {
  readonly clock: Clock;
  readonly sharedData = new SharedData();
  readonly queues = new SharedQueues();
  readonly metrics = new MetricStore();
  /** Envoy's own counters this host models (e.g. `wasm.<plugin>.vm_reload_success`). */
  readonly stats = new Map<string, number>();
  private readonly vmRefs = new Map<string, number>();
  private readonly groups = new Map<string, VmGroup>();
  private readonly objectIds = new WeakMap<object, number>();
  private nextObjectId = 1;
  private readonly services: ProcessServices;

  constructor(opts: { clock?: Clock; log?: (e: LogEntry) => void } = {}) {
    this.clock = opts.clock ?? realClock;
    const logFn = opts.log;
    this.services = {
      clock: this.clock,
      sharedData: this.sharedData,
      queues: this.queues,
      metrics: this.metrics,
      log: (e) => logFn?.(e),
      httpCall: (req, done) => performHttpCall(this.clock, req, done),
    };
  }

  /** Worker VMs currently alive (each shared by every plugin of its VM key). */
  get vmCount(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.vms.length;
    return n;
  }

  /**
   * Verifies imports (WasmLoadError with Envoy's text), runs a canary VM for this plugin, then adds the
   * plugin's root context to each worker VM of its VM key, creating those VMs if none exist yet.
   * on_vm_start/on_configure returning false, or a trap during start-up → PluginConfigError.
   */
  async loadPlugin(code: Uint8Array | WebAssembly.Module, cfg: PluginConfig): Promise<WasmPlugin> {
    const allow = cfg.testImports ? ["test"] : [];
    assertLoadable(code, allow);
    const policy = failurePolicy(cfg);
    const module =
      code instanceof WebAssembly.Module ? code : await WebAssembly.compile(code as BufferSource);
    const key = this.vmKey(code, module, cfg);
    const workers = Math.max(1, cfg.workers ?? 2);
    const existing = this.groups.get(key);
    if (existing && existing.vms.length !== workers) {
      throw new PluginConfigError(
        `workers (${workers}) differs from the ${existing.vms.length} worker VMs already running for vm_id ${cfg.vmId}: Envoy's --concurrency is process-wide`,
      );
    }
    let plugin: LoadedPlugin | undefined;
    const pending: LogEntry[] = [];
    const sink = (e: LogEntry) => (plugin ? plugin.pushLog(e) : pending.push(e));
    try {
      this.runCanary(module, cfg, sink);
      // Each worker clones the VM (when it has none for this key yet) and starts this plugin's root in it.
      const group: VmGroup = existing ?? { module, vms: [], plugins: 0 };
      const roots: WorkerRoot[] = [];
      const undo = () => {
        for (const r of roots) r.vm.roots.delete(r.root.contextId);
        if (!existing) for (const vm of group.vms) vm.discard();
      };
      for (let i = 0; i < workers; i++) {
        let vm = group.vms[i];
        if (!vm) {
          try {
            vm = this.startVm(module, cfg, i, sink);
          } catch (e) {
            undo();
            throw e;
          }
          group.vms.push(vm);
        }
        const root = vm.startRoot(cfg, sink);
        if (typeof root === "string") {
          undo();
          throw new PluginConfigError(`${root} (${vmLabel(vm.workerIndex)})`);
        }
        roots.push({ vm, root });
      }
      group.plugins++;
      this.groups.set(key, group);
      this.vmRefs.set(cfg.vmId, (this.vmRefs.get(cfg.vmId) ?? 0) + 1);
      const lastLoadMs = roots.map(() => this.nowMs());
      const reload = (worker: number) => this.reload(group, worker, cfg, sink, lastLoadMs);
      plugin = new LoadedPlugin(() => this.release(key, cfg.vmId), policy, reload);
      plugin.logs = pending;
      plugin.attach(roots);
      return plugin;
    } catch (e) {
      if (e instanceof WebAssembly.LinkError) {
        throw new WasmLoadError(`Failed to load Wasm module due to an import type mismatch: ${e.message}`);
      }
      throw e;
    }
  }

  /** cpp-host makeVmKey: vm_id + VM configuration + code. Test imports make a VM unshareable. */
  private vmKey(
    code: Uint8Array | WebAssembly.Module,
    module: WebAssembly.Module,
    cfg: PluginConfig,
  ): string {
    let codeKey: string;
    if (code instanceof WebAssembly.Module) {
      codeKey = `module:${this.idOf(module)}`;
    } else {
      codeKey = createHash("sha256").update(code).digest("hex");
    }
    const vmConfig = createHash("sha256").update(toBytes(cfg.vmConfiguration)).digest("hex");
    // Test imports are linked into the VM, so only plugins passing the same function can share it.
    const test = cfg.testImports ? `:test:${this.idOf(cfg.testImports)}` : "";
    return `${cfg.vmId}\0${vmConfig}\0${codeKey}${test}`;
  }

  private nowMs(): number {
    return Number(this.clock.nowNs() / 1_000_000n);
  }

  private count(name: string): void {
    this.stats.set(name, (this.stats.get(name) ?? 0) + 1);
  }

  /**
   * FAIL_RELOAD (wasm.cc PluginConfig::maybeReloadHandleIfNeeded): once a jittered back-off in
   * [base, 1.5·base) has passed since this worker's last load, the plugin's root starts in a fresh clone
   * of the VM (the first plugin to reload replaces the worker's VM; the others join it). Module globals
   * start over; shared data is kept.
   */
  private reload(
    group: VmGroup,
    worker: number,
    cfg: PluginConfig,
    sink: (e: LogEntry) => void,
    lastLoadMs: number[],
  ): WorkerRoot | undefined {
    const name = cfg.name ?? "";
    const base = cfg.reloadBackoffMs ?? DEFAULT_RELOAD_BACKOFF_MS;
    const now = this.nowMs();
    if (now - lastLoadMs[worker]! < base * (1 + Math.random() / 2)) {
      this.count(`wasm.${name}.vm_reload_backoff`);
      return undefined;
    }
    lastLoadMs[worker] = now;
    let vm = group.vms[worker]!;
    try {
      if (vm.failed) {
        const failedVm = vm;
        vm = this.startVm(group.module, cfg, worker, sink);
        group.vms[worker] = vm;
        failedVm.discard();
      }
    } catch {
      this.count(`wasm.${name}.vm_reload_failure`);
      return undefined;
    }
    const root = vm.startRoot(cfg, sink);
    if (typeof root === "string") {
      this.count(`wasm.${name}.vm_reload_failure`);
      return undefined;
    }
    this.count(`wasm.${name}.vm_reload_success`);
    return { vm, root };
  }

  private idOf(o: object): number {
    let id = this.objectIds.get(o);
    if (id === undefined) this.objectIds.set(o, (id = this.nextObjectId++));
    return id;
  }

  /** The canary: a fresh VM that must start and configure this plugin, then is dropped without on_done. */
  private runCanary(module: WebAssembly.Module, cfg: PluginConfig, sink: (e: LogEntry) => void): void {
    const canary = this.startVm(module, cfg, -1, sink);
    const root = canary.startRoot(cfg, sink);
    canary.discard();
    if (typeof root === "string") throw new PluginConfigError(`${root} (${vmLabel(-1)})`);
  }

  private startVm(
    module: WebAssembly.Module,
    cfg: PluginConfig,
    index: number,
    sink: (e: LogEntry) => void,
  ): WasmVm {
    const vm = new WasmVm(this.services, cfg, index, module);
    vm.startupLog = sink;
    if (!vm.instantiate()) {
      vm.discard();
      throw new PluginConfigError(`Wasm VM failed Failed to initialize Wasm code (${vmLabel(index)})`);
    }
    return vm;
  }

  private dropGroup(key: string, group: VmGroup): void {
    for (const vm of group.vms) vm.discard();
    this.groups.delete(key);
  }

  /** A plugin left: its VMs go with the last plugin using them; shared data with the last VM of the vm_id. */
  private release(key: string, vmId: string): void {
    const group = this.groups.get(key);
    if (group && --group.plugins <= 0) this.dropGroup(key, group);
    const n = (this.vmRefs.get(vmId) ?? 1) - 1;
    if (n > 0) {
      this.vmRefs.set(vmId, n);
      return;
    }
    this.vmRefs.delete(vmId);
    this.sharedData.dropVm(vmId);
    this.queues.dropVm(vmId);
  }
}

/** Envoy: unset means FAIL_CLOSED; the deprecated fail_open means FAIL_OPEN; both set is an error. */
function failurePolicy(cfg: PluginConfig): FailurePolicy {
  if (cfg.failOpen && cfg.failurePolicy !== undefined) {
    throw new PluginConfigError("only one of fail_open or failure_policy can be set");
  }
  return cfg.failurePolicy ?? (cfg.failOpen ? "FAIL_OPEN" : "FAIL_CLOSED");
}

function vmLabel(index: number): string {
  return index < 0 ? "canary VM" : `worker ${index}`;
}
