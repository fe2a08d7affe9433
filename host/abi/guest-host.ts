// What the env.proxy_* shim needs from the VM that runs the guest. The VM implements it; the shim
// depends only on this contract, so abi/ never imports the VM (no cycle between the two).
import type { Clock } from "../clock.ts";
import type { GuestMemory } from "./memory.ts";
import type { SharedData, SharedQueues } from "../shared-data.ts";
import type { VmMetrics } from "../metrics.ts";
import type { HeaderList } from "../types.ts";
import type { HttpCallRequest } from "../http-call.ts";

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

/** The plugin (root context) a host call acts for: its name, ids, configuration and clusters. */
export interface PluginView {
  readonly name: string;
  readonly rootId: string;
  readonly pluginConfiguration: Uint8Array;
  /** Extra get_property values by NUL-joined path. */
  readonly properties: ReadonlyMap<string, Uint8Array>;
  /** http_call cluster name → base URL. */
  readonly clusters: Readonly<Record<string, string>>;
}

export interface GuestHost {
  readonly memory: GuestMemory;
  readonly vmId: string;
  readonly vmConfiguration: Uint8Array;
  readonly logLevel: number;
  readonly metrics: VmMetrics;
  readonly clock: Clock;
  readonly sharedData: SharedData;
  readonly queues: SharedQueues;
  /** PLUGIN_CONFIGURATION is readable only during on_configure. */
  readonly configurationReadable: boolean;
  readonly httpResponse: { headers: HeaderList; body: Uint8Array; trailers: HeaderList } | undefined;
  readonly status: { code: number; message: string };
  /** cpp-host's restricted_callback: traps the guest when the current phase forbids the call. */
  restrict(allowedInStart: boolean, allowedInMalloc?: boolean): void;
  log(level: number, message: string): void;
  /** The stream the active context belongs to (undefined for a root context). */
  activeStream(): StreamSide | undefined;
  /** The plugin whose root context the active context belongs to. */
  activePlugin(): PluginView | undefined;
  /** proxy_set_effective_context: false when no context has that id. */
  setEffectiveContext(id: number): boolean;
  /** proxy_set_tick_period_milliseconds: always the active context's root. */
  setTickPeriod(ms: number): void;
  /** A queue owner that posts on_queue_ready to the active root. */
  queueOwner(): { notify(token: number): void };
  startHttpCall(req: HttpCallRequest): number;
  done(): number;
}
