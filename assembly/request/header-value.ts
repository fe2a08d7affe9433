// Client bytes never reach a header unchecked. A model name comes from the request body and is copied
// into x-gateway-model-name, so it must be a valid HTTP field value everywhere it travels:
//   * control characters (C0 and DEL) are refused with a 400: CR/LF would split headers toward the
//     model server, and Envoy's upstream codec rejects them (503) anyway;
//   * anything else outside printable ASCII is sent as an RFC 8187 ext-value (`UTF-8''%E6%A8%A1`),
//     which every HTTP stack accepts and which decodes back to the exact name.
// Pure (no host calls) so as-pect can test it.

/** True when the string holds a C0 control character (U+0000–U+001F) or DEL (U+007F). */
export function hasControlCharacters(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

function isPrintableAscii(s: string): bool {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

/** RFC 8187 attr-char: ALPHA / DIGIT / "!" "#" "$" "&" "+" "-" "." "^" "_" "`" "|" "~". */
function isAttrChar(b: u32): bool {
  if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a)) return true;
  return (
    b == 0x21 ||
    b == 0x23 ||
    b == 0x24 ||
    b == 0x26 ||
    b == 0x2b ||
    b == 0x2d ||
    b == 0x2e ||
    b == 0x5e ||
    b == 0x5f ||
    b == 0x60 ||
    b == 0x7c ||
    b == 0x7e
  );
}

const HEX = "0123456789ABCDEF";

/**
 * The header value for `s` (which must have no control characters): `s` itself when it is printable
 * ASCII, else `UTF-8''` followed by its UTF-8 bytes, percent-encoded outside attr-char.
 */
export function informationalHeaderValue(s: string): string {
  if (isPrintableAscii(s)) return s;
  const bytes = Uint8Array.wrap(String.UTF8.encode(s));
  let out = "UTF-8''";
  for (let i = 0; i < bytes.length; i++) {
    const b = <u32>bytes[i];
    if (isAttrChar(b)) out += String.fromCharCode(b);
    else out += "%" + HEX.charAt(b >> 4) + HEX.charAt(b & 15);
  }
  return out;
}
