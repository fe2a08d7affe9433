// One plugin: a canary VM, then N worker VMs from one compiled module (envoy-proxy-wasm.md §1 "Call order" 1–2).
import { WasmVm, type ProcessServices } from "./vm.ts";
import { WasmHttpStream } from "./http-stream.ts";
import {
  type HttpStream,
  type LogEntry,
  type NewStreamOptions,
  type PluginConfig,
  type StreamCallbacks,
  type WasmPlugin,
  PluginConfigError,
} from "./types.ts";

const LOG_RING = 1000;

export class LoadedPlugin implements WasmPlugin {
  logs: LogEntry[] = [];
  private rr = 0;
  private closed = false;

  private constructor(
    readonly vms: WasmVm[],
    private readonly onShutdown: () => void,
  ) {}

  get workers(): number {
    return this.vms.length;
  }

  get failedWorkers(): number[] {
    return this.vms.filter((v) => v.failed).map((v) => v.workerIndex);
  }

  /**
   * Canary first (_start, root create, on_vm_start, on_configure; dropped without on_done), then the workers.
   * `services.log` must already feed `logSink` (set by the caller before any VM runs).
   */
  static create(
    services: ProcessServices,
    module: WebAssembly.Module,
    cfg: PluginConfig,
    logSink: { plugin?: LoadedPlugin; pending: LogEntry[] },
    onShutdown: () => void,
  ): LoadedPlugin {
    const startVm = (index: number): WasmVm => {
      const vm = new WasmVm(services, cfg, index, module);
      if (!vm.instantiate()) {
        vm.discard();
        throw new PluginConfigError(`Wasm VM failed Failed to initialize Wasm code (${vmLabel(index)})`);
      }
      const err = vm.startRoot();
      if (err) {
        vm.discard();
        throw new PluginConfigError(`${err} (${vmLabel(index)})`);
      }
      return vm;
    };
    startVm(-1).discard(); // canary: dropped without on_done
    const n = Math.max(1, cfg.workers ?? 2);
    const vms: WasmVm[] = [];
    try {
      for (let i = 0; i < n; i++) vms.push(startVm(i));
    } catch (e) {
      for (const vm of vms) vm.discard();
      throw e;
    }
    const p = new LoadedPlugin(vms, onShutdown);
    p.logs = logSink.pending;
    logSink.plugin = p;
    return p;
  }

  pushLog(e: LogEntry): void {
    this.logs.push(e);
    if (this.logs.length > LOG_RING) this.logs.splice(0, this.logs.length - LOG_RING);
  }

  newHttpStream(cb: StreamCallbacks, opts: NewStreamOptions = {}): HttpStream {
    const index = opts.worker ?? this.rr++ % this.vms.length;
    const vm = this.vms[index];
    if (!vm) throw new RangeError(`no worker ${index}`);
    return new WasmHttpStream(vm, cb, opts);
  }

  /** Runs on_tick once on every worker with a tick period (independent of the clock's timers). */
  tick(): void {
    for (const vm of this.vms) if (vm.tickPeriod > 0 && !vm.failed) vm.fireTick();
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.vms.map((vm) => vm.shutdown()));
    this.onShutdown();
  }
}

function vmLabel(index: number): string {
  return index < 0 ? "canary VM" : `worker ${index}`;
}
