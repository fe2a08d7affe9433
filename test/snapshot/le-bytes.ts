// Little-endian field writers for snapshots written byte by byte from docs/snapshot-format.md: the only
// "encoder" the hand-built tests use, so they do not share a misreading with sidecar/snapshot/encoder.ts.
export const u8 = (n: number) => [n & 0xff];
export const u16 = (n: number) => [n & 0xff, (n >>> 8) & 0xff];
export const u32 = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
export const u64 = (n: bigint) => [...u32(Number(n & 0xffffffffn)), ...u32(Number(n >> 32n))];
export const i32 = (n: number) => u32(n >>> 0);
export const f64 = (x: number) => {
  const b = new DataView(new ArrayBuffer(8));
  b.setFloat64(0, x, true);
  return [...new Uint8Array(b.buffer)];
};
/** A section: tag u16, reserved u16 (0), length u32, payload. */
export const section = (tag: number, payload: number[]) => [
  ...u16(tag),
  ...u16(0),
  ...u32(payload.length),
  ...payload,
];
