// Watches the part of a body that streams past the filter after it has routed on a prefix, for one
// thing only: another top-level `model` key. The model server would read that copy (JSON parsers keep
// the last), so a client could have one model routed and another served; a second key ends the
// request with 400 instead. A byte-level state machine that survives chunk boundaries: nesting depth,
// string and escape state, and the raw bytes of keys at the top level. It validates nothing else —
// the model server refuses malformed JSON itself.

import { Truncation } from "./result.ts";

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;

/** Raw top-level keys longer than this cannot spell `model` (its longest escaped form is 30 bytes). */
const KEY_CAPTURE: i32 = 32;

export class ModelKeyWatch {
  depth: i32 = 0;
  inString: bool = false;
  escape: bool = false;
  /** At the top level, the next string is a key (after `{` or `,`). */
  expectKey: bool = false;
  capturing: bool = false;
  key: StaticArray<u8> = new StaticArray<u8>(KEY_CAPTURE);
  keyLen: i32 = 0;
  modelKeys: i32 = 0;

  /** Starts at json-scan's last safe point of a truncated prefix: just after a complete value or `{`. */
  static fromCut(cut: Truncation): ModelKeyWatch {
    const w = new ModelKeyWatch();
    w.depth = cut.safeDepth;
    w.expectKey = cut.safeBeforeKey;
    w.modelKeys = cut.modelKeys;
    return w;
  }

  @inline get duplicate(): bool {
    return this.modelKeys > 1;
  }

  /** Feeds the next `len` bytes of the body. */
  feed(ptr: usize, len: i32): void {
    let i = 0;
    while (i < len) {
      if (this.inString) {
        if (!this.escape && !this.capturing) {
          // Prompt text is nearly all of a body: skip 8 bytes at a time without a quote or backslash.
          while (i + 8 <= len) {
            const w = load<u64>(ptr + <usize>i);
            const q = w ^ (ONES * 0x22);
            const b = w ^ (ONES * 0x5c);
            if ((((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS) break;
            i += 8;
          }
          if (i >= len) break;
        }
        const c = <u32>load<u8>(ptr + <usize>i);
        i++;
        if (this.escape) {
          this.escape = false;
          this.capture(c);
        } else if (c == 0x5c) {
          this.escape = true;
          this.capture(c);
        } else if (c == 0x22) {
          this.inString = false;
          if (this.capturing) {
            this.capturing = false;
            if (isModel(this.key, this.keyLen)) this.modelKeys++;
          }
        } else {
          this.capture(c);
        }
        continue;
      }
      const c = <u32>load<u8>(ptr + <usize>i);
      i++;
      if (c == 0x22) {
        this.inString = true;
        this.capturing = this.depth == 1 && this.expectKey;
        this.keyLen = 0;
        this.expectKey = false;
      } else if (c == 0x7b || c == 0x5b) {
        this.depth++;
        if (this.depth == 1) this.expectKey = c == 0x7b;
      } else if (c == 0x7d || c == 0x5d) {
        this.depth--;
      } else if (c == 0x2c) {
        if (this.depth == 1) this.expectKey = true;
      }
    }
  }

  private capture(c: u32): void {
    if (!this.capturing) return;
    if (this.keyLen < KEY_CAPTURE) unchecked((this.key[this.keyLen] = <u8>c));
    this.keyLen++;
  }
}

function hexDigit(c: u32): i32 {
  if (c - 0x30 < 10) return <i32>(c - 0x30);
  const l = c | 0x20;
  if (l - 0x61 < 6) return <i32>(l - 0x57);
  return -1;
}

const MODEL = "model";

/** Whether the raw (possibly escaped) key bytes decode to `model`. */
function isModel(raw: StaticArray<u8>, len: i32): bool {
  if (len > KEY_CAPTURE) return false;
  let i = 0;
  let n = 0;
  while (i < len) {
    let c = <i32>unchecked(raw[i++]);
    if (c == 0x5c) {
      if (i >= len) return false;
      const e = <i32>unchecked(raw[i++]);
      if (e != 0x75) return false; // no other escape yields a letter of `model`
      if (i + 4 > len) return false;
      c = 0;
      for (let k = 0; k < 4; k++) {
        const h = hexDigit(<u32>unchecked(raw[i++]));
        if (h < 0) return false;
        c = (c << 4) | h;
      }
    }
    if (n >= 5 || c != MODEL.charCodeAt(n)) return false;
    n++;
  }
  return n == 5;
}
