// The control path: the sidecar POSTs a binary snapshot here. It is always answered locally (never
// forwarded): 204 stored, 400 invalid, 401 bad token, 405 not POST, 409 not newer, 413 too large.
// The checks and the store are ingest.ts's, shared with pull mode (pull.ts).

import {
  BUFFER_REQUEST_BODY,
  DATA_CONTINUE,
  DATA_STOP_AND_BUFFER,
  HEADERS_CONTINUE,
  HEADERS_STOP,
  getBufferBytes,
  getHeader,
  HeaderMap,
  headerValueCount,
  nowNanos,
  sendLocalReply,
} from "./abi/host.ts";
import { sendError } from "./replies.ts";
import { config } from "./plugins.ts";
import { INGEST_NOT_NEWER, INGEST_STORED, INGEST_UNCHANGED, ingestSnapshot } from "./ingest.ts";

const GENERATION_HEADER = "x-epp-snapshot-generation";

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
  const r = ingestSnapshot(body, nowNanos() / 1_000_000);
  switch (r.outcome) {
    case INGEST_STORED:
      sendLocalReply(204, "epp_snapshot_stored", "", [GENERATION_HEADER], [r.generation.toString()]);
      break;
    case INGEST_UNCHANGED:
      sendLocalReply(204, "epp_snapshot_unchanged", "", [GENERATION_HEADER], [r.generation.toString()]);
      break;
    case INGEST_NOT_NEWER:
      sendError(
        409,
        r.message,
        "invalid_request_error",
        r.code,
        [GENERATION_HEADER],
        [r.generation.toString()],
      );
      break;
    default:
      sendError(400, r.message, "invalid_request_error", r.code);
  }
  return DATA_STOP_AND_BUFFER;
}
