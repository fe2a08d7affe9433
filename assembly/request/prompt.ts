// Extracts the prompt text a request carries into a bounded, reusable buffer, for prefix hashing.
// Works on spans json-scan already validated, so it can walk them without re-checking syntax.
//
// What counts as prompt text, per endpoint:
//   /v1/completions       `prompt`: a string, or an array of strings concatenated. Token-id arrays
//                         (`[1,2,3]` or `[[1,2],[3]]`) carry no text: skipped (still a valid request).
//   /v1/chat/completions  `messages[]` in order, each rendered with the fixed template
//                             "<|im_start|>" role "\n" content "<|im_end|>\n"
//                         (GIE v1.0's template) so that the same words under a different role hash
//                         differently. `content` is a string, or an array of parts whose string `text`
//                         fields are concatenated (image/audio parts contribute nothing); null → "".
//   /v1/embeddings        `input`: string, or array of strings concatenated (token arrays skipped).
//   /v1/responses         `instructions` (if a string) first, then `input`: a string, or an array whose
//                         string items are appended and whose message objects ({role, content}) are
//                         rendered with the chat template.
//   /v1/messages          Anthropic Messages: `system` (a string, or an array of text blocks whose
//                         `text` fields are concatenated) rendered first as a message of role
//                         "system", then `messages[]` exactly as for /v1/chat/completions — the shape
//                         the model server's chat template sees, since vLLM serves this API by turning
//                         `system` into a leading system message. Other `system` types: nothing.
// Text beyond the buffer's limit (default 256 blocks × 64 bytes) is dropped: only leading blocks matter.

import { ByteBuffer } from "./bytes.ts";
import { ScanResult, Span } from "./result.ts";
import { appendString, skipString, setStringLimit } from "./json-string.ts";

export const KIND_AUTO: i32 = 0;
export const KIND_COMPLETIONS: i32 = 1;
export const KIND_CHAT: i32 = 2;
export const KIND_EMBEDDINGS: i32 = 3;
export const KIND_RESPONSES: i32 = 4;
export const KIND_MESSAGES: i32 = 5;

/** Default prompt cap: GIE's maxPrefixBlocksToMatch × hashBlockSize. */
export const DEFAULT_PROMPT_LIMIT: i32 = 256 * 64;

/** Request kind from the `:path` (query string ignored); KIND_AUTO for anything else. */
export function kindFromPath(path: string): i32 {
  const q = path.indexOf("?");
  const p = q >= 0 ? path.substring(0, q) : path;
  if (p.endsWith("/chat/completions")) return KIND_CHAT;
  if (p.endsWith("/completions")) return KIND_COMPLETIONS;
  if (p.endsWith("/embeddings")) return KIND_EMBEDDINGS;
  if (p.endsWith("/responses")) return KIND_RESPONSES;
  if (p.endsWith("/messages")) return KIND_MESSAGES;
  return KIND_AUTO;
}

let base: usize = 0;

function at(i: i32): u32 {
  return <u32>load<u8>(base + <usize>i);
}

function isWs(c: u32): bool {
  return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09;
}

function skipWs(i: i32): i32 {
  while (isWs(at(i))) i++;
  return i;
}

/** Offset one past the (validated) value starting at i. */
function skipValue(i: i32): i32 {
  const c = at(i);
  if (c == 0x22) return skipString(base, i);
  if (c == 0x7b || c == 0x5b) {
    let depth = 0;
    while (true) {
      const d = at(i);
      if (d == 0x22) {
        i = skipString(base, i);
        continue;
      }
      i++;
      if (d == 0x7b || d == 0x5b) depth++;
      else if (d == 0x7d || d == 0x5d) {
        if (--depth == 0) return i;
      }
    }
  }
  // Number or literal: runs until a delimiter.
  while (true) {
    const d = at(i);
    if (d == 0x2c || d == 0x7d || d == 0x5d || isWs(d)) return i;
    i++;
  }
}

// Walking arrays/objects: `i` is at '[' or '{'; each call to next* returns the next element's
// start, or -1 at the end. Keys are returned as the offset of their opening quote.
function firstElement(i: i32): i32 {
  i = skipWs(i + 1);
  const c = at(i);
  return c == 0x5d || c == 0x7d ? -1 : i;
}

function nextElement(afterValue: i32): i32 {
  const i = skipWs(afterValue);
  return at(i) == 0x2c ? skipWs(i + 1) : -1;
}

/** Offset of the value of the member whose key starts at `key` (past the colon). */
function memberValue(key: i32): i32 {
  return skipWs(skipWs(skipString(base, key)) + 1);
}

function keyIs(key: i32, lit: string): bool {
  // Known keys are ASCII; escaped spellings of them are not recognised here (harmless: no text).
  const n = lit.length;
  if (at(key + 1 + n) != 0x22) return false;
  for (let k = 0; k < n; k++) {
    if (at(key + 1 + k) != <u32>lit.charCodeAt(k)) return false;
  }
  return true;
}

// What an array's object elements are, for appendItems.
const OBJECTS_SKIPPED: i32 = 0;
const OBJECTS_TEXT_PARTS: i32 = 1; // content parts: their `text` member is appended
const OBJECTS_MESSAGES: i32 = 2; // chat messages: rendered with the template

/**
 * Appends a string value; or, for an array, every string element and, per `objects`, every object
 * element (numbers etc. skipped). Prompts, inputs, content and messages all have this shape.
 */
function appendItems(i: i32, out: ByteBuffer, objects: i32): void {
  const c = at(i);
  if (c == 0x22) {
    appendString(base, i, out);
    return;
  }
  if (c != 0x5b) return;
  let e = firstElement(i);
  while (e >= 0 && !out.full) {
    const d = at(e);
    if (d == 0x22) {
      e = nextElement(appendString(base, e, out));
      continue;
    }
    if (d == 0x7b) {
      if (objects == OBJECTS_TEXT_PARTS) appendTextPart(e, out);
      else if (objects == OBJECTS_MESSAGES) appendMessage(e, out);
    }
    e = nextElement(skipValue(e));
  }
}

/** A content part object: its `text` string. The last `text` member wins, as with JSON.parse. */
function appendTextPart(i: i32, out: ByteBuffer): void {
  let text = -1;
  let k = firstElement(i);
  while (k >= 0) {
    const v = memberValue(k);
    if (keyIs(k, "text")) text = v;
    k = nextElement(skipValue(v));
  }
  if (text >= 0 && at(text) == 0x22) appendString(base, text, out);
}

/** One message object rendered with the chat template. */
function appendMessage(i: i32, out: ByteBuffer): void {
  let role = -1;
  let content = -1;
  let k = firstElement(i);
  while (k >= 0) {
    const v = memberValue(k);
    if (keyIs(k, "role")) role = v;
    else if (keyIs(k, "content")) content = v;
    k = nextElement(skipValue(v));
  }
  out.pushString("<|im_start|>");
  if (role >= 0 && at(role) == 0x22) appendString(base, role, out);
  out.push(0x0a);
  if (content >= 0) appendItems(content, out, OBJECTS_TEXT_PARTS);
  out.pushString("<|im_end|>\n");
}

/** Anthropic's top-level `system`, rendered as the leading system message when it is text or blocks. */
function appendSystem(r: ScanResult, out: ByteBuffer): void {
  const s = r.system;
  if (!s.present) return;
  const c = at(s.start);
  if (c != 0x22 && c != 0x5b) return;
  out.pushString("<|im_start|>system\n");
  appendItems(s.start, out, OBJECTS_TEXT_PARTS);
  out.pushString("<|im_end|>\n");
}

/**
 * Fills `out` (reset first) with the prompt text of the scanned body at [ptr, ptr+len). `r` must be a
 * successful scan of the same bytes. Returns the number of bytes written.
 */
export function extractPrompt(ptr: usize, len: i32, r: ScanResult, kind: i32, out: ByteBuffer): i32 {
  out.reset();
  base = ptr;
  setStringLimit(len);
  if (kind == KIND_AUTO) {
    if (r.messages.present) kind = KIND_CHAT;
    else if (r.prompt.present) kind = KIND_COMPLETIONS;
    else if (r.instructions.present) kind = KIND_RESPONSES;
    else kind = KIND_EMBEDDINGS;
  }
  if (kind == KIND_CHAT) {
    if (r.messages.present) appendItems(r.messages.start, out, OBJECTS_MESSAGES);
  } else if (kind == KIND_COMPLETIONS) {
    if (r.prompt.present) appendItems(r.prompt.start, out, OBJECTS_SKIPPED);
  } else if (kind == KIND_EMBEDDINGS) {
    if (r.input.present) appendItems(r.input.start, out, OBJECTS_SKIPPED);
  } else if (kind == KIND_RESPONSES) {
    const ins = r.instructions;
    if (ins.present && at(ins.start) == 0x22) appendString(base, ins.start, out);
    if (r.input.present) appendItems(r.input.start, out, OBJECTS_MESSAGES);
  } else if (kind == KIND_MESSAGES) {
    appendSystem(r, out);
    if (r.messages.present) appendItems(r.messages.start, out, OBJECTS_MESSAGES);
  }
  return out.len;
}

/** Decodes the scanned `model` value into `out` (reset first); returns its byte length. */
export function extractModel(ptr: usize, len: i32, r: ScanResult, out: ByteBuffer): i32 {
  out.reset();
  setStringLimit(len);
  const m: Span = r.model;
  if (!m.present) return 0;
  if (!m.escaped) out.pushBytes(ptr + <usize>m.start + 1, m.end - m.start - 2);
  else appendString(ptr, m.start, out);
  return out.len;
}
