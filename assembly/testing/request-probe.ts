// Test/bench entry exposing the pure request and prefix modules to Node (build:request-probe).
// Protocol: the host asks for a buffer with inputBuffer(len), writes bytes at the returned pointer,
// then calls an operation; results are read back through the getters (pointer + length).
// Plain asc output: the only import is env.abort, which the Node side supplies.

import { ScanResult, scanErrorMessage } from "../request/result.ts";
import { scanPrefix, scanRequest, validateJson } from "../request/json-scan.ts";
import { closePrefix } from "../request/body-prefix.ts";
import { ModelKeyWatch } from "../request/model-key-watch.ts";
import { extractPrompt, extractModel, DEFAULT_PROMPT_LIMIT } from "../request/prompt.ts";
import { rewriteModel } from "../request/rewrite.ts";
import { ByteBuffer } from "../request/bytes.ts";
import { computeBlockHashes, DEFAULT_MAX_BLOCKS } from "../prefix/blocks.ts";
import { xxh64 } from "../prefix/xxhash64.ts";
import { PrefixIndex } from "../prefix/index.ts";

let input = new StaticArray<u8>(1 << 16);
let aux = new StaticArray<u8>(256);
const result = new ScanResult();
let prompt = new ByteBuffer(DEFAULT_PROMPT_LIMIT, DEFAULT_PROMPT_LIMIT);
const model = new ByteBuffer(1 << 20, 256);
const hashes = new StaticArray<u64>(DEFAULT_MAX_BLOCKS);
let nHashes: i32 = 0;
let bodyLen: i32 = 0;
let index = new PrefixIndex(16);
let matchOut = new StaticArray<i32>(16);
let output: Uint8Array = new Uint8Array(0);

/** A buffer of at least len bytes for the next operation's input; returns its address. */
export function inputBuffer(len: i32): usize {
  if (input.length < len) input = new StaticArray<u8>(len);
  return changetype<usize>(input);
}

/** A second buffer (new model name for rewrite). */
export function auxBuffer(len: i32): usize {
  if (aux.length < len) aux = new StaticArray<u8>(len);
  return changetype<usize>(aux);
}

export function setPromptLimit(limit: i32): void {
  prompt = new ByteBuffer(limit, limit);
}

/** Validates any JSON document; returns the result code. */
export function validate(len: i32): i32 {
  return validateJson(changetype<usize>(input), len);
}

/** Scans the body (len bytes in the input buffer); returns the error code. */
export function scan(len: i32): i32 {
  bodyLen = len;
  scanRequest(changetype<usize>(input), len, result);
  return result.error;
}

export function errorPos(): i32 {
  return result.errorPos;
}
export function stream(): i32 {
  return result.stream;
}
/** Raw span of a field: 0 model, 1 prompt, 2 messages, 3 input, 4 instructions. */
export function spanStart(field: i32): i32 {
  return field == 0
    ? result.model.start
    : field == 1
      ? result.prompt.start
      : field == 2
        ? result.messages.start
        : field == 3
          ? result.input.start
          : result.instructions.start;
}
export function spanEnd(field: i32): i32 {
  return field == 0
    ? result.model.end
    : field == 1
      ? result.prompt.end
      : field == 2
        ? result.messages.end
        : field == 3
          ? result.input.end
          : result.instructions.end;
}
export function modelEscaped(): bool {
  return result.model.escaped;
}

/** Decoded model of the last successful scan; returns its length (bytes at modelPtr()). */
export function model_(): i32 {
  return extractModel(changetype<usize>(input), bodyLen, result, model);
}
export function modelPtr(): usize {
  return model.ptr;
}

/** Prompt of the last successful scan for a request kind; returns its length (bytes at promptPtr()). */
export function prompt_(kind: i32): i32 {
  return extractPrompt(changetype<usize>(input), bodyLen, result, kind, prompt);
}
export function promptPtr(): usize {
  return prompt.ptr;
}
export function promptTruncated(): bool {
  return prompt.truncated;
}

/** Block hashes of the current prompt seeded with the current model; returns the count. */
export function hashBlocks(): i32 {
  nHashes = computeBlockHashes(prompt.ptr, prompt.len, model.ptr, model.len, hashes);
  return nHashes;
}
export function hashesPtr(): usize {
  return changetype<usize>(hashes);
}

/** The whole request path: scan, model, prompt, hashes. Returns the hash count or -error. */
export function processRequest(len: i32, kind: i32): i32 {
  bodyLen = len;
  scanRequest(changetype<usize>(input), len, result);
  if (result.error != 0) return -result.error;
  extractModel(changetype<usize>(input), bodyLen, result, model);
  extractPrompt(changetype<usize>(input), bodyLen, result, kind, prompt);
  nHashes = computeBlockHashes(prompt.ptr, prompt.len, model.ptr, model.len, hashes);
  return nHashes;
}

/** Rewrites the model to the UTF-8 name of newLen bytes in the aux buffer; returns the new length. */
export function rewrite(len: i32, newLen: i32): i32 {
  const name = String.UTF8.decodeUnsafe(changetype<usize>(aux), <usize>newLen);
  output = rewriteModel(changetype<usize>(input), len, result, name);
  return output.length;
}
export function outputPtr(): usize {
  return output.dataStart;
}

/** Error message (UTF-8) for a code; returns its length, bytes at outputPtr(). */
export function errorMessage(code: i32, pos: i32): i32 {
  output = Uint8Array.wrap(String.UTF8.encode(scanErrorMessage(code, pos)));
  return output.length;
}

/** xxh64 of len bytes in the input buffer; returned as i64 (JS BigInt). */
export function hash64(len: i32, seed: u64): u64 {
  return xxh64(changetype<usize>(input), len, seed);
}

/** Replaces the index. maxEntries ≤ 0 keeps the default. */
export function indexReset(maxEndpoints: i32, maxEntries: i32): void {
  index = maxEntries > 0 ? new PrefixIndex(maxEndpoints, maxEntries) : new PrefixIndex(maxEndpoints);
  matchOut = new StaticArray<i32>(maxEndpoints);
}
/** Loads n hashes (u64 LE) from the input buffer as the current hash list. */
export function loadHashes(n: i32): i32 {
  if (n > hashes.length) n = hashes.length;
  memory.copy(changetype<usize>(hashes), changetype<usize>(input), (<usize>n) << 3);
  nHashes = n;
  return n;
}
export function indexAdd(endpoint: i32): void {
  index.add(hashes, nHashes, endpoint);
}
export function indexMatch(): i32 {
  return index.match(hashes, nHashes, matchOut);
}
export function matchPtr(): usize {
  return changetype<usize>(matchOut);
}
export function indexRemove(endpoint: i32): void {
  index.removeEndpoint(endpoint);
}
export function indexSetCapacity(endpoint: i32, cap: i32): void {
  index.setCapacity(endpoint, cap);
}
export function indexSize(): i32 {
  return index.size;
}
export function indexSizeOf(endpoint: i32): i32 {
  return index.sizeOf(endpoint);
}
export function indexDistinct(): i32 {
  return index.distinctHashes;
}

// Prefix scans (a body that has not fully arrived): scan the first `len` bytes of the input.
export function scanHead(len: i32): i32 {
  scanPrefix(changetype<usize>(input), len, result);
  return result.error;
}

export function headTruncated(): bool {
  return result.cut.truncated;
}

export function headTopKey(): i32 {
  return result.cut.topKey;
}

/** The closed form of the last scanHead's prefix into the output; its length, or -1 when there is none. */
export function closeHead(len: i32): i32 {
  const out = new ByteBuffer(len + 200, 256);
  if (!closePrefix(changetype<usize>(input), len, result.cut, out)) return -1;
  output = new Uint8Array(out.len);
  memory.copy(output.dataStart, out.ptr, <usize>out.len);
  return out.len;
}

/** Top-level `model` keys: the last scanHead's up to its safe point, then [safePos, len) fed in `chunk`s. */
export function watchRest(len: i32, chunk: i32): i32 {
  const w = ModelKeyWatch.fromCut(result.cut);
  let at = result.cut.safePos;
  while (at < len) {
    const n = min(chunk, len - at);
    w.feed(changetype<usize>(input) + <usize>at, n);
    at += n;
  }
  return w.modelKeys;
}
