// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum zlib and the sidecar use.
// Table-driven: one 1 KiB table built on first use.

let table: StaticArray<u32> | null = null;

function crcTable(): StaticArray<u32> {
  let t = table;
  if (t) return t;
  t = new StaticArray<u32>(256);
  for (let n: u32 = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    unchecked((t[n] = c));
  }
  table = t;
  return t;
}

/** CRC-32 of len bytes at ptr. */
export function crc32(ptr: usize, len: usize): u32 {
  const t = crcTable();
  let c: u32 = 0xffffffff;
  for (let i: usize = 0; i < len; i++) {
    c = unchecked(t[(c ^ load<u8>(ptr + i)) & 0xff]) ^ (c >>> 8);
  }
  return c ^ 0xffffffff;
}
