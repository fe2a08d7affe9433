// The Envoy host functions this filter uses (proxy-wasm ABI 0.2.1), declared with Envoy's exact
// signatures. Declared here rather than taken from the SDK so that nothing can pull in an import
// Envoy lacks (proxy_clear_route_cache) or one with the wrong arity (the SDK's proxy_grpc_*).

@external("env", "proxy_log")
export declare function proxy_log(level: u32, ptr: usize, len: usize): u32;

@external("env", "proxy_get_header_map_value")
export declare function proxy_get_header_map_value(map: u32, kPtr: usize, kLen: usize, retPtr: usize, retLen: usize): u32;

@external("env", "proxy_add_header_map_value")
export declare function proxy_add_header_map_value(map: u32, kPtr: usize, kLen: usize, vPtr: usize, vLen: usize): u32;

@external("env", "proxy_replace_header_map_value")
export declare function proxy_replace_header_map_value(map: u32, kPtr: usize, kLen: usize, vPtr: usize, vLen: usize): u32;

@external("env", "proxy_remove_header_map_value")
export declare function proxy_remove_header_map_value(map: u32, kPtr: usize, kLen: usize): u32;

@external("env", "proxy_get_buffer_bytes")
export declare function proxy_get_buffer_bytes(buffer: u32, start: u32, maxLen: u32, retPtr: usize, retLen: usize): u32;

@external("env", "proxy_send_local_response")
export declare function proxy_send_local_response(
  status: u32,
  detailsPtr: usize,
  detailsLen: usize,
  bodyPtr: usize,
  bodyLen: usize,
  headersPtr: usize,
  headersLen: usize,
  grpcStatus: i32,
): u32;

@external("env", "proxy_get_shared_data")
export declare function proxy_get_shared_data(kPtr: usize, kLen: usize, retPtr: usize, retLen: usize, retCas: usize): u32;

@external("env", "proxy_set_shared_data")
export declare function proxy_set_shared_data(kPtr: usize, kLen: usize, vPtr: usize, vLen: usize, cas: u32): u32;

@external("env", "proxy_get_current_time_nanoseconds")
export declare function proxy_get_current_time_nanoseconds(retPtr: usize): u32;

@external("env", "proxy_call_foreign_function")
export declare function proxy_call_foreign_function(nPtr: usize, nLen: usize, aPtr: usize, aLen: usize, retPtr: usize, retLen: usize): u32;

@external("wasi_snapshot_preview1", "random_get")
export declare function wasi_random_get(ptr: usize, len: usize): u16;

@external("env", "proxy_set_buffer_bytes")
export declare function proxy_set_buffer_bytes(buffer: u32, start: u32, len: u32, dataPtr: usize, dataLen: usize): u32;

@external("env", "proxy_get_log_level")
export declare function proxy_get_log_level(retLevel: usize): u32;

@external("env", "proxy_get_property")
export declare function proxy_get_property(pathPtr: usize, pathLen: usize, retPtr: usize, retLen: usize): u32;

@external("env", "proxy_get_header_map_pairs")
export declare function proxy_get_header_map_pairs(map: u32, retPtr: usize, retLen: usize): u32;

@external("env", "proxy_get_buffer_status")
export declare function proxy_get_buffer_status(buffer: u32, retLen: usize, retFlags: usize): u32;

@external("env", "proxy_set_tick_period_milliseconds")
export declare function proxy_set_tick_period_milliseconds(periodMs: u32): u32;

@external("env", "proxy_http_call")
export declare function proxy_http_call(
  upstreamPtr: usize,
  upstreamLen: usize,
  headersPtr: usize,
  headersLen: usize,
  bodyPtr: usize,
  bodyLen: usize,
  trailersPtr: usize,
  trailersLen: usize,
  timeoutMs: u32,
  retToken: usize,
): u32;

@external("env", "proxy_define_metric")
export declare function proxy_define_metric(type: u32, namePtr: usize, nameLen: usize, idPtr: usize): u32;

@external("env", "proxy_increment_metric")
export declare function proxy_increment_metric(id: u32, delta: i64): u32;

@external("env", "proxy_record_metric")
export declare function proxy_record_metric(id: u32, value: u64): u32;

// Flow control resumes a held stream from the root's tick (Envoy context.cc Context::continueStream;
// proxy-wasm-cpp-host src/exports.cc set_effective_context).
@external("env", "proxy_set_effective_context")
export declare function proxy_set_effective_context(contextId: u32): u32;

@external("env", "proxy_continue_stream")
export declare function proxy_continue_stream(streamType: u32): u32;
