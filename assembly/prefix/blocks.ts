// Chained prefix-block hashes (GIE v1.5's approximate prefix producer, in bytes):
//   h_{-1} = xxh64(model name), h_i = xxh64(block_i ‖ LE-u64(h_{i-1})), 64-byte blocks,
// at most maxBlocks of them, trailing partial block ignored. Chaining makes a hit on h_i imply the
// whole prefix up to block i, under the same model.

import { xxh64, xxh64Chain } from "./xxhash64.ts";

export const BLOCK_SIZE: i32 = 64;
export const DEFAULT_MAX_BLOCKS: i32 = 256;

/**
 * Writes up to min(len / 64, maxBlocks, out.length) chained hashes of the prompt at `prompt` into
 * `out` and returns how many.
 */
export function computeBlockHashes(
  prompt: usize,
  len: i32,
  model: usize,
  modelLen: i32,
  out: StaticArray<u64>,
  maxBlocks: i32 = DEFAULT_MAX_BLOCKS,
): i32 {
  let n = len / BLOCK_SIZE;
  if (n > maxBlocks) n = maxBlocks;
  if (n > out.length) n = out.length;
  let h = xxh64(model, modelLen, 0);
  for (let i = 0; i < n; i++) {
    h = xxh64Chain(prompt + <usize>(i * BLOCK_SIZE), h);
    unchecked((out[i] = h));
  }
  return n;
}
