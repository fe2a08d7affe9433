// One plugin's root context inside one VM. Plugins with the same vm_id and code share each worker's VM
// (proxy-wasm-cpp-host getOrCreateThreadLocalWasm keys VMs by vm_id, VM configuration and code), and each
// plugin gets its own root context there (WasmBase::getOrCreateRootContext): its own context id,
// configuration, tick timer and http_call callbacks, while module globals are shared.
import type { Clock } from "./clock.ts";
import type { PluginView } from "./abi/guest-host.ts";
import type { LogEntry, PluginConfig } from "./types.ts";
import { toBytes } from "./abi/memory.ts";

/** What a root needs from the VM it lives in. */
export interface RootHost {
  readonly clock: Clock;
  readonly failed: boolean;
  readonly discarded: boolean;
  /** Runs a guest callback as a host entry (deferred actions drain afterwards). */
  callRoot(name: string, ...args: number[]): number | undefined;
}

export class PluginRoot implements PluginView {
  readonly name: string;
  readonly rootId: string;
  readonly pluginConfiguration: Uint8Array;
  readonly properties = new Map<string, Uint8Array>();
  readonly clusters: Readonly<Record<string, string>>;
  /** http_call tokens this root started, with their cancel functions. */
  readonly pendingHttp = new Map<number, () => void>();
  /** Set once on_done/on_delete ran: nothing is delivered to this root any more. */
  closed = false;
  doneWaiter: (() => void) | undefined;
  private tickPeriodMs = 0;
  private tickTimer: unknown;

  constructor(
    readonly contextId: number,
    readonly cfg: PluginConfig,
    private readonly vm: RootHost,
    readonly logSink: (e: LogEntry) => void,
  ) {
    this.name = cfg.name ?? "";
    this.rootId = cfg.rootId ?? "";
    this.pluginConfiguration = toBytes(cfg.configuration);
    this.clusters = cfg.clusters ?? {};
    for (const [k, v] of Object.entries(cfg.properties ?? {})) this.properties.set(k, toBytes(v));
  }

  get tickPeriod(): number {
    return this.tickPeriodMs;
  }

  // envoy-proxy-wasm.md §2 "Tick": one dispatcher timer per root; 0 disables; a new period restarts it.
  setTickPeriod(ms: number): void {
    this.tickPeriodMs = ms;
    if (this.tickTimer !== undefined) this.vm.clock.clearTimer(this.tickTimer);
    this.tickTimer = undefined;
    this.armTick();
  }

  private armTick(): void {
    if (this.tickPeriodMs <= 0 || this.vm.failed || this.vm.discarded || this.closed) return;
    this.tickTimer = this.vm.clock.setTimer(this.tickPeriodMs, () => {
      this.tickTimer = undefined;
      this.fireTick();
      // Re-armed after each on_tick so ticks never overlap (unless on_tick changed the period).
      if (this.tickTimer === undefined) this.armTick();
    });
  }

  fireTick(): void {
    if (this.closed) return;
    this.vm.callRoot("proxy_on_tick", this.contextId);
  }

  /** Timers and pending calls stop (teardown, a failed VM, or the canary being dropped). */
  stop(): void {
    if (this.tickTimer !== undefined) this.vm.clock.clearTimer(this.tickTimer);
    this.tickTimer = undefined;
    this.tickPeriodMs = 0;
    for (const cancel of this.pendingHttp.values()) cancel();
    this.pendingHttp.clear();
  }
}
