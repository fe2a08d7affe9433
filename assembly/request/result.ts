// The outcome of scanning one request body: where the interesting top-level fields sit in the
// body bytes, and, when the body must be refused, an error code plus the byte where it went wrong.
// One ScanResult is reused for every request on a VM, so scanning allocates nothing.

/** Body accepted. */
export const SCAN_OK: i32 = 0;
/** Not strict JSON (syntax, invalid UTF-8, control character in a string, trailing garbage, …). */
export const SCAN_INVALID_JSON: i32 = 1;
/** Nesting deeper than MAX_DEPTH: we refuse rather than risk the stack. */
export const SCAN_TOO_DEEP: i32 = 2;
/** Valid JSON, but the document is not an object. */
export const SCAN_NOT_OBJECT: i32 = 3;
/** No top-level `model`, or it is the empty string. */
export const SCAN_MODEL_MISSING: i32 = 4;
/** `model` is present but not a string. */
export const SCAN_MODEL_NOT_STRING: i32 = 5;
/** `stream` is present but neither true, false nor null. */
export const SCAN_STREAM_NOT_BOOL: i32 = 6;
/** Empty body. */
export const SCAN_EMPTY: i32 = 7;
/** A prefix scan ran out of bytes before the document ended (more may follow): not an error. */
export const SCAN_INCOMPLETE: i32 = 8;
/** The top-level object has `model` more than once: refused, since parsers disagree on which wins. */
export const SCAN_MODEL_DUPLICATE: i32 = 9;

/** Deepest nesting of arrays/objects accepted; the top-level object is depth 1. */
export const MAX_DEPTH: i32 = 64;

/** `stream` field states. */
export const STREAM_ABSENT: i32 = -1;
export const STREAM_FALSE: i32 = 0;
export const STREAM_TRUE: i32 = 1;

/** True when the error means the bytes are not (acceptable) JSON, as opposed to a bad field. */
export function isSyntaxError(code: i32): bool {
  return code == SCAN_INVALID_JSON || code == SCAN_TOO_DEEP || code == SCAN_EMPTY;
}

/**
 * A value's position in the body: `start` is its first byte (the opening quote for strings),
 * `end` one past its last byte. start < 0 means the field was absent.
 */
export class Span {
  start: i32 = -1;
  end: i32 = -1;
  /** For strings: true when the raw text contains a backslash escape. */
  escaped: bool = false;

  @inline get present(): bool {
    return this.start >= 0;
  }

  reset(): void {
    this.start = -1;
    this.end = -1;
    this.escaped = false;
  }
}

/** Container stack: bit d set = the container at depth d+1 is an object (else an array). */
export class Truncation {
  /** The window ended before the document did (error SCAN_INCOMPLETE). */
  truncated: bool = false;
  /** Top-level member being scanned when the window ended (json-scan KEY_*; KEY_NONE between members). */
  topKey: i32 = -1;
  /** Last point where the prefix, followed by closing brackets, is a complete document. */
  safePos: i32 = 0;
  safeDepth: i32 = 0;
  safeBits: u64 = 0;
  /** The safe point is just after the top-level `{`, so a key comes next. */
  safeBeforeKey: bool = false;
  /** The window ended inside a string value (not a key) that can be closed at `stringCut`. */
  inValueString: bool = false;
  stringCut: i32 = 0;
  depth: i32 = 0;
  bits: u64 = 0;
  /** Top-level `model` keys seen entirely before safePos. */
  modelKeys: i32 = 0;

  reset(): void {
    this.truncated = false;
    this.topKey = -1;
    this.safePos = 0;
    this.safeDepth = 0;
    this.safeBits = 0;
    this.safeBeforeKey = false;
    this.inValueString = false;
    this.stringCut = 0;
    this.depth = 0;
    this.bits = 0;
    this.modelKeys = 0;
  }
}

export class ScanResult {
  error: i32 = SCAN_OK;
  /** Byte offset of the error (meaningful when error != SCAN_OK). */
  errorPos: i32 = 0;
  /** The `model` string value including its quotes (last occurrence wins, as in JSON.parse). */
  model: Span = new Span();
  stream: i32 = STREAM_ABSENT;
  /** Prompt-bearing fields (raw values of any JSON type). */
  prompt: Span = new Span();
  messages: Span = new Span();
  input: Span = new Span();
  instructions: Span = new Span();
  /** Anthropic Messages' top-level `system` (a string or an array of text blocks). */
  system: Span = new Span();
  /** Prefix scans (json-scan.ts scanPrefix): how the scanned window ended; see Truncation. */
  cut: Truncation = new Truncation();

  reset(): void {
    this.error = SCAN_OK;
    this.errorPos = 0;
    this.model.reset();
    this.stream = STREAM_ABSENT;
    this.prompt.reset();
    this.messages.reset();
    this.input.reset();
    this.instructions.reset();
    this.system.reset();
    this.cut.reset();
  }

  @inline get ok(): bool {
    return this.error == SCAN_OK;
  }
}

/**
 * The message for an OpenAI-style 400 body: {"error":{"message":…,"type":"invalid_request_error",…}}.
 * Allocates; only called on the error path.
 */
export function scanErrorMessage(code: i32, pos: i32): string {
  switch (code) {
    case SCAN_OK:
      return "ok";
    case SCAN_INVALID_JSON:
      return "invalid JSON at byte " + pos.toString();
    case SCAN_TOO_DEEP:
      return "invalid JSON at byte " + pos.toString() + ": nesting deeper than " + MAX_DEPTH.toString();
    case SCAN_NOT_OBJECT:
      return "request body must be a JSON object";
    case SCAN_MODEL_MISSING:
      return '"model" is required';
    case SCAN_MODEL_NOT_STRING:
      return '"model" must be a string';
    case SCAN_STREAM_NOT_BOOL:
      return '"stream" must be a boolean';
    case SCAN_EMPTY:
      return "request body is empty";
    case SCAN_INCOMPLETE:
      return "request body ended inside the JSON document";
    case SCAN_MODEL_DUPLICATE:
      return '"model" must appear once in the request body';
  }
  return "invalid request";
}

/** The OpenAI error `param` for a code, or "" when none applies. */
export function scanErrorParam(code: i32): string {
  if (code == SCAN_MODEL_MISSING || code == SCAN_MODEL_NOT_STRING || code == SCAN_MODEL_DUPLICATE)
    return "model";
  if (code == SCAN_STREAM_NOT_BOOL) return "stream";
  return "";
}

/** `s` as a JSON string literal (ASCII-safe: non-ASCII and control characters as \u escapes). */
function jsonQuote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c == 0x22) out += '\\"';
    else if (c == 0x5c) out += "\\\\";
    else if (c < 0x20 || c > 0x7e) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += String.fromCharCode(c);
  }
  return out + '"';
}

/**
 * The whole OpenAI-style error body for a refused request, e.g.
 * {"error":{"message":"\"model\" is required","type":"invalid_request_error","param":"model","code":null}}
 */
export function scanErrorBody(code: i32, pos: i32): string {
  const param = scanErrorParam(code);
  return (
    '{"error":{"message":' +
    jsonQuote(scanErrorMessage(code, pos)) +
    ',"type":"invalid_request_error","param":' +
    (param.length > 0 ? jsonQuote(param) : "null") +
    ',"code":null}}'
  );
}
