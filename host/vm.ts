// One VM instance (one Envoy worker, or the canary): start-up in restricted mode, context ids,
// the root context, guest-call bookkeeping, deferred host actions and the failure state after a trap.
import type { Clock } from "./clock.ts";
import { GuestMemory, utf8Encoder } from "./abi/memory.ts";
import { buildImports } from "./abi/imports.ts";
import { buildWasi } from "./abi/wasi.ts";
import { WASI_MODULES } from "./verify.ts";
import type { SharedData, SharedQueues } from "./shared-data.ts";
import { type MetricStore, VmMetrics } from "./metrics.ts";
import type { HeaderList, LogEntry, PluginConfig } from "./types.ts";
import { LOG_LEVEL_NAMES, LogLevel } from "./types.ts";
import type { HttpCallRequest, HttpCallResult } from "./http-call.ts";

/** What the shim needs from the stream that owns a context (implemented by http-stream.ts). */
export interface StreamSide {
  readonly contextId: number;
  /** undefined → map not available now (BadArgument); null → NotFound (log phase, never set). */
  readMap(type: number): HeaderList | null | undefined;
  /** The live map for add/replace/remove/set, or undefined (BadArgument). */
  writeMap(type: number): HeaderList | undefined;
  afterMapWrite(type: number): void;
  getBuffer(type: number): Uint8Array | undefined;
  setBuffer(type: number, start: number, length: number, data: Uint8Array): number;
  sendLocalResponse(
    status: number,
    details: string,
    body: Uint8Array,
    headers: HeaderList,
    grpcStatus: number,
  ): number;
  continueStream(type: number): number;
  closeStream(type: number): number;
  property(path: string): Uint8Array | undefined;
  setProperty(path: string, value: Uint8Array): number;
  clearRouteCache(): void;
}

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

export const ROOT_CONTEXT_ID = 1;

interface HttpCallResponseState {
  headers: HeaderList;
  body: Uint8Array;
  trailers: HeaderList;
}

type GuestFn = (...args: Array<number | bigint>) => number | bigint | undefined;

export class WasmVm {
  readonly memory: GuestMemory;
  readonly metrics: VmMetrics;
  readonly vmConfiguration: Uint8Array;
  readonly pluginConfiguration: Uint8Array;
  readonly properties = new Map<string, Uint8Array>();
  phase: Phase = Phase.Normal;
  failed = false;
  /** Context the current host calls act on (proxy_set_effective_context may change it). */
  activeContextId = 0;
  configurationReadable = false;
  httpResponse: HttpCallResponseState | undefined;
  status = { code: 0, message: "" };
  readonly streams = new Map<number, StreamSide>();
  private instance!: WebAssembly.Instance;
  private fns: Record<string, GuestFn | undefined> = {};
  private nextContextId = ROOT_CONTEXT_ID + 1;
  private depth = 0;
  private deferred: Array<() => void> = [];
  private tickPeriodMs = 0;
  private tickTimer: unknown;
  private nextHttpToken = 4;
  private readonly pendingHttp = new Map<number, () => void>();
  private doneWaiter: (() => void) | undefined;

  constructor(
    readonly services: ProcessServices,
    readonly cfg: PluginConfig,
    readonly workerIndex: number,
    private readonly module: WebAssembly.Module,
  ) {
    this.metrics = new VmMetrics(services.metrics);
    this.vmConfiguration = toBytes(cfg.vmConfiguration);
    this.pluginConfiguration = toBytes(cfg.configuration);
    for (const [k, v] of Object.entries(cfg.properties ?? {})) this.properties.set(k, toBytes(v));
    this.memory = undefined as unknown as GuestMemory;
  }

  get pluginName(): string {
    return this.cfg.name ?? "";
  }

  get tickPeriod(): number {
    return this.tickPeriodMs;
  }

  /** Instantiates and runs _start/_initialize in restricted mode. Returns false when start-up trapped. */
  instantiate(): boolean {
    const wasi = buildWasi({
      mem: () => this.memory,
      clock: this.services.clock,
      environment: this.cfg.environment ?? {},
      log: (level, msg) => this.log(level, msg),
      checkAllowedInMalloc: () => this.restrict(true, false),
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
    if (this.failed) return undefined;
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

  /** envoy-proxy-wasm.md §2 "Failure": log, mark FAILED, stop timers. */
  fail(fn: string, e: unknown): void {
    const msg = e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e);
    this.log(LogLevel.critical, `Function: ${fn} failed: Uncaught ${msg}`, true);
    this.failed = true;
    this.stopTimers();
  }

  log(level: number, message: string, host = false): void {
    const minLevel = this.cfg.logLevel ?? LogLevel.info;
    if (!host && level < minLevel) return;
    const prefix = host ? "" : `wasm log ${this.pluginName} ${this.cfg.rootId ?? ""} ${this.cfg.vmId}: `;
    this.services.log({
      level,
      message: prefix + message,
      worker: this.workerIndex,
      plugin: this.pluginName,
    });
  }

  logLevelName(level: number): string {
    return LOG_LEVEL_NAMES[level] ?? String(level);
  }

  // --- Root context lifecycle (envoy-proxy-wasm.md §1 "Call order") ---

  /** on_context_create(root,0), on_vm_start, on_configure. Returns an error text or undefined. */
  startRoot(): string | undefined {
    return this.host(() => {
      this.call("proxy_on_context_create", ROOT_CONTEXT_ID, 0);
      if (this.failed) return "proxy_on_context_create trapped";
      const started = this.call("proxy_on_vm_start", ROOT_CONTEXT_ID, this.vmConfiguration.length);
      if (this.failed) return "proxy_on_vm_start trapped";
      if (started === 0) return "Failed to start base Wasm VM: on_vm_start returned false";
      this.configurationReadable = true;
      let configured: number | undefined;
      try {
        configured = this.call("proxy_on_configure", ROOT_CONTEXT_ID, this.pluginConfiguration.length);
      } finally {
        this.configurationReadable = false;
      }
      if (this.failed) return "proxy_on_configure trapped";
      if (configured === 0) return "Failed to configure base Wasm plugin: on_configure returned false";
      return undefined;
    });
  }

  /** Root on_done (waiting for proxy_done if it returned false), then on_delete. */
  async shutdown(doneTimeoutMs = 5000): Promise<void> {
    const r = this.host(() => this.call("proxy_on_done", ROOT_CONTEXT_ID));
    if (r === 0 && !this.failed) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, doneTimeoutMs);
        this.doneWaiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    this.host(() => this.call("proxy_on_delete", ROOT_CONTEXT_ID));
    this.stopTimers();
    for (const cancel of this.pendingHttp.values()) cancel();
    this.pendingHttp.clear();
  }

  /** Drops the VM without any callback (the canary): timers and pending calls stop. */
  discard(): void {
    this.stopTimers();
    for (const cancel of this.pendingHttp.values()) cancel();
    this.pendingHttp.clear();
    this.failed = true; // nothing may run in it any more
  }

  /** proxy_done() from the guest. */
  done(): number {
    const w = this.doneWaiter;
    if (!w) return 1; // NotFound: nothing waits for it
    this.doneWaiter = undefined;
    queueMicrotask(w);
    return 0;
  }

  // --- Stream contexts ---

  newContextId(): number {
    return this.nextContextId++;
  }

  registerStream(s: StreamSide): void {
    this.streams.set(s.contextId, s);
  }

  unregisterStream(id: number): void {
    this.streams.delete(id);
  }

  /** The stream the active context belongs to (undefined for the root). */
  activeStream(): StreamSide | undefined {
    return this.activeContextId === ROOT_CONTEXT_ID ? undefined : this.streams.get(this.activeContextId);
  }

  // --- Ticks (envoy-proxy-wasm.md §2 "Tick") ---

  setTickPeriod(ms: number): void {
    this.tickPeriodMs = ms;
    if (this.tickTimer !== undefined) this.services.clock.clearTimer(this.tickTimer);
    this.tickTimer = undefined;
    this.armTick();
  }

  private armTick(): void {
    if (this.tickPeriodMs <= 0 || this.failed) return;
    this.tickTimer = this.services.clock.setTimer(this.tickPeriodMs, () => {
      this.tickTimer = undefined;
      this.fireTick();
      // Re-armed after each on_tick so ticks never overlap (unless on_tick changed the period).
      if (this.tickTimer === undefined) this.armTick();
    });
  }

  fireTick(): void {
    this.host(() => this.call("proxy_on_tick", ROOT_CONTEXT_ID));
  }

  private stopTimers(): void {
    if (this.tickTimer !== undefined) this.services.clock.clearTimer(this.tickTimer);
    this.tickTimer = undefined;
    this.tickPeriodMs = 0;
  }

  // --- Shared queues: on_queue_ready is posted, never run inline. ---

  queueOwner(): { notify(token: number): void } {
    return {
      notify: (token) => {
        this.services.clock.setTimer(0, () =>
          this.host(() => this.call("proxy_on_queue_ready", ROOT_CONTEXT_ID, token)),
        );
      },
    };
  }

  // --- http_call (envoy-proxy-wasm.md §2 "http_call") ---

  startHttpCall(req: HttpCallRequest): number {
    const token = this.nextHttpToken;
    this.nextHttpToken += 4;
    const cancel = this.services.httpCall(req, (res) => {
      if (!this.pendingHttp.delete(token)) return;
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
            ROOT_CONTEXT_ID,
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
    this.pendingHttp.set(token, cancel);
    return token;
  }

  get pendingHttpCalls(): number {
    return this.pendingHttp.size;
  }
}

export function toBytes(v: string | Uint8Array | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  return typeof v === "string" ? utf8Encoder.encode(v) : v;
}
