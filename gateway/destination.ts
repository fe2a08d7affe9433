// How Envoy reads x-gateway-destination-endpoint, per cluster type (Envoy 1.35 source; see gateway/README.md):
//   ORIGINAL_DST  — the first header value, parsed WHOLE as one ip:port (a comma list is invalid);
//   override_host — the first header value split on ',' into entries matched as strings against the cluster's hosts.
import { isIPv4, isIPv6, SocketAddress } from "node:net";

export const DESTINATION_HEADER = "x-gateway-destination-endpoint";

export interface Destination {
  host: string; // IP literal without brackets
  port: number; // 0..65535 (Envoy accepts 0; connecting to it fails)
  family: "ipv4" | "ipv6";
}

// absl::ascii_isspace: the characters absl's SimpleAtoi, StripAsciiWhitespace and SkipWhitespace treat as space.
const ASCII_SPACE = " \t\n\v\f\r";
const PORT = /^[ \t\n\v\f\r]*\+?([0-9]+)[ \t\n\v\f\r]*$/;

/**
 * absl::SimpleAtoi into a uint64, then `> 65535` rejected, as in Envoy's
 * source/common/network/utility.cc Utility::parseInternetAddressAndPortNoThrow: whitespace around the digits
 * and a leading '+' are tolerated, port 0 is accepted.
 */
function parsePort(text: string): number | undefined {
  const m = PORT.exec(text);
  if (!m) return undefined;
  const digits = m[1]!.replace(/^0+(?=[0-9])/, "");
  if (digits.length > 5) return undefined;
  const port = Number(digits);
  return port <= 65535 ? port : undefined;
}

/**
 * Envoy's Utility::parseInternetAddressAndPortNoThrow (source/common/network/utility.cc): `[v6]:port` split at
 * the last "]:", otherwise split at the last ':' and the left part must be a strict dotted-quad IPv4 literal
 * (inet_pton: no hostnames, no leading zeros, no surrounding whitespace). Returns undefined when Envoy gets null.
 */
export function parseInternetAddressAndPort(value: string): Destination | undefined {
  if (value === "") return undefined;
  if (value.startsWith("[")) {
    const pos = value.lastIndexOf("]:");
    if (pos < 0) return undefined;
    const ip = value.slice(1, pos);
    const port = parsePort(value.slice(pos + 2));
    // getaddrinfo(AI_NUMERICHOST, AF_INET6): IPv6 literals only (scope ids allowed).
    if (port === undefined || !isIPv6(ip)) return undefined;
    return { host: ip, port, family: "ipv6" };
  }
  const pos = value.lastIndexOf(":");
  if (pos < 0) return undefined;
  const ip = value.slice(0, pos);
  const port = parsePort(value.slice(pos + 1));
  if (port === undefined || !isIPv4(ip)) return undefined;
  return { host: ip, port, family: "ipv4" };
}

/**
 * The address string Envoy keys hosts by (Address::Instance::asString: inet_ntop form, IPv6 in brackets), which
 * the override_host policy compares header entries against.
 */
export function hostKey(d: Destination): string {
  if (d.family === "ipv4") return `${d.host}:${d.port}`;
  const canonical = new SocketAddress({ address: d.host, family: "ipv6" }).address;
  return `[${canonical}]:${d.port}`;
}

function stripAsciiWhitespace(s: string): string {
  let start = 0;
  let end = s.length;
  while (start < end && ASCII_SPACE.includes(s[start]!)) start++;
  while (end > start && ASCII_SPACE.includes(s[end - 1]!)) end--;
  return s.slice(start, end);
}

/**
 * The override_host policy's entry list (source/extensions/load_balancing_policies/override_host/load_balancer.cc,
 * LoadBalancerImpl::getSelectedHosts): split on ',' dropping empty or whitespace-only pieces
 * (absl::SkipWhitespace), each piece stripped of ASCII whitespace. Entries are not parsed: findHost matches them
 * as strings, so anything that is not exactly a host key is simply skipped.
 */
export function splitOverrideHosts(headerValue: string | undefined): string[] {
  if (headerValue === undefined) return [];
  const out: string[] = [];
  for (const piece of headerValue.split(",")) {
    const entry = stripAsciiWhitespace(piece);
    if (entry !== "") out.push(entry);
  }
  return out;
}

/** Envoy's HeaderMap::get(name)[0]: the first value of a (lower-case) header, or undefined. */
export function firstHeaderValue(
  headers: ReadonlyArray<readonly [string, string]>,
  name: string,
): string | undefined {
  return headers.find(([k]) => k === name)?.[1];
}
