// Shared types and the proxy-wasm ABI 0.2.1 enums (envoy-proxy-wasm.md §2 "Status codes").

/** Keys lower-cased; pseudo-headers (:method, :path, :authority, :scheme, :status) first. */
export type HeaderList = Array<[string, string]>;

export const WasmResult = {
  Ok: 0,
  NotFound: 1,
  BadArgument: 2,
  SerializationFailure: 3,
  ParseFailure: 4,
  BadExpression: 5,
  InvalidMemoryAccess: 6,
  Empty: 7,
  CasMismatch: 8,
  ResultMismatch: 9,
  InternalFailure: 10,
  BrokenConnection: 11,
  Unimplemented: 12,
} as const;

/**
 * Bits of Envoy's `response.flags` property: StreamInfo::legacyResponseFlags() sets bit N for the
 * CoreResponseFlag with enum value N (envoy/stream_info/stream_info.h enum CoreResponseFlag,
 * source/common/stream_info/stream_info_impl.h legacyResponseFlags; v1.35.0).
 */
export const ResponseFlag = {
  /** UH (NoHealthyUpstream = 1). */
  NoHealthyUpstream: 1 << 1,
  /** UT (UpstreamRequestTimeout = 2). */
  UpstreamRequestTimeout: 1 << 2,
  /** LR (LocalReset = 3). */
  LocalReset: 1 << 3,
  /** UR (UpstreamRemoteReset = 4). */
  UpstreamRemoteReset: 1 << 4,
  /** UF (UpstreamConnectionFailure = 5). */
  UpstreamConnectionFailure: 1 << 5,
  /** UC (UpstreamConnectionTermination = 6). */
  UpstreamConnectionTermination: 1 << 6,
  /** URX (UpstreamRetryLimitExceeded = 15). */
  UpstreamRetryLimitExceeded: 1 << 15,
  /** UPE (UpstreamProtocolError = 23). */
  UpstreamProtocolError: 1 << 23,
} as const;

export const MapType = {
  RequestHeaders: 0,
  RequestTrailers: 1,
  ResponseHeaders: 2,
  ResponseTrailers: 3,
  GrpcReceiveInitialMetadata: 4,
  GrpcReceiveTrailingMetadata: 5,
  HttpCallResponseHeaders: 6,
  HttpCallResponseTrailers: 7,
} as const;

export const BufferType = {
  HttpRequestBody: 0,
  HttpResponseBody: 1,
  DownstreamData: 2,
  UpstreamData: 3,
  HttpCallResponseBody: 4,
  GrpcReceiveBuffer: 5,
  VmConfiguration: 6,
  PluginConfiguration: 7,
  CallData: 8,
} as const;

export const LogLevel = { trace: 0, debug: 1, info: 2, warn: 3, error: 4, critical: 5 } as const;
export const LOG_LEVEL_NAMES = ["trace", "debug", "info", "warn", "error", "critical"] as const;

export interface LogEntry {
  level: number; // 0..5
  message: string;
  worker: number; // -1 for the canary VM
  plugin?: string;
}

export interface PluginConfig {
  name?: string;
  rootId?: string;
  vmId: string;
  /** PLUGIN_CONFIGURATION (buffer 7), readable only during on_configure. */
  configuration?: string | Uint8Array;
  /** VM_CONFIGURATION (buffer 6). */
  vmConfiguration?: string | Uint8Array;
  /** WASI environ. */
  environment?: Record<string, string>;
  /** Worker VMs; default 2. */
  workers?: number;
  /**
   * Envoy's deprecated `fail_open`. The only flag a stream already running consults after its VM traps
   * (cpp-host CHECK_FAIL): true → it continues untouched, false → 503 `wasm_fail_stream`. As a policy
   * it means FAIL_OPEN. Setting it together with `failurePolicy` is a configuration error, as in Envoy.
   */
  failOpen?: boolean;
  /**
   * Envoy's PluginConfig.failure_policy; unset means FAIL_CLOSED (source/extensions/common/wasm/wasm.cc,
   * PluginConfig::PluginConfig). What a NEW stream gets while its worker's VM has trapped: FAIL_CLOSED →
   * 503; FAIL_OPEN → the filter is skipped; FAIL_RELOAD → a fresh VM (module state lost, shared data
   * kept) once the back-off allows, else 503.
   */
  failurePolicy?: FailurePolicy;
  /** FAIL_RELOAD back-off base (reload_config.backoff.base_interval); default 1000 ms. */
  reloadBackoffMs?: number;
  /** Default false: StopIteration(1) from headers is rewritten to 4. */
  allowOnHeadersStopIteration?: boolean;
  /** Default 1 MiB; request buffering over it → 413, response → 500. */
  bufferLimitBytes?: number;
  /** http_call cluster name → base URL (e.g. "http://127.0.0.1:9000"); unknown → BadArgument. */
  clusters?: Record<string, string>;
  /** Extra get_property values by NUL-joined path. */
  properties?: Record<string, Uint8Array | string>;
  /** Envoy's wasm logger level (proxy_get_log_level; lower levels are dropped). Default info (2). */
  logLevel?: number;
  /**
   * Test-only: extra host functions linked under import module "test". Envoy has no such module;
   * import verification ignores it only when this is set.
   */
  testImports?: (vm: {
    workerIndex: number;
    exports: () => WebAssembly.Exports;
  }) => Record<string, (...args: never[]) => unknown>;
}

export type FailurePolicy = "FAIL_CLOSED" | "FAIL_OPEN" | "FAIL_RELOAD";

export interface LocalReply {
  status: number;
  headers: HeaderList;
  body: Uint8Array;
  details: string;
}

/** What the filter lets through / answers, exactly as Envoy's filter manager would. */
export interface StreamCallbacks {
  forwardRequestHeaders(headers: HeaderList, endOfStream: boolean): void;
  forwardRequestData(data: Uint8Array, endOfStream: boolean): void;
  /** Request trailers (they end the request); only streams that received trailers call it. */
  forwardRequestTrailers?(trailers: HeaderList): void;
  forwardResponseHeaders(headers: HeaderList, endOfStream: boolean): void;
  forwardResponseData(data: Uint8Array, endOfStream: boolean): void;
  localReply(reply: LocalReply): void;
  reset?(reason: string): void;
}

export interface HttpStream {
  /** Lazily creates the context, calls on_request_headers. */
  decodeHeaders(headers: HeaderList, endOfStream: boolean): void;
  /** on_request_body with Envoy's buffering semantics. */
  decodeData(data: Uint8Array, endOfStream: boolean): void;
  /** on_request_trailers: the trailers end the request (the body's last chunk had no end_of_stream). */
  decodeTrailers(trailers: HeaderList): void;
  encodeHeaders(headers: HeaderList, endOfStream: boolean): void;
  encodeData(data: Uint8Array, endOfStream: boolean): void;
  /** on_log, on_done, on_delete (in that order). */
  destroy(): void;
  /**
   * The router picked this upstream host for the current attempt (each retry calls it again), so the
   * `upstream.address` / `upstream.port` properties answer with the last attempt's host, as in Envoy.
   */
  setUpstreamHost(address: string, port: number): void;
  /**
   * The router records how the stream ended: `flags` are OR-ed into the stream's response flags (Envoy's
   * StreamInfo::setResponseFlag accumulates), `details` replaces the response code details. The
   * `response.flags` / `response.code_details` properties answer with them.
   */
  setResponseInfo(info: { flags?: number; details?: string }): void;
  readonly workerIndex: number;
  /** Context id inside its worker VM (0 until created). */
  readonly contextId: number;
}

export interface NewStreamOptions {
  worker?: number;
  /** The filter is not in this stream's chain (FAIL_OPEN with a failed VM): everything passes through. */
  bypass?: boolean;
  downstream?: { address: string; port: number };
  destination?: { address: string; port: number };
}

export interface WasmPlugin {
  readonly workers: number;
  newHttpStream(cb: StreamCallbacks, opts?: NewStreamOptions): HttpStream;
  /** Fires on_tick on every worker whose root has a tick period set (test helper; does not touch timers). */
  tick?(): void;
  shutdown(): Promise<void>;
  readonly failedWorkers: number[];
  logs: LogEntry[];
}

export class WasmLoadError extends Error {
  override name = "WasmLoadError";
}
export class PluginConfigError extends Error {
  override name = "PluginConfigError";
}
