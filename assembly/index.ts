// The endpoint-picker filter's exports (proxy-wasm ABI 0.2.1). Written out here instead of the SDK's
// `export *`: its root-context proxy_on_done/proxy_on_delete trap, and its per-context bookkeeping
// builds debug strings on every request. Callbacks not exported mean Continue / no-op to Envoy.

import { hostMalloc } from "./abi/host.ts";
import {
  onConfigure,
  onContextCreate,
  onDelete,
  onLog,
  onRequestBody,
  onRequestHeaders,
  onRequestTrailers,
  onResponseHeaders,
  onTick,
} from "./filter.ts";
import { pullResponse } from "./pull.ts";

export function malloc(size: i32): usize {
  return hostMalloc(size);
}

export function proxy_abi_version_0_2_1(): void {}

export function proxy_on_context_create(contextId: u32, parentId: u32): void {
  onContextCreate(contextId, parentId);
}

export function proxy_on_vm_start(rootId: u32, vmConfigSize: u32): bool {
  return true;
}

export function proxy_on_configure(rootId: u32, configSize: u32): bool {
  return onConfigure(rootId, configSize);
}

export function proxy_on_request_headers(contextId: u32, headers: u32, endOfStream: bool): u32 {
  return onRequestHeaders(contextId, endOfStream);
}

export function proxy_on_request_body(contextId: u32, bodySize: u32, endOfStream: bool): u32 {
  return onRequestBody(contextId, bodySize, endOfStream);
}

export function proxy_on_request_trailers(contextId: u32, trailers: u32): u32 {
  return onRequestTrailers(contextId);
}

export function proxy_on_response_headers(contextId: u32, headers: u32, endOfStream: bool): u32 {
  return onResponseHeaders(contextId);
}

export function proxy_on_log(contextId: u32): void {
  onLog(contextId);
}

/** Each root's tick: pull mode's poll (pull.ts) and the flow-control queue (filter.ts onTick). */
export function proxy_on_tick(rootId: u32): void {
  onTick(rootId);
}

export function proxy_on_http_call_response(
  rootId: u32,
  token: u32,
  headers: u32,
  bodySize: u32,
  trailers: u32,
): void {
  pullResponse(rootId, token, headers, bodySize);
}

export function proxy_on_done(contextId: u32): bool {
  return true;
}

export function proxy_on_delete(contextId: u32): void {
  onDelete(contextId);
}
