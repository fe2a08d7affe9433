// Local error replies with an OpenAI-style JSON body, so clients of the gateway see the same error
// shape the model servers use.

import { sendLocalReply } from "./abi/host.ts";
import { jsonString } from "./snapshot/to-json.ts";

export function errorBody(message: string, type: string, code: string): string {
  return (
    '{"error":{"message":' +
    jsonString(message) +
    ',"type":' +
    jsonString(type) +
    ',"param":null,"code":' +
    jsonString(code) +
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
