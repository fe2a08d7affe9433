// Envoy-correct wrappers over the host functions: every call returns a status (or null) instead of
// trapping, host-allocated results are unpinned after reading, and logging goes through proxy_log.

import { __pin, __unpin } from "rt/itcms";
import {
  proxy_add_header_map_value,
  proxy_call_foreign_function,
  proxy_get_buffer_bytes,
  proxy_get_buffer_status,
  proxy_get_current_time_nanoseconds,
  proxy_get_header_map_pairs,
  proxy_get_header_map_value,
  proxy_get_log_level,
  proxy_get_property,
  proxy_get_shared_data,
  proxy_http_call,
  proxy_log,
  proxy_remove_header_map_value,
  proxy_replace_header_map_value,
  proxy_send_local_response,
  proxy_set_buffer_bytes,
  proxy_continue_stream,
  proxy_set_effective_context,
  proxy_set_shared_data,
  proxy_set_tick_period_milliseconds,
  wasi_random_get,
} from "./imports.ts";

// What a stream callback returns (proxy-wasm ABI 0.2.1 FilterHeadersStatus / FilterDataStatus /
// FilterTrailersStatus; Envoy maps them in source/extensions/common/wasm/context.cc convertFilter*Status).
export const HEADERS_CONTINUE: u32 = 0;
export const HEADERS_STOP: u32 = 1;
export const DATA_CONTINUE: u32 = 0;
export const DATA_STOP_AND_BUFFER: u32 = 1;
/** Held without the buffer limit's 413: Envoy buffers with back-pressure (filter_manager.cc requestDataTooLarge). */
export const DATA_STOP_AND_WATERMARK: u32 = 2;
export const TRAILERS_CONTINUE: u32 = 0;
export const TRAILERS_STOP: u32 = 1;

export const WASM_OK: u32 = 0;
export const WASM_NOT_FOUND: u32 = 1;
export const WASM_CAS_MISMATCH: u32 = 8;

export enum LogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
  Critical = 5,
}

export enum HeaderMap {
  Request = 0,
  Response = 2,
  /** The response of an http_call, readable only inside proxy_on_http_call_response. */
  HttpCallResponse = 6,
}

export const BUFFER_REQUEST_BODY: u32 = 0;
export const BUFFER_HTTP_CALL_RESPONSE_BODY: u32 = 4;
export const BUFFER_PLUGIN_CONFIGURATION: u32 = 7;

/** Host → guest copies land in buffers from this allocator (exported as malloc). */
export function hostMalloc(size: i32): usize {
  return __pin(changetype<usize>(new ArrayBuffer(size < 0 ? 0 : size)));
}

// Out-parameters the host writes into; reused so a call allocates only its result.
const outPtr = memory.data(8);
const outLen = memory.data(8);
const outCas = memory.data(8);

/** Takes ownership of what the host wrote into outPtr/outLen. */
function takeResult(): ArrayBuffer {
  const ptr = load<usize>(outPtr);
  const len = load<u32>(outLen);
  if (ptr == 0 || len == 0) return new ArrayBuffer(0);
  const buf = changetype<ArrayBuffer>(ptr);
  __unpin(ptr);
  // A host that reported more bytes than it allocated must not make us read past the buffer.
  return <u32>buf.byteLength == len ? buf : buf.slice(0, min(<i32>len, buf.byteLength));
}

function clearOut(): void {
  store<usize>(outPtr, 0);
  store<u32>(outLen, 0);
}

export function log(level: LogLevel, message: string): void {
  const bytes = String.UTF8.encode(message);
  proxy_log(<u32>level, changetype<usize>(bytes), bytes.byteLength);
}

/** True when the host would keep a message at `level` (skip building per-request debug strings). */
export function logEnabled(level: LogLevel): bool {
  store<u32>(outCas, <u32>LogLevel.Info);
  if (proxy_get_log_level(outCas) != WASM_OK) return level >= LogLevel.Info;
  return <u32>level >= load<u32>(outCas);
}

/** A header's first value, or null when missing or the map is unavailable. */
export function getHeader(map: HeaderMap, name: string): string | null {
  const k = String.UTF8.encode(name);
  clearOut();
  const status = proxy_get_header_map_value(<u32>map, changetype<usize>(k), k.byteLength, outPtr, outLen);
  if (status != WASM_OK) return null;
  return String.UTF8.decode(takeResult());
}

/**
 * How many values a header has in the map (get_header_map_value only returns the first). Reads the
 * serialized pairs (u32 count, count × (u32 key length, u32 value length), then each key and value
 * NUL-terminated); malformed pairs count as none.
 */
export function headerValueCount(map: HeaderMap, name: string): i32 {
  clearOut();
  if (proxy_get_header_map_pairs(<u32>map, outPtr, outLen) != WASM_OK) return 0;
  const pairs = takeResult();
  const size = pairs.byteLength;
  if (size < 4) return 0;
  const base = changetype<usize>(pairs);
  const count = load<u32>(base);
  if (<u64>count * 8 + 4 > <u64>size) return 0;
  const want = String.UTF8.encode(name);
  const wantLen = want.byteLength;
  let at: usize = 4 + <usize>count * 8;
  let n = 0;
  for (let i: u32 = 0; i < count; i++) {
    const keyLen = <usize>load<u32>(base + 4 + <usize>i * 8);
    const valueLen = <usize>load<u32>(base + 8 + <usize>i * 8);
    if (at + keyLen + valueLen + 2 > <usize>size) return n;
    if (keyLen == <usize>wantLen && memory.compare(base + at, changetype<usize>(want), keyLen) == 0) n++;
    at += keyLen + valueLen + 2;
  }
  return n;
}

export function replaceHeader(map: HeaderMap, name: string, value: string): u32 {
  const k = String.UTF8.encode(name);
  const v = String.UTF8.encode(value);
  return proxy_replace_header_map_value(
    <u32>map,
    changetype<usize>(k),
    k.byteLength,
    changetype<usize>(v),
    v.byteLength,
  );
}

export function addHeader(map: HeaderMap, name: string, value: string): u32 {
  const k = String.UTF8.encode(name);
  const v = String.UTF8.encode(value);
  return proxy_add_header_map_value(
    <u32>map,
    changetype<usize>(k),
    k.byteLength,
    changetype<usize>(v),
    v.byteLength,
  );
}

export function removeHeader(map: HeaderMap, name: string): u32 {
  const k = String.UTF8.encode(name);
  return proxy_remove_header_map_value(<u32>map, changetype<usize>(k), k.byteLength);
}

/** Bytes [start, start+len) of a buffer, or null when it is unavailable. */
export function getBufferBytes(buffer: u32, start: u32, len: u32): ArrayBuffer | null {
  clearOut();
  if (proxy_get_buffer_bytes(buffer, start, len, outPtr, outLen) != WASM_OK) return null;
  return takeResult();
}

/** A buffer's current length, or -1 when it is unavailable. */
export function bufferLength(buffer: u32): i64 {
  store<u32>(outLen, 0);
  if (proxy_get_buffer_status(buffer, outLen, outCas) != WASM_OK) return -1;
  return <i64>load<u32>(outLen);
}

/**
 * A property by its NUL-separated path (Envoy's attribute path, e.g. "upstream\0address"), UTF-8 encoded once
 * by the caller so a per-request read encodes nothing; null when the host does not have it now.
 */
export function getPropertyEncoded(p: ArrayBuffer): ArrayBuffer | null {
  clearOut();
  if (proxy_get_property(changetype<usize>(p), p.byteLength, outPtr, outLen) != WASM_OK) return null;
  return takeResult();
}

/** Replaces bytes [start, start+len) of a buffer with `data` (start 0, len ≥ size: the whole body). */
export function setBufferBytes(buffer: u32, start: u32, len: u32, data: Uint8Array): u32 {
  return proxy_set_buffer_bytes(buffer, start, len, data.dataStart, <usize>data.byteLength);
}

export class SharedValue {
  constructor(
    public data: ArrayBuffer,
    public cas: u32,
  ) {}
}

export function getSharedData(key: string): SharedValue | null {
  return getSharedDataAt(String.UTF8.encode(key));
}

/** getSharedData with the key already UTF-8 encoded (callers on the request path keep their keys). */
export function getSharedDataAt(k: ArrayBuffer): SharedValue | null {
  clearOut();
  store<u32>(outCas, 0);
  if (proxy_get_shared_data(changetype<usize>(k), k.byteLength, outPtr, outLen, outCas) != WASM_OK)
    return null;
  const cas = load<u32>(outCas);
  return new SharedValue(takeResult(), cas);
}

export function setSharedData(key: string, value: ArrayBuffer, cas: u32 = 0): u32 {
  return setSharedDataAt(String.UTF8.encode(key), value, cas);
}

/** setSharedData with the key already UTF-8 encoded. */
export function setSharedDataAt(k: ArrayBuffer, value: ArrayBuffer, cas: u32 = 0): u32 {
  return proxy_set_shared_data(
    changetype<usize>(k),
    k.byteLength,
    changetype<usize>(value),
    value.byteLength,
    cas,
  );
}

/** setSharedDataAt with the first `len` bytes of `value` (a reused buffer, written in part). */
export function setSharedDataPart(k: ArrayBuffer, value: ArrayBuffer, len: i32, cas: u32 = 0): u32 {
  const n = min(max(len, 0), value.byteLength);
  return proxy_set_shared_data(changetype<usize>(k), k.byteLength, changetype<usize>(value), n, cas);
}

/** Header pairs in the proxy-wasm wire form: count, (klen, vlen)*, then key\0 value\0 each. */
function serializePairs(names: string[], values: string[]): ArrayBuffer {
  const n = names.length;
  const ks = new Array<ArrayBuffer>(n);
  const vs = new Array<ArrayBuffer>(n);
  let size = 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    ks[i] = String.UTF8.encode(names[i]);
    vs[i] = String.UTF8.encode(values[i]);
    size += ks[i].byteLength + vs[i].byteLength + 2;
  }
  const out = new ArrayBuffer(size);
  const base = changetype<usize>(out);
  store<u32>(base, n);
  let p = base + 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    store<u32>(base + 4 + 8 * i, ks[i].byteLength);
    store<u32>(base + 8 + 8 * i, vs[i].byteLength);
    memory.copy(p, changetype<usize>(ks[i]), ks[i].byteLength);
    p += ks[i].byteLength;
    store<u8>(p++, 0);
    memory.copy(p, changetype<usize>(vs[i]), vs[i].byteLength);
    p += vs[i].byteLength;
    store<u8>(p++, 0);
  }
  return out;
}

/** Answers the stream locally; the headers are added to the reply. */
export function sendLocalReply(
  status: u32,
  details: string,
  body: string,
  names: string[],
  values: string[],
): u32 {
  const d = String.UTF8.encode(details);
  const b = String.UTF8.encode(body);
  const h = serializePairs(names, values);
  return proxy_send_local_response(
    status,
    changetype<usize>(d),
    d.byteLength,
    changetype<usize>(b),
    b.byteLength,
    changetype<usize>(h),
    h.byteLength,
    -1,
  );
}

export function nowNanos(): u64 {
  store<u64>(outCas, 0);
  if (proxy_get_current_time_nanoseconds(outCas) != WASM_OK) return 0;
  return load<u64>(outCas);
}

/** Envoy ≥ 1.33's explicit route-cache clear (the ABI 0.1.0 import does not exist for 0.2.1 modules). */
export function clearRouteCache(): u32 {
  const name = String.UTF8.encode("clear_route_cache");
  clearOut();
  const status = proxy_call_foreign_function(changetype<usize>(name), name.byteLength, 0, 0, outPtr, outLen);
  if (status == WASM_OK) takeResult();
  return status;
}

/** 64 random bits from WASI random_get; 0 when the host refuses. */
export function randomU64(): u64 {
  store<u64>(outCas, 0);
  if (wasi_random_get(outCas, 8) != 0) return 0;
  return load<u64>(outCas);
}

/** The root context's tick period (0 stops it). Envoy keeps one timer per root context. */
export function setTickPeriod(ms: u32): u32 {
  return proxy_set_tick_period_milliseconds(ms);
}

export class HttpCallStart {
  constructor(
    public status: u32,
    public token: u32,
  ) {}
}

/**
 * proxy_http_call with no body and no trailers. Envoy answers BadArgument for an unknown cluster or a
 * missing :method/:path/:authority, and delivers the response to this root's on_http_call_response.
 */
export function httpCall(cluster: string, names: string[], values: string[], timeoutMs: u32): HttpCallStart {
  const c = String.UTF8.encode(cluster);
  const h = serializePairs(names, values);
  const none = serializePairs([], []);
  store<u32>(outCas, 0);
  const status = proxy_http_call(
    changetype<usize>(c),
    c.byteLength,
    changetype<usize>(h),
    h.byteLength,
    0,
    0,
    changetype<usize>(none),
    none.byteLength,
    timeoutMs,
    outCas,
  );
  return new HttpCallStart(status, status == WASM_OK ? load<u32>(outCas) : 0);
}

/** Makes later calls act on context `id` until this VM call returns (BadArgument for an unknown id). */
export function setEffectiveContext(id: u32): u32 {
  return proxy_set_effective_context(id);
}

/** Resumes the (effective) stream's request side; Envoy defers it until the VM call returns. */
export function continueRequest(): u32 {
  return proxy_continue_stream(0);
}
