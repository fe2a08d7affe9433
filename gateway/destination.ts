// How Envoy's ORIGINAL_DST cluster (use_http_header) turns the destination header into an upstream:
// only the first value is used, and it must be an IP:port literal; anything else means "no host" (503).
// envoy-proxy-wasm.md §3(a): "the header (first value only, must parse as an IP:port literal ...)".
import { isIPv4, isIPv6 } from "node:net";

export const DESTINATION_HEADER = "x-gateway-destination-endpoint";

export interface Destination {
  host: string; // IP literal without brackets
  port: number;
}

/** Parses one `ip:port` or `[ipv6]:port` literal; returns undefined when it is not one. */
export function parseHostPort(value: string): Destination | undefined {
  const text = value.trim();
  let host: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return undefined;
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIPv6(host)) return undefined;
  } else {
    const colon = text.lastIndexOf(":");
    if (colon <= 0) return undefined;
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (!isIPv4(host)) return undefined;
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535) return undefined;
  return { host, port };
}

/**
 * The ordered endpoint list carried by the header (`ip:port,ip:port,…`). ORIGINAL_DST uses the first entry;
 * the rest are fallbacks for retries (the override_host policy walks them in order).
 */
export function parseDestinationList(headerValue: string | undefined): Array<Destination | undefined> {
  if (headerValue === undefined) return [];
  return headerValue
    .split(",")
    .filter((s) => s.trim() !== "")
    .map(parseHostPort);
}
