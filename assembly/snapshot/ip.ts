// IP literal checks for endpoint addresses (the same literals node:net isIP accepts, minus exotica)
// and the `ip:port` form Envoy's original-destination routing expects (IPv6 in brackets).

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

function hexValue(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Dotted-quad IPv4 in s[from, to): four decimal parts 0..255 without leading zeros. */
function isIPv4Range(s: string, from: i32, to: i32): bool {
  let parts = 0;
  let i = from;
  while (i < to) {
    const start = i;
    let v = 0;
    while (i < to && isDigit(s.charCodeAt(i))) {
      v = v * 10 + (s.charCodeAt(i) - 0x30);
      if (v > 255) return false;
      i++;
    }
    const digits = i - start;
    if (digits == 0 || (digits > 1 && s.charCodeAt(start) == 0x30)) return false;
    parts++;
    if (i == to) break;
    if (s.charCodeAt(i) != 0x2e || parts == 4) return false;
    i++;
    if (i == to) return false;
  }
  return parts == 4;
}

export function isIPv4(s: string): bool {
  return isIPv4Range(s, 0, s.length);
}

/** RFC 4291 text form: hex groups, at most one "::", optional trailing IPv4, optional %zone. */
export function isIPv6(s: string): bool {
  let end = s.indexOf("%");
  if (end == 0 || end == s.length - 1) return false;
  if (end < 0) end = s.length;
  if (end < 2) return false;
  let groups = 0;
  let compressed = false;
  let i = 0;
  if (s.charCodeAt(0) == 0x3a) {
    if (s.charCodeAt(1) != 0x3a) return false;
    compressed = true;
    i = 2;
    if (i == end) return true;
  }
  while (i < end) {
    const start = i;
    while (i < end && hexValue(s.charCodeAt(i)) >= 0) i++;
    const n = i - start;
    if (i < end && s.charCodeAt(i) == 0x2e) {
      // Embedded IPv4 takes the last two groups.
      if (!isIPv4Range(s, start, end)) return false;
      groups += 2;
      i = end;
      break;
    }
    if (n == 0 || n > 4) return false;
    groups++;
    if (i == end) break;
    if (s.charCodeAt(i) != 0x3a) return false;
    i++;
    if (i < end && s.charCodeAt(i) == 0x3a) {
      if (compressed) return false;
      compressed = true;
      i++;
      if (i == end) break;
    } else if (i == end) {
      return false;
    }
  }
  return compressed ? groups < 8 : groups == 8;
}

/** `ip:port`, with IPv6 addresses in brackets. */
export function hostPort(address: string, port: u16): string {
  if (address.indexOf(":") >= 0) return "[" + address + "]:" + port.toString();
  return address + ":" + port.toString();
}
