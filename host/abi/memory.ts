// Guest memory access and the host→guest copy-out protocol (envoy-proxy-wasm.md §2 "Memory protocol").
// Views are cached per ArrayBuffer: memory.grow() (e.g. inside guest malloc) detaches the old buffer,
// so every access checks the buffer identity and rebuilds the views only when it changed.

import type { HeaderList } from "../types.ts";
export const utf8Encoder = new TextEncoder();
export const utf8Decoder = new TextDecoder();
const EMPTY = new Uint8Array(0);

/** Thrown internally for a bad guest pointer; the shim turns it into InvalidMemoryAccess (6). */
export class BadPointer extends Error {}

export class GuestMemory {
  private buffer: ArrayBuffer | undefined;
  private u8: Uint8Array = EMPTY;
  private dv: DataView = new DataView(new ArrayBuffer(0));
  malloc: ((size: number) => number) | undefined;

  constructor(private readonly memory: WebAssembly.Memory) {}

  /** The linear memory's current size in bytes (what Envoy's vm_memory_size gauge reports). */
  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  private refresh(): void {
    const b = this.memory.buffer as ArrayBuffer;
    if (b !== this.buffer) {
      this.buffer = b;
      this.u8 = new Uint8Array(b);
      this.dv = new DataView(b);
    }
  }

  private check(ptr: number, size: number): void {
    if (ptr < 0 || size < 0 || ptr + size > this.u8.length) throw new BadPointer();
  }

  bytes(ptr: number, size: number): Uint8Array {
    this.refresh();
    ptr >>>= 0;
    size >>>= 0;
    this.check(ptr, size);
    return this.u8.subarray(ptr, ptr + size);
  }

  /** A copy that survives later guest calls. */
  copy(ptr: number, size: number): Uint8Array {
    return this.bytes(ptr, size).slice();
  }

  string(ptr: number, size: number): string {
    return size === 0 ? "" : utf8Decoder.decode(this.bytes(ptr, size));
  }

  u32(ptr: number): number {
    this.refresh();
    ptr >>>= 0;
    this.check(ptr, 4);
    return this.dv.getUint32(ptr, true);
  }

  setU32(ptr: number, v: number): void {
    this.refresh();
    ptr >>>= 0;
    this.check(ptr, 4);
    this.dv.setUint32(ptr, v >>> 0, true);
  }

  setU64(ptr: number, v: bigint): void {
    this.refresh();
    ptr >>>= 0;
    this.check(ptr, 8);
    this.dv.setBigUint64(ptr, BigInt.asUintN(64, v), true);
  }

  write(ptr: number, data: Uint8Array): void {
    this.refresh();
    ptr >>>= 0;
    this.check(ptr, data.length);
    this.u8.set(data, ptr);
  }

  /**
   * Copies data into a fresh guest allocation and writes (ptr, size) into the return slots.
   * Empty data skips malloc and writes 0/0, as cpp-host does. Throws BadPointer on failure.
   */
  copyOut(data: Uint8Array, ptrPtr: number, sizePtr: number): void {
    // Check the return slots first so a bad pointer does not leak a guest allocation.
    this.refresh();
    this.check(ptrPtr >>> 0, 4);
    this.check(sizePtr >>> 0, 4);
    if (data.length === 0) {
      this.setU32(ptrPtr, 0);
      this.setU32(sizePtr, 0);
      return;
    }
    if (!this.malloc) throw new BadPointer();
    const p = this.malloc(data.length) >>> 0;
    if (p === 0) throw new BadPointer();
    this.write(p, data); // write() refreshes: malloc may have grown memory
    this.setU32(ptrPtr, p);
    this.setU32(sizePtr, data.length);
  }
}

// --- Header pair serialization (envoy-proxy-wasm.md §2 "Memory protocol") ---

const MAX_PAIRS_BYTES = 1 << 20;
const MAX_PAIRS = 1024;

/** u32 count; count×(u32 key_len, u32 val_len); then each key\0 value\0. */
export function serializePairs(pairs: HeaderList): Uint8Array {
  if (pairs.length === 0) return EMPTY;
  const enc: Uint8Array[] = new Array(pairs.length * 2);
  let size = 4 + pairs.length * 8;
  for (let i = 0; i < pairs.length; i++) {
    const k = utf8Encoder.encode(pairs[i]![0]);
    const v = utf8Encoder.encode(pairs[i]![1]);
    enc[2 * i] = k;
    enc[2 * i + 1] = v;
    size += k.length + v.length + 2;
  }
  const out = new Uint8Array(size);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, pairs.length, true);
  let off = 4;
  for (let i = 0; i < pairs.length; i++) {
    dv.setUint32(off, enc[2 * i]!.length, true);
    dv.setUint32(off + 4, enc[2 * i + 1]!.length, true);
    off += 8;
  }
  for (const e of enc) {
    out.set(e, off);
    off += e.length + 1; // NUL already zero
  }
  return out;
}

/** Malformed input, > 1 MiB or > 1024 pairs decode silently as an empty list (cpp-host pairs_util). */
export function deserializePairs(data: Uint8Array): HeaderList {
  if (data.length < 4 || data.length > MAX_PAIRS_BYTES) return [];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n = dv.getUint32(0, true);
  if (n > MAX_PAIRS || 4 + n * 8 > data.length) return [];
  const out: HeaderList = [];
  let off = 4 + n * 8;
  for (let i = 0; i < n; i++) {
    const kl = dv.getUint32(4 + i * 8, true);
    const vl = dv.getUint32(8 + i * 8, true);
    if (off + kl + 1 + vl + 1 > data.length) return [];
    if (data[off + kl] !== 0 || data[off + kl + 1 + vl] !== 0) return [];
    const k = utf8Decoder.decode(data.subarray(off, off + kl));
    off += kl + 1;
    const v = utf8Decoder.decode(data.subarray(off, off + vl));
    off += vl + 1;
    out.push([k, v]);
  }
  return out;
}

/** A configuration value as bytes: strings are UTF-8, absent is empty. */
export function toBytes(v: string | Uint8Array | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  return typeof v === "string" ? utf8Encoder.encode(v) : v;
}
