// A reusable byte buffer with a hard size limit. Writes past the limit are dropped and flagged
// (`truncated`), so a huge prompt costs at most `limit` bytes of copying and never grows memory.

export class ByteBuffer {
  data: StaticArray<u8>;
  len: i32 = 0;
  limit: i32;
  truncated: bool = false;

  constructor(limit: i32, initial: i32 = 256) {
    this.limit = limit;
    this.data = new StaticArray<u8>(initial < limit ? initial : limit);
  }

  @inline get ptr(): usize {
    return changetype<usize>(this.data);
  }

  reset(): void {
    this.len = 0;
    this.truncated = false;
  }

  /** Makes room for `extra` more bytes if the limit allows; returns how many fit. */
  reserve(extra: i32): i32 {
    const room = this.limit - this.len;
    const want = extra < room ? extra : room;
    const need = this.len + want;
    const cap = this.data.length;
    if (need > cap) {
      let next = cap * 2;
      if (next < need) next = need;
      if (next > this.limit) next = this.limit;
      const grown = new StaticArray<u8>(next);
      memory.copy(changetype<usize>(grown), changetype<usize>(this.data), <usize>this.len);
      this.data = grown;
    }
    return want;
  }

  @inline push(b: u8): void {
    if (this.len < this.data.length) {
      unchecked((this.data[this.len++] = b));
    } else if (this.reserve(1) == 1) {
      unchecked((this.data[this.len++] = b));
    } else {
      this.truncated = true;
    }
  }

  pushBytes(src: usize, n: i32): void {
    const fit = this.reserve(n);
    memory.copy(changetype<usize>(this.data) + <usize>this.len, src, <usize>fit);
    this.len += fit;
    if (fit < n) this.truncated = true;
  }

  pushString(s: string): void {
    // Callers pass ASCII template text, so UTF-16 code units map 1:1 to bytes.
    for (let i = 0; i < s.length; i++) this.push(<u8>s.charCodeAt(i));
  }

  @inline get full(): bool {
    return this.len >= this.limit;
  }

  /** A copy of the contents (allocates; for tests and the probe). */
  toUint8Array(): Uint8Array {
    const out = new Uint8Array(this.len);
    memory.copy(out.dataStart, this.ptr, <usize>this.len);
    return out;
  }
}
