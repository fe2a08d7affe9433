// The control path: the sidecar POSTs a binary snapshot here. It is always answered locally (never
// forwarded): 204 stored, 400 invalid, 401 bad token, 405 not POST, 409 not newer, 413 too large.

import {
  BUFFER_REQUEST_BODY,
  getBufferBytes,
  getHeader,
  getSharedData,
  HeaderMap,
  headerValueCount,
  log,
  LogLevel,
  nowNanos,
  sendLocalReply,
  setSharedData,
} from "./abi/host.ts";
import { encodeVersion, readVersion, StoredVersion } from "./snapshot-cache.ts";
import { decodeSnapshotBuffer } from "./snapshot/decode.ts";
import { sendError } from "./replies.ts";
import { config, plugin } from "./plugins.ts";

export const HEADERS_CONTINUE: u32 = 0;
export const HEADERS_STOP: u32 = 1;
export const DATA_CONTINUE: u32 = 0;
export const DATA_STOP_AND_BUFFER: u32 = 1;

const GENERATION_HEADER = "x-epp-snapshot-generation";

/**
 * A stored snapshot that nobody refreshed for this long no longer blocks an older generation: no pushed
 * generation (2^64−1 included) can keep the real sidecar from taking routing back within a second.
 */
export const GENERATION_HOLD_MS: u64 = 500;

/** `:path` without its query string. */
export function pathWithoutQuery(path: string): string {
  const q = path.indexOf("?");
  return q < 0 ? path : path.substring(0, q);
}

/** Equality whose time depends only on the lengths, not on where the strings differ. */
export function constantTimeEquals(a: string, b: string): bool {
  const x = String.UTF8.encode(a);
  const y = String.UTF8.encode(b);
  const n = max(x.byteLength, y.byteLength);
  let diff: u32 = <u32>(x.byteLength ^ y.byteLength);
  const px = changetype<usize>(x);
  const py = changetype<usize>(y);
  for (let i = 0; i < n; i++) {
    const a8: u32 = i < x.byteLength ? load<u8>(px + i) : 0;
    const b8: u32 = i < y.byteLength ? load<u8>(py + i) : 0;
    diff |= a8 ^ b8;
  }
  return diff == 0;
}

/** Compares against every accepted token, without stopping early, so timing tells nothing either. */
function tokenAccepted(authorization: string): bool {
  let ok = false;
  const tokens = config.controlTokens;
  for (let i = 0; i < tokens.length; i++) {
    ok = constantTimeEquals(authorization, "Bearer " + tokens[i]) || ok;
  }
  return ok;
}

/** Request headers of a control request. Returns the headers status. */
export function controlHeaders(endOfStream: bool): u32 {
  const method = getHeader(HeaderMap.Request, ":method");
  if (method == null || method != "POST") {
    sendError(
      405,
      "the control path accepts only POST",
      "invalid_request_error",
      "method_not_allowed",
      ["allow"],
      ["POST"],
    );
    return HEADERS_STOP;
  }
  // Two authorization headers are refused outright: proxies disagree on which one counts.
  if (headerValueCount(HeaderMap.Request, "authorization") > 1) {
    sendError(401, "more than one authorization header", "authentication_error", "unauthorized");
    return HEADERS_STOP;
  }
  const auth = getHeader(HeaderMap.Request, "authorization");
  if (auth == null || !tokenAccepted(auth)) {
    sendError(401, "missing or wrong bearer token", "authentication_error", "unauthorized");
    return HEADERS_STOP;
  }
  if (endOfStream) {
    sendError(
      400,
      "the control request has no body; POST a binary snapshot",
      "invalid_request_error",
      "empty_body",
    );
    return HEADERS_STOP;
  }
  const length = getHeader(HeaderMap.Request, "content-length");
  if (length != null && length.length > 0) {
    const n = parseFloat(length);
    if (n > <f64>config.controlMaxBytes) {
      sendError(
        413,
        "snapshot larger than controlMaxBytes (" + config.controlMaxBytes.toString() + ")",
        "invalid_request_error",
        "too_large",
      );
      return HEADERS_STOP;
    }
  }
  // Envoy rewrites StopIteration to StopAllIterationAndWatermark: the body is buffered for us.
  return HEADERS_STOP;
}

/** Request body of a control request: buffers to end of stream, then validates and stores. */
export function controlBody(bodySize: u32, endOfStream: bool): u32 {
  if (bodySize > config.controlMaxBytes) {
    sendError(
      413,
      "snapshot larger than controlMaxBytes (" + config.controlMaxBytes.toString() + ")",
      "invalid_request_error",
      "too_large",
    );
    return DATA_STOP_AND_BUFFER;
  }
  if (!endOfStream) return DATA_STOP_AND_BUFFER;
  const body = getBufferBytes(BUFFER_REQUEST_BODY, 0, bodySize);
  if (body == null) {
    sendError(400, "the control request body could not be read", "invalid_request_error", "empty_body");
    return DATA_STOP_AND_BUFFER;
  }
  const result = decodeSnapshotBuffer(body);
  const s = result.snapshot;
  if (s == null) {
    log(LogLevel.Warn, "rejected snapshot: " + result.message);
    sendError(400, "invalid snapshot: " + result.message, "invalid_request_error", "invalid_snapshot");
    return DATA_STOP_AND_BUFFER;
  }
  if (s.pool.namespace != config.poolNamespace || s.pool.name != config.poolName) {
    const got = s.pool.namespace + "/" + s.pool.name;
    const want = config.poolNamespace + "/" + config.poolName;
    sendError(
      400,
      "snapshot is for pool " + got + ", this filter serves " + want,
      "invalid_request_error",
      "wrong_pool",
    );
    return DATA_STOP_AND_BUFFER;
  }
  const nowMs = nowNanos() / 1_000_000;
  if (s.createdAtMs > nowMs + config.maxClockSkewMs) {
    sendError(
      400,
      "snapshot createdAtMs is " +
        (s.createdAtMs - nowMs).toString() +
        " ms ahead of this Envoy's clock (maxClockSkewMs " +
        config.maxClockSkewMs.toString() +
        "); check the sidecar's clock",
      "invalid_request_error",
      "future_snapshot",
    );
    return DATA_STOP_AND_BUFFER;
  }
  const cache = plugin.snapshots;
  const storedValue = getSharedData(cache.versionKey);
  let stored: StoredVersion | null = null;
  if (storedValue != null) stored = readVersion(storedValue.data);
  if (stored != null) {
    const storedGeneration = stored.generation;
    const storedCrc = stored.crc;
    const heldMs = nowMs > stored.storedAtMs ? nowMs - stored.storedAtMs : 0;
    if (s.generation == storedGeneration && s.crc == storedCrc) {
      sendLocalReply(204, "epp_snapshot_unchanged", "", [GENERATION_HEADER], [storedGeneration.toString()]);
      return DATA_STOP_AND_BUFFER;
    }
    if (s.generation < storedGeneration && heldMs >= GENERATION_HOLD_MS) {
      log(
        LogLevel.Warn,
        "generation moves back from " +
          storedGeneration.toString() +
          " to " +
          s.generation.toString() +
          ": the stored snapshot was not refreshed for " +
          heldMs.toString() +
          " ms",
      );
    } else if (s.generation <= storedGeneration) {
      sendError(
        409,
        "generation " +
          s.generation.toString() +
          " is not newer than the stored " +
          storedGeneration.toString(),
        "invalid_request_error",
        "stale_generation",
        [GENERATION_HEADER],
        [storedGeneration.toString()],
      );
      return DATA_STOP_AND_BUFFER;
    }
  }
  // Table first, then the version: a reader that sees the new version finds a table at least as new.
  setSharedData(cache.tableKey, body);
  setSharedData(cache.versionKey, encodeVersion(s.generation, s.crc, nowMs));
  cache.adopt(s, nowMs);
  // Debug, not info: the sidecar pushes every ~50 ms.
  log(
    LogLevel.Debug,
    "stored snapshot generation " +
      s.generation.toString() +
      " with " +
      s.endpoints.length.toString() +
      " endpoints",
  );
  sendLocalReply(204, "epp_snapshot_stored", "", [GENERATION_HEADER], [s.generation.toString()]);
  return DATA_STOP_AND_BUFFER;
}
