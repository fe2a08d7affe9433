// Public API of the Envoy-faithful proxy-wasm host.
export { EnvoyProcess } from "./process.ts";
export { type Clock, realClock, VirtualClock } from "./clock.ts";
export {
  type HeaderList,
  type LogEntry,
  type LocalReply,
  type PluginConfig,
  type StreamCallbacks,
  type HttpStream,
  type NewStreamOptions,
  type WasmPlugin,
  WasmLoadError,
  PluginConfigError,
  WasmResult,
  MapType,
  BufferType,
  LogLevel,
} from "./types.ts";
export { SharedData, SharedQueues } from "./shared-data.ts";
export { MetricStore } from "./metrics.ts";
export { verifyModule, assertLoadable, parseImports, type VerifyResult, type AbiVersion } from "./verify.ts";
export { serializePairs, deserializePairs } from "./abi/memory.ts";
export { WasmHttpStream } from "./http-stream.ts";
