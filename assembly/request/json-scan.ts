// Single-pass strict JSON validator for request bodies that, for the top-level object, records
// where `model`, `stream` and the prompt-bearing fields (`prompt`, `messages`, `input`,
// `instructions`, `system`) sit. It allocates nothing: state lives in
// module globals and positions go into a caller-owned ScanResult. It never reads outside
// [ptr, ptr+len), so arbitrary bytes cannot trap it.
//
// Strictness matches RFC 8259 / JSON.parse on UTF-8 input: whitespace is space, tab, CR, LF only;
// strings must be valid UTF-8 with no raw control characters; escapes \" \\ \/ \b \f \n \r \t \uXXXX
// (lone surrogates are accepted, as JSON.parse does); numbers -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?
// of any size; nothing but whitespace after the document. Deliberate limit: nesting depth ≤ MAX_DEPTH.
// Duplicate top-level keys: the last one wins, as with JSON.parse — except `model`, which must appear
// once (parsers disagree on which copy wins, and the model server must see the one we routed).
//
// Prefix mode (scanPrefix): the bytes may be only the start of the body. Running out of bytes is then
// SCAN_INCOMPLETE, not an error, and the result says where the prefix can be cut and closed into a
// complete document (Truncation), so the prompt can be read from a body that has not fully arrived.

import {
  ScanResult,
  Span,
  Truncation,
  SCAN_OK,
  SCAN_INVALID_JSON,
  SCAN_TOO_DEEP,
  SCAN_NOT_OBJECT,
  SCAN_MODEL_MISSING,
  SCAN_MODEL_NOT_STRING,
  SCAN_STREAM_NOT_BOOL,
  SCAN_EMPTY,
  SCAN_INCOMPLETE,
  SCAN_MODEL_DUPLICATE,
  MAX_DEPTH,
  STREAM_ABSENT,
  STREAM_FALSE,
  STREAM_TRUE,
} from "./result.ts";
import { ByteBuffer } from "./bytes.ts";
import { appendString, setStringLimit } from "./json-string.ts";

// Top-level keys we care about.
export const KEY_NONE: i32 = -1;
export const KEY_OTHER: i32 = 0;
export const KEY_MODEL: i32 = 1;
export const KEY_STREAM: i32 = 2;
export const KEY_PROMPT: i32 = 3;
export const KEY_MESSAGES: i32 = 4;
export const KEY_INPUT: i32 = 5;
export const KEY_INSTRUCTIONS: i32 = 6;
export const KEY_SYSTEM: i32 = 7;

// Scanner state (one scan at a time per VM, so globals are safe and fastest).
let base: usize = 0;
let end: i32 = 0;
let pos: i32 = 0;
let err: i32 = SCAN_OK;
let errAt: i32 = 0;
let lastEscaped: bool = false;
// Prefix mode and what a truncation needs to know (see Truncation in result.ts).
let partial: bool = false;
let curDepth: i32 = 0;
let bits: u64 = 0;
let inString: bool = false;
let keyMode: bool = false;
let lastCharEnd: i32 = 0;
let topKey: i32 = KEY_NONE;
let modelKeys: i32 = 0;
let safePos: i32 = 0;
let safeDepth: i32 = 0;
let safeBits: u64 = 0;
let safeBeforeKey: bool = false;
let safeModelKeys: i32 = 0;
let cutInValue: bool = false;
let cutString: i32 = 0;
let cutDepth: i32 = 0;
let cutBits: u64 = 0;
let cutTopKey: i32 = KEY_NONE;
// Escaped keys are rare; they are decoded into this small buffer to be compared.
const keyScratch = new ByteBuffer(16, 16);

const ONES: u64 = 0x0101010101010101;
const HIGHS: u64 = 0x8080808080808080;

/** The bytes ran out: in prefix mode more may follow, so remember where and stop without an error. */
function short(): bool {
  if (!partial) return fail(SCAN_INVALID_JSON);
  if (err == SCAN_OK) {
    err = SCAN_INCOMPLETE;
    errAt = pos;
    cutInValue = inString && !keyMode;
    cutString = lastCharEnd;
    cutDepth = curDepth;
    cutBits = bits;
    cutTopKey = topKey;
  }
  return false;
}

/** The container-stack bit of nesting depth `depth` (1-based). */
function depthBit(depth: i32): u64 {
  return (1 as u64) << ((depth - 1) as u64);
}

/** A point after which closing brackets complete the document. */
function markSafe(beforeKey: bool): void {
  safePos = pos;
  safeDepth = curDepth;
  safeBits = bits;
  safeBeforeKey = beforeKey;
  safeModelKeys = modelKeys;
}

function fail(code: i32): bool {
  if (code == SCAN_INVALID_JSON && pos >= end && partial) return short();
  if (err == SCAN_OK) {
    err = code;
    errAt = pos;
  }
  return false;
}

function peek(): u32 {
  return <u32>load<u8>(base + <usize>pos);
}

function skipWs(): void {
  while (pos < end) {
    const c = peek();
    if (c != 0x20 && c != 0x0a && c != 0x0d && c != 0x09) return;
    pos++;
  }
}

function isCont(c: u32): bool {
  return (c & 0xc0) == 0x80;
}

/** Validates one multi-byte UTF-8 sequence whose lead byte is at pos (well-formed table of Unicode §3.9). */
function scanUtf8(): bool {
  const c0 = peek();
  let n: i32;
  let lo: u32 = 0x80;
  let hi: u32 = 0xbf;
  if (c0 >= 0xc2 && c0 <= 0xdf) n = 1;
  else if (c0 >= 0xe0 && c0 <= 0xef) {
    n = 2;
    if (c0 == 0xe0) lo = 0xa0;
    else if (c0 == 0xed) hi = 0x9f;
  } else if (c0 >= 0xf0 && c0 <= 0xf4) {
    n = 3;
    if (c0 == 0xf0) lo = 0x90;
    else if (c0 == 0xf4) hi = 0x8f;
  } else return fail(SCAN_INVALID_JSON);
  if (pos + n >= end) return short();
  const c1 = <u32>load<u8>(base + <usize>pos + 1);
  if (c1 < lo || c1 > hi) return fail(SCAN_INVALID_JSON);
  for (let k = 2; k <= n; k++) {
    if (!isCont(<u32>load<u8>(base + <usize>(pos + k)))) return fail(SCAN_INVALID_JSON);
  }
  pos += n + 1;
  return true;
}

function isHex(c: u32): bool {
  return c - 0x30 < 10 || (c | 0x20) - 0x61 < 6;
}

/** pos is at the opening quote; on success pos is one past the closing quote. */
function scanString(): bool {
  pos++;
  lastEscaped = false;
  inString = true;
  while (true) {
    // Fast path: skip 8 plain ASCII bytes at a time (no quote, backslash, control or high byte).
    while (pos + 8 <= end) {
      const w = load<u64>(base + <usize>pos);
      const q = w ^ (ONES * 0x22);
      const b = w ^ (ONES * 0x5c);
      const special = ((w - ONES * 0x20) & ~w) | ((q - ONES) & ~q) | ((b - ONES) & ~b) | w;
      if ((special & HIGHS) != 0) break;
      pos += 8;
    }
    lastCharEnd = pos;
    if (pos >= end) return fail(SCAN_INVALID_JSON);
    const c = peek();
    if (c == 0x22) {
      pos++;
      inString = false;
      return true;
    }
    if (c < 0x20) return fail(SCAN_INVALID_JSON);
    if (c == 0x5c) {
      lastEscaped = true;
      pos++;
      if (pos >= end) return fail(SCAN_INVALID_JSON);
      const e = peek();
      if (e == 0x75) {
        if (pos + 5 > end) return short();
        for (let k = 1; k <= 4; k++) {
          if (!isHex(<u32>load<u8>(base + <usize>(pos + k)))) {
            pos += k;
            return fail(SCAN_INVALID_JSON);
          }
        }
        pos += 5;
      } else if (
        e == 0x22 ||
        e == 0x5c ||
        e == 0x2f ||
        e == 0x62 ||
        e == 0x66 ||
        e == 0x6e ||
        e == 0x72 ||
        e == 0x74
      ) {
        pos++;
      } else {
        return fail(SCAN_INVALID_JSON);
      }
    } else if (c < 0x80) {
      pos++;
    } else if (!scanUtf8()) {
      return false;
    }
  }
  return false; // not reached: the loop only exits by returning
}

function isDigit(c: u32): bool {
  return c - 0x30 < 10;
}

function scanDigits(): bool {
  if (pos >= end || !isDigit(peek())) return fail(SCAN_INVALID_JSON);
  pos++;
  while (pos < end && isDigit(peek())) pos++;
  return true;
}

function scanNumber(): bool {
  if (peek() == 0x2d) pos++;
  if (pos >= end) return fail(SCAN_INVALID_JSON);
  const c = peek();
  if (c == 0x30) pos++;
  else if (!scanDigits()) return false;
  if (pos < end && peek() == 0x2e) {
    pos++;
    if (!scanDigits()) return false;
  }
  if (pos < end && (peek() | 0x20) == 0x65) {
    pos++;
    if (pos < end && (peek() == 0x2b || peek() == 0x2d)) pos++;
    if (!scanDigits()) return false;
  }
  return true;
}

/** Matches a 4-byte literal packed little-endian in `word`, plus an optional 5th byte. */
function scanLiteral(word: u32, len: i32, fifth: u8): bool {
  if (pos + len > end) return short();
  if (load<u32>(base + <usize>pos) != word) return fail(SCAN_INVALID_JSON);
  if (len == 5 && load<u8>(base + <usize>pos + 4) != fifth) return fail(SCAN_INVALID_JSON);
  pos += len;
  return true;
}

const WORD_TRUE: u32 = 0x65757274; // "true"
const WORD_FALS: u32 = 0x736c6166; // "fals"
const WORD_NULL: u32 = 0x6c6c756e; // "null"

function scanValue(depth: i32): bool {
  if (pos >= end) return fail(SCAN_INVALID_JSON);
  const c = peek();
  if (c == 0x22) return scanString();
  if (c == 0x7b) return scanObject(depth + 1, null);
  if (c == 0x5b) return scanArray(depth + 1);
  if (c == 0x74) return scanLiteral(WORD_TRUE, 4, 0);
  if (c == 0x66) return scanLiteral(WORD_FALS, 5, 0x65);
  if (c == 0x6e) return scanLiteral(WORD_NULL, 4, 0);
  if (c == 0x2d || isDigit(c)) return scanNumber();
  return fail(SCAN_INVALID_JSON);
}

function scanArray(depth: i32): bool {
  if (depth > MAX_DEPTH) return fail(SCAN_TOO_DEEP);
  curDepth = depth;
  bits &= ~depthBit(depth);
  pos++;
  markSafe(false);
  skipWs();
  if (pos < end && peek() == 0x5d) {
    pos++;
    return true;
  }
  while (true) {
    skipWs();
    if (!scanValue(depth)) return false;
    curDepth = depth;
    markSafe(false);
    skipWs();
    if (pos >= end) return fail(SCAN_INVALID_JSON);
    const c = peek();
    pos++;
    if (c == 0x5d) return true;
    if (c != 0x2c) {
      pos--;
      return fail(SCAN_INVALID_JSON);
    }
  }
}

function rawEquals(p: usize, n: i32, lit: usize, litLen: i32): bool {
  return n == litLen && memory.compare(p, lit, <usize>n) == 0;
}

const K_MODEL = memory.data<u8>([0x6d, 0x6f, 0x64, 0x65, 0x6c]);
const K_STREAM = memory.data<u8>([0x73, 0x74, 0x72, 0x65, 0x61, 0x6d]);
const K_PROMPT = memory.data<u8>([0x70, 0x72, 0x6f, 0x6d, 0x70, 0x74]);
const K_MESSAGES = memory.data<u8>([0x6d, 0x65, 0x73, 0x73, 0x61, 0x67, 0x65, 0x73]);
const K_INPUT = memory.data<u8>([0x69, 0x6e, 0x70, 0x75, 0x74]);
const K_INSTRUCTIONS = memory.data<u8>([
  0x69, 0x6e, 0x73, 0x74, 0x72, 0x75, 0x63, 0x74, 0x69, 0x6f, 0x6e, 0x73,
]);
const K_SYSTEM = memory.data<u8>([0x73, 0x79, 0x73, 0x74, 0x65, 0x6d]);

function classifyKey(p: usize, n: i32): i32 {
  if (rawEquals(p, n, K_MODEL, 5)) return KEY_MODEL;
  if (rawEquals(p, n, K_STREAM, 6)) return KEY_STREAM;
  if (rawEquals(p, n, K_PROMPT, 6)) return KEY_PROMPT;
  if (rawEquals(p, n, K_MESSAGES, 8)) return KEY_MESSAGES;
  if (rawEquals(p, n, K_INPUT, 5)) return KEY_INPUT;
  if (rawEquals(p, n, K_INSTRUCTIONS, 12)) return KEY_INSTRUCTIONS;
  if (rawEquals(p, n, K_SYSTEM, 6)) return KEY_SYSTEM;
  return KEY_OTHER;
}

/** Which known key the (validated) string at [start, pos) is; escaped keys are decoded first. */
function keyAt(start: i32): i32 {
  if (!lastEscaped) return classifyKey(base + <usize>start + 1, pos - start - 2);
  // A decoded key is never longer than its raw form; known keys are ≤ 12 bytes.
  keyScratch.reset();
  setStringLimit(end);
  appendString(base, start, keyScratch);
  if (keyScratch.truncated) return KEY_OTHER;
  return classifyKey(keyScratch.ptr, keyScratch.len);
}

function setSpan(s: Span, start: i32, escaped: bool): void {
  s.start = start;
  s.end = pos;
  s.escaped = escaped;
}

/** `top` is non-null only for the document's top-level object, whose fields are recorded. */
function scanObject(depth: i32, top: ScanResult | null): bool {
  if (depth > MAX_DEPTH) return fail(SCAN_TOO_DEEP);
  curDepth = depth;
  bits |= depthBit(depth);
  pos++;
  markSafe(top != null);
  skipWs();
  if (pos < end && peek() == 0x7d) {
    pos++;
    return true;
  }
  while (true) {
    skipWs();
    if (pos >= end || peek() != 0x22) return fail(SCAN_INVALID_JSON);
    const keyStart = pos;
    keyMode = true;
    if (!scanString()) return false;
    keyMode = false;
    const key = top != null ? keyAt(keyStart) : KEY_OTHER;
    skipWs();
    if (pos >= end || peek() != 0x3a) return fail(SCAN_INVALID_JSON);
    pos++;
    skipWs();
    const valueStart = pos;
    if (pos >= end) return fail(SCAN_INVALID_JSON);
    const first = peek();
    lastEscaped = false;
    if (top != null) topKey = key;
    if (!scanValue(depth)) return false;
    curDepth = depth;
    if (top != null) topKey = KEY_NONE;
    if (key != KEY_OTHER) recordField(changetype<ScanResult>(top), key, valueStart, first);
    markSafe(false);
    skipWs();
    if (pos >= end) return fail(SCAN_INVALID_JSON);
    const c = peek();
    pos++;
    if (c == 0x7d) return true;
    if (c != 0x2c) {
      pos--;
      return fail(SCAN_INVALID_JSON);
    }
  }
}

// Model state while scanning, so a later duplicate key overrides an earlier one.
const MODEL_ABSENT: i32 = 0;
const MODEL_STRING: i32 = 1;
const MODEL_OTHER: i32 = 2;
let modelState: i32 = MODEL_ABSENT;
let streamBad: bool = false;

function recordField(r: ScanResult, key: i32, start: i32, first: u32): void {
  switch (key) {
    case KEY_MODEL: {
      modelKeys++;
      if (first == 0x22) {
        modelState = MODEL_STRING;
        setSpan(r.model, start, lastEscaped);
      } else {
        modelState = MODEL_OTHER;
        r.model.reset();
      }
      break;
    }
    case KEY_STREAM: {
      streamBad = false;
      if (first == 0x74) r.stream = STREAM_TRUE;
      else if (first == 0x66) r.stream = STREAM_FALSE;
      else {
        r.stream = STREAM_ABSENT;
        streamBad = first != 0x6e; // null means "not set"
      }
      break;
    }
    case KEY_PROMPT:
      setSpan(r.prompt, start, first == 0x22 && lastEscaped);
      break;
    case KEY_MESSAGES:
      setSpan(r.messages, start, false);
      break;
    case KEY_INPUT:
      setSpan(r.input, start, first == 0x22 && lastEscaped);
      break;
    case KEY_INSTRUCTIONS:
      setSpan(r.instructions, start, first == 0x22 && lastEscaped);
      break;
    case KEY_SYSTEM:
      setSpan(r.system, start, first == 0x22 && lastEscaped);
      break;
  }
}

/**
 * Scans the body at [ptr, ptr+len) into `out`. On return `out.error` is SCAN_OK or the first
 * problem found: syntax errors take precedence over field errors (not an object, then model, then
 * stream).
 */
export function scanRequest(ptr: usize, len: i32, out: ScanResult): void {
  scan(ptr, len, false, out);
}

/**
 * Scans [ptr, ptr+len), the first `len` bytes of a body that may continue. Like scanRequest, except
 * that running out of bytes inside the document gives SCAN_INCOMPLETE with the fields seen so far
 * and `out.cut` filled in; a duplicate or non-string `model` already seen is still reported.
 */
export function scanPrefix(ptr: usize, len: i32, out: ScanResult): void {
  scan(ptr, len, true, out);
}

function resetState(ptr: usize, len: i32, prefix: bool): void {
  base = ptr;
  end = len;
  pos = 0;
  err = SCAN_OK;
  errAt = 0;
  partial = prefix;
  curDepth = 0;
  bits = 0;
  inString = false;
  keyMode = false;
  lastCharEnd = 0;
  topKey = KEY_NONE;
  modelKeys = 0;
  safePos = 0;
  safeDepth = 0;
  safeBits = 0;
  safeBeforeKey = false;
  safeModelKeys = 0;
}

function scan(ptr: usize, len: i32, prefix: bool, out: ScanResult): void {
  out.reset();
  resetState(ptr, len, prefix);
  modelState = MODEL_ABSENT;
  streamBad = false;
  skipWs();
  if (pos >= end) {
    if (prefix) short();
    out.error = prefix ? SCAN_INCOMPLETE : SCAN_EMPTY;
    out.errorPos = pos;
    if (prefix) out.cut.truncated = true;
    return;
  }
  const isObject = peek() == 0x7b;
  let ok = isObject ? scanObject(1, out) : scanValue(0);
  if (ok) {
    skipWs();
    if (pos < end) ok = fail(SCAN_INVALID_JSON);
  }
  if (!ok && err == SCAN_INCOMPLETE && isObject) {
    noteTruncation(out.cut);
    // What the prefix already shows to be wrong is refused now; everything else waits for more bytes.
    if (modelKeys > 1) out.error = SCAN_MODEL_DUPLICATE;
    else if (modelState == MODEL_OTHER) out.error = SCAN_MODEL_NOT_STRING;
    else out.error = SCAN_INCOMPLETE;
    out.errorPos = out.error == SCAN_INCOMPLETE ? errAt : 0;
    return;
  }
  if (!ok) {
    out.reset();
    out.error = err;
    out.errorPos = errAt;
    if (err == SCAN_INCOMPLETE) out.cut.truncated = true;
    return;
  }
  if (!isObject) {
    out.error = SCAN_NOT_OBJECT;
  } else if (modelKeys > 1) {
    out.error = SCAN_MODEL_DUPLICATE;
  } else if (modelState == MODEL_OTHER) {
    out.error = SCAN_MODEL_NOT_STRING;
    out.errorPos = 0;
  } else if (modelState == MODEL_ABSENT || out.model.end - out.model.start <= 2) {
    out.error = SCAN_MODEL_MISSING;
  } else if (streamBad) {
    out.error = SCAN_STREAM_NOT_BOOL;
  }
}

function noteTruncation(t: Truncation): void {
  t.truncated = true;
  t.topKey = cutTopKey;
  t.safePos = safePos;
  t.safeDepth = safeDepth;
  t.safeBits = safeBits;
  t.safeBeforeKey = safeBeforeKey;
  t.modelKeys = safeModelKeys;
  t.inValueString = cutInValue;
  t.stringCut = cutString;
  t.depth = cutDepth;
  t.bits = cutBits;
}

/** Validates [ptr, ptr+len) as one JSON document (any type) without recording fields. */
export function validateJson(ptr: usize, len: i32): i32 {
  resetState(ptr, len, false);
  skipWs();
  if (pos >= end) return SCAN_EMPTY;
  let ok = scanValue(0);
  if (ok) {
    skipWs();
    if (pos < end) ok = fail(SCAN_INVALID_JSON);
  }
  return ok ? SCAN_OK : err;
}

/** Byte offset where the last validateJson failed. */
export function lastErrorPos(): i32 {
  return errAt;
}
