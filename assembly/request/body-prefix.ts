// Closes the prefix of a body that has not fully arrived into a complete JSON document: cut where
// json-scan says it is safe (inside a string value, or after the last complete value) and append the
// closing quote and brackets. The prompt reader (prompt.ts) only reads validated documents, so this is
// how it reads the leading part of a prompt from a partial body.

import { ByteBuffer } from "./bytes.ts";
import { Truncation } from "./result.ts";

function pushClosers(out: ByteBuffer, depth: i32, bits: u64): void {
  for (let d = depth; d >= 1; d--) out.push(((bits >> ((d - 1) as u64)) & 1) != 0 ? 0x7d : 0x5d);
}

/**
 * Writes the closed form of the truncated prefix at [ptr, ptr+len) into `out` (reset first). False when
 * there is no document yet (nothing before the top-level `{`) or `out` is too small.
 */
export function closePrefix(ptr: usize, len: i32, cut: Truncation, out: ByteBuffer): bool {
  out.reset();
  if (cut.inValueString) {
    if (cut.stringCut > len || cut.depth < 1) return false;
    out.pushBytes(ptr, cut.stringCut);
    out.push(0x22);
    pushClosers(out, cut.depth, cut.bits);
  } else {
    if (cut.safeDepth < 1 || cut.safePos > len) return false;
    out.pushBytes(ptr, cut.safePos);
    pushClosers(out, cut.safeDepth, cut.safeBits);
  }
  return !out.truncated;
}
