// Model rewrite: the body with its top-level `model` value replaced. Only the value's bytes change,
// so everything else (key order, whitespace, unknown fields) reaches the model server untouched.
// Fixing content-length is the caller's job (the new length is the returned array's length).

import { ByteBuffer } from "./bytes.ts";
import { ScanResult } from "./result.ts";
import { pushJsonQuoted } from "./json-string.ts";

const scratch = new ByteBuffer(0x7fffffff, 256);

/**
 * Returns a new body: bytes [0, model.start) of the original, `newModel` as a JSON string, then
 * bytes [model.end, len). `r` must be a successful scan of the same bytes; without a `model` span
 * the body is returned unchanged.
 */
export function rewriteModel(ptr: usize, len: i32, r: ScanResult, newModel: string): Uint8Array {
  if (!r.model.present || r.model.end > len) {
    // Nothing to replace (caller skipped the scan check): hand back the body unchanged.
    const same = new Uint8Array(len);
    memory.copy(same.dataStart, ptr, <usize>len);
    return same;
  }
  scratch.reset();
  pushJsonQuoted(scratch, newModel);
  const start = r.model.start;
  const tail = len - r.model.end;
  const out = new Uint8Array(start + scratch.len + tail);
  const dst = out.dataStart;
  memory.copy(dst, ptr, <usize>start);
  memory.copy(dst + <usize>start, scratch.ptr, <usize>scratch.len);
  memory.copy(dst + <usize>(start + scratch.len), ptr + <usize>r.model.end, <usize>tail);
  return out;
}

/**
 * The body's head up to the end of `model`, rewritten: bytes [0, model.start) then `newModel` as a JSON
 * string. Writing it over [0, model.end) (set_buffer_bytes drains and prepends, envoy-proxy-wasm.md)
 * changes only the head, so the cost does not grow with the prompt.
 */
export function rewrittenHead(ptr: usize, r: ScanResult, newModel: string): Uint8Array {
  scratch.reset();
  pushJsonQuoted(scratch, newModel);
  const start = r.model.start;
  const out = new Uint8Array(start + scratch.len);
  memory.copy(out.dataStart, ptr, <usize>start);
  memory.copy(out.dataStart + <usize>start, scratch.ptr, <usize>scratch.len);
  return out;
}
