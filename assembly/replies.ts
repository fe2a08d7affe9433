// Local error replies in the error shape of the API the client speaks: OpenAI's for every path but
// `POST /v1/messages`, Anthropic's there (docs/deploy.md "Error replies"), so clients of the gateway see
// the same errors the model servers' own APIs produce.

import { sendLocalReply } from "./abi/host.ts";
import { jsonString } from "./snapshot/to-json.ts";

/** OpenAI's error object; an empty `code` or `param` is null. */
export function errorBody(message: string, type: string, code: string, param: string = ""): string {
  return (
    '{"error":{"message":' +
    jsonString(message) +
    ',"type":' +
    jsonString(type) +
    ',"param":' +
    (param.length > 0 ? jsonString(param) : "null") +
    ',"code":' +
    (code.length > 0 ? jsonString(code) : "null") +
    "}}"
  );
}

/**
 * Anthropic's error type for an HTTP status (its API's documented pairs: 400 invalid_request_error, 404
 * not_found_error, 413 request_too_large, 429 rate_limit_error, 500 api_error, 529 overloaded_error;
 * other 4xx are invalid_request_error). Our 503s are "no capacity now, retry": overloaded_error.
 */
export function anthropicErrorType(status: u32): string {
  if (status == 404) return "not_found_error";
  if (status == 413) return "request_too_large";
  if (status == 429) return "rate_limit_error";
  if (status == 503 || status == 529) return "overloaded_error";
  if (status == 401) return "authentication_error";
  if (status == 403) return "permission_error";
  if (status >= 400 && status < 500) return "invalid_request_error";
  return "api_error";
}

/** Anthropic's error envelope: {"type":"error","error":{"type":…,"message":…}}. */
export function anthropicErrorBody(status: u32, message: string): string {
  return (
    '{"type":"error","error":{"type":"' +
    anthropicErrorType(status) +
    '","message":' +
    jsonString(message) +
    "}}"
  );
}

/** Replies locally with status and a JSON error; extra headers are added to the reply. */
export function sendError(
  status: u32,
  message: string,
  type: string,
  code: string,
  names: string[] = [],
  values: string[] = [],
): void {
  names.push("content-type");
  values.push("application/json");
  sendLocalReply(status, "epp_" + code, errorBody(message, type, code), names, values);
}

/** Replies locally with a ready-made JSON body (e.g. the request scanner's OpenAI-style error). */
export function sendJsonReply(status: u32, details: string, body: string): void {
  sendLocalReply(status, details, body, ["content-type"], ["application/json"]);
}

/** An error reply's body in `dialect` (decision.ts DIALECT_*: 0 OpenAI, 1 Anthropic). */
export function dialectErrorBody(
  dialect: i32,
  status: u32,
  message: string,
  type: string,
  code: string,
  param: string,
): string {
  return dialect == 1 ? anthropicErrorBody(status, message) : errorBody(message, type, code, param);
}
