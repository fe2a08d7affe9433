// Pull mode: the filter fetches snapshots itself, for setups where no inbound control path is acceptable.
// A root-context tick asks the sidecar's `GET /snapshot` with proxy_http_call (If-None-Match: the last
// ETag), and a 200 body goes through ingest.ts exactly as a pushed one does.
//
// Every worker VM has a root context and a tick, but only one per Envoy fetches: the holder of a lease in
// shared data (`<prefix>pull-lease` = holder id u64 + expiry ms on Envoy's clock u64). A worker takes the
// lease only when it is free or expired, and always with the CAS value it read, so of two workers taking it
// at once one gets CasMismatch. The holder renews it on each tick; a holder whose VM failed or went away
// stops renewing, and another worker takes over after LEASE_INTERVALS intervals. The one race the ABI
// leaves open: creating the key (a set on an absent key ignores the CAS, proxy-wasm-cpp-host
// SharedData::set), so at start-up two workers can both believe they hold it for one interval.

import {
  BUFFER_HTTP_CALL_RESPONSE_BODY,
  getBufferBytes,
  getHeader,
  getSharedData,
  HeaderMap,
  httpCall,
  log,
  LogLevel,
  nowNanos,
  setSharedData,
  WASM_OK,
} from "./abi/host.ts";
import { INGEST_INVALID, INGEST_NOT_NEWER, ingestSnapshot } from "./ingest.ts";
import { activate, config, plugin, pluginOf } from "./plugins.ts";
import { PullState } from "./pull-state.ts";

/** A lease not renewed for this many intervals is free to take. */
export const LEASE_INTERVALS: u64 = 3;
const LEASE_BYTES: i32 = 16;
const MAX_ETAG_LENGTH: i32 = 256;

function nowMs(): u64 {
  return nowNanos() / 1_000_000;
}

function encodeLease(holder: u64, expiresAtMs: u64): ArrayBuffer {
  const out = new ArrayBuffer(LEASE_BYTES);
  store<u64>(changetype<usize>(out), holder);
  store<u64>(changetype<usize>(out) + 8, expiresAtMs);
  return out;
}

/** Takes or renews the lease; true when this root holds it until now + the lease time. */
export function holdLease(st: PullState, now: u64): bool {
  let v = getSharedData(st.leaseKey);
  if (v == null) {
    // Create it free, then take it with a CAS like any other free lease.
    setSharedData(st.leaseKey, encodeLease(0, 0), 0);
    v = getSharedData(st.leaseKey);
    if (v == null) return false;
  }
  let holder: u64 = 0;
  let expires: u64 = 0;
  // A malformed value counts as free (it is overwritten under the same CAS rule).
  if (v.data.byteLength == LEASE_BYTES) {
    holder = load<u64>(changetype<usize>(v.data));
    expires = load<u64>(changetype<usize>(v.data) + 8);
  }
  if (holder != st.holder && holder != 0 && expires > now) return false;
  const until = now + LEASE_INTERVALS * <u64>config.pullIntervalMs;
  return setSharedData(st.leaseKey, encodeLease(st.holder, until), v.cas) == WASM_OK;
}

/** Frees the lease if this root holds it (its plugin is going away), so another worker need not wait. */
export function releaseLease(st: PullState): void {
  const v = getSharedData(st.leaseKey);
  if (v == null || v.data.byteLength != LEASE_BYTES) return;
  if (load<u64>(changetype<usize>(v.data)) != st.holder) return;
  setSharedData(st.leaseKey, encodeLease(0, 0), v.cas);
}

/** on_tick of a pulling root: renew or take the lease, and fetch if this root holds it and is idle. */
export function pullTick(rootId: u32): void {
  const p = pluginOf(rootId);
  if (p == null) return;
  activate(p);
  const st = p.pull;
  if (st == null) return;
  const now = nowMs();
  if (!holdLease(st, now)) return;
  if (st.inFlight != 0) {
    // Envoy always answers a call with a timeout; this only guards against a host that never does.
    if (now < st.inFlightSinceMs + <u64>config.pullTimeoutMs + 1000) return;
    st.inFlight = 0;
    failed(st, "lost", "no answer to the snapshot request within pull.timeoutMs", now);
  }
  const names: string[] = [":method", ":path", ":authority", "accept"];
  const values: string[] = ["GET", config.pullPath, config.pullAuthority, "application/octet-stream"];
  if (st.etag.length > 0) {
    names.push("if-none-match");
    values.push(st.etag);
  }
  const call = httpCall(config.pullCluster, names, values, config.pullTimeoutMs);
  if (call.status != WASM_OK) {
    failed(
      st,
      "refused",
      "http_call to cluster " +
        config.pullCluster +
        " was refused (status " +
        call.status.toString() +
        "); check that the cluster exists in this Envoy",
      now,
    );
    return;
  }
  st.inFlight = call.token;
  st.inFlightSinceMs = now;
}

function failed(st: PullState, cause: string, message: string, now: u64): void {
  st.failures++;
  st.logOnce(cause, "snapshot pull from cluster " + config.pullCluster + ": " + message, now);
}

function succeeded(st: PullState): void {
  if (st.failures > 0)
    log(
      LogLevel.Info,
      "snapshot pull from cluster " +
        config.pullCluster +
        " works again after " +
        st.failures.toString() +
        " failed attempts",
    );
  st.failures = 0;
}

/** An ETag worth sending back: printable ASCII, bounded (anything else is dropped, never echoed). */
function usableEtag(v: string | null): string {
  if (v == null || v.length == 0 || v.length > MAX_ETAG_LENGTH) return "";
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return "";
  }
  return v;
}

/** proxy_on_http_call_response: the response maps and body are readable only during this call. */
export function pullResponse(rootId: u32, token: u32, headers: u32, bodySize: u32): void {
  const p = pluginOf(rootId);
  if (p == null) return;
  activate(p);
  const st = plugin.pull;
  if (st == null || token != st.inFlight || token == 0) return;
  st.inFlight = 0;
  const now = nowMs();
  // Envoy delivers a reset (or an overflowing response) as a call without headers (status 11).
  if (headers == 0) {
    failed(st, "reset", "no response (connection reset); retrying every pull.intervalMs", now);
    return;
  }
  const status = getHeader(HeaderMap.HttpCallResponse, ":status");
  if (status != null && status == "304") {
    succeeded(st);
    return;
  }
  if (status == null || status != "200") {
    // An unreachable sidecar or a timeout is an ordinary 503/504 from Envoy's async client.
    const s = status == null ? "none" : status;
    failed(st, "status " + s, "answered " + s + " for " + config.pullPath, now);
    return;
  }
  if (bodySize > config.controlMaxBytes) {
    failed(st, "too_large", "snapshot of " + bodySize.toString() + " bytes is over controlMaxBytes", now);
    return;
  }
  const body = getBufferBytes(BUFFER_HTTP_CALL_RESPONSE_BODY, 0, bodySize);
  if (body == null) {
    failed(st, "no_body", "the response body could not be read", now);
    return;
  }
  const r = ingestSnapshot(body, now);
  if (r.outcome == INGEST_INVALID) {
    st.etag = "";
    failed(st, r.code, r.message, now);
    return;
  }
  // Not newer: the stored snapshot stays; the same ETag will not make it newer, so keep asking with it.
  st.etag = usableEtag(getHeader(HeaderMap.HttpCallResponse, "etag"));
  if (r.outcome == INGEST_NOT_NEWER) {
    failed(st, r.code, r.message, now);
    return;
  }
  succeeded(st);
}
