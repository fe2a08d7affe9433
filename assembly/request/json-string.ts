// Helpers for JSON strings that the scanner has already validated: find the end of a string and
// decode its escapes into UTF-8. They trust their input (no bounds checks beyond `end`), which is
// why they are only called on spans json-scan accepted.

import { ByteBuffer } from "./bytes.ts";

function hexValue(c: u32): u32 {
  if (c <= 0x39) return c - 0x30;
  return (c | 0x20) - 0x57; // 'a'..'f' after folding to lower case
}

function hex4(p: usize): u32 {
  return (
    (hexValue(load<u8>(p)) << 12) |
    (hexValue(load<u8>(p + 1)) << 8) |
    (hexValue(load<u8>(p + 2)) << 4) |
    hexValue(load<u8>(p + 3))
  );
}

function pushCodePoint(out: ByteBuffer, cp: u32): void {
  if (cp < 0x80) {
    out.push(<u8>cp);
  } else if (cp < 0x800) {
    out.push(<u8>(0xc0 | (cp >> 6)));
    out.push(<u8>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push(<u8>(0xe0 | (cp >> 12)));
    out.push(<u8>(0x80 | ((cp >> 6) & 0x3f)));
    out.push(<u8>(0x80 | (cp & 0x3f)));
  } else {
    out.push(<u8>(0xf0 | (cp >> 18)));
    out.push(<u8>(0x80 | ((cp >> 12) & 0x3f)));
    out.push(<u8>(0x80 | ((cp >> 6) & 0x3f)));
    out.push(<u8>(0x80 | (cp & 0x3f)));
  }
}

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;

/** Readable bytes after `base`: the word-at-a-time skips below never look past it. */
let limit: i32 = 0;

/** Sets how many bytes after `base` may be read (the body length) before calling the helpers. */
export function setStringLimit(len: i32): void {
  limit = len;
}

/** First offset ≥ i whose 8-byte word may hold a quote or backslash (or i when too close to the end). */
function skipPlain(base: usize, i: i32): i32 {
  while (i + 8 <= limit) {
    const w = load<u64>(base + <usize>i);
    const q = w ^ (ONES * 0x22);
    const b = w ^ (ONES * 0x5c);
    if ((((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS) break;
    i += 8;
  }
  return i;
}

/** Offset one past the closing quote of the string whose opening quote is at `pos`. */
export function skipString(base: usize, pos: i32): i32 {
  let i = pos + 1;
  while (true) {
    i = skipPlain(base, i);
    const c = load<u8>(base + <usize>i);
    if (c == 0x22) return i + 1;
    i += c == 0x5c ? 2 : 1;
  }
}

/**
 * Appends the decoded UTF-8 of the string whose opening quote is at `pos` to `out` and returns the
 * offset one past its closing quote. Lone surrogates (which JSON allows) become U+FFFD. Stops
 * copying (but still finds the end) once `out` is full.
 */
export function appendString(base: usize, pos: i32, out: ByteBuffer): i32 {
  let i = pos + 1;
  let runStart = i;
  while (true) {
    i = skipPlain(base, i);
    const c = load<u8>(base + <usize>i);
    if (c == 0x22) {
      out.pushBytes(base + <usize>runStart, i - runStart);
      return i + 1;
    }
    if (c != 0x5c) {
      i++;
      continue;
    }
    out.pushBytes(base + <usize>runStart, i - runStart);
    const e = load<u8>(base + <usize>i + 1);
    i += 2;
    switch (e) {
      case 0x62:
        out.push(0x08);
        break; // \b
      case 0x66:
        out.push(0x0c);
        break; // \f
      case 0x6e:
        out.push(0x0a);
        break; // \n
      case 0x72:
        out.push(0x0d);
        break; // \r
      case 0x74:
        out.push(0x09);
        break; // \t
      case 0x75: {
        let cp = hex4(base + <usize>i);
        i += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {
          // A high surrogate only forms a pair with an immediately following \uDC00..\uDFFF.
          if (load<u8>(base + <usize>i) == 0x5c && load<u8>(base + <usize>i + 1) == 0x75) {
            const lo = hex4(base + <usize>i + 2);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
              i += 6;
            } else {
              cp = 0xfffd;
            }
          } else {
            cp = 0xfffd;
          }
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          cp = 0xfffd;
        }
        pushCodePoint(out, cp);
        break;
      }
      default:
        out.push(e); // \" \\ \/
    }
    runStart = i;
  }
}

/** Writes `s` (UTF-16) as a quoted JSON string in UTF-8, escaping what JSON requires. */
export function pushJsonQuoted(out: ByteBuffer, s: string): void {
  out.push(0x22);
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = <u32>s.charCodeAt(i);
    if (c == 0x22 || c == 0x5c) {
      out.push(0x5c);
      out.push(<u8>c);
    } else if (c < 0x20) {
      out.pushString("\\u00");
      out.push(<u8>(c >> 4 < 10 ? 0x30 + (c >> 4) : 0x57 + (c >> 4)));
      out.push(<u8>((c & 15) < 10 ? 0x30 + (c & 15) : 0x57 + (c & 15)));
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const lo = <u32>s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) {
        pushCodePoint(out, 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00));
        i++;
      } else {
        pushCodePoint(out, 0xfffd);
      }
    } else if (c >= 0xd800 && c <= 0xdfff) {
      pushCodePoint(out, 0xfffd);
    } else {
      pushCodePoint(out, c);
    }
  }
  out.push(0x22);
}
