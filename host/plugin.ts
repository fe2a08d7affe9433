// One loaded plugin: its root context in each worker VM it shares with every other plugin of the same
// VM key (envoy-proxy-wasm.md §1 "Call order" 1–2; proxy-wasm-cpp-host getOrCreateThreadLocalWasm).
import type { WasmVm } from "./vm.ts";
import type { PluginRoot } from "./root.ts";
import { WasmHttpStream } from "./http-stream.ts";
import type {
  FailurePolicy,
  HttpStream,
  LogEntry,
  NewStreamOptions,
  StreamCallbacks,
  WasmPlugin,
} from "./types.ts";

const LOG_RING = 1000;

export interface WorkerRoot {
  vm: WasmVm;
  root: PluginRoot;
}

export class LoadedPlugin implements WasmPlugin {
  logs: LogEntry[] = [];
  private rr = 0;
  private closed = false;
  private workersByIndex: WorkerRoot[] = [];

  /**
   * @param policy what a new stream gets while its worker's VM has trapped
   * @param reload FAIL_RELOAD: this plugin's root in a fresh VM for a worker, or undefined (back-off, failure)
   */
  constructor(
    private readonly onShutdown: () => void,
    readonly policy: FailurePolicy = "FAIL_CLOSED",
    private readonly reload: (worker: number) => WorkerRoot | undefined = () => undefined,
  ) {}

  /** Called once the roots exist (they are created after the plugin, since they log into it). */
  attach(workers: WorkerRoot[]): void {
    this.workersByIndex = workers;
  }

  get workers(): number {
    return this.workersByIndex.length;
  }

  /** The worker VMs this plugin runs in (shared with the other plugins of its VM key). */
  get vms(): WasmVm[] {
    return this.workersByIndex.map((w) => w.vm);
  }

  /** This plugin's root context id in each worker VM. */
  get rootContextIds(): number[] {
    return this.workersByIndex.map((w) => w.root.contextId);
  }

  get failedWorkers(): number[] {
    return this.workersByIndex.filter((w) => w.vm.failed).map((w) => w.vm.workerIndex);
  }

  pushLog(e: LogEntry): void {
    this.logs.push(e);
    if (this.logs.length > LOG_RING) this.logs.splice(0, this.logs.length - LOG_RING);
  }

  newHttpStream(cb: StreamCallbacks, opts: NewStreamOptions = {}): HttpStream {
    const index = opts.worker ?? this.rr++ % this.workersByIndex.length;
    let w = this.workersByIndex[index];
    if (!w) throw new RangeError(`no worker ${index}`);
    // Envoy's PluginConfig::createContext, per new stream on a worker whose VM trapped.
    if (w.vm.failed && !this.closed) {
      if (this.policy === "FAIL_OPEN") return new WasmHttpStream(w.vm, w.root, cb, { ...opts, bypass: true });
      if (this.policy === "FAIL_RELOAD") {
        const fresh = this.reload(index);
        if (fresh) this.workersByIndex[index] = w = fresh;
      }
    }
    return new WasmHttpStream(w.vm, w.root, cb, opts);
  }

  /** Runs on_tick once for this plugin's root on every worker with a tick period (ignores the clock). */
  tick(): void {
    for (const { vm, root } of this.workersByIndex) if (root.tickPeriod > 0 && !vm.failed) root.fireTick();
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.workersByIndex.map(({ vm, root }) => (vm.discarded ? undefined : vm.stopRoot(root))),
    );
    this.onShutdown();
  }
}
