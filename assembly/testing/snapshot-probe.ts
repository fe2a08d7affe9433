// Test entry exposing the pure snapshot decoder to Node (npm run build:probe → build/snapshot-probe.wasm).
// Plain asc output (no wasi-shim, no SDK): the only import is env.abort, which the Node side supplies.
// Exports:
//   inputBuffer(len: i32): usize  — address of a buffer of at least len bytes; write the snapshot there
//   decode(len: i32): i32         — decodes the first len bytes; 0 = ok, otherwise a DecodeError code
//   outputPtr(): usize, outputLen(): i32 — UTF-8 result of the last decode: on success the decoded
//                                   snapshot as JSON (docs/snapshot-format.md § "The decoded form"),
//                                   on failure the error message
//   crc32(len: i32): u32          — CRC-32 of the first len input bytes (for known-vector tests)

import { decodeSnapshot } from "../snapshot/decode.ts";
import { snapshotToJson } from "../snapshot/to-json.ts";
import { crc32 as crc } from "../snapshot/crc32.ts";

let input = new StaticArray<u8>(1 << 16);
let output = new ArrayBuffer(0);

export function inputBuffer(len: i32): usize {
  if (len < 0) len = 0;
  if (input.length < len) input = new StaticArray<u8>(len);
  return changetype<usize>(input);
}

export function decode(len: i32): i32 {
  if (len < 0 || len > input.length) len = 0;
  const result = decodeSnapshot(changetype<usize>(input), <u32>len);
  const s = result.snapshot;
  output = String.UTF8.encode(s ? snapshotToJson(s) : result.message);
  return <i32>result.error;
}

export function outputPtr(): usize {
  return changetype<usize>(output);
}

export function outputLen(): i32 {
  return output.byteLength;
}

export function crc32(len: i32): u32 {
  if (len < 0 || len > input.length) len = 0;
  return crc(changetype<usize>(input), <usize>len);
}
