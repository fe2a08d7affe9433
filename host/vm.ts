// One VM instance (one Envoy worker, or the canary): start-up in restricted mode, context ids, the root
// contexts of the plugins that share it, guest-call bookkeeping, deferred host actions and the failure
// state after a trap.
import type { Clock } from "./clock.ts";
import { GuestMemory, toBytes } from "./abi/memory.ts";
import { buildImports } from "./abi/imports.ts";
import type { GuestHost, PluginView, StreamSide } from "./abi/guest-host.ts";
import { PluginRoot } from "./root.ts";
import { buildWasi } from "./abi/wasi.ts";
import { WASI_MODULES } from "./verify.ts";
import type { SharedData, SharedQueues } from "./shared-data.ts";
import { type MetricStore, VmMetrics } from "./metrics.ts";
import type { HeaderList, LogEntry, PluginConfig } from "./types.ts";
import { LOG_LEVEL_NAMES, LogLevel } from "./types.ts";
import type { HttpCallRequest, HttpCallResult } from "./http-call.ts";

export type { StreamSide };

export interface ProcessServices {
  clock: Clock;
  sharedData: SharedData;
  queues: SharedQueues;
  metrics: MetricStore;
  log(e: LogEntry): void;
  httpCall(req: HttpCallRequest, done: (r: HttpCallResult | undefined) => void): () => void;
}

/** Phases in which cpp-host restricts what a guest may call. */
export const enum Phase {
  Normal = 0,
  Start = 1, // _start/_initialize: logging and WASI only
  Malloc = 2, // malloc: proxy_log, fd_write, clock_time_get, poll_oneoff only
}

interface HttpCallResponseState {
  headers: HeaderList;
  body: Uint8Array;
  trailers: HeaderList;
}

type GuestFn = (...args: Array<number | bigint>) => number | bigint | undefined;

/** The VM-wide part of a plugin's configuration: what cpp-host keys a VM by, plus the log level. */
export type VmConfig = Pick<
  PluginConfig,
  "vmId" | "vmConfiguration" | "environment" | "logLevel" | "testImports"
>;

export class WasmVm implements GuestHost {
  readonly memory: GuestMemory;
  readonly metrics: VmMetrics;
  readonly vmConfiguration: Uint8Array;
  readonly vmId: string;
  readonly logLevel: number;
  phase: Phase = Phase.Normal;
  /** A guest call trapped (envoy-proxy-wasm.md §2 "Failure"). */
  failed = false;
  /** Dropped (the canary, or the last plugin left): nothing may run in it any more. */
  discarded = false;
  /** Context the current host calls act on (proxy_set_effective_context may change it). */
  activeContextId = 0;
  configurationReadable = false;
  httpResponse: HttpCallResponseState | undefined;
  status = { code: 0, message: "" };
  readonly streams = new Map<number, StreamSide & { readonly root: PluginRoot }>();
  /** Root contexts by context id: one per plugin sharing this VM. */
  readonly roots = new Map<number, PluginRoot>();
  /** Where host log lines go while no root exists yet (start-up of a new VM). */
  startupLog: ((e: LogEntry) => void) | undefined;
  private instance!: WebAssembly.Instance;
  private fns: Record<string, GuestFn | undefined> = {};
  // Context ids are allocated per VM, roots and streams from one counter; the VM context is 0.
  private nextContextId = 1;
  private depth = 0;
  private deferred: Array<() => void> = [];
  private nextHttpToken = 4;

  constructor(
    readonly services: ProcessServices,
    readonly cfg: VmConfig,
    readonly workerIndex: number,
    private readonly module: WebAssembly.Module,
  ) {
    this.metrics = new VmMetrics(services.metrics);
    this.vmConfiguration = toBytes(cfg.vmConfiguration);
    this.vmId = cfg.vmId;
    this.logLevel = cfg.logLevel ?? LogLevel.info;
    this.memory = undefined as unknown as GuestMemory;
  }

  get clock(): Clock {
    return this.services.clock;
  }

  get sharedData(): SharedData {
    return this.services.sharedData;
  }

  get queues(): SharedQueues {
    return this.services.queues;
  }

  /** Instantiates and runs _start/_initialize in restricted mode. Returns false when start-up trapped. */
  instantiate(): boolean {
    const wasi = buildWasi({
      mem: () => this.memory,
      clock: this.services.clock,
      environment: this.cfg.environment ?? {},
      log: (level, msg) => this.log(level, msg),
      restrict: (allowedInStart, allowedInMalloc) => this.restrict(allowedInStart, allowedInMalloc),
    });
    const imports: WebAssembly.Imports = { env: buildImports(this) };
    for (const m of WASI_MODULES) imports[m] = wasi as WebAssembly.ModuleImports;
    if (this.cfg.testImports) {
      imports["test"] = this.cfg.testImports({
        workerIndex: this.workerIndex,
        exports: () => this.instance.exports,
      }) as WebAssembly.ModuleImports;
    }
    this.instance = new WebAssembly.Instance(this.module, imports);
    const ex = this.instance.exports as Record<string, unknown>;
    for (const [k, v] of Object.entries(ex)) if (typeof v === "function") this.fns[k] = v as GuestFn;
    (this as { memory: GuestMemory }).memory = new GuestMemory(ex["memory"] as WebAssembly.Memory);
    const malloc = (this.fns["malloc"] ?? this.fns["proxy_on_memory_allocate"])!;
    this.memory.malloc = (size: number) => {
      const prev = this.phase;
      this.phase = Phase.Malloc;
      try {
        return Number(malloc(size));
      } finally {
        this.phase = prev;
      }
    };
    // envoy-proxy-wasm.md §1 "Exports": _initialize (+ main/__main_void) if present, else _start.
    const startFns = this.fns["_initialize"]
      ? ["_initialize", this.fns["__main_void"] ? "__main_void" : "main"]
      : ["_start"];
    this.phase = Phase.Start;
    try {
      for (const name of startFns) {
        const f = this.fns[name];
        if (!f) continue;
        try {
          if (name === "main") f(0, 0);
          else f();
        } catch (e) {
          this.fail(name, e);
          return false;
        }
      }
    } finally {
      this.phase = Phase.Normal;
    }
    return true;
  }

  /** Traps the guest when the current phase forbids this host call (cpp-host "restricted_callback"). */
  restrict(allowedInStart: boolean, allowedInMalloc = false): void {
    if (this.phase === Phase.Normal) return;
    if (this.phase === Phase.Start && allowedInStart) return;
    if (this.phase === Phase.Malloc && allowedInMalloc) return;
    throw new WebAssembly.RuntimeError("restricted_callback");
  }

  /** Host-side entry: runs fn and then the deferred actions once the outermost entry returns. */
  host<T>(fn: () => T): T {
    this.depth++;
    try {
      return fn();
    } finally {
      this.depth--;
      if (this.depth === 0) this.drain();
    }
  }

  defer(fn: () => void): void {
    this.deferred.push(fn);
  }

  private drain(): void {
    this.depth++;
    try {
      while (this.deferred.length > 0) this.deferred.shift()!();
    } finally {
      this.depth--;
    }
  }

  has(name: string): boolean {
    return this.fns[name] !== undefined;
  }

  /**
   * Calls a guest export with the active context set to args[0]. Returns undefined when the
   * export is missing (Envoy: Continue / no-op) or the VM is (or becomes) failed.
   */
  call(name: string, ...args: number[]): number | undefined {
    if (this.failed || this.discarded) return undefined;
    const f = this.fns[name];
    if (!f) return undefined;
    const prevActive = this.activeContextId;
    this.activeContextId = args[0] ?? 0;
    this.depth++;
    try {
      const r = f(...args);
      return r === undefined ? 0 : Number(r);
    } catch (e) {
      this.fail(name, e);
      return undefined;
    } finally {
      this.depth--;
      this.activeContextId = prevActive;
    }
  }

  /** A root callback as its own host entry (ticks, queue and http_call deliveries). */
  callRoot(name: string, ...args: number[]): number | undefined {
    return this.host(() => this.call(name, ...args));
  }

  /** envoy-proxy-wasm.md §2 "Failure": log, mark FAILED, stop every root's timers. */
  fail(fn: string, e: unknown): void {
    const msg = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
    this.log(LogLevel.critical, `Function: ${fn} failed: Uncaught ${msg}`, true);
    this.failed = true;
    for (const root of this.roots.values()) root.stop();
  }

  log(level: number, message: string, host = false): void {
    if (!host && level < this.logLevel) return;
    const root = this.activeRoot();
    const plugin = root?.name ?? "";
    const prefix = host ? "" : `wasm log ${plugin} ${root?.rootId ?? ""} ${this.vmId}: `;
    const entry: LogEntry = { level, message: prefix + message, worker: this.workerIndex, plugin };
    this.services.log(entry);
    if (root) root.logSink(entry);
    else if (this.roots.size > 0) for (const r of this.roots.values()) r.logSink(entry);
    else this.startupLog?.(entry);
  }

  logLevelName(level: number): string {
    return LOG_LEVEL_NAMES[level] ?? String(level);
  }

  // --- Root contexts (envoy-proxy-wasm.md §1 "Call order"; one per plugin in a shared VM) ---

  /** The root of a context id: the root itself, or the root a stream was created under. */
  rootOf(contextId: number): PluginRoot | undefined {
    return this.roots.get(contextId) ?? this.streams.get(contextId)?.root;
  }

  activeRoot(): PluginRoot | undefined {
    const root = this.rootOf(this.activeContextId);
    if (root || this.roots.size !== 1) return root;
    // Outside any callback (tests drive exports directly) a VM with one plugin acts for that plugin.
    return this.roots.values().next().value;
  }

  activePlugin(): PluginView | undefined {
    return this.activeRoot();
  }

  /**
   * A new root context for a plugin: on_context_create(root, 0), on_vm_start, on_configure
   * (cpp-host ContextBase::onStart then WasmBase::configure, once per root context).
   * Returns the root, or an error text (the root is then dropped).
   */
  startRoot(cfg: PluginConfig, logSink: (e: LogEntry) => void): PluginRoot | string {
    const root = new PluginRoot(this.newContextId(), cfg, this, logSink);
    this.roots.set(root.contextId, root);
    const error = this.host(() => {
      this.call("proxy_on_context_create", root.contextId, 0);
      if (this.failed) return "proxy_on_context_create trapped";
      const started = this.call("proxy_on_vm_start", root.contextId, this.vmConfiguration.length);
      if (this.failed) return "proxy_on_vm_start trapped";
      if (started === 0) return "Failed to start base Wasm VM: on_vm_start returned false";
      this.configurationReadable = true;
      let configured: number | undefined;
      try {
        configured = this.call("proxy_on_configure", root.contextId, root.pluginConfiguration.length);
      } finally {
        this.configurationReadable = false;
      }
      if (this.failed) return "proxy_on_configure trapped";
      if (configured === 0) return "Failed to configure base Wasm plugin: on_configure returned false";
      return undefined;
    });
    if (error === undefined) return root;
    root.stop();
    root.closed = true;
    this.roots.delete(root.contextId);
    return error;
  }

  /** A plugin leaves: root on_done (waiting for proxy_done if it returned false), then on_delete. */
  async stopRoot(root: PluginRoot, doneTimeoutMs = 5000): Promise<void> {
    if (root.closed) return;
    const r = this.host(() => this.call("proxy_on_done", root.contextId));
    if (r === 0 && !this.failed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, doneTimeoutMs);
        root.doneWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.host(() => this.call("proxy_on_delete", root.contextId));
    root.stop();
    root.closed = true;
    this.roots.delete(root.contextId);
  }

  /** Drops the VM without any callback (the canary): timers and pending calls stop. */
  discard(): void {
    for (const root of this.roots.values()) root.stop();
    this.discarded = true;
  }

  /** proxy_done() from the guest: completes the active root's pending on_done. */
  done(): number {
    const root = this.activeRoot();
    const w = root?.doneWaiter;
    if (!root || !w) return 1; // NotFound: nothing waits for it
    root.doneWaiter = undefined;
    queueMicrotask(w);
    return 0;
  }

  // --- Stream contexts ---

  newContextId(): number {
    return this.nextContextId++;
  }

  registerStream(s: StreamSide & { readonly root: PluginRoot }): void {
    this.streams.set(s.contextId, s);
  }

  unregisterStream(id: number): void {
    this.streams.delete(id);
  }

  /** The stream the active context belongs to (undefined for a root). */
  activeStream(): StreamSide | undefined {
    return this.streams.get(this.activeContextId);
  }

  /** proxy_set_effective_context: any live root or stream context of this VM. */
  setEffectiveContext(id: number): boolean {
    if (!this.roots.has(id) && !this.streams.has(id)) return false;
    this.activeContextId = id;
    return true;
  }

  // --- Ticks (envoy-proxy-wasm.md §2 "Tick": valid from any context, always the root's timer) ---

  setTickPeriod(ms: number): void {
    this.activeRoot()?.setTickPeriod(ms);
  }

  // --- Shared queues: on_queue_ready is posted to the registering root, never run inline. ---

  queueOwner(): { notify(token: number): void } {
    const root = this.activeRoot();
    return {
      notify: (token) => {
        if (!root) return;
        this.services.clock.setTimer(0, () => {
          if (!root.closed) this.callRoot("proxy_on_queue_ready", root.contextId, token);
        });
      },
    };
  }

  // --- http_call (envoy-proxy-wasm.md §2 "http_call": tokens per VM, response to the caller's root) ---

  startHttpCall(req: HttpCallRequest): number {
    const root = this.activeRoot()!;
    const token = this.nextHttpToken;
    this.nextHttpToken += 4;
    const cancel = this.services.httpCall(req, (res) => {
      if (!root.pendingHttp.delete(token)) return;
      this.host(() => {
        if (res) {
          this.httpResponse = { headers: res.headers, body: res.body, trailers: res.trailers };
          this.status = { code: 0, message: "" };
        } else {
          this.httpResponse = undefined;
          this.status = { code: 11, message: "reset" };
        }
        try {
          this.call(
            "proxy_on_http_call_response",
            root.contextId,
            token,
            res ? res.headers.length : 0,
            res ? res.body.length : 0,
            res ? res.trailers.length : 0,
          );
        } finally {
          this.httpResponse = undefined;
        }
      });
    });
    root.pendingHttp.set(token, cancel);
    return token;
  }

  get pendingHttpCalls(): number {
    let n = 0;
    for (const root of this.roots.values()) n += root.pendingHttp.size;
    return n;
  }
}
