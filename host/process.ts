// One "Envoy process": owns shared data and queues (scoped by vm_id), the CAS counter, stats and the clock.
import { type Clock, realClock } from "./clock.ts";
import { SharedData, SharedQueues } from "./shared-data.ts";
import { MetricStore } from "./metrics.ts";
import { performHttpCall } from "./http-call.ts";
import { assertLoadable } from "./verify.ts";
import { LoadedPlugin } from "./plugin.ts";
import type { ProcessServices } from "./vm.ts";
import { type LogEntry, type PluginConfig, type WasmPlugin, WasmLoadError } from "./types.ts";

export class EnvoyProcess {
  readonly clock: Clock;
  readonly sharedData = new SharedData();
  readonly queues = new SharedQueues();
  readonly metrics = new MetricStore();
  private readonly vmRefs = new Map<string, number>();
  private readonly logFn: ((e: LogEntry) => void) | undefined;

  constructor(opts: { clock?: Clock; log?: (e: LogEntry) => void } = {}) {
    this.clock = opts.clock ?? realClock;
    this.logFn = opts.log;
  }

  /**
   * Verifies imports (WasmLoadError with Envoy's text), runs the canary VM, then the worker VMs.
   * on_vm_start/on_configure returning false, or a trap during start-up → PluginConfigError.
   */
  async loadPlugin(code: Uint8Array | WebAssembly.Module, cfg: PluginConfig): Promise<WasmPlugin> {
    const allow = cfg.testImports ? ["test"] : [];
    assertLoadable(code, allow);
    const module =
      code instanceof WebAssembly.Module ? code : await WebAssembly.compile(code as BufferSource);
    const sink: { plugin?: LoadedPlugin; pending: LogEntry[] } = { pending: [] };
    const services: ProcessServices = {
      clock: this.clock,
      sharedData: this.sharedData,
      queues: this.queues,
      metrics: this.metrics,
      log: (e) => {
        if (sink.plugin) sink.plugin.pushLog(e);
        else sink.pending.push(e);
        this.logFn?.(e);
      },
      httpCall: (req, done) => performHttpCall(this.clock, req, done),
    };
    this.vmRefs.set(cfg.vmId, (this.vmRefs.get(cfg.vmId) ?? 0) + 1);
    try {
      return LoadedPlugin.create(services, module, cfg, sink, () => this.release(cfg.vmId));
    } catch (e) {
      this.release(cfg.vmId);
      if (e instanceof WebAssembly.LinkError) {
        throw new WasmLoadError(`Failed to load Wasm module due to an import type mismatch: ${e.message}`);
      }
      throw e;
    }
  }

  /** Everything for a vm_id is erased when the last VM with that vm_id goes away. */
  private release(vmId: string): void {
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
