// The boundary between the host's header strings (UTF-8 text, as the module reads and writes them) and Node's
// header API (latin1 strings, one char per byte), with the checks that keep node:http from throwing. Node
// refuses a header name that is not an RFC 9110 token and a value with a byte outside HTAB, SP, 0x21–0x7E,
// 0x80–0xFF (_http_common.js checkIsHttpToken / checkInvalidHeaderChar) — the same sets Envoy's HTTP/1 request
// encoder checks (source/common/http/header_utility.cc HeaderUtility::headerNameIsValid, headerValueIsValid).
import type { HeaderList } from "../host/index.ts";

// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const INVALID_VALUE_BYTE = /[^\t\x20-\x7e\x80-\xff]/;

/** Node's latin1 header string → the host's UTF-8 text (bytes that are not UTF-8 become U+FFFD). */
export function fromWire(v: string): string {
  return NON_ASCII.test(v) ? Buffer.from(v, "latin1").toString("utf8") : v;
}

/**
 * The host's UTF-8 text → the latin1 string Node writes byte for byte. Non-ASCII text (obs-text on the wire,
 * valid for Envoy) is sent as its UTF-8 bytes instead of making Node throw on a char above 0xFF.
 */
export function toWire(v: string): string {
  return NON_ASCII.test(v) ? Buffer.from(v, "utf8").toString("latin1") : v;
}

export function isToken(name: string): boolean {
  return TOKEN.test(name);
}

/** A wire value (after toWire) Node and Envoy's request encoder both accept. */
function isValidWireValue(value: string): boolean {
  return !INVALID_VALUE_BYTE.test(value);
}

/** Why a header would be refused, in Envoy's words ("invalid header name: k", "invalid header value for: k"). */
export function headerProblem(name: string, wireValue: string): string | undefined {
  if (!isToken(name)) return `invalid header name: ${name}`;
  if (!isValidWireValue(wireValue)) return `invalid header value for: ${name}`;
  return undefined;
}

const SKIP_NONE: ReadonlySet<string> = new Set();

/**
 * Converts non-pseudo headers for Node and reports the first one node:http would refuse (the caller answers with
 * a 5xx instead of letting Node throw). `skip` drops names (hop-by-hop headers) before the check.
 */
export function toOutgoing(
  headers: HeaderList,
  skip: ReadonlySet<string> = SKIP_NONE,
): { headers: Record<string, string | string[]>; problem?: string } {
  const out: Record<string, string | string[]> = {};
  let problem: string | undefined;
  for (const [k, v] of headers) {
    if (k.startsWith(":") || skip.has(k)) continue;
    const value = toWire(v);
    problem ??= headerProblem(k, value);
    const prev = out[k];
    if (prev === undefined) out[k] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[k] = [prev, value];
  }
  return problem === undefined ? { headers: out } : { headers: out, problem };
}

/** A status node:http writes as a final response: an integer 200–999 (Node refuses < 100 and > 999). */
export function isFinalStatus(status: number): boolean {
  return Number.isInteger(status) && status >= 200 && status <= 999;
}
